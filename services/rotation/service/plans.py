"""District rotation plans: drafts that collect rotations and are approved atomically.

Every route answers the plan as `PlanView`: the plan with its rotations counted, and the version
of that representation for its ETag; each public function here returns one, so a route calls one
service function."""

from __future__ import annotations

from typing import NamedTuple
from uuid import UUID

from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.auth import Principal
from services.common.clock import utcnow
from services.common.db import RowLock
from services.common.errors import Conflict, NotFound, Unprocessable, register_constraint
from services.common.outbox import record_changes
from services.common.paging import PageParams
from services.rotation import repository as repo
from services.rotation.clients import PartnershipClient
from services.rotation.models import RotationPlan
from services.rotation.schemas import (
    PlanAddRotation,
    PlanCreate,
    PlanRead,
    PlanStatus,
    RotationRead,
    RotationStatus,
)
from services.rotation.service.rotations import approval_failures, plan_for_rotation
from services.rotation.service.shared import field_error, record

register_constraint("uq_rotation_plans_title", Conflict, "duplicate-plan",
                    "the district already has a plan with this title for this academic year")


class PlanView(NamedTuple):
    """The plan as answered, and the version of that answer (its ETag)."""

    read: PlanRead
    version: int


async def plan_view(session: AsyncSession, plan: RotationPlan) -> PlanView:
    """The plan with its rotations counted, and the version of that representation for the ETag:
    the plan's own version plus its rotations' versions, so a change to any rotation of the plan
    (which changes the counts) changes the ETag too."""
    counts, rotation_versions = await repo.plan_summary(session, plan.id)
    read = PlanRead.model_validate(plan).model_copy(
        update={"rotations": sum(counts.values()),
                "rotations_by_status": {RotationStatus(k): n for k, n in counts.items()}})
    return PlanView(read, plan.version + rotation_versions)


async def create_plan(*, session: AsyncSession, partnership: PartnershipClient, data: PlanCreate,
                      actor: Principal) -> PlanView:
    actor.require_write_in(data.district_code)
    if not await partnership.district_exists(data.district_code):
        raise Unprocessable(f"district {data.district_code} does not exist", slug="unknown-district",
                            extra=field_error("body.district_code", "unknown district"))
    plan = RotationPlan(**data.model_dump(), created_by=actor.sub)
    session.add(plan)
    await session.flush()
    view = await plan_view(session, plan)
    await record(session, "rotation_plan", str(plan.id), "create", view.read)
    return view


async def get_plan(*, session: AsyncSession, plan_id: UUID, actor: Principal) -> PlanView:
    return await plan_view(session, await _load_plan(session=session, plan_id=plan_id, actor=actor))


async def _load_plan(*, session: AsyncSession, plan_id: UUID, actor: Principal,
                     lock: RowLock | None = None) -> RotationPlan:
    plan = await repo.get_plan(session, plan_id, lock=lock)
    if plan is None:
        raise NotFound(f"rotation plan {plan_id} does not exist", slug="plan-not-found")
    actor.require_read_in(plan.district_code)
    return plan


async def list_plans(*, session: AsyncSession, actor: Principal, page: PageParams, district_code: str | None,
                     academic_year: int | None) -> list[RotationPlan]:
    return await repo.list_plans(session, page=page, only=actor.list_scope(district_code),
                                 district_code=district_code, academic_year=academic_year)


async def add_to_plan(*, session: AsyncSession, plan_id: UUID, data: PlanAddRotation,
                      actor: Principal) -> PlanView:
    actor.require_writer()
    # Locks in one order everywhere (plan, then rotation) so adding and approving cannot deadlock.
    plan = await _load_plan(session=session, plan_id=plan_id, actor=actor, lock="update")
    actor.require_write_in(plan.district_code)
    rotation = await repo.get_rotation(session, data.rotation_id, lock="update")
    if rotation is None or not actor.can_read_district(rotation.from_district_code):
        raise Unprocessable(f"rotation {data.rotation_id} does not exist", slug="unknown-rotation",
                            extra=field_error("body.rotation_id", "unknown rotation"))
    if rotation.plan_id == plan.id:
        return await plan_view(session, plan)  # already in this plan: adding again changes nothing
    if rotation.plan_id is not None:
        raise Conflict("the rotation already belongs to another plan", slug="rotation-in-other-plan",
                       extra={"plan_id": str(rotation.plan_id)})
    if rotation.status == RotationStatus.withdrawn:
        raise Conflict("a withdrawn rotation cannot join a plan", slug="rotation-withdrawn")
    await plan_for_rotation(session, plan.id, district_code=rotation.from_district_code,
                             start_date=rotation.start_date, field="body.rotation_id")
    before = RotationRead.model_validate(rotation)
    rotation.plan_id = plan.id
    rotation.version += 1
    rotation.updated_at = utcnow()
    await session.flush()
    await record(session, "rotation", str(rotation.id), "update", RotationRead.model_validate(rotation), before)
    return await plan_view(session, plan)


async def approve_plan(*, session: AsyncSession, plan_id: UUID, actor: Principal,
                       comment: str | None = None) -> PlanView:
    """All planned rotations of the plan become approved in this one transaction, or none do: every
    rule failure is collected and reported together (409 `plan-rules` with `failures`)."""
    actor.require_writer()
    plan = await _load_plan(session=session, plan_id=plan_id, actor=actor, lock="update")
    actor.require_write_in(plan.district_code)
    if plan.status != PlanStatus.draft:
        raise Conflict(f"cannot approve a plan that is {plan.status}", slug="illegal-transition",
                       extra={"from": plan.status, "action": "approve"})
    if not sum((await repo.plan_counts(session, plan.id)).values()):
        raise Conflict("the plan has no rotations", slug="plan-empty")
    failures = [failure for rotation, staff in await repo.planned_rotations_of_plan(session, plan.id)
                for failure in approval_failures(rotation, staff, plan)]
    if failures:
        raise Conflict(f"{len(failures)} rule(s) fail; no rotation of the plan was approved",
                       slug="plan-rules", extra={"failures": failures})
    plan_before = (await plan_view(session, plan)).read
    approved = [RotationRead.model_validate(rotation) for rotation in
                await repo.approve_planned_of_plan(session, plan_id=plan.id, actor=actor.sub, comment=comment)]
    # Each of them was `planned` a moment ago (approve_planned_of_plan moves only those).
    await record_changes(
        session, "rotation", entity="rotation",
        changes=[(str(rotation.id), "state", rotation.model_dump(mode="json")) for rotation in approved],
        before=[rotation.model_copy(update={"status": RotationStatus.planned}).model_dump(mode="json")
                for rotation in approved])
    plan.status = PlanStatus.approved
    plan.approved_by = actor.sub
    plan.approved_at = utcnow()
    plan.version += 1
    plan.updated_at = plan.approved_at
    await session.flush()
    view = await plan_view(session, plan)
    await record(session, "rotation_plan", str(plan.id), "state", view.read, plan_before)
    return view
