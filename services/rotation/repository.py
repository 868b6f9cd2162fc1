"""Queries over the rotation tables. Takes and returns models; never commits."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.calendar import academic_year_bounds, academic_year_start
from services.common.clock import utcnow
from services.common.db import RowLock, locked
from services.common.paging import PageParams, keyset
from services.rotation.eligibility import eligible_on
from services.rotation.models import Rotation, RotationPlan, RotationPolicy, RotationTransition, Staff

# Staff ---------------------------------------------------------------------------------------

async def get_staff(session: AsyncSession, staff_id: UUID, *, lock: RowLock | None = None) -> Staff | None:
    stmt = select(Staff).where(Staff.id == staff_id)
    return (await session.exec(locked(stmt, lock))).scalars().first()


async def list_staff(session: AsyncSession, *, page: PageParams, only: frozenset[str] | None,
                     district_code: str | None, home_school_code: str | None,
                     eligible_for_year: int | None, status: str | None) -> list[Staff]:
    stmt = select(Staff)
    if only is not None:
        stmt = stmt.where(Staff.home_district_code.in_(only))
    if district_code:
        stmt = stmt.where(Staff.home_district_code == district_code)
    if home_school_code:
        stmt = stmt.where(Staff.home_school_code == home_school_code)
    if status:
        stmt = stmt.where(Staff.status == status)
    if eligible_for_year is not None:
        stmt = (stmt.outerjoin(RotationPolicy, RotationPolicy.district_code == Staff.home_district_code)
                .where(eligible_on(Staff, RotationPolicy, academic_year_start(eligible_for_year))))
    return list((await session.exec(keyset(stmt, [Staff.staff_no], page))).scalars())


async def staff_by_numbers(session: AsyncSession, *, staff_nos: list[str], only: frozenset[str] | None) -> list[Staff]:
    stmt = select(Staff).where(Staff.staff_no.in_(staff_nos))
    if only is not None:
        stmt = stmt.where(Staff.home_district_code.in_(only))
    return list((await session.exec(stmt.order_by(Staff.staff_no))).scalars())


async def eligible_staff_ids(session: AsyncSession, *, as_of: date, district_code: str | None = None) -> list[UUID]:
    """Ids of the staff eligible on `as_of` (design.md §4.3), one query for a district or all."""
    stmt = (select(Staff.id)
            .outerjoin(RotationPolicy, RotationPolicy.district_code == Staff.home_district_code)
            .where(eligible_on(Staff, RotationPolicy, as_of)))
    if district_code:
        stmt = stmt.where(Staff.home_district_code == district_code)
    return list((await session.exec(stmt.order_by(Staff.id))).scalars())


# Policies ------------------------------------------------------------------------------------

async def get_policy(session: AsyncSession, district_code: str, *,
                     lock: RowLock | None = None) -> RotationPolicy | None:
    stmt = select(RotationPolicy).where(RotationPolicy.district_code == district_code)
    return (await session.exec(locked(stmt, lock))).scalars().first()


async def insert_policy(session: AsyncSession, district_code: str, values: dict[str, Any], *,
                        overwrite: bool) -> RotationPolicy | None:
    """A district's first policy, in one statement so two first PUTs cannot collide on the primary
    key. A concurrent first PUT that committed meanwhile is overwritten (`overwrite`, a PUT without
    If-Match) or wins, and then None says this one is stale."""
    stmt = pg_insert(RotationPolicy).values(district_code=district_code, created_at=values["updated_at"],
                                            version=1, **values)
    if overwrite:
        stmt = stmt.on_conflict_do_update(index_elements=[RotationPolicy.district_code],
                                          set_={**values, "version": RotationPolicy.version + 1})
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=[RotationPolicy.district_code])
    stmt = stmt.returning(RotationPolicy).execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalars().first()


# Rotations -----------------------------------------------------------------------------------

async def get_rotation(session: AsyncSession, rotation_id: UUID, *, lock: RowLock | None = None) -> Rotation | None:
    stmt = select(Rotation).where(Rotation.id == rotation_id)
    return (await session.exec(locked(stmt, lock))).scalars().first()


async def list_rotations(session: AsyncSession, *, page: PageParams, only: frozenset[str] | None,
                         district_code: str | None, staff_id: UUID | None, status: str | None,
                         academic_year: int | None, school_code: str | None,
                         plan_id: UUID | None) -> list[Rotation]:
    stmt = select(Rotation)
    if only is not None:
        stmt = stmt.where(or_(Rotation.from_district_code.in_(only), Rotation.to_district_code.in_(only)))
    if district_code:
        stmt = stmt.where(or_(Rotation.from_district_code == district_code,
                              Rotation.to_district_code == district_code))
    if school_code:
        stmt = stmt.where(or_(Rotation.from_school_code == school_code, Rotation.to_school_code == school_code))
    if staff_id:
        stmt = stmt.where(Rotation.staff_id == staff_id)
    if status:
        stmt = stmt.where(Rotation.status == status)
    if plan_id:
        stmt = stmt.where(Rotation.plan_id == plan_id)
    if academic_year is not None:
        first, last = academic_year_bounds(academic_year)
        stmt = stmt.where(Rotation.start_date.between(first, last))
    return list((await session.exec(keyset(stmt, [Rotation.start_date, Rotation.id], page))).scalars())


async def add_transition(session: AsyncSession, *, rotation_id: UUID, from_status: str | None,
                         to_status: str, actor: str, comment: str | None) -> None:
    await session.execute(insert(RotationTransition).values(
        rotation_id=rotation_id, from_status=from_status, to_status=to_status, actor=actor,
        occurred_at=utcnow(), comment=comment))


async def list_transitions(session: AsyncSession, *, rotation_id: UUID, page: PageParams) -> list[RotationTransition]:
    stmt = select(RotationTransition).where(RotationTransition.rotation_id == rotation_id)
    return list((await session.exec(keyset(stmt, [RotationTransition.id], page))).scalars())


# Plans ---------------------------------------------------------------------------------------

async def get_plan(session: AsyncSession, plan_id: UUID, *, lock: RowLock | None = None) -> RotationPlan | None:
    stmt = select(RotationPlan).where(RotationPlan.id == plan_id)
    return (await session.exec(locked(stmt, lock))).scalars().first()


async def list_plans(session: AsyncSession, *, page: PageParams, only: frozenset[str] | None,
                     district_code: str | None, academic_year: int | None) -> list[RotationPlan]:
    stmt = select(RotationPlan)
    if only is not None:
        stmt = stmt.where(RotationPlan.district_code.in_(only))
    if district_code:
        stmt = stmt.where(RotationPlan.district_code == district_code)
    if academic_year is not None:
        stmt = stmt.where(RotationPlan.academic_year == academic_year)
    return list((await session.exec(keyset(stmt, [RotationPlan.id], page))).scalars())


async def plan_counts(session: AsyncSession, plan_id: UUID) -> dict[str, int]:
    """Rotations of a plan by status, counted by PostgreSQL."""
    return (await plan_summary(session, plan_id))[0]


async def plan_summary(session: AsyncSession, plan_id: UUID) -> tuple[dict[str, int], int]:
    """Rotations of a plan by status, and the sum of their row versions (one query).

    Rotations never leave a plan and every change bumps a rotation's version, so the sum grows
    with every change to the plan's rotations: with the plan's own version it versions the
    plan's representation (its counts) for the ETag."""
    stmt = (select(Rotation.status, func.count(), func.sum(Rotation.version))
            .where(Rotation.plan_id == plan_id).group_by(Rotation.status))
    rows = (await session.exec(stmt)).all()
    return {status: n for status, n, _ in rows}, sum(int(v) for _, _, v in rows)


