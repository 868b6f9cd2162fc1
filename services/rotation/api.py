"""Rotation HTTP routes: thin — authenticate, parse, call the service, shape the response."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response

from services.common.audit_api import audit_router
from services.common.auth import CurrentUser
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
from services.common.vocabulary import DistrictCodePath, DistrictFilter, location
from services.rotation import service
from services.rotation.clients import PartnershipClient
from services.rotation.imports import ROTATIONS, STAFF
from services.rotation.proposals import api as proposals_api
from services.rotation.schemas import (
    STAFF_NOS_PER_CALL,
    AcademicYear,
    BackbonePlacement,
    BackboneWhatIf,
    BackboneWhatIfRequest,
    BalanceTotals,
    PlanAddRotation,
    PlanCreate,
    PlanRead,
    PolicyRead,
    PolicyWrite,
    RotationCreate,
    RotationRead,
    RotationStats,
    RotationStatus,
    RotationUpdate,
    SchoolStaff,
    StaffByNumber,
    StaffCreate,
    StaffNo,
    StaffRead,
    StaffStatus,
    StaffUpdate,
    StaffWorkplace,
    TransitionRead,
    TransitionRequest,
)

PartnershipDep = Annotated[PartnershipClient, upstream_client("partnership")]

staff = APIRouter(prefix="/v1/staff", tags=["staff"], route_class=IdempotentRoute)
policies = APIRouter(prefix="/v1/rotation-policies", tags=["rotation policies"], route_class=IdempotentRoute)
rotations = APIRouter(prefix="/v1/rotations", tags=["rotations"], route_class=IdempotentRoute)
plans = APIRouter(prefix="/v1/rotation-plans", tags=["rotation plans"], route_class=IdempotentRoute)
internal = APIRouter(prefix="/v1/internal", tags=["internal"], route_class=IdempotentRoute)


# Staff ---------------------------------------------------------------------------------------

@staff.post("", status_code=201, response_model=StaffRead, responses=problem_responses(403, 409, 503),
            summary="Register a teacher or cadre (409 on a duplicate staff_no, 422 on an unknown school)")
async def create_staff(data: StaffCreate, session: SessionDep, actor: CurrentUser, partnership: PartnershipDep,
                       response: Response) -> StaffRead:
    member = await service.create_staff(session=session, partnership=partnership, data=data, actor=actor)
    response.headers["Location"] = location("staff", member.id)
    response.headers["ETag"] = etag(member.version)
    return StaffRead.model_validate(member)


@staff.get("", response_model=Page[StaffRead], responses=problem_responses(403),
           summary="Staff of the districts you may read")
async def list_staff(session: SessionDep, actor: CurrentUser, page: PageDep, district_code: DistrictFilter = None,
                     home_school_code: str | None = None,
                     eligible_for_year: Annotated[int | None, Query(
                         ge=1900, le=2999, description="Only staff eligible on 1 Sept of this year "
                                                       "(by the district's rotation policy)")] = None,
                     status: StaffStatus | None = None) -> Page[StaffRead]:
    rows = await service.list_staff(session=session, actor=actor, page=page, district_code=district_code,
                                    home_school_code=home_school_code, eligible_for_year=eligible_for_year,
                                    status=status)
    return page_of([StaffRead.model_validate(r) for r in rows], page, key=lambda s: [s.staff_no])


@staff.get("/{staff_id}", response_model=StaffRead, responses={**problem_responses(403, 404), **NOT_MODIFIED})
async def get_staff(staff_id: UUID, session: SessionDep, actor: CurrentUser, request: Request,
                    response: Response):
    member = await service.get_staff(session=session, staff_id=staff_id, actor=actor)
    return conditional(request, response, member.version) or StaffRead.model_validate(member)


@staff.patch("/{staff_id}", response_model=StaffRead, responses=problem_responses(403, 404, 412, 503),
             summary="Correct a staff record (a new home school is checked and refreshes the district)")
async def update_staff(staff_id: UUID, data: StaffUpdate, session: SessionDep, actor: CurrentUser,
                       partnership: PartnershipDep, response: Response, if_match: IfMatch = None) -> StaffRead:
    member = await service.update_staff(session=session, partnership=partnership, staff_id=staff_id, data=data,
                                        actor=actor, expected_version=expected_version(if_match))
    response.headers["ETag"] = etag(member.version)
    return StaffRead.model_validate(member)


# Policies ------------------------------------------------------------------------------------

@policies.get("/{district_code}", response_model=PolicyRead,
              responses={**problem_responses(403), **NOT_MODIFIED},
              summary="A district's rotation policy (the defaults when never set, ETag \"v0\")")
async def get_policy(district_code: DistrictCodePath, session: SessionDep, actor: CurrentUser, request: Request,
                     response: Response):
    policy = await service.get_policy(session=session, district_code=district_code, actor=actor)
    return conditional(request, response, policy.version) or policy


@policies.put("/{district_code}", response_model=PolicyRead, responses=problem_responses(403, 412, 503),
              summary="Set a district's rotation policy (omitted fields take their defaults); send If-Match "
                      "with the ETag you read to avoid lost updates")
async def put_policy(district_code: DistrictCodePath, data: PolicyWrite, session: SessionDep, actor: CurrentUser,
                     partnership: PartnershipDep, response: Response, if_match: IfMatch = None) -> PolicyRead:
    policy = await service.put_policy(session=session, partnership=partnership, district_code=district_code,
                                      data=data, actor=actor, expected_version=expected_version(if_match))
    response.headers["ETag"] = etag(policy.version)
    return policy


# Rotations -----------------------------------------------------------------------------------

@rotations.post("", status_code=201, response_model=RotationRead, responses=problem_responses(403, 409, 503),
                summary="Plan a rotation (409 when it overlaps another of the person's rotations)")
async def create_rotation(data: RotationCreate, session: SessionDep, actor: CurrentUser,
                          partnership: PartnershipDep, response: Response) -> RotationRead:
    rotation = await service.create_rotation(session=session, partnership=partnership, data=data, actor=actor)
    response.headers["Location"] = location("rotations", rotation.id)
    response.headers["ETag"] = etag(rotation.version)
    return RotationRead.model_validate(rotation)


@rotations.get("", response_model=Page[RotationRead], responses=problem_responses(403),
               summary="Rotations out of or into the districts you may read")
async def list_rotations(session: SessionDep, actor: CurrentUser, page: PageDep,
                         district_code: Annotated[str | None, Query(
                             pattern=r"^[0-9]{6}$", description="From or to a school of this district")] = None,
                         staff_id: UUID | None = None, status: RotationStatus | None = None,
                         academic_year: Annotated[int | None, Query(
                             ge=1900, le=2999, description="Starting 1 Sept Y – 31 Aug Y+1")] = None,
                         school_code: Annotated[str | None, Query(description="From or to this school")] = None,
                         plan_id: UUID | None = None) -> Page[RotationRead]:
    rows = await service.list_rotations(session=session, actor=actor, page=page, district_code=district_code,
                                        staff_id=staff_id, status=status, academic_year=academic_year,
                                        school_code=school_code, plan_id=plan_id)
    return page_of([RotationRead.model_validate(r) for r in rows], page, key=lambda r: [r.start_date, r.id])


@rotations.get("/{rotation_id}", response_model=RotationRead,
               responses={**problem_responses(403, 404), **NOT_MODIFIED})
async def get_rotation(rotation_id: UUID, session: SessionDep, actor: CurrentUser, request: Request,
                       response: Response):
    rotation = await service.get_rotation(session=session, rotation_id=rotation_id, actor=actor)
    return conditional(request, response, rotation.version) or RotationRead.model_validate(rotation)


@rotations.patch("/{rotation_id}", response_model=RotationRead,
                 responses=problem_responses(403, 404, 409, 412),
                 summary="Change the dates of a planned or approved rotation (409 on overlap)")
async def update_rotation(rotation_id: UUID, data: RotationUpdate, session: SessionDep, actor: CurrentUser,
                          response: Response, if_match: IfMatch = None) -> RotationRead:
    rotation = await service.update_rotation(session=session, rotation_id=rotation_id, data=data, actor=actor,
                                             expected_version=expected_version(if_match))
    response.headers["ETag"] = etag(rotation.version)
    return RotationRead.model_validate(rotation)


@rotations.get("/{rotation_id}/history", response_model=Page[TransitionRead], responses=problem_responses(403, 404),
               summary="Every transition: who (token sub), when, from, to and the comment")
async def rotation_history(rotation_id: UUID, session: SessionDep, actor: CurrentUser,
                           page: PageDep) -> Page[TransitionRead]:
    rows = await service.rotation_history(session=session, rotation_id=rotation_id, actor=actor, page=page)
    return page_of([TransitionRead.model_validate(r) for r in rows], page, key=lambda t: [t.id])


def _transition_route(action: str, summary: str) -> None:
    @rotations.post(f"/{{rotation_id}}/{action}", response_model=RotationRead,
                    responses=problem_responses(403, 404, 409, 412), summary=summary, name=f"{action}_rotation")
    async def transition(rotation_id: UUID, session: SessionDep, actor: CurrentUser, response: Response,
                         body: TransitionRequest | None = None, if_match: IfMatch = None) -> RotationRead:
        rotation = await service.transition_rotation(session=session, rotation_id=rotation_id, action=action,
                                                     actor=actor, comment=body.comment if body else None,
                                                     expected_version=expected_version(if_match))
        response.headers["ETag"] = etag(rotation.version)
        return RotationRead.model_validate(rotation)


_transition_route("approve", "Approve a planned rotation")
_transition_route("activate", "Start an approved rotation")
_transition_route("complete", "Complete an active rotation")
_transition_route("withdraw", "Withdraw a rotation that is not completed (frees its dates)")


# Plans ---------------------------------------------------------------------------------------

def _plan_answer(view: service.PlanView, response: Response) -> PlanRead:
    """The plan with its rotations counted; its ETag versions that whole answer (see get_plan)."""
    response.headers["ETag"] = etag(view.version)
    return view.read


@plans.post("", status_code=201, response_model=PlanRead, responses=problem_responses(403, 409, 503),
            summary="Open a district's rotation plan for an academic year")
async def create_plan(data: PlanCreate, session: SessionDep, actor: CurrentUser, partnership: PartnershipDep,
                      response: Response) -> PlanRead:
    view = await service.create_plan(session=session, partnership=partnership, data=data, actor=actor)
    response.headers["Location"] = location("rotation-plans", view.read.id)
    return _plan_answer(view, response)


@plans.get("", response_model=Page[PlanRead], responses=problem_responses(403))
async def list_plans(session: SessionDep, actor: CurrentUser, page: PageDep, district_code: DistrictFilter = None,
                     academic_year: Annotated[int | None, Query(ge=1900, le=2999)] = None) -> Page[PlanRead]:
    rows = await service.list_plans(session=session, actor=actor, page=page, district_code=district_code,
                                    academic_year=academic_year)
    return page_of([PlanRead.model_validate(r) for r in rows], page, key=lambda p: [p.id])


@plans.get("/{plan_id}", response_model=PlanRead, responses={**problem_responses(403, 404), **NOT_MODIFIED},
           summary="A plan with its rotations counted by status (list them with GET /rotations?plan_id=)",
           description="The ETag versions the whole answer: it changes when the plan or any of its rotations "
                       "changes, so it is the plan's `version` plus its rotations' versions.")
async def get_plan(plan_id: UUID, session: SessionDep, actor: CurrentUser, request: Request, response: Response):
    view = await service.get_plan(session=session, plan_id=plan_id, actor=actor)
    return conditional(request, response, view.version) or view.read


@plans.post("/{plan_id}/rotations", response_model=PlanRead, responses=problem_responses(403, 404, 409),
            summary="Put a rotation of the plan's district and academic year into a draft plan")
async def add_to_plan(plan_id: UUID, data: PlanAddRotation, session: SessionDep, actor: CurrentUser,
                      response: Response) -> PlanRead:
    view = await service.add_to_plan(session=session, plan_id=plan_id, data=data, actor=actor)
    return _plan_answer(view, response)


@plans.post("/{plan_id}/approve", response_model=PlanRead, responses=problem_responses(403, 404, 409),
            summary="Approve every planned rotation of the plan at once, or none (409 lists the failures)")
async def approve_plan(plan_id: UUID, session: SessionDep, actor: CurrentUser, response: Response,
                       body: TransitionRequest | None = None) -> PlanRead:
    view = await service.approve_plan(session=session, plan_id=plan_id, actor=actor,
                                      comment=body.comment if body else None)
    return _plan_answer(view, response)


# Internal figures (docs/internal-api.md → Rotation) -----------------------------------------


@internal.get("/rotation-stats", response_model=RotationStats, responses=problem_responses(403),
              summary="Eligible, rotated and backbone-rotated staff per district (design.md §4.3–4.4)")
@keeps_answer
async def rotation_stats(session: ReadSessionDep, actor: CurrentUser,
                         academic_year: AcademicYear, district_code: DistrictFilter = None) -> RotationStats:
    return await service.rotation_stats(session=session, actor=actor, academic_year=academic_year,
                                        district_code=district_code)


@internal.get("/backbone-placement", response_model=BackbonePlacement, responses=problem_responses(403),
              summary="Backbone teachers by the school where they work on a date (design.md §4.6)")
@keeps_answer
async def backbone_placement(session: ReadSessionDep, actor: CurrentUser, as_of: date,
                             district_code: DistrictFilter = None) -> BackbonePlacement:
    return await service.backbone_placement(session=session, actor=actor, as_of=as_of, district_code=district_code)


@internal.post("/backbone-what-if", response_model=BackboneWhatIf, responses=problem_responses(403, 503),
               summary="A district's backbone placement before and after proposed moves, nothing stored "
                       "(design.md §4.6); 422 names unknown staff and schools per move")
async def backbone_what_if(data: BackboneWhatIfRequest, session: SessionDep, actor: CurrentUser,
                           partnership: PartnershipDep) -> BackboneWhatIf:
    return await service.backbone_what_if(session=session, partnership=partnership, actor=actor, data=data)


@internal.get("/staff/{staff_id}/workplace", response_model=StaffWorkplace, responses=problem_responses(403, 404),
              summary="The school where a staff member works on a date (design.md §4.6)")
async def staff_workplace(staff_id: UUID, session: SessionDep, actor: CurrentUser, as_of: date) -> StaffWorkplace:
    return await service.staff_workplace(session=session, actor=actor, staff_id=staff_id, as_of=as_of)


@internal.get("/balance-totals", response_model=BalanceTotals, responses=problem_responses(403),
              summary="Backbone balance sums per district and section on a date (design.md §4.6)")
@keeps_answer
async def balance_totals(session: ReadSessionDep, actor: CurrentUser, as_of: date,
                         district_code: DistrictFilter = None) -> BalanceTotals:
    return await service.balance_totals(session=session, actor=actor, as_of=as_of, district_code=district_code)


@internal.get("/school-staff", response_model=SchoolStaff, responses=problem_responses(403),
              summary="Active staff of a home school and the backbone teachers working there on a date")
async def school_staff(session: SessionDep, actor: CurrentUser, school_code: str, as_of: date) -> SchoolStaff:
    return await service.school_staff(session=session, actor=actor, school_code=school_code, as_of=as_of)


@internal.get("/staff", response_model=StaffByNumber, responses=problem_responses(403),
              summary="Staff by their numbers (工号), for a service whose staff directory lacks them")
async def staff_by_number(session: SessionDep, actor: CurrentUser, staff_no: Annotated[list[StaffNo], Query(
        min_length=1, max_length=STAFF_NOS_PER_CALL,
        description=f"Repeat for each number, at most {STAFF_NOS_PER_CALL}")]) -> StaffByNumber:
    rows = await service.staff_by_numbers(session=session, actor=actor, staff_nos=staff_no)
    return StaffByNumber(items=[StaffRead.model_validate(r) for r in rows])


# Change feed and bulk imports (government integration) -------------------------------------

changes = change_feed_router("rotation")


imports = import_router("rotation")
IMPORT_BODY = import_body(
    "工号,姓名,任职学校代码,岗位,任教学段,学科,骨干级别,现岗位起始日期,退休日期\n"
    "T20180001,张伟,11010501,教师,小学,数学,区级,2015-09-01,\n")


@imports.post("/staff", response_model=ImportReport, openapi_extra=IMPORT_BODY,
              responses={**IMPORT_RESPONSES, **problem_responses(403, 503)},
              summary="Bulk import staff, upsert by staff_no (CSV in UTF-8/GB18030 with Chinese or English "
                      "headers, or JSON); home schools are checked against the registry")
async def import_staff(request: Request, session: SessionDep, actor: CurrentUser,
                       dry_run: Annotated[bool, Query(description="Validate only; write nothing")] = False,
                       mode: Annotated[ImportMode, Query(description="all_or_nothing or partial")] =
                       ImportMode.all_or_nothing):
    # Home schools' districts come from partnership in one call once the rows are staged: when it
    # cannot answer, an inline import is 503 with nothing written, and a job is retried.
    return await handle_import(request, session, actor, STAFF, mode=mode, dry_run=dry_run)


ROTATIONS_BODY = import_body(
    "工号,姓名,交流学校代码,交流方式,开始日期,结束日期,状态\n"
    "T20180001,张伟,11011901,全职交流,2021-09-01,2023-08-31,已完成\n")


@imports.post("/rotations", response_model=ImportReport, openapi_extra=ROTATIONS_BODY,
              responses={**IMPORT_RESPONSES, **problem_responses(403, 503)},
              summary="Bulk import historical rotations from district systems, by staff_no and start date "
                      "(CSV in UTF-8/GB18030/UTF-16 with Chinese or English headers, or JSON); overlaps are "
                      "row errors")
async def import_rotations(request: Request, session: SessionDep, actor: CurrentUser,
                           dry_run: Annotated[bool, Query(description="Validate only; write nothing")] = False,
                           mode: Annotated[ImportMode, Query(description="all_or_nothing or partial")] =
                           ImportMode.all_or_nothing):
    return await handle_import(request, session, actor, ROTATIONS, mode=mode, dry_run=dry_run)


routers = [staff, policies, rotations, plans, internal, changes, imports, audit_router("rotation"),
           *proposals_api.routers]
