"""The training-hours ledger: external credits, idempotent on (source, reference), and the
5-year summary of design.md §4.5.

Every credit is a row with a source and a reference; the unique key
`uq_training_hours_source_reference` makes a replayed credit the same credit, also when two
identical posts race (INSERT … ON CONFLICT DO NOTHING, then read the winner's row).
"""

from __future__ import annotations

import uuid
from datetime import date
from uuid import UUID

from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.auth import Principal, Role
from services.common.errors import Conflict, Forbidden, NotFound, Unprocessable, register_constraint
from services.common.paging import PageParams
from services.training import repository as repo
from services.training import stats
from services.training.clients import RotationClient, StaffRef
from services.training.config import STUDIO_SESSION_SOURCE, TrainingRules, window_start
from services.training.directory import find_staff
from services.training.feed import credits_changed
from services.training.models import TrainingHours
from services.training.schemas import StaffMemberships, TrainingHoursCreate, TrainingSummary

register_constraint("uq_training_hours_source_reference", Conflict, "credit-mismatch",
                    "a credit with this source and reference already exists")
register_constraint("ck_training_hours_positive", Unprocessable, "invalid-hours", "hours must be positive")
register_constraint("ck_training_hours_at_most_1000", Unprocessable, "invalid-hours",
                    "one credit is at most 1000 hours")

# Who may post single external credits: administrators. Integrators bring credits recorded by other
# government systems in through the bulk import (POST /v1/imports/training-hours) and write nothing
# else (design.md §5: an integrator "reads, runs bulk imports and reads the change feed").
CREDIT_WRITERS = {Role.city_admin, Role.district_admin}


async def _staff(session: AsyncSession, rotation: RotationClient, staff_id: UUID) -> StaffRef:
    staff = await find_staff(session, rotation, staff_id)
    if staff is None:
        raise Unprocessable(f"staff member {staff_id} does not exist", slug="unknown-staff",
                            extra={"errors": [{"field": "body.staff_id", "message": "unknown staff member",
                                               "type": "unknown_reference"}]})
    return staff


def _require_staff_scope(actor: Principal, staff: StaffRef, *, write: bool) -> None:
    """District-scoped callers act on staff of their districts (the staff's home district, as
    rotation reports it); a record without a district is visible to city-wide callers only."""
    allowed = (actor.can_write_district(staff.home_district_code) if actor.role == Role.district_admin and write
               else actor.can_read_district(staff.home_district_code))
    if not allowed:
        raise Forbidden("the staff member is outside your districts", slug="district-scope")


async def require_staff_readable(*, session: AsyncSession, actor: Principal, staff_id: UUID,
                                 rotation: RotationClient) -> None:
    """City-wide readers need no lookup; anyone else needs the staff member placed in a district
    (the local directory, or rotation on a miss)."""
    if actor.city_wide:
        return
    staff = await find_staff(session, rotation, staff_id)
    if staff is None:
        raise NotFound(f"staff member {staff_id} does not exist", slug="staff-not-found")
    _require_staff_scope(actor, staff, write=False)


def _same_credit(credit: TrainingHours, data: TrainingHoursCreate) -> TrainingHours:
    """An identical replay answers the stored credit; any difference is a conflict, not an update."""
    differs = [name for name, mine in (("staff_id", data.staff_id), ("hours", data.hours),
                                       ("earned_on", data.earned_on))
               if getattr(credit, name) != mine]
    if differs:
        raise Conflict(f"a credit with source {credit.source!r} and reference {credit.reference!r} already "
                       f"exists with a different {', '.join(differs)}", slug="credit-mismatch",
                       extra={"existing_id": str(credit.id), "differs": differs})
    return credit


