"""Rotation's figures for the gateway (docs/internal-api.md → Rotation), and the what-if of §4.6.

Each is scoped like a public read (`require_figures_scope`, `require_read_in`) and counted by SQL
in `services/rotation/stats.py`, where the "works at" rule of §4.6 is stated once. The what-if is
rotation's because it is that rule applied to proposed moves: it answers the district's placement
before and after, and where each moved staff member works now; the gateway adds the enrollments
and the CV arithmetic (`services/common/cv.py`).
"""

from __future__ import annotations

from datetime import date
from uuid import UUID

from sqlmodel.ext.asyncio.session import AsyncSession

from services.common import cv
from services.common.auth import Principal
from services.common.errors import NotFound, Unprocessable
from services.rotation import stats
from services.rotation.clients import PartnershipClient
from services.rotation.directory import school_districts
from services.rotation.schemas import (
    BackbonePlacement,
    BackboneWhatIf,
    BackboneWhatIfRequest,
    BalanceTotals,
    MovePlacement,
    PlacementItem,
    RotationStats,
    SchoolStaff,
    StaffWorkplace,
)


async def rotation_stats(*, session: AsyncSession, actor: Principal, academic_year: int,
                         district_code: str | None) -> RotationStats:
    actor.require_figures_scope(district_code)
    return await stats.rotation_stats(session, academic_year=academic_year, district_code=district_code)


async def backbone_placement(*, session: AsyncSession, actor: Principal, as_of: date,
                             district_code: str | None) -> BackbonePlacement:
    actor.require_figures_scope(district_code)
    return await stats.backbone_placement(session, as_of=as_of, district_code=district_code)


async def balance_totals(*, session: AsyncSession, actor: Principal, as_of: date,
                         district_code: str | None) -> BalanceTotals:
    actor.require_figures_scope(district_code)
    return await stats.balance_totals(session, as_of=as_of, district_code=district_code)


async def school_staff(*, session: AsyncSession, actor: Principal, school_code: str, as_of: date) -> SchoolStaff:
    if not actor.city_wide:
        district = await stats.school_district(session, school_code=school_code)
        if district is not None:
            actor.require_read_in(district)
    return await stats.school_staff(session, school_code=school_code, as_of=as_of)


async def staff_workplace(*, session: AsyncSession, actor: Principal, staff_id: UUID, as_of: date) -> StaffWorkplace:
    """Where one staff member works on `as_of`; scoped like the staff record (404, then 403)."""
    place = (await stats.staff_workplaces(session, as_of=as_of, staff_ids=[staff_id])).get(staff_id)
    if place is None:
        raise NotFound(f"staff member {staff_id} does not exist", slug="staff-not-found")
    actor.require_read_in(place.home_district_code)
    return StaffWorkplace(staff_id=staff_id, as_of=as_of, school_code=place.school_code,
                          district_code=place.district_code)


def _field_error(index: int, name: str, message: str, kind: str) -> dict[str, str]:
    return {"field": f"body.moves.{index}.{name}", "message": message, "type": kind}


def _invalid(errors: list[dict[str, str]]) -> Unprocessable:
    return Unprocessable("; ".join(f"{e['field']}: {e['message']}" for e in errors[:5]),
                         slug="unknown-reference", title="Invalid moves", extra={"errors": errors})


def duplicate_moves(staff_ids: list[UUID]) -> list[dict[str, str]]:
    """Each staff member may be moved once: a second move of the same person is a field error."""
    errors: list[dict[str, str]] = []
    seen: dict[UUID, int] = {}
    for index, staff_id in enumerate(staff_ids):
        if staff_id in seen:
            errors.append(_field_error(index, "staff_id", f"already moved by moves[{seen[staff_id]}]", "duplicate"))
        seen.setdefault(staff_id, index)
    return errors


async def backbone_what_if(*, session: AsyncSession, partnership: PartnershipClient, actor: Principal,
                           data: BackboneWhatIfRequest) -> BackboneWhatIf:
    """The district's placement before and after the moves, nothing stored. A counted teacher
    (active, county-level-and-above, primary or junior) leaves the school where they work on
    `as_of` and is counted at `to_school_code`; anyone else changes nothing. Unknown staff and
    schools are 422 with one field error per move, in the order of the moves; a staff member of a
    district the caller may not read is 403, as their record would be."""
    actor.require_figures_scope(data.district_code)
    errors = duplicate_moves([move.staff_id for move in data.moves])
    if errors:
        raise _invalid(errors)
    places = await stats.staff_workplaces(session, as_of=data.as_of, staff_ids=[m.staff_id for m in data.moves])
    for move in data.moves:
        if move.staff_id in places:
            actor.require_read_in(places[move.staff_id].home_district_code)
    schools = await school_districts(session, partnership, {move.to_school_code for move in data.moves})
    for index, move in enumerate(data.moves):
        if move.staff_id not in places:
            errors.append(_field_error(index, "staff_id", f"staff member {move.staff_id} does not exist",
                                       "unknown_reference"))
        if move.to_school_code not in schools:
            errors.append(_field_error(index, "to_school_code", f"school {move.to_school_code} does not exist",
                                       "unknown_reference"))
    if errors:
        raise _invalid(errors)

    before = await stats.backbone_placement(session, as_of=data.as_of, district_code=data.district_code)
    after: dict[tuple[str, str], int] = {(i.school_code, i.section): i.backbone for i in before.items}
    effects: list[MovePlacement] = []
    for move in data.moves:
        place = places[move.staff_id]
        counts = place.backbone and place.section in cv.SECTIONS
        if counts and place.school_code != move.to_school_code:
            source = (place.school_code, place.section)
            if after.get(source, 0) > 0:  # counted in this district's placement
                after[source] -= 1
            if schools[move.to_school_code] == data.district_code:  # into (or within) the district
                target = (move.to_school_code, place.section)
                after[target] = after.get(target, 0) + 1
        effects.append(MovePlacement(staff_id=place.staff_id, name=place.name, section=place.section,
                                  from_school_code=place.school_code, to_school_code=move.to_school_code,
                                  counts_as_backbone=counts))
    return BackboneWhatIf(as_of=data.as_of, district_code=data.district_code, before=before.items,
                          after=_items(after, data.district_code), moves=effects)


def _items(counts: dict[tuple[str, str], int], district_code: str) -> list[PlacementItem]:
    return [PlacementItem(school_code=school, district_code=district_code, section=section, backbone=n)
            for (school, section), n in sorted(counts.items()) if n > 0]
