"""The rotation workflow: planned → approved → active → completed, or withdrawn.

Overlaps are decided by PostgreSQL (`ex_rotations_staff_overlap`), never by a check-then-insert
here, so concurrent requests cannot race past the rule. A district admin manages the rotations *out of*
their district; rotations *into* it are readable to them.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.auth import Principal
from services.common.calendar import academic_year_bounds
from services.common.clock import utcnow
from services.common.db import RowLock
from services.common.errors import Conflict, NotFound, Unprocessable, register_constraint
from services.common.etag import require_version
from services.common.paging import PageParams
from services.rotation import repository as repo
from services.rotation.clients import PartnershipClient
from services.rotation.models import Rotation, RotationPlan, RotationTransition, Staff
from services.rotation.schemas import (
    PlanStatus,
    RotationCreate,
    RotationRead,
    RotationStatus,
    RotationUpdate,
    StaffStatus,
)
from services.rotation.service.shared import field_error, known_school, record

register_constraint(
    "ex_rotations_staff_overlap", Conflict, "rotation-overlap",
    "the staff member already has a rotation that is not withdrawn and whose dates overlap these "
    "(one person, one rotation at a time)",
)
register_constraint("ck_rotations_distinct_schools", Unprocessable, "same-school",
                    "a rotation must go to a school other than the home school")
register_constraint("ck_rotations_dates", Unprocessable, "dates-out-of-order",
                    "end_date must not be before start_date")

# planned → approved → active → completed; withdrawn from any state before completed.
TRANSITIONS: dict[str, tuple[frozenset[RotationStatus], RotationStatus]] = {
    "approve": (frozenset({RotationStatus.planned}), RotationStatus.approved),
    "activate": (frozenset({RotationStatus.approved}), RotationStatus.active),
    "complete": (frozenset({RotationStatus.active}), RotationStatus.completed),
    "withdraw": (frozenset({RotationStatus.planned, RotationStatus.approved, RotationStatus.active}),
                 RotationStatus.withdrawn),
}
EDITABLE = frozenset({RotationStatus.planned, RotationStatus.approved})


def approval_failures(rotation: Rotation, staff: Staff, plan: RotationPlan | None = None) -> list[dict[str, Any]]:
    """Rules a rotation must meet to be approved; each failure names its rule."""
    failures: list[dict[str, Any]] = []

    def fail(rule: str, detail: str) -> None:
        failures.append({"rotation_id": str(rotation.id), "staff_id": str(staff.id), "rule": rule,
                         "detail": detail})

    if staff.status != StaffStatus.active:
        fail("staff-inactive", f"{staff.name} ({staff.staff_no}) is {staff.status}")
    if rotation.from_school_code != staff.home_school_code:
        fail("home-school-changed", f"the rotation leaves {rotation.from_school_code} but the home school "
                                    f"is now {staff.home_school_code}")
    if plan is not None:
        first, last = academic_year_bounds(plan.academic_year)
        if not first <= rotation.start_date <= last:
            fail("plan-academic-year", f"starts {rotation.start_date}, outside academic year "
                                       f"{plan.academic_year} ({first} to {last})")
    return failures


async def plan_for_rotation(session: AsyncSession, plan_id: UUID, *, district_code: str, start_date: Any,
                             field: str) -> RotationPlan:
    """The draft plan a rotation may join: same district, starting inside the plan's year."""
    plan = await repo.get_plan(session, plan_id, lock="update")
    if plan is None:
        raise Unprocessable(f"rotation plan {plan_id} does not exist", slug="unknown-plan",
                            extra=field_error(field, "unknown plan"))
    if plan.status != PlanStatus.draft:
        raise Conflict("the plan is approved; rotations can no longer be added", slug="plan-closed")
    if plan.district_code != district_code:
        raise Conflict(f"the plan belongs to district {plan.district_code}; the rotation leaves "
                       f"district {district_code}", slug="plan-district")
    first, last = academic_year_bounds(plan.academic_year)
    if not first <= start_date <= last:
        raise Conflict(f"the rotation starts {start_date}, outside the plan's academic year "
                       f"{plan.academic_year} ({first} to {last})", slug="plan-academic-year")
    return plan


