"""Rotation rules: the staff registry, district policies, the rotation workflow and district plans.

Who may change what (design.md §5, scoped by district): a district admin manages the staff whose
home school is in their district and the rotations *out of* it; rotations *into* their district
are readable to them. Overlaps are decided by PostgreSQL (`ex_rotations_staff_overlap`), never by
a check-then-insert here, so concurrent requests cannot race past the rule.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.auth import Principal
from services.common.clock import utcnow
from services.common.errors import Conflict, NotFound, Unprocessable, register_constraint
from services.common.etag import require_version
from services.common.outbox import record_change, record_changes
from services.common.paging import PageParams
from services.rotation import repository as repo
from services.rotation.clients import PartnershipClient, SchoolRef
from services.rotation.directory import find_school
from services.rotation.eligibility import academic_year_bounds
from services.rotation.models import Rotation, RotationPlan, RotationPolicy, RotationTransition, Staff
from services.rotation.schemas import (
    DEFAULT_POLICY,
    PlanAddRotation,
    PlanCreate,
    PlanRead,
    PlanStatus,
    PolicyRead,
    PolicyWrite,
    RotationCreate,
    RotationRead,
    RotationStatus,
    RotationUpdate,
    StaffCreate,
    StaffRead,
    StaffStatus,
    StaffUpdate,
)

register_constraint("uq_staff_staff_no", Conflict, "duplicate-staff-no",
                    "a staff member with this staff_no already exists")
register_constraint(
    "ex_rotations_staff_overlap", Conflict, "rotation-overlap",
    "the staff member already has a rotation that is not withdrawn and whose dates overlap these "
    "(one person, one rotation at a time)",
)
register_constraint("ck_rotations_distinct_schools", Unprocessable, "same-school",
                    "a rotation must go to a school other than the home school")
register_constraint("ck_rotations_dates", Unprocessable, "dates-out-of-order",
                    "end_date must not be before start_date")
register_constraint("uq_rotation_plans_title", Conflict, "duplicate-plan",
                    "the district already has a plan with this title for this academic year")

# planned → approved → active → completed; withdrawn from any state before completed.
TRANSITIONS: dict[str, tuple[frozenset[RotationStatus], RotationStatus]] = {
    "approve": (frozenset({RotationStatus.planned}), RotationStatus.approved),
    "activate": (frozenset({RotationStatus.approved}), RotationStatus.active),
    "complete": (frozenset({RotationStatus.active}), RotationStatus.completed),
    "withdraw": (frozenset({RotationStatus.planned, RotationStatus.approved, RotationStatus.active}),
                 RotationStatus.withdrawn),
}
EDITABLE = frozenset({RotationStatus.planned, RotationStatus.approved})


def _field_error(field: str, message: str, kind: str = "unknown_reference") -> dict[str, Any]:
    return {"errors": [{"field": field, "message": message, "type": kind}]}


async def _changed(session: AsyncSession, entity: str, key: str, op: str, state: Any) -> None:
    """Write the change feed row in the same transaction as the change (services/common/outbox.py)."""
    await record_change(session, "rotation", entity=entity, key=key, op=op, state=state.model_dump(mode="json"))


async def _known_school(session: AsyncSession, partnership: PartnershipClient, code: str, field: str) -> SchoolRef:
    """The school from the local school directory, or the partnership registry on a miss; 422 when
    unknown, 503 when partnership cannot be asked on a miss."""
    school = await find_school(session, partnership, code)
    if school is None:
        raise Unprocessable(f"school {code} does not exist", slug="unknown-school",
                            extra=_field_error(f"body.{field}", "unknown school"))
    return school


# Staff ---------------------------------------------------------------------------------------

async def create_staff(*, session: AsyncSession, partnership: PartnershipClient, data: StaffCreate,
                       actor: Principal) -> Staff:
    actor.require_writer()
    # Checked before anything is written: a school missing from the local directory is asked of
    # partnership, and when partnership is down then nothing is written (503).
    school = await _known_school(session, partnership, data.home_school_code, "home_school_code")
    actor.require_write_in(school.district_code)
    staff = Staff(**data.model_dump(), home_district_code=school.district_code)
    session.add(staff)
    await session.flush()  # uq_staff_staff_no decides duplicates, also under races
    await _changed(session, "staff", staff.staff_no, "create", StaffRead.model_validate(staff))
    return staff


async def get_staff(*, session: AsyncSession, staff_id: UUID, actor: Principal, lock: bool = False) -> Staff:
    staff = await repo.get_staff(session, staff_id, lock=lock)
    if staff is None:
        raise NotFound(f"staff member {staff_id} does not exist", slug="staff-not-found")
    actor.require_read_in(staff.home_district_code)
    return staff


async def update_staff(*, session: AsyncSession, partnership: PartnershipClient, staff_id: UUID,
                       data: StaffUpdate, actor: Principal, expected_version: int | None = None) -> Staff:
    actor.require_writer()
    changes = data.model_dump(exclude_unset=True)
    new_school = None
    if "home_school_code" in changes:
        new_school = await _known_school(session, partnership, changes["home_school_code"], "home_school_code")
    staff = await get_staff(session=session, staff_id=staff_id, actor=actor, lock=True)
    actor.require_write_in(staff.home_district_code)
    require_version(expected_version, staff.version)
    if new_school is not None and new_school.code != staff.home_school_code:
        # Moving someone to another district's school needs the right to write there too.
        actor.require_write_in(new_school.district_code)
        staff.home_district_code = new_school.district_code
    for field, value in changes.items():
        setattr(staff, field, value)
    staff.version += 1
    staff.updated_at = utcnow()
    await session.flush()
    await _changed(session, "staff", staff.staff_no, "update", StaffRead.model_validate(staff))
    return staff


def _readable(actor: Principal, district_code: str | None) -> frozenset[str] | None:
    """The districts a list may show; an explicit filter outside them is 403, not an empty page."""
    if district_code is not None:
        actor.require_read_in(district_code)
    return actor.readable_districts()


async def list_staff(*, session: AsyncSession, actor: Principal, page: PageParams, district_code: str | None,
                     home_school_code: str | None, eligible_for_year: int | None,
                     status: str | None) -> list[Staff]:
    return await repo.list_staff(session, page=page, only=_readable(actor, district_code),
                                 district_code=district_code, home_school_code=home_school_code,
                                 eligible_for_year=eligible_for_year, status=status)


# Policies ------------------------------------------------------------------------------------

def _policy_read(district_code: str, policy: RotationPolicy | None) -> PolicyRead:
    if policy is None:
        return PolicyRead(district_code=district_code, is_default=True, **DEFAULT_POLICY.model_dump())
    return PolicyRead.model_validate(policy)


async def get_policy(*, session: AsyncSession, district_code: str, actor: Principal) -> PolicyRead:
    actor.require_read_in(district_code)
    return _policy_read(district_code, await repo.get_policy(session, district_code))


async def put_policy(*, session: AsyncSession, partnership: PartnershipClient, district_code: str,
                     data: PolicyWrite, actor: Principal, expected_version: int | None = None) -> PolicyRead:
    """Set the whole policy. A district that never set one is at version 0 (its ETag `"v0"`)."""
    actor.require_write_in(district_code)
    if not await partnership.district_exists(district_code):
        raise Unprocessable(f"district {district_code} does not exist", slug="unknown-district",
                            extra=_field_error("path.district_code", "unknown district"))
    values = {**data.model_dump(), "updated_by": actor.sub, "updated_at": utcnow()}
    current = await repo.get_policy(session, district_code, lock=True)
    require_version(expected_version, current.version if current is not None else 0)
    if current is not None:
        for field, value in values.items():
            setattr(current, field, value)
        current.version += 1
        await session.flush()
        policy = current
    else:
        # One statement, so two first PUTs for a district cannot collide on the primary key. With
        # If-Match a concurrent first PUT wins and this one is stale (DO NOTHING, then 412).
        stmt = pg_insert(RotationPolicy).values(district_code=district_code, created_at=values["updated_at"],
                                                version=1, **values)
        if expected_version is None:
            stmt = stmt.on_conflict_do_update(index_elements=[RotationPolicy.district_code],
                                              set_={**values, "version": RotationPolicy.version + 1})
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=[RotationPolicy.district_code])
        stmt = stmt.returning(RotationPolicy).execution_options(populate_existing=True)
        created = (await session.execute(stmt)).scalars().first()
        if created is None:  # another first PUT committed since we looked: this If-Match is stale
            raced = await repo.get_policy(session, district_code)
            require_version(expected_version, raced.version if raced is not None else 1)
        assert created is not None
        policy = created
    read = _policy_read(district_code, policy)
    await _changed(session, "rotation_policy", district_code, "create" if policy.version == 1 else "update", read)
    return read


# Rotations -----------------------------------------------------------------------------------

def _approval_failures(rotation: Rotation, staff: Staff, plan: RotationPlan | None = None) -> list[dict[str, Any]]:
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


async def _plan_for_rotation(session: AsyncSession, plan_id: UUID, *, district_code: str, start_date: Any,
                             field: str) -> RotationPlan:
    """The draft plan a rotation may join: same district, starting inside the plan's year."""
    plan = await repo.get_plan(session, plan_id, lock=True)
    if plan is None:
        raise Unprocessable(f"rotation plan {plan_id} does not exist", slug="unknown-plan",
                            extra=_field_error(field, "unknown plan"))
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
    to_school = await _known_school(session, partnership, data.to_school_code, "to_school_code")
    staff = await repo.get_staff(session, data.staff_id)
    if staff is None:
        raise Unprocessable(f"staff member {data.staff_id} does not exist", slug="unknown-staff",
                            extra=_field_error("body.staff_id", "unknown staff member"))
    actor.require_write_in(staff.home_district_code)
    if to_school.code == staff.home_school_code:
        raise Unprocessable("a rotation must go to a school other than the home school", slug="same-school",
                            extra=_field_error("body.to_school_code", "equals the home school", "value_error"))
    if staff.status != StaffStatus.active:
        raise Conflict(f"{staff.name} is {staff.status}; only active staff rotate", slug="staff-inactive")
    if data.plan_id is not None:
        await _plan_for_rotation(session, data.plan_id, district_code=staff.home_district_code,
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
    await _changed(session, "rotation", str(rotation.id), "create", RotationRead.model_validate(rotation))
    return rotation


async def get_rotation(*, session: AsyncSession, rotation_id: UUID, actor: Principal,
                       lock: bool = False) -> Rotation:
    rotation = await repo.get_rotation(session, rotation_id, lock=lock)
    if rotation is None:
        raise NotFound(f"rotation {rotation_id} does not exist", slug="rotation-not-found")
    # Rotations into a district are visible there; only the sending district manages them.
    actor.require_read_in(rotation.from_district_code, rotation.to_district_code)
    return rotation


async def _writable_rotation(session: AsyncSession, rotation_id: UUID, actor: Principal) -> Rotation:
    actor.require_writer()
    rotation = await get_rotation(session=session, rotation_id=rotation_id, actor=actor, lock=True)
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
                            extra=_field_error("body.end_date", "before start_date", "value_error"))
    rotation.start_date, rotation.end_date = start, end
    rotation.version += 1
    rotation.updated_at = utcnow()
    await session.flush()  # the same exclusion constraint refuses an overlapping date change
    await _changed(session, "rotation", str(rotation.id), "update", RotationRead.model_validate(rotation))
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
        failures = _approval_failures(rotation, staff)
        if failures:
            raise Conflict(failures[0]["detail"], slug=failures[0]["rule"], extra={"failures": failures})
    previous = rotation.status
    rotation.status = target
    rotation.version += 1
    rotation.updated_at = utcnow()
    await session.flush()
    await repo.add_transition(session, rotation_id=rotation.id, from_status=previous, to_status=target,
                              actor=actor.sub, comment=comment)
    await _changed(session, "rotation", str(rotation.id), "state", RotationRead.model_validate(rotation))
    return rotation


