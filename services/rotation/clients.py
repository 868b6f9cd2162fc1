"""The typed client of the partnership service: the school registry is checked over HTTP.

A tolerant reader: it declares only the fields rotation uses and ignores the rest, so partnership
can add fields freely. Every failure other than "no such school" is `UpstreamUnavailable` (503),
which the caller raises before anything is written.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError

from services.common.errors import UpstreamUnavailable
from services.common.upstream import Upstream, segment


class SchoolRef(BaseModel):
    model_config = ConfigDict(extra="ignore")
    code: str
    name: str
    district_code: str


class PartnershipClient:
    def __init__(self, upstream: Upstream) -> None:
        self._upstream = upstream

    async def school(self, code: str) -> SchoolRef | None:
        """The school with this code, or None when the registry does not know it."""
        body = await self._upstream.get_json(f"/v1/schools/{segment(code)}", allow_404=True)
        if body is None:
            return None
        try:
            return SchoolRef.model_validate(body)
        except ValidationError:
            raise UpstreamUnavailable("the partnership service answered an unexpected school body",
                                      slug="upstream-unavailable", extra={"upstream": "partnership"}) from None

    async def district_exists(self, code: str) -> bool:
        body = await self._upstream.get_json(f"/v1/districts/{segment(code)}", allow_404=True)
        return body is not None