async def planned_rotations_of_plan(session: AsyncSession, plan_id: UUID) -> list[tuple[Rotation, Staff]]:
    """The plan's planned rotations with their staff, locked so nothing moves under the approval."""
    stmt = (select(Rotation, Staff).join(Staff, Staff.id == Rotation.staff_id)
            .where(Rotation.plan_id == plan_id, Rotation.status == "planned")
            .order_by(Rotation.start_date, Rotation.id)
            .with_for_update(of=Rotation))
    return [(r, s) for r, s in (await session.exec(stmt)).all()]


async def approve_planned_of_plan(session: AsyncSession, *, plan_id: UUID, actor: str,
                                  comment: str | None) -> list[Rotation]:
    """planned → approved for every planned rotation of the plan, with one history row each;
    returns the approved rotations as they now are."""
    now = utcnow()
    result = await session.execute(
        update(Rotation).where(Rotation.plan_id == plan_id, Rotation.status == "planned")
        .values(status="approved", version=Rotation.version + 1, updated_at=now)
        .returning(Rotation.id).execution_options(synchronize_session=False))
    ids = list(result.scalars())
    if ids:
        await session.execute(insert(RotationTransition), [
            {"rotation_id": rid, "from_status": "planned", "to_status": "approved", "actor": actor,
             "occurred_at": now, "comment": comment} for rid in ids])
    if not ids:
        return []
    stmt = (select(Rotation).where(Rotation.id.in_(ids)).order_by(Rotation.start_date, Rotation.id)
            .execution_options(populate_existing=True))
    return list((await session.exec(stmt)).scalars())
