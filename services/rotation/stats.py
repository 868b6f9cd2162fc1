"""Rotation figures for the gateway (design.md §4.3, §4.4, §4.6; docs/internal-api.md → Rotation).

Every figure is one SQL aggregate for one district or all districts at once, so the city view costs
the same number of calls however many districts there are; nothing is counted in Python.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Any
from uuid import UUID

from sqlalchemy import Numeric, bindparam, cast, distinct, func, literal_column, select, text, union
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.calendar import academic_year_bounds, academic_year_start
from services.common.indicators import COUNTY_AND_ABOVE
from services.rotation.eligibility import eligible_on
from services.rotation.models import Rotation, RotationPolicy, Staff
from services.rotation.schemas import (
    DEFAULT_POLICY,
    BackbonePlacement,
    BalanceTotals,
    DistrictBalanceTotals,
    DistrictRotationStats,
    PlacementItem,
    RotationStats,
    SchoolStaff,
    Section,
    SectionTotals,
    StatsDefaults,
)

# §4.3: a rotation counts when it starts inside the academic year and is neither withdrawn nor
# still planned.
COUNTED_STATUSES = ("approved", "active", "completed")
_COUNTY = tuple(sorted(COUNTY_AND_ABOVE))


def _decimal(value: Decimal) -> Any:
    return literal_column(str(value), Numeric)


def _ratio(numerator: Any, denominator: Any) -> Any:
    """numerator / denominator to 4 decimals, NULL when the denominator is 0 (api.md: rates are null)."""
    return func.round(cast(numerator, Numeric) / func.nullif(denominator, 0), 4)


async def rotation_stats(session: AsyncSession, *, academic_year: int, district_code: str | None) -> RotationStats:
    """Eligible on 1 Sept Y, rotated and backbone-rotated in the year, per district (by the staff's
    home district). One row per district that has staff or a policy."""
    s, p, r = Staff.__table__.c, RotationPolicy.__table__.c, Rotation.__table__.c
    staff_t, policy_t, rotation_t = Staff.__table__, RotationPolicy.__table__, Rotation.__table__
    first, last = academic_year_bounds(academic_year)

    staff_districts = select(s.home_district_code.label("district_code"))
    policy_districts = select(p.district_code.label("district_code"))
    if district_code:
        staff_districts = staff_districts.where(s.home_district_code == district_code)
        policy_districts = policy_districts.where(p.district_code == district_code)
    districts = union(staff_districts, policy_districts).cte("districts")

    eligible = (select(s.home_district_code.label("district_code"), func.count().label("n"))
                .select_from(staff_t.outerjoin(policy_t, p.district_code == s.home_district_code))
                .where(eligible_on(s, p, academic_year_start(academic_year))))

    # Rotated staff count whether or not they were eligible (§4.3); distinct people, not rotations.
    rotated = (select(s.home_district_code.label("district_code"),
                      func.count(distinct(s.id)).label("rotated"),
                      func.count(distinct(s.id)).filter(s.backbone_level.in_(_COUNTY)).label("backbone"))
               .select_from(staff_t.join(rotation_t, r.staff_id == s.id))
               .where(r.status.in_(COUNTED_STATUSES), r.start_date.between(first, last)))
    if district_code:
        # Only the asked district's staff are read (the home district index), not the whole city.
        eligible = eligible.where(s.home_district_code == district_code)
        rotated = rotated.where(s.home_district_code == district_code)
    eligible = eligible.group_by(s.home_district_code).cte("eligible")
    rotated = rotated.group_by(s.home_district_code).cte("rotated")

    n_eligible = func.coalesce(eligible.c.n, 0)
    n_rotated = func.coalesce(rotated.c.rotated, 0)
    n_backbone = func.coalesce(rotated.c.backbone, 0)
    stmt = (select(districts.c.district_code, n_eligible.label("eligible"), n_rotated.label("rotated"),
                   n_backbone.label("backbone_rotated"),
                   _ratio(n_rotated, n_eligible).label("rotation_rate"),
                   _ratio(n_backbone, n_rotated).label("backbone_share"),
                   func.coalesce(p.target_rate, _decimal(DEFAULT_POLICY.target_rate)).label("target_rate"),
                   func.coalesce(p.target_backbone_share,
                                 _decimal(DEFAULT_POLICY.target_backbone_share)).label("target_backbone_share"))
            .select_from(districts
                         .outerjoin(eligible, eligible.c.district_code == districts.c.district_code)
                         .outerjoin(rotated, rotated.c.district_code == districts.c.district_code)
                         .outerjoin(policy_t, p.district_code == districts.c.district_code))
            .order_by(districts.c.district_code))
    rows = (await session.execute(stmt)).mappings().all()
    return RotationStats(
        academic_year=academic_year,
        defaults=StatsDefaults(target_rate=DEFAULT_POLICY.target_rate,
                               target_backbone_share=DEFAULT_POLICY.target_backbone_share),
        districts=[DistrictRotationStats.model_validate(dict(row)) for row in rows],
    )


# §4.6, stated once: a staff member on an `active` `full_time` rotation whose (inclusive) dates
# contain D works at the receiving school; otherwise at the home school. The exclusion constraint
# guarantees at most one such rotation per person on any day. Every figure and answer that says
# where someone works (placement, school staff, a staff member's workplace, the what-if) reads it.
_WORKS_AT = """
    FROM rotation.staff s
    LEFT JOIN rotation.rotations r
           ON r.staff_id = s.id AND r.status = 'active' AND r.mode = 'full_time'
          AND :as_of BETWEEN r.start_date AND r.end_date
