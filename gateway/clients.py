"""Typed clients of the three services for the composed views (docs/internal-api.md).

One small class per upstream over the long-lived `app.state.upstreams[name]` (timeouts, breaker
and read retries live there). Each forwards the caller's bearer token, so the service re-checks
the caller's scope, and reads answers through tolerant models that declare only the fields the
gateway uses. A transport failure, a 5xx, an unexpected status or an unreadable body raises
`UpstreamUnavailable` naming the service; 401/403 are the caller's problem and pass through.
No import from the services' packages: they meet the gateway over HTTP only.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Any, Self, TypeVar
from uuid import UUID

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.common.context import request_id_var
from services.common.errors import UpstreamUnavailable
from services.common.messages import current_language
from services.common.upstream import Upstream, segment, unavailable

M = TypeVar("M", bound=BaseModel)

# Lists are followed page by page up to this many items (a profile's rotations, a school's pairings).
MAX_LIST_ITEMS = 5_000
PAGE_SIZE = 500
# The service re-checks the forwarded token: its 401/403 are the caller's answer, not an outage.
REFUSALS = (401, 403)


class Tolerant(BaseModel):
    """A tolerant reader: unknown fields are ignored, so services may add fields freely."""

    model_config = ConfigDict(extra="ignore")


# Partnership ---------------------------------------------------------------------------------

class DistrictBrief(Tolerant):
    code: str
    name: str


class SchoolBrief(Tolerant):
    code: str
    name: str
    district_code: str
    stage: str
    locality: str
    primary_enrollment: int = 0
    junior_enrollment: int = 0
    senior_enrollment: int = 0


class KindTotals(Tolerant):
    activities: int = 0
    teacher_participations: int = 0
    student_participations: int = 0


class PartnershipRow(Tolerant):
    district_code: str
    name: str
    township_rural_schools: int
    covered_schools: int
    active_pairings: int
    activities: int
    teacher_participations: int
    student_participations: int
    by_kind: dict[str, KindTotals] = Field(default_factory=dict)


class PairingBrief(Tolerant):
    id: UUID
    lead_school_code: str
    partner_school_code: str
    program: str
    start_date: date
    end_date: date
    status: str


# Rotation ------------------------------------------------------------------------------------

class StaffRecord(Tolerant):
    id: UUID
    staff_no: str
    name: str
    home_school_code: str
    home_district_code: str | None = None
    role: str
    section: str
    subject: str | None = None
    backbone_level: str
    in_post_since: date | None = None
    retirement_date: date | None = None
    status: str


class RotationRecord(Tolerant):
    id: UUID
    staff_id: UUID
    from_school_code: str
    from_district_code: str | None = None
    to_school_code: str
    to_district_code: str | None = None
    mode: str
    start_date: date
    end_date: date
    status: str


class RotationRow(Tolerant):
    district_code: str
    eligible: int = 0
    rotated: int = 0
    backbone_rotated: int = 0
    # Rotation answers every district's targets, its policy's or the defaults (its rule, not ours).
    target_rate: Decimal
    target_backbone_share: Decimal


class RotationDefaults(Tolerant):
    target_rate: Decimal
    target_backbone_share: Decimal


class RotationStats(Tolerant):
    academic_year: int
    defaults: RotationDefaults
    districts: list[RotationRow]

    def row(self, district_code: str) -> RotationRow:
        """The district's row; a district absent from the answer has zeros and the defaults."""
        for row in self.districts:
            if row.district_code == district_code:
                return row
        return RotationRow(district_code=district_code, target_rate=self.defaults.target_rate,
                           target_backbone_share=self.defaults.target_backbone_share)


class PlacementItem(Tolerant):
    school_code: str
    district_code: str | None = None
    section: str
    backbone: int


class Placement(Tolerant):
    items: list[PlacementItem]

    def counts(self) -> dict[tuple[str, str], int]:
        result: dict[tuple[str, str], int] = {}
        for item in self.items:
            key = (item.school_code, item.section)
            result[key] = result.get(key, 0) + item.backbone
        return result


class SectionTotals(Tolerant):
    school_count: int
    enrollment: int
    backbone: int
    schools_below_one: int
    backbone_squared_per_enrollment: Fraction

    @field_validator("backbone_squared_per_enrollment", mode="before")
    @classmethod
    def _fraction(cls, value: Any) -> Fraction:
        return Fraction(str(value))


class DistrictBalanceTotals(Tolerant):
    district_code: str
    sections: dict[str, SectionTotals] = Field(default_factory=dict)


class BalanceTotals(Tolerant):
    """Rotation's §4.6 sums per district and section; a district it does not list has no
    enrolled schools."""

    districts: list[DistrictBalanceTotals]

    def of(self, district_code: str) -> dict[str, SectionTotals]:
        for row in self.districts:
            if row.district_code == district_code:
                return row.sections
        return {}
