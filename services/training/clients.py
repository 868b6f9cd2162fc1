"""Typed client for the rotation service, the owner of staff records (design.md §2).

A tolerant reader: it declares only the fields training reads from `GET /v1/staff/{id}` and
ignores the rest, so rotation can grow its record without breaking this service.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from uuid import UUID

from pydantic import BaseModel, ConfigDict, ValidationError

from services.common.errors import UpstreamUnavailable
from services.common.upstream import Upstream


class StaffRef(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: UUID
    name: str | None = None
    home_school_code: str | None = None
    home_district_code: str | None = None  # the district of the home school
    status: str | None = None


class ActiveStaff(BaseModel):
    model_config = ConfigDict(extra="ignore")

    districts: dict[str, list[UUID]]


# At most this many staff lookups in flight at once (bulk imports), so one import cannot flood rotation.
LOOKUP_CONCURRENCY = 8


class RotationClient:
    """Wraps `app.state.upstreams["rotation"]`; raises `UpstreamUnavailable` (503) when rotation
    cannot answer, so a write that needs a staff check fails before anything is stored."""

    def __init__(self, upstream: Upstream) -> None:
        self._upstream = upstream

    async def get_staff(self, staff_id: UUID) -> StaffRef | None:
        """The staff record, or None when rotation does not know the id."""
        body = await self._upstream.get_json(f"/v1/staff/{staff_id}", allow_404=True)
        if body is None:
            return None
        try:
            return StaffRef.model_validate(body)
        except ValidationError as exc:
            raise UpstreamUnavailable("the rotation service answered a staff record this service cannot read",
                                      slug="upstream-unavailable", extra={"upstream": "rotation"}) from exc

    @staticmethod
    def _unreadable() -> UpstreamUnavailable:
        return UpstreamUnavailable("the rotation service answered a list this service cannot read",
                                   slug="upstream-unavailable", extra={"upstream": "rotation"})

    async def active_staff(self, district_code: str | None = None) -> dict[UUID, str]:
        """Every active staff member's id and home district (of one district, or all), in one call."""
        params = {"district_code": district_code} if district_code else None
        body = await self._upstream.get_json("/v1/internal/active-staff", params=params)
        try:
            listing = ActiveStaff.model_validate(body)
        except ValidationError as exc:
            raise self._unreadable() from exc
        return {staff_id: district for district, ids in listing.districts.items() for staff_id in ids}

    async def staff_districts(self, staff_ids: Iterable[UUID], district_code: str | None = None,
                              max_lookups: int | None = None) -> dict[UUID, str | None] | None:
        """The home district of each of `staff_ids` that rotation knows (unknown ids are left out).

        One call lists the active staff (of `district_code` when the ids are expected there); the
        ids it does not list (retired or transferred-out staff, or unknown ids) are asked one by
        one, at most `LOOKUP_CONCURRENCY` at a time — or, when more than `max_lookups` would be
        asked, none: the answer is then None."""
        wanted = set(staff_ids)
        active = await self.active_staff(district_code)
        known: dict[UUID, str | None] = {i: active[i] for i in wanted if i in active}
        if max_lookups is not None and len(wanted) - len(known) > max_lookups:
            return None
        gate = asyncio.Semaphore(LOOKUP_CONCURRENCY)

        async def one(staff_id: UUID) -> StaffRef | None:
            async with gate:
                return await self.get_staff(staff_id)

        rest = sorted(wanted - known.keys(), key=str)
        for staff in await asyncio.gather(*(one(i) for i in rest)):
            if staff is not None:
                known[staff.id] = staff.home_district_code
        return known