async def rotation_history(*, session: AsyncSession, rotation_id: UUID, actor: Principal,
                           page: PageParams) -> list[RotationTransition]:
    await get_rotation(session=session, rotation_id=rotation_id, actor=actor)
    return await repo.list_transitions(session, rotation_id=rotation_id, page=page)


async def list_rotations(*, session: AsyncSession, actor: Principal, page: PageParams, district_code: str | None,
                         staff_id: UUID | None, status: str | None, academic_year: int | None,
                         school_code: str | None, plan_id: UUID | None) -> list[Rotation]:
    return await repo.list_rotations(session, page=page, only=_readable(actor, district_code),
                                     district_code=district_code, staff_id=staff_id, status=status,
                                     academic_year=academic_year, school_code=school_code, plan_id=plan_id)


# Plans ---------------------------------------------------------------------------------------

async def plan_view(session: AsyncSession, plan: RotationPlan) -> tuple[PlanRead, int]:
    """The plan with its rotations counted, and the version of that representation for the ETag:
    the plan's own version plus its rotations' versions, so a change to any rotation of the plan
    (which changes the counts) changes the ETag too."""
    counts, rotation_versions = await repo.plan_summary(session, plan.id)
    read = PlanRead.model_validate(plan).model_copy(
        update={"rotations": sum(counts.values()),
                "rotations_by_status": {RotationStatus(k): n for k, n in counts.items()}})
    return read, plan.version + rotation_versions


