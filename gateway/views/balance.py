"""Backbone balance of a district (design.md §4.6) and its what-if under proposed moves.

Only composition: enrollment comes from the partnership registry, the placement of backbone
teachers on the date from rotation (which alone applies the "works at" rule of §4.6, to the
what-if's moves too: `/v1/internal/backbone-what-if`); the arithmetic is `services.common.cv`.
Without either service there is no answer (503 problem+json). The what-if stores nothing.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Query, Request

from gateway.clients import PartnershipClient, RotationClient, SchoolBrief, WhatIf
from gateway.views.blocks import district_sections
from gateway.views.calls import all_of
from gateway.views.district import DistrictCodePath
from gateway.views.schemas import DistrictBalance, DistrictRef, MoveEffect, WhatIfAnswer, WhatIfRequest
from services.common.auth import CurrentUser
from services.common.calendar import today
from services.common.errors import NotFound, Unprocessable, problem_responses

router = APIRouter(prefix="/api/v1", tags=["views"])

BALANCE_DESCRIPTION = """
Backbone balance (校际差异系数) on `as_of`, per section. For each school i with
enrollment P_i > 0 in the section, X_i = 100·B_i/P_i county-level-and-above backbone teachers per
100 students (`per_100`); `mean` X̄ = ΣP_i·X_i/P, `cv` = S/X̄ with S = √(ΣP_i(X_i − X̄)²/P). Schools
with no enrollment in a section are not in its figures. `mean`, `cv` and `per_100` are rounded
half up to 6 decimals only at presentation; `cv` is null when the mean is 0. National bars (2017):
primary cv ≤ 0.50, junior cv ≤ 0.45, every school X_i ≥ 1. Needs the partnership and rotation
services: 503 when either is unavailable.
"""

WHAT_IF_DESCRIPTION = """
The balance before and after a proposed set of moves (each staff member counted at `to_school_code`
for their section instead of where they work on `as_of`). Nothing is stored. Only active
county-level-and-above backbone teachers change the figures; `moves` says, for each, where they are
counted now and whether they count. An unknown staff member or school is 422 with
`errors[].field` such as `body.moves.0.staff_id`.
""" + BALANCE_DESCRIPTION.split("\n", 1)[1]


def _shape(district: DistrictRef, as_of: date, schools: list[SchoolBrief],
           placement: dict[tuple[str, str], int]) -> DistrictBalance:
    sections = district_sections(schools, placement)
    return DistrictBalance(district=district, as_of=as_of, **sections)


async def _registry(partnership: PartnershipClient, code: str) -> tuple[DistrictRef | None, list[SchoolBrief]]:
    """The district (None when partnership does not know it) and its schools with their enrollments."""
    answers = await all_of({"district": partnership.district(code), "schools": partnership.schools(code)})
    district = answers["district"]
    return (None if district is None else DistrictRef(code=code, name=district.name)), answers["schools"]


def _known(district: DistrictRef | None, code: str) -> DistrictRef:
    """Asked once every call has answered: an unavailable service is a 503 even for an unknown code."""
    if district is None:
        raise NotFound(f"district {code} does not exist", slug="district-not-found")
    return district


@router.get("/districts/{code}/balance", response_model=DistrictBalance,
            responses=problem_responses(403, 404, 503), summary="Backbone balance of a district",
            description=BALANCE_DESCRIPTION)
async def district_balance(code: DistrictCodePath, request: Request, principal: CurrentUser,
                           as_of: Annotated[date | None, Query(description="Defaults to today (China)")] = None,
                           ) -> DistrictBalance:
    principal.require_read_in(code)
    day = as_of or today()
    answers = await all_of({
        "registry": _registry(PartnershipClient.of(request), code),
        "placement": RotationClient.of(request).placement(as_of=day, district_code=code),
    })
    district, schools = answers["registry"]
    return _shape(_known(district, code), day, schools, answers["placement"].counts())


@router.post("/districts/{code}/balance/what-if", response_model=WhatIfAnswer,
             responses=problem_responses(403, 404, 503), summary="Balance before and after proposed moves",
             description=WHAT_IF_DESCRIPTION)
async def balance_what_if(code: DistrictCodePath, request: Request, principal: CurrentUser,
                          data: Annotated[WhatIfRequest, Body()]) -> WhatIfAnswer:
    """Rotation says where each moved staff member works and recounts the placement (§4.6);
    partnership gives the enrollments; the CV is the kernel's. A staff member moved twice is
    refused here, before any call."""
    principal.require_read_in(code)
    day = data.as_of or today()
    repeated = _repeated([move.staff_id for move in data.moves])
    if repeated:
        raise _invalid(repeated)
    answers = await all_of({
        "registry": _registry(PartnershipClient.of(request), code),
        "what_if": _what_if(RotationClient.of(request), code, day, data),
    })
    district, schools = answers["registry"]
    district = _known(district, code)
    what_if = answers["what_if"]
    if isinstance(what_if, Unprocessable):
        raise what_if
    before, after = what_if.placements()
    return WhatIfAnswer(before=_shape(district, day, schools, before), after=_shape(district, day, schools, after),
                        moves=[MoveEffect(**move.model_dump()) for move in what_if.moves])


async def _what_if(rotation: RotationClient, code: str, day: date, data: WhatIfRequest) -> WhatIf | Unprocessable:
    """Rotation's answer; its 422 (unknown staff or schools) is returned, to be raised only when
    every other call answered and the district exists."""
    try:
        return await rotation.what_if(district_code=code, as_of=day,
                                      moves=[move.model_dump(mode="json") for move in data.moves])
    except Unprocessable as exc:
        return exc


def _repeated(staff_ids: list[UUID]) -> list[dict[str, str]]:
    first: dict[UUID, int] = {}
    errors: list[dict[str, str]] = []
    for index, staff_id in enumerate(staff_ids):
        if staff_id in first:
            errors.append({"field": f"body.moves.{index}.staff_id", "message": f"already moved by "
                           f"moves[{first[staff_id]}]", "type": "duplicate"})
        first.setdefault(staff_id, index)
    return errors


def _invalid(errors: list[dict[str, str]]) -> Unprocessable:
    return Unprocessable("; ".join(f"{e['field']}: {e['message']}" for e in errors[:5]),
                         slug="unknown-reference", title="Invalid moves", extra={"errors": errors})