async def record_credit(*, session: AsyncSession, data: TrainingHoursCreate, actor: Principal,
                        rotation: RotationClient) -> tuple[TrainingHours, bool]:
    """Store an external credit once. Returns the credit and whether this call created it."""
    if actor.role not in CREDIT_WRITERS:
        raise Forbidden(f"role {actor.role} may not record training hours", slug="role")
    if data.source == STUDIO_SESSION_SOURCE:
        raise Unprocessable(f"source {STUDIO_SESSION_SOURCE!r} is reserved for studio attendance; record "
                            "attendance instead", slug="reserved-source",
                            extra={"errors": [{"field": "body.source", "message": "reserved source",
                                               "type": "value_error"}]})
    staff: StaffRef | None = None
    if not actor.city_wide or actor.role == Role.district_admin:
        staff = await _staff(session, rotation, data.staff_id)
        _require_staff_scope(actor, staff, write=True)

    existing = await repo.credit_by_key(session, source=data.source, reference=data.reference)
    if existing is not None:
        return _same_credit(existing, data), False
    if staff is None:
        await _staff(session, rotation, data.staff_id)
    credit_id = uuid.uuid4()
    created = await repo.insert_credit_if_new(session, credit_id=credit_id, staff_id=data.staff_id,
                                              hours=data.hours, earned_on=data.earned_on, source=data.source,
                                              reference=data.reference)
    credit = await repo.credit_by_key(session, source=data.source, reference=data.reference)
    assert credit is not None  # inserted now, or by the concurrent winner that made us wait
    if created:
        await credits_changed(session, "create", [credit])
        return credit, True
    return _same_credit(credit, data), False


async def get_credit(*, session: AsyncSession, credit_id: UUID, actor: Principal,
                     rotation: RotationClient) -> TrainingHours:
    credit = await repo.get_credit(session, credit_id)
    if credit is None:
        raise NotFound(f"credit {credit_id} does not exist", slug="credit-not-found")
    await require_staff_readable(session=session, actor=actor, staff_id=credit.staff_id, rotation=rotation)
    return credit


async def summary(*, session: AsyncSession, staff_id: UUID, as_of: date, rules: TrainingRules) -> TrainingSummary:
    """design.md §4.5: hours with `as_of − window < earned_on ≤ as_of`, against the threshold."""
    after = window_start(as_of, rules.window_years)
    total, by_source = await repo.hours_by_source(session, staff_id=staff_id, after=after, as_of=as_of)
    return TrainingSummary(staff_id=staff_id, as_of=as_of, window_years=rules.window_years, window_start=after,
                           total_hours=total, by_source=by_source, threshold=rules.hours_threshold,
                           met=total >= rules.hours_threshold)


async def list_credits(*, session: AsyncSession, actor: Principal, rotation: RotationClient, page: PageParams,
                       staff_id: UUID | None, source: str | None, earned_from: date | None,
                       earned_to: date | None) -> list[TrainingHours]:
    """One staff member's credits in their district's scope; the whole ledger city-wide only."""
    if staff_id is None:
        if not actor.city_wide:
            raise Forbidden("give staff_id: the whole ledger needs a city-wide role", slug="district-scope")
    else:
        await require_staff_readable(session=session, actor=actor, staff_id=staff_id, rotation=rotation)
    return await repo.list_credits(session, page=page, staff_id=staff_id, source=source,
                                   earned_from=earned_from, earned_to=earned_to)


async def staff_summary(*, session: AsyncSession, actor: Principal, rotation: RotationClient, staff_id: UUID,
                        as_of: date, rules: TrainingRules) -> TrainingSummary:
    await require_staff_readable(session=session, actor=actor, staff_id=staff_id, rotation=rotation)
    return await summary(session=session, staff_id=staff_id, as_of=as_of, rules=rules)


async def staff_memberships(*, session: AsyncSession, actor: Principal, rotation: RotationClient,
                            staff_id: UUID) -> StaffMemberships:
    """The studios a staff member hosts or belongs to, in the scope of their training summary."""
    await require_staff_readable(session=session, actor=actor, staff_id=staff_id, rotation=rotation)
    return StaffMemberships(items=await stats.staff_memberships(session, staff_id=staff_id))