class MoveAnswer(Tolerant):
    staff_id: UUID
    name: str
    section: str
    from_school_code: str
    to_school_code: str
    counts_as_backbone: bool


class WhatIf(Tolerant):
    """Rotation's §4.6 what-if: the district's placement before and after the moves."""

    before: list[PlacementItem]
    after: list[PlacementItem]
    moves: list[MoveAnswer]

    def placements(self) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
        return Placement(items=self.before).counts(), Placement(items=self.after).counts()


class Workplace(Tolerant):
    school_code: str


class SchoolStaff(Tolerant):
    school_code: str
    staff: int
    backbone_by_section: dict[str, int] = Field(default_factory=dict)


# Training ------------------------------------------------------------------------------------

class CompletionRow(Tolerant):
    district_code: str
    staff: int = 0
    completed: int = 0


class Completion(Tolerant):
    """§4.5 per home district, counted by training from its staff directory and ledger."""

    districts: list[CompletionRow]

    def row(self, district_code: str) -> CompletionRow:
        """The district's row; a district absent from the answer has no active staff."""
        for row in self.districts:
            if row.district_code == district_code:
                return row
        return CompletionRow(district_code=district_code)


class StudioRow(Tolerant):
    district_code: str
    studios: int = 0
    sessions: int = 0
    hours: Decimal = Decimal(0)


class StudioStats(Tolerant):
    districts: list[StudioRow]

    def row(self, district_code: str) -> StudioRow:
        for row in self.districts:
            if row.district_code == district_code:
                return row
        return StudioRow(district_code=district_code)


class Membership(Tolerant):
    studio_id: UUID
    studio_name: str
    kind: str
    district_code: str | None = None
    studio_status: str | None = None
    joined_on: date
    left_on: date | None = None
    role: str


class Memberships(Tolerant):
    items: list[Membership]


class TrainingSummary(Tolerant):
    as_of: date
    window_years: int = 5
    window_start: date | None = None
    total_hours: Decimal
    by_source: dict[str, Decimal] = Field(default_factory=dict)
    threshold: Decimal = Decimal(360)
    met: bool


# The clients ---------------------------------------------------------------------------------

