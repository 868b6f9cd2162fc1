"""Typed client for the rotation service, the owner of staff records (design.md §2).

A tolerant reader: it declares only the fields training reads from `GET /v1/staff/{id}` and
ignores the rest, so rotation can grow its record without breaking this service.
"""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict, ValidationError

from services.common.errors import UpstreamUnavailable
from services.common.upstream import Upstream


class StaffRef(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: UUID
    staff_no: str | None = None
    name: str | None = None
    home_school_code: str | None = None
    home_district_code: str | None = None  # the district of the home school
    status: str | None = None


class StaffMatches(BaseModel):
    model_config = ConfigDict(extra="ignore")

    items: list[StaffRef]


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

    async def staff_by_numbers(self, staff_nos: list[str]) -> list[StaffRef]:
        """The staff with these numbers (工号) that rotation knows; at most 100 numbers a call
        (rotation's `GET /v1/internal/staff`)."""
        body = await self._upstream.get_json("/v1/internal/staff", params=[("staff_no", n) for n in staff_nos])
        try:
            return StaffMatches.model_validate(body).items
        except ValidationError as exc:
            raise UpstreamUnavailable("the rotation service answered a staff record this service cannot read",
                                      slug="upstream-unavailable", extra={"upstream": "rotation"}) from exc
