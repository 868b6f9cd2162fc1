"""Aggregate SQL the gateway calls (docs/internal-api.md → Training): one query per figure, for
one district or all of them; PostgreSQL does the counting and summing. Who is active staff of a
district comes from the local staff directory (services/training/directory.py), so no list of ids
ever crosses a service boundary."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import UUID

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.training.schemas import DistrictCompletion, DistrictStudioStats, StaffMembership

# §4.5 for one district: its active staff from the staff directory (partial index on the district),
# each one's window sum from the ledger by an index-only scan of ix_training_hours_staff_window.
# The answers are kept between calls by services/common/kept_answers.py (the routes are marked @keeps_answer).
_DISTRICT_COMPLETION = text("""
    SELECT d.home_district_code AS district_code, count(*) AS staff,
           count(*) FILTER (WHERE w.hours >= :threshold) AS completed
    FROM training.staff_directory d
    LEFT JOIN LATERAL (
        SELECT sum(h.hours) AS hours FROM training.training_hours h
        WHERE h.staff_id = d.id AND h.earned_on > :after AND h.earned_on <= :as_of) w ON true
    WHERE d.status = 'active' AND d.home_district_code = :district_code
    GROUP BY d.home_district_code""")

# Every district at once: the window's sums in one pass over the ledger, joined to the directory.
_CITY_COMPLETION = text("""
    WITH totals AS (
        SELECT staff_id, sum(hours) AS hours FROM training.training_hours
        WHERE earned_on > :after AND earned_on <= :as_of
        GROUP BY staff_id),
    figures AS (
        SELECT d.home_district_code AS district_code, count(*) AS staff,
               count(*) FILTER (WHERE t.hours >= :threshold) AS completed
        FROM training.staff_directory d LEFT JOIN totals t ON t.staff_id = d.id
        WHERE d.status = 'active' AND d.home_district_code IS NOT NULL
        GROUP BY d.home_district_code)
    SELECT * FROM figures ORDER BY district_code""")


async def completion(session: AsyncSession, *, after: date, as_of: date, threshold: Decimal,
                     district_code: str | None) -> list[DistrictCompletion]:
    """Active staff per home district and how many have credits with `after < earned_on ≤ as_of`
    totalling at least the threshold. One row per district with active staff; a filtered district
    without any answers one row of zeros."""
    params = {"after": after, "as_of": as_of, "threshold": threshold}
    if district_code is None:
        rows = (await session.execute(_CITY_COMPLETION, params)).all()
    else:
        rows = (await session.execute(_DISTRICT_COMPLETION, {**params, "district_code": district_code})).all()
    result = [DistrictCompletion(district_code=r.district_code, staff=r.staff, completed=r.completed)
              for r in rows if r.district_code is not None]
    if district_code is not None and not result:
        result = [DistrictCompletion(district_code=district_code, staff=0, completed=0)]
    return result


async def studio_stats(session: AsyncSession, *, period_from: date, period_to: date,
                       district_code: str | None) -> list[DistrictStudioStats]:
    """Per studio district: its studios, their sessions dated in the period (China Standard Time),
    and the hours those sessions credited (Σ session hours × attendees). One row per district with
    a studio; a filtered district without studios answers one row of zeros."""
    rows = await session.execute(text("""
        WITH per_session AS (
            SELECT s.id, s.studio_id, s.hours * count(a.staff_id) AS credited
            FROM training.sessions s LEFT JOIN training.attendance a ON a.session_id = s.id
            WHERE s.session_date BETWEEN :period_from AND :period_to
            GROUP BY s.id),
        per_studio AS (
            SELECT st.district_code, st.id,
                   count(ps.id) AS sessions, coalesce(sum(ps.credited), 0) AS hours
            FROM training.studios st LEFT JOIN per_session ps ON ps.studio_id = st.id
            WHERE (CAST(:district_code AS text) IS NULL OR st.district_code = :district_code)
            GROUP BY st.district_code, st.id)
        SELECT district_code, count(*) AS studios, coalesce(sum(sessions), 0) AS sessions,
               coalesce(sum(hours), 0) AS hours
        FROM per_studio GROUP BY district_code ORDER BY district_code
    """), {"period_from": period_from, "period_to": period_to, "district_code": district_code})
    result = [DistrictStudioStats(district_code=r.district_code, studios=r.studios, sessions=r.sessions,
                                  hours=r.hours) for r in rows]
    if district_code is not None and not result:
        result = [DistrictStudioStats(district_code=district_code, studios=0, sessions=0, hours=Decimal(0))]
    return result


async def staff_memberships(session: AsyncSession, *, staff_id: UUID) -> list[StaffMembership]:
    """Studios the staff member hosts (for the studio's cycle) or belongs to, oldest first."""
    rows = await session.execute(text("""
        SELECT st.id AS studio_id, st.name AS studio_name, st.kind, st.district_code, st.status AS studio_status,
               st.start_date AS joined_on, NULL::date AS left_on, 'host' AS role
        FROM training.studios st WHERE st.host_staff_id = :staff_id
        UNION ALL
        SELECT st.id, st.name, st.kind, st.district_code, st.status, m.joined_on, m.left_on, 'member'
        FROM training.memberships m JOIN training.studios st ON st.id = m.studio_id
        WHERE m.staff_id = :staff_id
        ORDER BY joined_on, studio_id
    """), {"staff_id": staff_id})
    return [StaffMembership.model_validate(dict(r._mapping)) for r in rows]
