"""Studio rules: who may change a studio, who may join it, and what a session credits.

Capacity, host and duplicate rules are checked with the studio row locked (`SELECT … FOR
UPDATE`), so concurrent joins are serialised and the count each one sees is exact; the partial
unique index `uq_memberships_current` and the exclusion constraint `ex_memberships_overlap` hold
the duplicate rule even if a path forgot the lock.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any
from uuid import UUID

from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.auth import Principal
from services.common.calendar import academic_year_bounds
from services.common.clock import utcnow
from services.common.errors import (
    Conflict,
    NotFound,
    Unprocessable,
    register_constraint,
)
from services.common.etag import require_version
from services.common.paging import PageParams
from services.training import repository as repo
from services.training import stats
from services.training.clients import RotationClient
from services.training.config import TrainingRules, window_start
from services.training.directory import find_staff
from services.training.feed import changed, credits_changed
from services.training.models import Membership, Session, Studio
from services.training.schemas import (
    AttendanceRead,
    AttendanceUpdate,
    MembershipCreate,
    MembershipLeave,
    MembershipRead,
    SessionCreate,
    SessionRead,
    SessionUpdate,
    StudioCreate,
    StudioRead,
    StudioStats,
    StudioStatus,
    TrainingCompletion,
)

register_constraint("uq_memberships_current", Conflict, "already-member",
                    "the staff member is already a current member of this studio")
register_constraint("ex_memberships_overlap", Conflict, "already-member",
                    "the staff member was a member of this studio during part of that period")
register_constraint("ck_studios_capacity", Unprocessable, "invalid-capacity", "capacity must be at least 1")
register_constraint("ck_sessions_hours_positive", Unprocessable, "invalid-hours", "hours must be positive")
register_constraint("ck_sessions_hours_at_most_24", Unprocessable, "invalid-hours",
                    "a session lasts at most 24 hours")


def _field_error(field: str, message: str, type_: str = "unknown_reference") -> dict[str, Any]:
    return {"errors": [{"field": field, "message": message, "type": type_}]}


async def require_known_staff(session: AsyncSession, rotation: RotationClient, staff_id: UUID, field: str) -> None:
    """Staff are owned by rotation: the local directory answers, rotation is asked on a miss; an id
    neither knows is 422; rotation down on a miss is 503 (before anything is written)."""
    if await find_staff(session, rotation, staff_id) is None:
        raise Unprocessable(f"staff member {staff_id} does not exist", slug="unknown-staff",
                            extra=_field_error(field, "unknown staff member"))


def membership_key(membership: Membership) -> str:
    return f"{membership.studio_id}:{membership.staff_id}"


# Studios ---------------------------------------------------------------------------------------

async def create_studio(*, session: AsyncSession, data: StudioCreate, actor: Principal,
                        rotation: RotationClient) -> Studio:
    actor.require_write_in(data.district_code)
    # Checked before anything is written: if rotation is down the request fails whole (503).
    await require_known_staff(session, rotation, data.host_staff_id, "body.host_staff_id")
    studio = Studio(id=uuid.uuid4(), **data.model_dump())
    session.add(studio)
    await session.flush()
    await changed(session, "studio", str(studio.id), "create", StudioRead.model_validate(studio))
    return studio


async def get_studio(*, session: AsyncSession, studio_id: UUID, actor: Principal) -> Studio:
    studio = await repo.get_studio(session, studio_id)
    if studio is None:
        raise NotFound(f"studio {studio_id} does not exist", slug="studio-not-found")
    actor.require_read_in(studio.district_code)
    return studio


async def _writable_studio(session: AsyncSession, studio_id: UUID, actor: Principal) -> Studio:
    studio = await get_studio(session=session, studio_id=studio_id, actor=actor)
    actor.require_write_in(studio.district_code)
    return studio


async def close_studio(*, session: AsyncSession, studio_id: UUID, actor: Principal,
                       expected_version: int | None = None) -> Studio:
    await _writable_studio(session, studio_id, actor)
    studio = await repo.get_studio(session, studio_id, lock="update")
    assert studio is not None  # studios are never deleted
    require_version(expected_version, studio.version)  # checked with the row locked
    if studio.status != StudioStatus.active:
        raise Conflict("only an active studio can be closed", slug="illegal-transition",
                       extra={"status": studio.status})
    before = StudioRead.model_validate(studio)
    studio.status = StudioStatus.closed
    studio.closed_at = studio.updated_at = utcnow()
    studio.version += 1
    await session.flush()
    await changed(session, "studio", str(studio.id), "state", StudioRead.model_validate(studio), before)
    return studio


# Memberships -----------------------------------------------------------------------------------

async def join_studio(*, session: AsyncSession, studio_id: UUID, data: MembershipCreate, actor: Principal,
                      rotation: RotationClient) -> Membership:
    studio = await _writable_studio(session, studio_id, actor)
    if data.staff_id == studio.host_staff_id:
        raise Conflict("the host of a studio cannot also be its member", slug="host-not-member")
    await require_known_staff(session, rotation, data.staff_id, "body.staff_id")

    # Everything below runs with the studio row locked: concurrent joins wait here, and each one
    # counts the members the previous one committed.
    studio = await repo.get_studio(session, studio_id, lock="update")
    assert studio is not None
    if studio.status != StudioStatus.active:
        raise Conflict("the studio is closed", slug="studio-closed")
    if await repo.current_membership(session, studio_id, data.staff_id) is not None:
        raise Conflict("the staff member is already a current member of this studio", slug="already-member")
    if not studio.start_date <= data.joined_on <= studio.end_date:
        raise Conflict(f"joined_on must fall inside the studio's cycle {studio.start_date}–{studio.end_date}",
                       slug="outside-cycle")
    current = await repo.count_current_members(session, studio_id)
    if current >= studio.capacity:
        raise Conflict(f"the studio is full ({current} of {studio.capacity} places taken)",
                       slug="studio-full", extra={"capacity": studio.capacity, "current_members": current})
    membership = Membership(id=uuid.uuid4(), studio_id=studio_id, staff_id=data.staff_id,
                            joined_on=data.joined_on)
    session.add(membership)
    await session.flush()
    await changed(session, "membership", membership_key(membership), "create",
                  MembershipRead.model_validate(membership))
    return membership


async def get_membership(*, session: AsyncSession, studio_id: UUID, staff_id: UUID,
                         actor: Principal) -> Membership:
    await get_studio(session=session, studio_id=studio_id, actor=actor)
    membership = await repo.latest_membership(session, studio_id, staff_id)
    if membership is None:
        raise NotFound(f"staff member {staff_id} has never been a member of this studio",
                       slug="membership-not-found")
    return membership


async def leave_studio(*, session: AsyncSession, studio_id: UUID, staff_id: UUID, data: MembershipLeave,
                       actor: Principal) -> Membership:
    await _writable_studio(session, studio_id, actor)
    await repo.get_studio(session, studio_id, lock="update")
    membership = await repo.current_membership(session, studio_id, staff_id)
    if membership is None:
        raise NotFound(f"staff member {staff_id} is not a current member of this studio",
                       slug="membership-not-found")
    if data.left_on < membership.joined_on:
        raise Conflict(f"left_on cannot be before joined_on ({membership.joined_on})", slug="left-before-joined")
    # Attendance is only for members on the session's date; leaving must not orphan it.
    if await repo.attended_after(session, studio_id=studio_id, staff_id=staff_id, day=data.left_on):
        raise Conflict("the staff member attended a session of this studio after that date; "
                       "correct the attendance first", slug="attended-after-leaving")
    before = MembershipRead.model_validate(membership)
    membership.left_on = data.left_on
    membership.updated_at = utcnow()
    membership.version += 1
    await session.flush()
    await changed(session, "membership", membership_key(membership), "state",
                  MembershipRead.model_validate(membership), before)
    return membership


# Sessions --------------------------------------------------------------------------------------

def _check_in_cycle(studio: Studio, record: Session) -> None:
    if not studio.start_date <= record.session_date <= studio.end_date:
        raise Conflict(f"the session's date {record.session_date} (China Standard Time) is outside the "
                       f"studio's cycle {studio.start_date}–{studio.end_date}", slug="outside-cycle")


async def create_session(*, session: AsyncSession, studio_id: UUID, data: SessionCreate,
                         actor: Principal) -> Session:
    await _writable_studio(session, studio_id, actor)
    studio = await repo.get_studio(session, studio_id, lock="share")
    assert studio is not None
    if studio.status != StudioStatus.active:
        raise Conflict("the studio is closed", slug="studio-closed")
    record = Session(id=uuid.uuid4(), studio_id=studio_id, **data.model_dump())
    session.add(record)
    await session.flush()
    await session.refresh(record)  # as stored: session_date computed, starts_at in UTC
    _check_in_cycle(studio, record)  # a refusal rolls the insert back with the request
    await changed(session, "session", str(record.id), "create", SessionRead.model_validate(record))
    return record


async def get_session(*, session: AsyncSession, session_id: UUID, actor: Principal) -> tuple[Session, Studio]:
    record = await repo.get_session(session, session_id)
    if record is None:
        raise NotFound(f"session {session_id} does not exist", slug="session-not-found")
    studio = await get_studio(session=session, studio_id=record.studio_id, actor=actor)
    return record, studio


async def _locked_session(session: AsyncSession, session_id: UUID, actor: Principal) -> tuple[Session, Studio]:
    """Lock order studio (share) then session (update), the same everywhere: no deadlocks."""
    record, studio = await get_session(session=session, session_id=session_id, actor=actor)
    actor.require_write_in(studio.district_code)
    studio = await repo.get_studio(session, record.studio_id, lock="share")
    record = await repo.get_session(session, session_id, lock="update")
    assert studio is not None and record is not None
    return record, studio


async def update_session(*, session: AsyncSession, session_id: UUID, data: SessionUpdate, actor: Principal,
                         expected_version: int | None = None) -> Session:
    record, studio = await _locked_session(session, session_id, actor)
    require_version(expected_version, record.version)  # checked with the row locked
    changes = data.model_dump(exclude_unset=True)
    if not changes:
        return record
    before = SessionRead.model_validate(record)
    for field, value in changes.items():
        setattr(record, field, value)
    record.version += 1
    record.updated_at = utcnow()
    await session.flush()
    await session.refresh(record)  # the recomputed session_date
    _check_in_cycle(studio, record)
    if "starts_at" in changes:
        strangers = await repo.attendees_not_members(session, session_id=session_id)
        if strangers:
            raise Conflict("on the new date some attendees are not members of the studio; "
                           "correct the attendance first", slug="attendee-not-member",
                           extra={"staff_ids": [str(s) for s in strangers]})
    await changed(session, "session", str(record.id), "update", SessionRead.model_validate(record), before)
    # The session's credits follow its hours and date (design: one credit per attendee).
    await credits_changed(session, "update", await repo.sync_session_credits(session, session_id=session_id),
                          was={"hours": before.hours, "earned_on": before.session_date})
    return record


# Attendance ------------------------------------------------------------------------------------

async def attendance(*, session: AsyncSession, record: Session) -> AttendanceRead:
    staff_ids, attendees, credited = await repo.attendance_of(session, session_id=record.id)
    return AttendanceRead(session_id=record.id, session_date=record.session_date, hours=record.hours,
                          staff_ids=staff_ids, attendees=attendees, credited_hours=credited)


async def replace_attendance(*, session: AsyncSession, session_id: UUID, data: AttendanceUpdate,
                             actor: Principal, expected_version: int | None = None) -> tuple[AttendanceRead, int]:
    """Returns the attendance as it now is and the session's version (its ETag).

    The attendance list is part of the session: a change bumps the session's version, so a writer
    holding an older ETag (of the session or of its attendance) gets 412."""
    record, _ = await _locked_session(session, session_id, actor)
    require_version(expected_version, record.version)  # checked with the session row locked
    staff_ids = sorted(set(data.staff_ids))  # listing someone twice still credits them once
    # "Members of the studio": a membership covering the session's date, so a member who has
    # since left keeps their past sessions, and nobody is credited for a session before joining.
    strangers = await repo.not_members_on(session, studio_id=record.studio_id, day=record.session_date,
                                          staff_ids=staff_ids)
    if strangers:
        raise Unprocessable(
            f"{len(strangers)} of the staff were not members of the studio on {record.session_date}",
            slug="not-a-member", extra={"errors": [
                {"field": f"body.staff_ids.{data.staff_ids.index(s)}", "message": f"{s} is not a member",
                 "type": "not_a_member"} for s in strangers]})
    before = await attendance(session=session, record=record)
    was_changed, removed, created = await repo.replace_attendance(session, session_id=session_id,
                                                                  staff_ids=staff_ids)
    result = await attendance(session=session, record=record)
    if was_changed:
        record.version += 1
        record.updated_at = utcnow()
        await session.flush()
        await changed(session, "attendance", str(record.id), "update", result, before)
        await credits_changed(session, "delete", removed)
        await credits_changed(session, "create", created)
    return result, record.version


# Lists ----------------------------------------------------------------------------------------

async def list_studios(*, session: AsyncSession, actor: Principal, page: PageParams, district_code: str | None,
                       kind: str | None, status: str | None, host_staff_id: UUID | None) -> list[Studio]:
    return await repo.list_studios(session, page=page, only=actor.list_scope(district_code),
                                   district_code=district_code, kind=kind, status=status,
                                   host_staff_id=host_staff_id)


async def list_members(*, session: AsyncSession, studio_id: UUID, actor: Principal, page: PageParams,
                       current: bool | None) -> list[Membership]:
    await get_studio(session=session, studio_id=studio_id, actor=actor)
    return await repo.list_members(session, studio_id=studio_id, page=page, current=current)


async def list_sessions(*, session: AsyncSession, studio_id: UUID, actor: Principal,
                        page: PageParams) -> list[Session]:
    await get_studio(session=session, studio_id=studio_id, actor=actor)
    return await repo.list_sessions(session, studio_id=studio_id, page=page)


# Figures for the gateway (docs/internal-api.md → Training) -------------------------------------

async def training_completion(*, session: AsyncSession, actor: Principal, as_of: date, rules: TrainingRules,
                              district_code: str | None) -> TrainingCompletion:
    actor.require_figures_scope(district_code)
    after = window_start(as_of, rules.window_years)
    rows = await stats.completion(session, after=after, as_of=as_of, threshold=rules.hours_threshold,
                                  district_code=district_code)
    return TrainingCompletion(as_of=as_of, threshold=rules.hours_threshold, window_years=rules.window_years,
                              window_start=after, districts=rows)


async def studio_stats(*, session: AsyncSession, actor: Principal, academic_year: int,
                       district_code: str | None) -> StudioStats:
    actor.require_figures_scope(district_code)
    period_from, period_to = academic_year_bounds(academic_year)
    rows = await stats.studio_stats(session, period_from=period_from, period_to=period_to,
                                    district_code=district_code)
    return StudioStats(academic_year=academic_year, period_from=period_from, period_to=period_to, districts=rows)
