"""Queries of the proposer: the district's candidates and subjects, and the proposals themselves.
Never commits."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from sqlalchemy import and_, exists, or_, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.calendar import academic_year_bounds, academic_year_start
from services.common.clock import utcnow
from services.common.db import RowLock, locked
from services.rotation.eligibility import eligible_on
from services.rotation.models import Rotation, RotationPolicy, RotationProposal, Staff
from services.rotation.proposals.model import Candidate


async def candidates(session: AsyncSession, *, district_code: str, academic_year: int, as_of: date,
                     start: date, end: date) -> list[Candidate]:
    """Staff of the district eligible on 1 Sept of the year (§4.3) who have no rotation, other than
    a withdrawn one, overlapping the proposal's dates, containing `as_of`, or starting in the year
    (so nobody moves twice, and everyone proposed works at their home school on `as_of`)."""
    first, last = academic_year_bounds(academic_year)
    r = Rotation.__table__.c
    busy = exists().where(r.staff_id == Staff.id, r.status != "withdrawn", or_(
        and_(r.start_date <= end, r.end_date >= start),
        and_(r.start_date <= as_of, r.end_date >= as_of),
        r.start_date.between(first, last)))
    stmt = (select(Staff.id, Staff.staff_no, Staff.name, Staff.home_school_code, Staff.section, Staff.role,
                   Staff.backbone_level, Staff.subject)
            .outerjoin(RotationPolicy, RotationPolicy.district_code == Staff.home_district_code)
            .where(Staff.home_district_code == district_code,
                   eligible_on(Staff, RotationPolicy, academic_year_start(academic_year)), ~busy)
            .order_by(Staff.staff_no))
    return [Candidate(id=str(row.id), staff_no=row.staff_no, name=row.name, school=row.home_school_code,
                      section=row.section, role=row.role, backbone_level=row.backbone_level, subject=row.subject)
            for row in (await session.execute(stmt)).all()]


async def subjects(session: AsyncSession, *, district_code: str) -> dict[tuple[str, str], frozenset[str]]:
    """The subjects each school of the district teaches in each section (by its active staff)."""
    stmt = (select(Staff.home_school_code, Staff.section, Staff.subject).distinct()
            .where(Staff.home_district_code == district_code, Staff.status == "active", Staff.subject.is_not(None)))
    found: dict[tuple[str, str], set[str]] = {}
    for school, section, subject in (await session.execute(stmt)).all():
        found.setdefault((school, section), set()).add(subject)
    return {key: frozenset(value) for key, value in found.items()}


async def staff_by_ids(session: AsyncSession, ids: list[UUID]) -> dict[UUID, Staff]:
    """The staff records of `ids` that exist, by id (one query)."""
    if not ids:
        return {}
    return {s.id: s for s in (await session.exec(select(Staff).where(Staff.id.in_(ids)))).scalars().all()}


async def staff_districts(session: AsyncSession, ids: list[UUID]) -> dict[UUID, str]:
    if not ids:
        return {}
    stmt = select(Staff.id, Staff.home_district_code).where(Staff.id.in_(ids))
    return {row.id: row.home_district_code for row in (await session.execute(stmt)).all()}


async def count_staff(session: AsyncSession, *, district_code: str) -> int:
    from sqlalchemy import func

    stmt = select(func.count()).select_from(Staff).where(Staff.home_district_code == district_code,
                                                         Staff.status == "active")
    return (await session.execute(stmt)).scalar_one()


async def get(session: AsyncSession, proposal_id: UUID, *, lock: RowLock | None = None) -> RotationProposal | None:
    stmt = locked(select(RotationProposal).where(RotationProposal.id == proposal_id), lock)
    return (await session.exec(stmt)).scalars().first()


async def finish(session: AsyncSession, proposal_id: UUID, *, status: str, result: dict | None,
                 detail: str | None) -> None:
    await session.execute(update(RotationProposal).where(RotationProposal.id == proposal_id,
                                                         RotationProposal.status == "running")
                          .values(status=status, result=result, detail=detail, finished_at=utcnow()))


async def start_attempt(session: AsyncSession, proposal_id: UUID) -> RotationProposal | None:
    """Count a worker's start of the job; None when the proposal is no longer running."""
    await session.execute(update(RotationProposal).where(RotationProposal.id == proposal_id,
                                                         RotationProposal.status == "running")
                          .values(attempts=RotationProposal.attempts + 1))
    proposal = await get(session, proposal_id)
    return proposal if proposal is not None and proposal.status == "running" else None