class ServiceClient:
    """Calls one upstream on behalf of the current caller."""

    service: str = ""

    def __init__(self, upstream: Upstream, authorization: str | None) -> None:
        self._upstream = upstream
        self._headers = {"Authorization": authorization} if authorization else {}
        request_id = request_id_var.get()
        if request_id:
            self._headers["X-Request-ID"] = request_id
        # A refusal the service words (401/403 detail) is passed on: in the caller's language.
        self._headers["Accept-Language"] = current_language()

    @classmethod
    def of(cls, request: Request) -> Self:
        return cls(request.app.state.upstreams[cls.service], request.headers.get("authorization"))

    def _unavailable(self, why: str) -> UpstreamUnavailable:
        return unavailable(self.service, why)

    async def _request(self, method: str, path: str, *, params: Any = None, json: Any = None,
                       allow_404: bool = False, refusals: Collection[int] = REFUSALS) -> Any:
        """`Upstream.call_json` with the caller's token: the service's refusal is the caller's."""
        return await self._upstream.call_json(method, path, params=params, json=json, headers=self._headers,
                                              allow_404=allow_404, refusals=refusals)

    def _read(self, model: type[M], body: Any) -> M:
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            raise self._unavailable(f"answered an unexpected body: {exc.error_count()} errors") from None

    async def _get(self, model: type[M], path: str, *, params: Any = None) -> M:
        return self._read(model, await self._request("GET", path, params=params))

    async def _get_or_none(self, model: type[M], path: str, *, params: Any = None) -> M | None:
        body = await self._request("GET", path, params=params, allow_404=True)
        return None if body is None else self._read(model, body)

    async def audit_events(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """The service's audit events, newest first, as it sent them (docs/internal-api.md)."""
        body = await self._request("GET", "/v1/internal/audit-events", params=params)
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            raise self._unavailable("answered a list without items")
        return body["items"]

    async def _list(self, model: type[M], path: str, *, params: dict[str, Any]) -> list[M]:
        """Every item of a paginated list, following `next_cursor`."""
        items: list[M] = []
        cursor: str | None = None
        while True:
            query = {**params, "limit": PAGE_SIZE, **({"cursor": cursor} if cursor else {})}
            body = await self._request("GET", path, params=query)
            if not isinstance(body, dict) or not isinstance(body.get("items"), list):
                raise self._unavailable("answered a list without items")
            items.extend(self._read(model, item) for item in body["items"])
            cursor = body.get("next_cursor")
            if not cursor or len(items) >= MAX_LIST_ITEMS:
                return items


def _params(**values: Any) -> dict[str, Any]:
    return {key: (value.isoformat() if isinstance(value, date) else value)
            for key, value in values.items() if value is not None}


class PartnershipClient(ServiceClient):
    service = "partnership"

    async def district(self, code: str) -> DistrictBrief | None:
        return await self._get_or_none(DistrictBrief, f"/v1/districts/{segment(code)}")

    async def school(self, code: str) -> SchoolBrief | None:
        return await self._get_or_none(SchoolBrief, f"/v1/schools/{segment(code)}")

    async def schools(self, district_code: str | None = None) -> list[SchoolBrief]:
        body = await self._request("GET", "/v1/internal/schools", params=_params(district_code=district_code))
        return [self._read(SchoolBrief, item) for item in (body or {}).get("items", [])]

    async def stats(self, *, as_of: date, period_from: date, period_to: date,
                    district_code: str | None = None) -> list[PartnershipRow]:
        params = _params(as_of=as_of, district_code=district_code)
        params.update({"from": period_from.isoformat(), "to": period_to.isoformat()})
        body = await self._request("GET", "/v1/internal/partnership-stats", params=params)
        return [self._read(PartnershipRow, row) for row in (body or {}).get("districts", [])]

    async def pairings(self, *, school_code: str) -> list[PairingBrief]:
        return await self._list(PairingBrief, "/v1/pairings", params={"school_code": school_code})


class RotationClient(ServiceClient):
    service = "rotation"

    async def staff(self, staff_id: UUID) -> StaffRecord | None:
        return await self._get_or_none(StaffRecord, f"/v1/staff/{staff_id}")

    async def rotations(self, *, staff_id: UUID | None = None, school_code: str | None = None,
                        status: str | None = None) -> list[RotationRecord]:
        return await self._list(RotationRecord, "/v1/rotations",
                                params=_params(staff_id=str(staff_id) if staff_id else None,
                                               school_code=school_code, status=status))

    async def stats(self, *, academic_year: int, district_code: str | None = None) -> RotationStats:
        return await self._get(RotationStats, "/v1/internal/rotation-stats",
                               params=_params(academic_year=academic_year, district_code=district_code))

    async def placement(self, *, as_of: date, district_code: str | None = None) -> Placement:
        return await self._get(Placement, "/v1/internal/backbone-placement",
                               params=_params(as_of=as_of, district_code=district_code))

    async def balance_totals(self, *, as_of: date, district_code: str | None = None) -> BalanceTotals:
        """§4.6 summed where the schools' enrollments and the placements live, per district."""
        return await self._get(BalanceTotals, "/v1/internal/balance-totals",
                               params=_params(as_of=as_of, district_code=district_code))
    async def what_if(self, *, district_code: str, as_of: date, moves: list[dict[str, Any]]) -> WhatIf:
        """Rotation applies §4.6 to the moves; its 422 (unknown staff or schools, per move) is the
        caller's, as are its 401/403."""
        body = await self._request("POST", "/v1/internal/backbone-what-if", refusals=(*REFUSALS, 422),
                                   json={"as_of": as_of.isoformat(), "district_code": district_code,
                                         "moves": moves})
        return self._read(WhatIf, body)

    async def workplace(self, staff_id: UUID, *, as_of: date) -> Workplace | None:
        return await self._get_or_none(Workplace, f"/v1/internal/staff/{staff_id}/workplace",
                                       params=_params(as_of=as_of))

    async def school_staff(self, *, school_code: str, as_of: date) -> SchoolStaff:
        return await self._get(SchoolStaff, "/v1/internal/school-staff",
                               params=_params(school_code=school_code, as_of=as_of))


class TrainingClient(ServiceClient):
    service = "training"

    async def completion(self, *, as_of: date, district_code: str | None = None) -> Completion:
        """Active staff and how many completed (§4.5), per home district: counted where the data
        lives, so no list of staff ids crosses the wire."""
        return await self._get(Completion, "/v1/internal/training-completion",
                               params=_params(as_of=as_of, district_code=district_code))

    async def studio_stats(self, *, academic_year: int, district_code: str | None = None) -> StudioStats:
        return await self._get(StudioStats, "/v1/internal/studio-stats",
                               params=_params(academic_year=academic_year, district_code=district_code))

    async def memberships(self, staff_id: UUID) -> Memberships:
        return await self._get(Memberships, f"/v1/internal/staff/{staff_id}/memberships")

    async def summary(self, *, staff_id: UUID, as_of: date) -> TrainingSummary:
        return await self._get(TrainingSummary, "/v1/training-hours/summary",
                               params=_params(staff_id=str(staff_id), as_of=as_of))