async def plan_read(session: AsyncSession, plan: RotationPlan) -> PlanRead:
    return (await plan_view(session, plan))[0]


async def create_plan(*, session: AsyncSession, partnership: PartnershipClient, data: PlanCreate,
                      actor: Principal) -> RotationPlan:
    actor.require_write_in(data.district_code)
    if not await partnership.district_exists(data.district_code):
        raise Unprocessable(f"district {data.district_code} does not exist", slug="unknown-district",
                            extra=_field_error("body.district_code", "unknown district"))
    plan = RotationPlan(**data.model_dump(), created_by=actor.sub)
    session.add(plan)
    await session.flush()
    await _changed(session, "rotation_plan", str(plan.id), "create", await plan_read(session, plan))
    return plan


async def get_plan(*, session: AsyncSession, plan_id: UUID, actor: Principal, lock: bool = False) -> RotationPlan:
    plan = await repo.get_plan(session, plan_id, lock=lock)
    if plan is None:
        raise NotFound(f"rotation plan {plan_id} does not exist", slug="plan-not-found")
    actor.require_read_in(plan.district_code)
    return plan


async def list_plans(*, session: AsyncSession, actor: Principal, page: PageParams, district_code: str | None,
                     academic_year: int | None) -> list[RotationPlan]:
    return await repo.list_plans(session, page=page, only=_readable(actor, district_code),
                                 district_code=district_code, academic_year=academic_year)


