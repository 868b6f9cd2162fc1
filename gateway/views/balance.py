"""Backbone balance of a district (design.md §4.6) and its what-if under proposed moves.

Enrollment comes from the partnership registry, the placement of backbone teachers on the date
from rotation; the arithmetic is `services.common.cv`. Without either service there is no answer
(503 problem+json). The what-if stores nothing: it recounts the placement with the moved staff
members counted at their proposed school.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Query, Request

from gateway.clients import PartnershipClient, RotationClient, RotationRecord, SchoolBrief, StaffRecord
from gateway.views import compose
from gateway.views.district import DistrictCodePath
from gateway.views.schemas import DistrictBalance, DistrictRef, MoveEffect, WhatIfAnswer, WhatIfRequest
from services.common import cv as arithmetic
from services.common.auth import CurrentUser
from services.common.errors import Forbidden, NotFound, Unprocessable, problem_responses
from services.common.indicators import COUNTY_AND_ABOVE

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
    sections = compose.district_sections(schools, placement)
    return DistrictBalance(district=district, as_of=as_of, **sections)


async def _inputs(request: Request, code: str, as_of: date) -> tuple[DistrictRef, list[SchoolBrief],
                                                                     dict[tuple[str, str], int]]:
    partnership = PartnershipClient.of(request)
    rotation = RotationClient.of(request)
    answers = await compose.all_of({
        "district": partnership.district(code),
        "schools": partnership.schools(code),
        "placement": rotation.placement(as_of=as_of, district_code=code),
    })
    if answers["district"] is None:
        raise NotFound(f"district {code} does not exist", slug="district-not-found")
    return (DistrictRef(code=code, name=answers["district"].name), answers["schools"],
            answers["placement"].counts())


@router.get("/districts/{code}/balance", response_model=DistrictBalance,
            responses=problem_responses(403, 404, 503), summary="Backbone balance of a district",
            description=BALANCE_DESCRIPTION)
async def district_balance(code: DistrictCodePath, request: Request, principal: CurrentUser,
                           as_of: Annotated[date | None, Query(description="Defaults to today (China)")] = None,
                           ) -> DistrictBalance:
    principal.require_read_in(code)
    day = as_of or compose.today()
    district, schools, placement = await _inputs(request, code, day)
    return _shape(district, day, schools, placement)


def _works_at(staff: StaffRecord, active_rotations: list[RotationRecord], as_of: date) -> str:
    """§4.6: the receiving school of an active full-time rotation containing as_of, else home."""
    for rotation in active_rotations:
        if (rotation.staff_id == staff.id and rotation.status == "active" and rotation.mode == "full_time"
                and rotation.start_date <= as_of <= rotation.end_date):
            return rotation.to_school_code
    return staff.home_school_code


def _counts_as_backbone(staff: StaffRecord) -> bool:
    return (staff.role == "teacher" and staff.backbone_level in COUNTY_AND_ABOVE and staff.status == "active"
            and staff.section in arithmetic.SECTIONS)


def _field_error(index: int, name: str, message: str, kind: str) -> dict[str, str]:
    return {"field": f"body.moves.{index}.{name}", "message": message, "type": kind}


@router.post("/districts/{code}/balance/what-if", response_model=WhatIfAnswer,
             responses=problem_responses(403, 404, 503), summary="Balance before and after proposed moves",
             description=WHAT_IF_DESCRIPTION)
async def balance_what_if(code: DistrictCodePath, request: Request, principal: CurrentUser,
                          data: Annotated[WhatIfRequest, Body()]) -> WhatIfAnswer:
    principal.require_read_in(code)
    day = data.as_of or compose.today()
    errors: list[dict[str, str]] = []
    seen: dict[UUID, int] = {}
    for index, move in enumerate(data.moves):
        if move.staff_id in seen:
            errors.append(_field_error(index, "staff_id", f"already moved by moves[{seen[move.staff_id]}]",
                                       "duplicate"))
        seen.setdefault(move.staff_id, index)
    if errors:
        raise _invalid(errors)

    rotation = RotationClient.of(request)
    partnership = PartnershipClient.of(request)
    staff_ids = list(seen)
    calls = {"inputs": _inputs(request, code, day)}
    for staff_id in staff_ids:
        calls[f"staff:{staff_id}"] = rotation.staff(staff_id)
        calls[f"rotations:{staff_id}"] = rotation.rotations(staff_id=staff_id, status="active")
    answers = await compose.all_of(calls)
    district, schools, placement = answers["inputs"]

    # Schools outside the district are looked up once each; one the caller may not read still exists.
    own = {school.code for school in schools}
    outside = sorted({move.to_school_code for move in data.moves} - own)
    found = await compose.all_of({school_code: _school_exists(partnership, school_code) for school_code in outside})

    effects: list[MoveEffect] = []
    after = dict(placement)
    for index, move in enumerate(data.moves):
        staff: StaffRecord | None = answers[f"staff:{move.staff_id}"]
        if staff is None:
            errors.append(_field_error(index, "staff_id", f"staff member {move.staff_id} does not exist",
                                       "unknown_reference"))
        if move.to_school_code not in own and not found.get(move.to_school_code):
            errors.append(_field_error(index, "to_school_code", f"school {move.to_school_code} does not exist",
                                       "unknown_reference"))
        if staff is None or errors:
            continue
        current = _works_at(staff, answers[f"rotations:{move.staff_id}"], day)
        counts = _counts_as_backbone(staff)
        if counts and current != move.to_school_code:
            source = (current, staff.section)
            if after.get(source, 0) > 0:
                after[source] -= 1
            target = (move.to_school_code, staff.section)
            after[target] = after.get(target, 0) + 1
        effects.append(MoveEffect(staff_id=staff.id, name=staff.name, section=staff.section,
                                  from_school_code=current, to_school_code=move.to_school_code,
                                  counts_as_backbone=counts))
    if errors:
        raise _invalid(errors)
    return WhatIfAnswer(before=_shape(district, day, schools, placement),
                        after=_shape(district, day, schools, after), moves=effects)


async def _school_exists(partnership: PartnershipClient, school_code: str) -> bool:
    try:
        return await partnership.school(school_code) is not None
    except Forbidden:
        return True  # another district's school: it exists, the caller just may not read it


def _invalid(errors: list[dict[str, str]]) -> Unprocessable:
    return Unprocessable("; ".join(f"{e['field']}: {e['message']}" for e in errors[:5]),
                         slug="unknown-reference", title="Invalid moves", extra={"errors": errors})