"""
_SCHOOL = "coalesce(r.to_school_code, s.home_school_code)"
_DISTRICT = "coalesce(r.to_district_code, s.home_district_code)"
# Who counts in the balance: active county-level-and-above backbone teachers.
_BACKBONE = "s.status = 'active' AND s.role = 'teacher' AND s.backbone_level IN :county"

_WORKPLACE = f"""
    SELECT s.id, s.section, {_SCHOOL} AS school_code, {_DISTRICT} AS district_code
    {_WORKS_AT}
    WHERE {_BACKBONE}
"""
# For one district, read only teachers who could work there: its own, and those rotating into it.
_IN_DISTRICT = """
      AND (CAST(:district AS varchar) IS NULL OR s.home_district_code = CAST(:district AS varchar)
           OR r.to_district_code = CAST(:district AS varchar))
"""

_PLACEMENT = text(f"""
WITH workplace AS ({_WORKPLACE}{_IN_DISTRICT})
SELECT school_code, district_code, section, count(DISTINCT id) AS backbone
FROM workplace
WHERE CAST(:district AS varchar) IS NULL OR district_code = CAST(:district AS varchar)
GROUP BY school_code, district_code, section
ORDER BY school_code, section
""").bindparams(bindparam("county", expanding=True))


async def backbone_placement(session: AsyncSession, *, as_of: date, district_code: str | None) -> BackbonePlacement:
    """County-level-and-above backbone teachers by the school (and section) where they work on D."""
    rows = (await session.execute(_PLACEMENT, {"as_of": as_of, "district": district_code,
                                               "county": list(_COUNTY)})).mappings().all()
    return BackbonePlacement(as_of=as_of, items=[PlacementItem.model_validate(dict(row)) for row in rows])


_SCHOOL_STAFF = text(f"""
WITH workplace AS ({_WORKPLACE})
SELECT
    (SELECT count(*) FROM rotation.staff WHERE status = 'active' AND home_school_code = :school) AS staff,
    count(DISTINCT w.id) FILTER (WHERE w.section = 'primary') AS n_primary,
    count(DISTINCT w.id) FILTER (WHERE w.section = 'junior') AS n_junior,
    count(DISTINCT w.id) FILTER (WHERE w.section = 'senior') AS n_senior
FROM workplace w
WHERE w.school_code = :school
""").bindparams(bindparam("county", expanding=True))

_SCHOOL_DISTRICT = text("""
SELECT home_district_code AS district_code FROM rotation.staff WHERE home_school_code = :school
UNION
SELECT to_district_code FROM rotation.rotations WHERE to_school_code = :school
LIMIT 1
""")


async def school_district(session: AsyncSession, *, school_code: str) -> str | None:
    """The school's district as known from local records (staff or rotations), for scoping."""
    return (await session.execute(_SCHOOL_DISTRICT, {"school": school_code})).scalar()


async def school_staff(session: AsyncSession, *, school_code: str, as_of: date) -> SchoolStaff:
    """Active staff with this home school, and the county-level-and-above backbone teachers who work
    there on `as_of` (the §4.6 placement, so the school profile agrees with the balance view)."""
    row = (await session.execute(_SCHOOL_STAFF, {"school": school_code, "as_of": as_of,
                                                 "county": list(_COUNTY)})).one()
    return SchoolStaff(school_code=school_code, as_of=as_of, staff=row.staff,
                       backbone_by_section={Section.primary: row.n_primary, Section.junior: row.n_junior,
                                            Section.senior: row.n_senior})