async def add_to_plan(*, session: AsyncSession, plan_id: UUID, data: PlanAddRotation,
                      actor: Principal) -> RotationPlan:
    actor.require_writer()
    # Locks in one order everywhere (plan, then rotation) so adding and approving cannot deadlock.
    plan = await get_plan(session=session, plan_id=plan_id, actor=actor, lock=True)
    actor.require_write_in(plan.district_code)
    rotation = await repo.get_rotation(session, data.rotation_id, lock=True)
    if rotation is None or not actor.can_read_district(rotation.from_district_code):
        raise Unprocessable(f"rotation {data.rotation_id} does not exist", slug="unknown-rotation",
                            extra=_field_error("body.rotation_id", "unknown rotation"))
    if rotation.plan_id == plan.id:
        return plan  # already in this plan: adding again changes nothing
    if rotation.plan_id is not None:
        raise Conflict("the rotation already belongs to another plan", slug="rotation-in-other-plan",
                       extra={"plan_id": str(rotation.plan_id)})
    if rotation.status == RotationStatus.withdrawn:
        raise Conflict("a withdrawn rotation cannot join a plan", slug="rotation-withdrawn")
    await _plan_for_rotation(session, plan.id, district_code=rotation.from_district_code,
                             start_date=rotation.start_date, field="body.rotation_id")
    rotation.plan_id = plan.id
    rotation.version += 1
    rotation.updated_at = utcnow()
    await session.flush()
    await _changed(session, "rotation", str(rotation.id), "update", RotationRead.model_validate(rotation))
    return plan


async def approve_plan(*, session: AsyncSession, plan_id: UUID, actor: Principal,
                       comment: str | None = None) -> RotationPlan:
    """All planned rotations of the plan become approved in this one transaction, or none do: every
    rule failure is collected and reported together (409 `plan-rules` with `failures`)."""
    actor.require_writer()
    plan = await get_plan(session=session, plan_id=plan_id, actor=actor, lock=True)
    actor.require_write_in(plan.district_code)
    if plan.status != PlanStatus.draft:
        raise Conflict(f"cannot approve a plan that is {plan.status}", slug="illegal-transition",
                       extra={"from": plan.status, "action": "approve"})
    if not sum((await repo.plan_counts(session, plan.id)).values()):
        raise Conflict("the plan has no rotations", slug="plan-empty")
    failures = [failure for rotation, staff in await repo.planned_rotations_of_plan(session, plan.id)
                for failure in _approval_failures(rotation, staff, plan)]
    if failures:
        raise Conflict(f"{len(failures)} rule(s) fail; no rotation of the plan was approved",
                       slug="plan-rules", extra={"failures": failures})
    approved = await repo.approve_planned_of_plan(session, plan_id=plan.id, actor=actor.sub, comment=comment)
    await record_changes(session, "rotation", entity="rotation", changes=[
        (str(rotation.id), "state", RotationRead.model_validate(rotation).model_dump(mode="json"))
        for rotation in approved])
    plan.status = PlanStatus.approved
    plan.approved_by = actor.sub
    plan.approved_at = utcnow()
    plan.version += 1
    plan.updated_at = plan.approved_at
    await session.flush()
    await _changed(session, "rotation_plan", str(plan.id), "state", await plan_read(session, plan))
    return plan
