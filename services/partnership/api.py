"""Partnership HTTP routes: thin — authenticate, parse, call the service, shape the response."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response

from services.common.audit_api import audit_router
from services.common.auth import CurrentUser
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
from services.partnership import service
from services.partnership.imports import SCHOOLS
from services.partnership.schemas import (
    ActivityCreate,
    ActivityKind,
    ActivityRead,
    DistrictCreate,
    DistrictRead,
    DistrictUpdate,
    Locality,
    PairingCreate,
    PairingRead,
    PairingStatus,
    PartnershipStats,
    SchoolBriefList,
    SchoolCreate,
    SchoolRead,
    SchoolUpdate,
    Stage,
)

districts = APIRouter(prefix="/v1/districts", tags=["districts"], route_class=IdempotentRoute)
schools = APIRouter(prefix="/v1/schools", tags=["schools"], route_class=IdempotentRoute)
pairings = APIRouter(prefix="/v1/pairings", tags=["pairings"], route_class=IdempotentRoute)
activities = APIRouter(prefix="/v1/activities", tags=["activities"], route_class=IdempotentRoute)
internal = APIRouter(prefix="/v1/internal", tags=["internal"], route_class=IdempotentRoute)


@districts.post("", status_code=201, response_model=DistrictRead, responses=problem_responses(403, 409),
                summary="Register a district (city administrators)")
async def create_district(data: DistrictCreate, session: SessionDep, actor: CurrentUser,
                          response: Response) -> DistrictRead:
    district = await service.create_district(session=session, data=data, actor=actor)
    response.headers["Location"] = location("districts", district.code)
    return DistrictRead.model_validate(district)


@districts.get("", response_model=Page[DistrictRead], responses=problem_responses(),
               summary="List districts you may read")
async def list_districts(session: SessionDep, actor: CurrentUser, page: PageDep) -> Page[DistrictRead]:
    rows = await service.list_districts(session=session, actor=actor, page=page)
    return page_of([DistrictRead.model_validate(r) for r in rows], page, key=lambda d: [d.code])


@districts.get("/{code}", response_model=DistrictRead, responses={**problem_responses(403, 404), **NOT_MODIFIED})
async def get_district(code: DistrictCodePath, session: SessionDep, actor: CurrentUser, request: Request,
                       response: Response):
    district = await service.get_district(session=session, code=code, actor=actor)
    return conditional(request, response, district.version) or DistrictRead.model_validate(district)


@districts.patch("/{code}", response_model=DistrictRead, responses=problem_responses(403, 404, 412))
async def update_district(code: DistrictCodePath, data: DistrictUpdate, session: SessionDep,
                          actor: CurrentUser, response: Response, if_match: IfMatch = None) -> DistrictRead:
    district = await service.update_district(session=session, code=code, data=data, actor=actor,
                                             expected_version=expected_version(if_match))
    response.headers["ETag"] = etag(district.version)
    return DistrictRead.model_validate(district)


@schools.post("", status_code=201, response_model=SchoolRead, responses=problem_responses(403, 409),
              summary="Register a school (409 on a duplicate code, 422 on an unknown district)")
async def create_school(data: SchoolCreate, session: SessionDep, actor: CurrentUser,
                        response: Response) -> SchoolRead:
    school = await service.create_school(session=session, data=data, actor=actor)
    response.headers["Location"] = location("schools", school.code)
    return SchoolRead.model_validate(school)


@schools.get("", response_model=Page[SchoolRead], responses=problem_responses())
async def list_schools(session: SessionDep, actor: CurrentUser, page: PageDep,
                       district_code: DistrictFilter = None, locality: Locality | None = None,
                       stage: Stage | None = None) -> Page[SchoolRead]:
    rows = await service.list_schools(session=session, actor=actor, page=page, district_code=district_code,
                                      locality=locality, stage=stage)
    return page_of([SchoolRead.model_validate(r) for r in rows], page, key=lambda s: [s.code])


@schools.get("/{code}", response_model=SchoolRead, responses={**problem_responses(403, 404), **NOT_MODIFIED})
async def get_school(code: str, session: SessionDep, actor: CurrentUser, request: Request, response: Response):
    school = await service.get_school(session=session, code=code, actor=actor)
    return conditional(request, response, school.version) or SchoolRead.model_validate(school)


@schools.patch("/{code}", response_model=SchoolRead, responses=problem_responses(403, 404, 412),
               summary="Correct a school; send If-Match with the ETag you read to avoid lost updates")
async def update_school(code: str, data: SchoolUpdate, session: SessionDep, actor: CurrentUser,
                        response: Response, if_match: IfMatch = None) -> SchoolRead:
    school = await service.update_school(session=session, code=code, data=data, actor=actor,
                                         expected_version=expected_version(if_match))
    response.headers["ETag"] = etag(school.version)
    return SchoolRead.model_validate(school)


@pairings.post("", status_code=201, response_model=PairingRead, responses=problem_responses(403, 409),
               summary="Propose a pairing (409 when the two schools already have an overlapping one)")
async def create_pairing(data: PairingCreate, session: SessionDep, actor: CurrentUser,
                         response: Response) -> PairingRead:
    pairing = await service.create_pairing(session=session, data=data, actor=actor)
    response.headers["Location"] = location("pairings", pairing.id)
    return PairingRead.model_validate(pairing)


@pairings.get("", response_model=Page[PairingRead], responses=problem_responses())
async def list_pairings(session: SessionDep, actor: CurrentUser, page: PageDep,
                        district_code: DistrictFilter = None,
                        school_code: Annotated[str | None, Query(description="Either side")] = None,
                        status: PairingStatus | None = None) -> Page[PairingRead]:
    rows = await service.list_pairings(session=session, actor=actor, page=page, district_code=district_code,
                                       school_code=school_code, status=status)
    return page_of([PairingRead.model_validate(r) for r in rows], page, key=lambda p: [p.created_at, p.id])


@pairings.get("/{pairing_id}", response_model=PairingRead,
              responses={**problem_responses(403, 404), **NOT_MODIFIED})
async def get_pairing(pairing_id: UUID, session: SessionDep, actor: CurrentUser, request: Request,
                      response: Response):
    pairing = await service.get_pairing(session=session, pairing_id=pairing_id, actor=actor)
    return conditional(request, response, pairing.version) or PairingRead.model_validate(pairing)


def _transition_route(action: str, summary: str) -> None:
    @pairings.post(f"/{{pairing_id}}/{action}", response_model=PairingRead,
                   responses=problem_responses(403, 404, 409, 412), summary=summary, name=f"{action}_pairing")
    async def transition(pairing_id: UUID, session: SessionDep, actor: CurrentUser, response: Response,
                         if_match: IfMatch = None) -> PairingRead:
        pairing = await service.transition_pairing(session=session, pairing_id=pairing_id, action=action,
                                                   actor=actor, expected_version=expected_version(if_match))
        response.headers["ETag"] = etag(pairing.version)
        return PairingRead.model_validate(pairing)


_transition_route("activate", "Activate a proposed or suspended pairing")
_transition_route("suspend", "Suspend an active pairing")
_transition_route("end", "End a pairing (final)")


@pairings.post("/{pairing_id}/activities", status_code=201, response_model=ActivityRead,
               responses=problem_responses(403, 404, 409),
               summary="Record an activity (only on an active pairing, dated inside its range)")
async def record_activity(pairing_id: UUID, data: ActivityCreate, session: SessionDep, actor: CurrentUser,
                          response: Response) -> ActivityRead:
    activity = await service.record_activity(session=session, pairing_id=pairing_id, data=data, actor=actor)
    response.headers["Location"] = location("activities", pairing_id=pairing_id)
    return ActivityRead.model_validate(activity)


@activities.get("", response_model=Page[ActivityRead], responses=problem_responses())
async def list_activities(session: SessionDep, actor: CurrentUser, page: PageDep,
                          district_code: DistrictFilter = None, pairing_id: UUID | None = None,
                          kind: ActivityKind | None = None,
                          date_from: Annotated[date | None, Query(alias="from")] = None,
                          date_to: Annotated[date | None, Query(alias="to")] = None) -> Page[ActivityRead]:
    rows = await service.list_activities(session=session, actor=actor, page=page, district_code=district_code,
                                         pairing_id=pairing_id, kind=kind, date_from=date_from, date_to=date_to)
    return page_of([ActivityRead.model_validate(r) for r in rows], page, key=lambda a: [a.date, a.id])


@internal.get("/partnership-stats", response_model=PartnershipStats, response_model_by_alias=True,
              responses=problem_responses(403), summary="Coverage and activity totals (design.md §4.1–4.2)")
@keeps_answer
async def partnership_stats(session: ReadSessionDep, actor: CurrentUser, as_of: date,
                            period_from: Annotated[date, Query(alias="from")],
                            period_to: Annotated[date, Query(alias="to")],
                            district_code: DistrictFilter = None) -> PartnershipStats:
    return await service.partnership_stats(session=session, actor=actor, as_of=as_of, period_from=period_from,
                                           period_to=period_to, district_code=district_code)


@internal.get("/schools", response_model=SchoolBriefList, responses=problem_responses(403),
              summary="Every school of a district (or all) with enrollments, unpaginated")
@keeps_answer
async def school_briefs(session: ReadSessionDep, actor: CurrentUser,
                        district_code: DistrictFilter = None) -> SchoolBriefList:
    return await service.school_briefs(session=session, actor=actor, district_code=district_code)


changes = change_feed_router("partnership")


imports = import_router("partnership")
IMPORT_BODY = import_body(
    "学校代码,学校名称,区县代码,学段,城乡类别,小学在校生数\n"
    "11010501,北京市朝阳区实验小学,110105,小学,城区,1200\n")


@imports.post("/schools", response_model=ImportReport, openapi_extra=IMPORT_BODY,
              responses={**IMPORT_RESPONSES, **problem_responses(403)},
              summary="Bulk import schools (CSV in UTF-8/GB18030 with Chinese or English headers, or JSON)")
async def import_schools(request: Request, session: SessionDep, actor: CurrentUser,
                         dry_run: Annotated[bool, Query(description="Validate only; write nothing")] = False,
                         mode: Annotated[ImportMode, Query(description="all_or_nothing or partial")] =
                         ImportMode.all_or_nothing):
    return await handle_import(request, session, actor, SCHOOLS, mode=mode, dry_run=dry_run)


routers = [districts, schools, pairings, activities, internal, changes, imports, audit_router("partnership")]