async def create_rotation(*, session: AsyncSession, partnership: PartnershipClient, data: RotationCreate,
                          actor: Principal) -> Rotation:
    actor.require_writer()
    to_school = await known_school(session, partnership, data.to_school_code, "to_school_code")
    staff = await repo.get_staff(session, data.staff_id)
    if staff is None:
        raise Unprocessable(f"staff member {data.staff_id} does not exist", slug="unknown-staff",
                            extra=field_error("body.staff_id", "unknown staff member"))
    actor.require_write_in(staff.home_district_code)
    if to_school.code == staff.home_school_code:
        raise Unprocessable("a rotation must go to a school other than the home school", slug="same-school",
                            extra=field_error("body.to_school_code", "equals the home school", "value_error"))
    if staff.status != StaffStatus.active:
        raise Conflict(f"{staff.name} is {staff.status}; only active staff rotate", slug="staff-inactive")
    if data.plan_id is not None:
        await plan_for_rotation(session, data.plan_id, district_code=staff.home_district_code,
                                 start_date=data.start_date, field="body.plan_id")
    rotation = Rotation(
        staff_id=staff.id, plan_id=data.plan_id, from_school_code=staff.home_school_code,
        from_district_code=staff.home_district_code, to_school_code=to_school.code,
        to_district_code=to_school.district_code, mode=data.mode, start_date=data.start_date,
        end_date=data.end_date, created_by=actor.sub,
    )
    session.add(rotation)
    await session.flush()  # ex_rotations_staff_overlap decides here, also under concurrent requests
    await repo.add_transition(session, rotation_id=rotation.id, from_status=None,
                              to_status=RotationStatus.planned, actor=actor.sub, comment=None)
    await record(session, "rotation", str(rotation.id), "create", RotationRead.model_validate(rotation))
    return rotation


async def get_rotation(*, session: AsyncSession, rotation_id: UUID, actor: Principal,
                       lock: RowLock | None = None) -> Rotation:
    rotation = await repo.get_rotation(session, rotation_id, lock=lock)
    if rotation is None:
        raise NotFound(f"rotation {rotation_id} does not exist", slug="rotation-not-found")
    # Rotations into a district are visible there; only the sending district manages them.
    actor.require_read_in(rotation.from_district_code, rotation.to_district_code)
    return rotation


async def _writable_rotation(session: AsyncSession, rotation_id: UUID, actor: Principal) -> Rotation:
    actor.require_writer()
    rotation = await get_rotation(session=session, rotation_id=rotation_id, actor=actor, lock="update")
    actor.require_write_in(rotation.from_district_code)
    return rotation


async def update_rotation(*, session: AsyncSession, rotation_id: UUID, data: RotationUpdate, actor: Principal,
                          expected_version: int | None = None) -> Rotation:
    rotation = await _writable_rotation(session, rotation_id, actor)
    require_version(expected_version, rotation.version)
    if rotation.status not in EDITABLE:
        raise Conflict(f"dates can only change while a rotation is planned or approved; this one is "
                       f"{rotation.status}", slug="rotation-not-editable")
    changes = data.model_dump(exclude_unset=True)
    start = changes.get("start_date", rotation.start_date)
    end = changes.get("end_date", rotation.end_date)
    if end < start:
        raise Unprocessable("end_date must not be before start_date", slug="dates-out-of-order",
                            extra=field_error("body.end_date", "before start_date", "value_error"))
    before = RotationRead.model_validate(rotation)
    rotation.start_date, rotation.end_date = start, end
    rotation.version += 1
    rotation.updated_at = utcnow()
    await session.flush()  # the same exclusion constraint refuses an overlapping date change
    await record(session, "rotation", str(rotation.id), "update", RotationRead.model_validate(rotation), before)
    return rotation


async def transition_rotation(*, session: AsyncSession, rotation_id: UUID, action: str, actor: Principal,
                              comment: str | None = None, expected_version: int | None = None) -> Rotation:
    rotation = await _writable_rotation(session, rotation_id, actor)
    require_version(expected_version, rotation.version)
    allowed_from, target = TRANSITIONS[action]
    if rotation.status not in allowed_from:
        raise Conflict(f"cannot {action} a rotation that is {rotation.status}", slug="illegal-transition",
                       extra={"from": rotation.status, "action": action})
    if action in ("approve", "activate"):
        staff = await repo.get_staff(session, rotation.staff_id)
        assert staff is not None  # fk_rotations_staff
        failures = approval_failures(rotation, staff)
        if failures:
            raise Conflict(failures[0]["detail"], slug=failures[0]["rule"], extra={"failures": failures})
    previous = rotation.status
    before = RotationRead.model_validate(rotation)
    rotation.status = target
    rotation.version += 1
    rotation.updated_at = utcnow()
    await session.flush()
    await repo.add_transition(session, rotation_id=rotation.id, from_status=previous, to_status=target,
                              actor=actor.sub, comment=comment)
    await record(session, "rotation", str(rotation.id), "state", RotationRead.model_validate(rotation), before)
    return rotation


async def rotation_history(*, session: AsyncSession, rotation_id: UUID, actor: Principal,
                           page: PageParams) -> list[RotationTransition]:
    await get_rotation(session=session, rotation_id=rotation_id, actor=actor)
    return await repo.list_transitions(session, rotation_id=rotation_id, page=page)


async def list_rotations(*, session: AsyncSession, actor: Principal, page: PageParams, district_code: str | None,
                         staff_id: UUID | None, status: str | None, academic_year: int | None,
                         school_code: str | None, plan_id: UUID | None) -> list[Rotation]:
    return await repo.list_rotations(session, page=page, only=actor.list_scope(district_code),
                                     district_code=district_code, staff_id=staff_id, status=status,
                                     academic_year=academic_year, school_code=school_code, plan_id=plan_id)
