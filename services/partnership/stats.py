"""Partnership figures for the gateway (design.md §4.1 and §4.2), one SQL aggregate each.

Both queries answer one district or every district at once, so the city view costs the same
number of calls however many districts there are.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.partnership.schemas import ActivityKind, DistrictPartnershipStats, KindTotals, SchoolBrief

# §4.1: township+rural schools of the district that are the partner_school of at least one
# pairing that is `active` with D inside its (inclusive) range, over all township+rural schools.
# §4.2: a pairing counts for every district that has a school on either side of it.
_PER_DISTRICT = text("""
WITH pairing_districts AS (
    SELECT DISTINCT p.id, p.status, p.start_date, p.end_date, s.district_code
    FROM partnership.pairings p
    JOIN partnership.schools s ON s.code IN (p.lead_school_code, p.partner_school_code)
),
coverage AS (
    SELECT s.district_code,
           count(*) AS township_rural_schools,
           count(*) FILTER (WHERE EXISTS (
               SELECT 1 FROM partnership.pairings p
               WHERE p.partner_school_code = s.code AND p.status = 'active'
                 AND :as_of BETWEEN p.start_date AND p.end_date)) AS covered_schools
    FROM partnership.schools s
    WHERE s.locality IN ('township', 'rural')
    GROUP BY s.district_code
),
active AS (
    SELECT district_code, count(*) AS active_pairings
    FROM pairing_districts
    WHERE status = 'active' AND :as_of BETWEEN start_date AND end_date
    GROUP BY district_code
)
SELECT d.code AS district_code, d.name,
       coalesce(c.township_rural_schools, 0) AS township_rural_schools,
       coalesce(c.covered_schools, 0) AS covered_schools,
       coalesce(a.active_pairings, 0) AS active_pairings
FROM partnership.districts d
LEFT JOIN coverage c ON c.district_code = d.code
LEFT JOIN active a ON a.district_code = d.code
WHERE CAST(:district AS varchar) IS NULL OR d.code = CAST(:district AS varchar)
ORDER BY d.code
""")

_ACTIVITIES = text("""
WITH pairing_districts AS (
    SELECT DISTINCT p.id, s.district_code
    FROM partnership.pairings p
    JOIN partnership.schools s ON s.code IN (p.lead_school_code, p.partner_school_code)
    WHERE CAST(:district AS varchar) IS NULL OR s.district_code = CAST(:district AS varchar)
)
SELECT pd.district_code, a.kind,
       count(*) AS activities,
       sum(a.teacher_participants) AS teacher_participations,
       sum(a.student_participants) AS student_participations
FROM pairing_districts pd
JOIN partnership.activities a ON a.pairing_id = pd.id
WHERE a.date BETWEEN :period_from AND :period_to
GROUP BY pd.district_code, a.kind
""")


async def partnership_stats(session: AsyncSession, *, as_of: date, period_from: date, period_to: date,
                            district_code: str | None) -> list[DistrictPartnershipStats]:
    params = {"as_of": as_of, "district": district_code}
    districts = (await session.execute(_PER_DISTRICT, params)).mappings().all()
    activity_rows = (await session.execute(_ACTIVITIES, {
        "district": district_code, "period_from": period_from, "period_to": period_to,
    })).mappings().all()
    by_district: dict[str, dict[str, KindTotals]] = {}
    for row in activity_rows:
        by_district.setdefault(row["district_code"], {})[row["kind"]] = KindTotals(
            activities=row["activities"], teacher_participations=row["teacher_participations"],
            student_participations=row["student_participations"])
    result = []
    for row in districts:
        kinds = by_district.get(row["district_code"], {})
        full = {kind.value: kinds.get(kind.value, KindTotals()) for kind in ActivityKind}
        result.append(DistrictPartnershipStats(
            **row,
            activities=sum(k.activities for k in kinds.values()),
            teacher_participations=sum(k.teacher_participations for k in kinds.values()),
            student_participations=sum(k.student_participations for k in kinds.values()),
            by_kind=full,
        ))
    return result


async def school_briefs(session: AsyncSession, *, district_code: str | None) -> list[SchoolBrief]:
    rows = (await session.execute(text("""
        SELECT code, name, district_code, stage, locality,
               primary_enrollment, junior_enrollment, senior_enrollment
        FROM partnership.schools
        WHERE CAST(:district AS varchar) IS NULL OR district_code = CAST(:district AS varchar)
        ORDER BY code"""), {"district": district_code})).mappings().all()
    return [SchoolBrief(**row) for row in rows]