# §4.6 summed per district and section where the facts are: the enrollments of rotation's school
# directory (partnership's registry, fed by its change feed) and the backbone teachers working at
# each school on D. One aggregate; only Σ B_i²/P_i needs more than SQL's integers, so the schools
# with backbone teachers hand their (B_i, P_i) to an exact fraction sum here.
_BALANCE = text(f"""
WITH workplace AS ({_WORKPLACE}{_IN_DISTRICT}),
b AS (SELECT school_code, section, count(DISTINCT id) AS n FROM workplace GROUP BY school_code, section),
sec AS (
    SELECT district_code, code, 'primary' AS section, primary_enrollment AS p FROM rotation.school_directory
    WHERE primary_enrollment > 0 AND (CAST(:district AS varchar) IS NULL OR district_code = CAST(:district AS varchar))
    UNION ALL
    SELECT district_code, code, 'junior', junior_enrollment FROM rotation.school_directory
    WHERE junior_enrollment > 0 AND (CAST(:district AS varchar) IS NULL OR district_code = CAST(:district AS varchar))),
per AS (
    SELECT sec.district_code, sec.section, sec.p, coalesce(b.n, 0) AS b
    FROM sec LEFT JOIN b ON b.school_code = sec.code AND b.section = sec.section)
SELECT district_code, section, count(*) AS school_count, sum(p) AS enrollment, sum(b) AS backbone,
       count(*) FILTER (WHERE 100 * b < p) AS schools_below_one,
       coalesce(array_agg(b) FILTER (WHERE b > 0), '{{}}') AS bs,
       coalesce(array_agg(p) FILTER (WHERE b > 0), '{{}}') AS ps
FROM per GROUP BY district_code, section ORDER BY district_code, section
""").bindparams(bindparam("county", expanding=True))


async def balance_totals(session: AsyncSession, *, as_of: date, district_code: str | None) -> BalanceTotals:
    """Per district (of the school directory) and section: schools with enrollment in the section,
    their enrollment P, the backbone teachers B working at them on D, the schools below 1 per 100
    students, and Σ B_i²/P_i as an exact fraction. From these the gateway has the mean 100·B/P and
    CV² = P·Σ(B_i²/P_i)/B² − 1 exactly (design.md §4.6), without any school list crossing over."""
    rows = (await session.execute(_BALANCE, {"as_of": as_of, "district": district_code,
                                             "county": list(_COUNTY)})).mappings().all()
    districts: dict[str, dict[str, SectionTotals]] = {}
    for row in rows:
        squares = sum((Fraction(b * b, p) for b, p in zip(row["bs"], row["ps"], strict=True)), Fraction(0))
        districts.setdefault(row["district_code"], {})[row["section"]] = SectionTotals(
            school_count=row["school_count"], enrollment=row["enrollment"], backbone=row["backbone"],
            schools_below_one=row["schools_below_one"],
            backbone_squared_per_enrollment=f"{squares.numerator}/{squares.denominator}")
    if district_code is not None:
        districts.setdefault(district_code, {})
    return BalanceTotals(as_of=as_of, districts=[DistrictBalanceTotals(district_code=code, sections=sections)
                                                 for code, sections in sorted(districts.items())])
_STAFF_WORKPLACES = text(f"""
SELECT s.id, s.name, s.section, s.home_district_code, {_SCHOOL} AS school_code, {_DISTRICT} AS district_code,
       ({_BACKBONE}) AS backbone
{_WORKS_AT}
WHERE s.id IN :ids
""").bindparams(bindparam("county", expanding=True), bindparam("ids", expanding=True))


@dataclass(frozen=True)
class Workplace:
    """Where one staff member works on a date (§4.6), and whether they count as backbone there."""

    staff_id: UUID
    name: str
    section: str
    home_district_code: str
    school_code: str
    district_code: str
    backbone: bool


async def staff_workplaces(session: AsyncSession, *, as_of: date, staff_ids: Collection[UUID]) -> dict[UUID, Workplace]:
    """The workplace of each of `staff_ids` that exists, by id (one query)."""
    if not staff_ids:
        return {}
    rows = await session.execute(_STAFF_WORKPLACES, {"as_of": as_of, "ids": list(staff_ids),
                                                     "county": list(_COUNTY)})
    return {row.id: Workplace(row.id, row.name, row.section, row.home_district_code, row.school_code,
                              row.district_code, row.backbone) for row in rows}
