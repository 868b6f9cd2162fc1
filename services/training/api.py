"""Training HTTP routes: thin — authenticate, parse, call the service, shape the response."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response

from services.common.audit_api import audit_router
from services.common.auth import CurrentUser
from services.common.calendar import today
from services.common.clients import upstream_client
from services.common.db import ReadSessionDep, SessionDep
from services.common.errors import problem_responses
from services.common.etag import NOT_MODIFIED, IfMatch, conditional, etag, expected_version
from services.common.idempotency import IdempotentRoute
from services.common.import_api import handle_import
from services.common.imports import ImportMode, ImportReport
from services.common.integration_api import IMPORT_RESPONSES, change_feed_router, import_body, import_router
from services.common.kept_answers import keeps_answer
from services.common.paging import Page, PageDep, page_of
from services.common.vocabulary import location
from services.training import imports as training_imports
from services.training import ledger, service
from services.training.clients import RotationClient
from services.training.config import TrainingRules
from services.training.schemas import (
    AttendanceRead,
    AttendanceUpdate,
    MembershipCreate,
    MembershipLeave,
    MembershipRead,
    SessionCreate,
    SessionRead,
    SessionUpdate,
    StaffMemberships,
    StudioCreate,
    StudioKind,
    StudioRead,
    StudioStats,
    StudioStatus,
    TrainingCompletion,
    TrainingHoursCreate,
    TrainingHoursRead,
    TrainingSummary,
)


async def _rules(request: Request) -> TrainingRules:
    return request.app.state.training_rules


RotationDep = Annotated[RotationClient, upstream_client("rotation")]
RulesDep = Annotated[TrainingRules, Depends(_rules)]
DistrictFilter = Annotated[str | None, Query(pattern=r"^[1-8][0-9]{5}$", description="GB/T 2260 district code")]

studios = APIRouter(prefix="/v1/studios", tags=["studios"], route_class=IdempotentRoute)
sessions = APIRouter(prefix="/v1/sessions", tags=["sessions"], route_class=IdempotentRoute)
hours = APIRouter(prefix="/v1/training-hours", tags=["training hours"], route_class=IdempotentRoute)
internal = APIRouter(prefix="/v1/internal", tags=["internal"], route_class=IdempotentRoute)




# Studios ---------------------------------------------------------------------------------------

@studios.post("", status_code=201, response_model=StudioRead, responses=problem_responses(403, 503),
              summary="Open a studio (the host must be a staff member known to rotation)")
async def create_studio(data: StudioCreate, session: SessionDep, actor: CurrentUser, rotation: RotationDep,
                        response: Response) -> StudioRead:
    studio = await service.create_studio(session=session, data=data, actor=actor, rotation=rotation)
    response.headers["Location"] = location("studios", studio.id)
    response.headers["ETag"] = etag(studio.version)
    return StudioRead.model_validate(studio)


@studios.get("", response_model=Page[StudioRead], responses=problem_responses(),
             summary="List studios of the districts you may read")
async def list_studios(session: SessionDep, actor: CurrentUser, page: PageDep,
                       district_code: DistrictFilter = None, kind: StudioKind | None = None,
                       status: StudioStatus | None = None,
                       host_staff_id: UUID | None = None) -> Page[StudioRead]:
    rows = await service.list_studios(session=session, actor=actor, page=page, district_code=district_code,
                                      kind=kind, status=status, host_staff_id=host_staff_id)
    return page_of([StudioRead.model_validate(r) for r in rows], page, key=lambda s: [s.start_date, s.id])


@studios.get("/{studio_id}", response_model=StudioRead, responses={**problem_responses(403, 404), **NOT_MODIFIED})
async def get_studio(studio_id: UUID, session: SessionDep, actor: CurrentUser, request: Request,
                     response: Response):
    studio = await service.get_studio(session=session, studio_id=studio_id, actor=actor)
    return conditional(request, response, studio.version) or StudioRead.model_validate(studio)


@studios.post("/{studio_id}/close", response_model=StudioRead, responses=problem_responses(403, 404, 409, 412),
              summary="Close an active studio (no new members or sessions afterwards); If-Match optional")
async def close_studio(studio_id: UUID, session: SessionDep, actor: CurrentUser, response: Response,
                       if_match: IfMatch = None) -> StudioRead:
    studio = await service.close_studio(session=session, studio_id=studio_id, actor=actor,
                                        expected_version=expected_version(if_match))
    response.headers["ETag"] = etag(studio.version)
    return StudioRead.model_validate(studio)


@studios.post("/{studio_id}/members", status_code=201, response_model=MembershipRead,
              responses=problem_responses(403, 404, 409, 503),
              summary="Add a member (409 when full, already a member, or the host)")
async def join_studio(studio_id: UUID, data: MembershipCreate, session: SessionDep, actor: CurrentUser,
                      rotation: RotationDep, response: Response) -> MembershipRead:
    membership = await service.join_studio(session=session, studio_id=studio_id, data=data, actor=actor,
                                           rotation=rotation)
    response.headers["Location"] = location("studios", studio_id, "members", membership.staff_id)
    return MembershipRead.model_validate(membership)


@studios.get("/{studio_id}/members", response_model=Page[MembershipRead], responses=problem_responses(403, 404),
             summary="Memberships of a studio (current=true: only those who have not left)")
async def list_members(studio_id: UUID, session: SessionDep, actor: CurrentUser, page: PageDep,
                       current: bool | None = None) -> Page[MembershipRead]:
    rows = await service.list_members(session=session, studio_id=studio_id, actor=actor, page=page,
                                      current=current)
    return page_of([MembershipRead.model_validate(r) for r in rows], page, key=lambda m: [m.joined_on, m.id])


@studios.get("/{studio_id}/members/{staff_id}", response_model=MembershipRead,
             responses=problem_responses(403, 404), summary="A staff member's latest membership of the studio")
async def get_membership(studio_id: UUID, staff_id: UUID, session: SessionDep, actor: CurrentUser) -> MembershipRead:
    membership = await service.get_membership(session=session, studio_id=studio_id, staff_id=staff_id,
                                              actor=actor)
    return MembershipRead.model_validate(membership)


@studios.post("/{studio_id}/members/{staff_id}/leave", response_model=MembershipRead,
              responses=problem_responses(403, 404, 409), summary="Record that a member left on `left_on`")
async def leave_studio(studio_id: UUID, staff_id: UUID, data: MembershipLeave, session: SessionDep,
                       actor: CurrentUser) -> MembershipRead:
    membership = await service.leave_studio(session=session, studio_id=studio_id, staff_id=staff_id, data=data,
                                            actor=actor)
    return MembershipRead.model_validate(membership)


@studios.post("/{studio_id}/sessions", status_code=201, response_model=SessionRead,
              responses=problem_responses(403, 404, 409),
              summary="Schedule a session (its date, in China Standard Time, inside the studio's cycle)")
async def create_session(studio_id: UUID, data: SessionCreate, session: SessionDep, actor: CurrentUser,
                         response: Response) -> SessionRead:
    record = await service.create_session(session=session, studio_id=studio_id, data=data, actor=actor)
    response.headers["Location"] = location("sessions", record.id)
    response.headers["ETag"] = etag(record.version)
    return SessionRead.model_validate(record)


@studios.get("/{studio_id}/sessions", response_model=Page[SessionRead], responses=problem_responses(403, 404))
async def list_sessions(studio_id: UUID, session: SessionDep, actor: CurrentUser,
                        page: PageDep) -> Page[SessionRead]:
    rows = await service.list_sessions(session=session, studio_id=studio_id, actor=actor, page=page)
    return page_of([SessionRead.model_validate(r) for r in rows], page, key=lambda s: [s.starts_at, s.id])


# Sessions and attendance -----------------------------------------------------------------------

@sessions.get("/{session_id}", response_model=SessionRead,
              responses={**problem_responses(403, 404), **NOT_MODIFIED})
async def get_session(session_id: UUID, session: SessionDep, actor: CurrentUser, request: Request,
                      response: Response):
    record, _ = await service.get_session(session=session, session_id=session_id, actor=actor)
    return conditional(request, response, record.version) or SessionRead.model_validate(record)


@sessions.patch("/{session_id}", response_model=SessionRead, responses=problem_responses(403, 404, 409, 412),
                summary="Change hours, title or start (the attendees' credits follow)")
async def update_session(session_id: UUID, data: SessionUpdate, session: SessionDep, actor: CurrentUser,
                         response: Response, if_match: IfMatch = None) -> SessionRead:
    record = await service.update_session(session=session, session_id=session_id, data=data, actor=actor,
                                          expected_version=expected_version(if_match))
    response.headers["ETag"] = etag(record.version)
    return SessionRead.model_validate(record)


@sessions.get("/{session_id}/attendance", response_model=AttendanceRead,
              responses={**problem_responses(403, 404), **NOT_MODIFIED},
              summary="The attendance list; its ETag is the session's (attendance is part of the session)")
async def get_attendance(session_id: UUID, session: SessionDep, actor: CurrentUser, request: Request,
                         response: Response):
    record, _ = await service.get_session(session=session, session_id=session_id, actor=actor)
    return conditional(request, response, record.version) or await service.attendance(session=session,
                                                                                      record=record)


@sessions.put("/{session_id}/attendance", response_model=AttendanceRead,
              responses=problem_responses(403, 404, 412),
              summary="Replace the attendance list; each attendee is credited the session's hours once. "
                      "If-Match (optional) is the session's ETag; a change bumps it")
async def replace_attendance(session_id: UUID, data: AttendanceUpdate, session: SessionDep,
                             actor: CurrentUser, response: Response, if_match: IfMatch = None) -> AttendanceRead:
    result, version = await service.replace_attendance(session=session, session_id=session_id, data=data,
                                                       actor=actor, expected_version=expected_version(if_match))
    response.headers["ETag"] = etag(version)
    return result


# The training-hours ledger ---------------------------------------------------------------------

@hours.post("", status_code=201, response_model=TrainingHoursRead,
            responses={200: {"model": TrainingHoursRead, "description": "An identical replay: the stored credit"},
                       **problem_responses(403, 409, 503)},
            summary="Record an external credit, once per (source, reference) (administrators; integrators "
                    "use POST /v1/imports/training-hours)")
async def record_credit(data: TrainingHoursCreate, session: SessionDep, actor: CurrentUser, rotation: RotationDep,
                        response: Response) -> TrainingHoursRead:
    credit, created = await ledger.record_credit(session=session, data=data, actor=actor, rotation=rotation)
    response.status_code = 201 if created else 200
    response.headers["Location"] = location("training-hours", credit.id)
    response.headers["ETag"] = etag(credit.version)
    return TrainingHoursRead.model_validate(credit)


@hours.get("", response_model=Page[TrainingHoursRead], responses=problem_responses(403, 503),
           summary="Ledger rows, by earned_on (staff_id is required unless you read city-wide)")
async def list_credits(session: SessionDep, actor: CurrentUser, rotation: RotationDep, page: PageDep,
                       staff_id: UUID | None = None, source: str | None = None,
                       earned_from: Annotated[date | None, Query(alias="from")] = None,
                       earned_to: Annotated[date | None, Query(alias="to")] = None) -> Page[TrainingHoursRead]:
    rows = await ledger.list_credits(session=session, actor=actor, rotation=rotation, page=page, staff_id=staff_id,
                                     source=source, earned_from=earned_from, earned_to=earned_to)
    return page_of([TrainingHoursRead.model_validate(r) for r in rows], page, key=lambda c: [c.earned_on, c.id])


@hours.get("/summary", response_model=TrainingSummary, responses=problem_responses(403, 503),
           summary="Hours in the 5-year window up to as_of against the 360-hour bar")
async def training_summary(staff_id: UUID, session: SessionDep, actor: CurrentUser, rotation: RotationDep,
                           rules: RulesDep,
                           as_of: Annotated[date | None, Query(description="Defaults to today in China")] = None,
                           ) -> TrainingSummary:
    return await ledger.staff_summary(session=session, actor=actor, rotation=rotation, staff_id=staff_id,
                                      as_of=as_of or today(), rules=rules)


@hours.get("/{credit_id}", response_model=TrainingHoursRead,
           responses={**problem_responses(403, 404, 503), **NOT_MODIFIED})
async def get_credit(credit_id: UUID, session: SessionDep, actor: CurrentUser, rotation: RotationDep,
                     request: Request, response: Response):
    credit = await ledger.get_credit(session=session, credit_id=credit_id, actor=actor, rotation=rotation)
    return conditional(request, response, credit.version) or TrainingHoursRead.model_validate(credit)


# Internal figures for the gateway (docs/internal-api.md → Training) -----------------------------


@internal.get("/training-completion", response_model=TrainingCompletion, responses=problem_responses(403),
              summary="Active staff per home district and how many completed the bar (design.md §4.5)")
@keeps_answer
async def training_completion(as_of: date, session: ReadSessionDep, actor: CurrentUser, rules: RulesDep,
                              district_code: DistrictFilter = None) -> TrainingCompletion:
    return await service.training_completion(session=session, actor=actor, as_of=as_of, rules=rules,
                                             district_code=district_code)


@internal.get("/studio-stats", response_model=StudioStats, responses=problem_responses(403),
              summary="Studios, sessions in the academic year and hours they credited, per studio district")
@keeps_answer
async def studio_stats(academic_year: Annotated[int, Query(ge=2000, le=2100)], session: ReadSessionDep,
                       actor: CurrentUser, district_code: DistrictFilter = None) -> StudioStats:
    return await service.studio_stats(session=session, actor=actor, academic_year=academic_year,
                                      district_code=district_code)


@internal.get("/staff/{staff_id}/memberships", response_model=StaffMemberships,
              responses=problem_responses(403, 404, 503),
              summary="Studios a staff member hosts or belongs to (for the staff profile)")
async def staff_memberships(staff_id: UUID, session: SessionDep, actor: CurrentUser,
                            rotation: RotationDep) -> StaffMemberships:
    return await ledger.staff_memberships(session=session, actor=actor, rotation=rotation, staff_id=staff_id)


# The change feed and bulk imports (design.md §5: what integrators do) -----------------------------

changes = change_feed_router("training")


imports = import_router("training")
IMPORT_BODY = import_body(
    "教师编号,学时,取得日期,来源,凭证编号\n"
    "0b6f4a52-2f4e-4d7e-9a51-3c1f0e2d9a10,24,2024-11-08,市级平台,2024-PX-000317\n")


@imports.post("/training-hours", response_model=ImportReport, openapi_extra=IMPORT_BODY,
              responses={**IMPORT_RESPONSES, **problem_responses(403, 503)},
              summary="Bulk import external training hours, once per (source, reference) (CSV in "
                      "UTF-8/GB18030 with Chinese or English headers, or JSON)")
async def import_training_hours(request: Request, session: SessionDep, actor: CurrentUser,
                                dry_run: Annotated[bool, Query(description="Validate only; write nothing")] = False,
                                mode: Annotated[ImportMode, Query(description="all_or_nothing or partial")] =
                                ImportMode.all_or_nothing):
    return await handle_import(request, session, actor, training_imports.TRAINING_HOURS, mode=mode,
                               dry_run=dry_run)


routers = [studios, sessions, hours, internal, changes, imports, audit_router("training")]
