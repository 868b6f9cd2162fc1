"""Request and response models of the training API (glossary: design.md §3).

Hours are exact decimals end to end: validated as `Decimal` (at most two decimal places, so half
and quarter hours are fine), stored as `numeric(6,2)`, summed by PostgreSQL and written to JSON as
strings in plain notation without trailing zeros ("1.5", "360") — the same form the internal
endpoints use (docs/internal-api.md), so no float rounding happens anywhere.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    computed_field,
    model_validator,
)


def format_hours(value: Decimal) -> str:
    """Plain decimal notation without trailing zeros: Decimal('360.00') -> '360'."""
    return format(value.normalize(), "f")


HoursOut = Annotated[Decimal, PlainSerializer(format_hours, return_type=str, when_used="json")]
# A credit or a session: positive, at most 9999.99, at most two decimal places (half hours happen).
HoursIn = Annotated[Decimal, Field(gt=0, max_digits=6, decimal_places=2, examples=["2.5"])]

DistrictCode = Annotated[str, StringConstraints(pattern=r"^[1-8][0-9]{5}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Source = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Reference = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

# The usual studio cycle (design.md §1: "a 3-year cycle"); used when `end_date` is left out.
DEFAULT_CYCLE_YEARS = 3


class StudioKind(StrEnum):
    famous_teacher = "famous_teacher"
    famous_principal = "famous_principal"
    famous_head_teacher = "famous_head_teacher"
    special_grade_station = "special_grade_station"


class StudioStatus(StrEnum):
    active = "active"
    closed = "closed"


class SessionKind(StrEnum):
    online_seminar = "online_seminar"
    air_classroom = "air_classroom"
    onsite_guidance = "onsite_guidance"
    shadow_training = "shadow_training"
    collective_research = "collective_research"
    lecture = "lecture"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def default_cycle_end(start: date) -> date:
    """Inclusive end of a 3-year cycle starting on `start` (2024-09-01 -> 2027-08-31)."""
    try:
        after = start.replace(year=start.year + DEFAULT_CYCLE_YEARS)
    except ValueError:  # 29 February
        after = start.replace(year=start.year + DEFAULT_CYCLE_YEARS, month=3, day=1)
    return date.fromordinal(after.toordinal() - 1)


# Studios ---------------------------------------------------------------------------------------

class StudioCreate(Strict):
    name: Name = Field(examples=["李华名师工作室"])
    kind: StudioKind
    host_staff_id: UUID
    subject: Text = Field(examples=["语文"])
    district_code: DistrictCode = Field(examples=["110229"], description="District where the studio operates")
    start_date: date
    end_date: date | None = Field(default=None, description="Inclusive; defaults to a 3-year cycle")
    capacity: int = Field(default=10, ge=1, le=1000)

    @model_validator(mode="after")
    def _cycle(self) -> StudioCreate:
        if self.end_date is None:
            self.end_date = default_cycle_end(self.start_date)
        if self.end_date < self.start_date:
            raise ValueError("end_date must not be before start_date")
        return self


class StudioRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: UUID
    name: str
    kind: StudioKind
    host_staff_id: UUID
    subject: str
    district_code: str
    start_date: date
    end_date: date
    capacity: int
    status: StudioStatus
    closed_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    version: int


# Memberships -----------------------------------------------------------------------------------

class MembershipCreate(Strict):
    staff_id: UUID
    joined_on: date


class MembershipLeave(Strict):
    left_on: date


class MembershipRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: UUID
    studio_id: UUID
    staff_id: UUID
    joined_on: date
    left_on: date | None = None

    @computed_field(description="Not left yet: counts against the studio's capacity")
    @property
    def current(self) -> bool:
        return self.left_on is None


# Sessions and attendance -----------------------------------------------------------------------

class SessionCreate(Strict):
    kind: SessionKind
    title: Name = Field(examples=["整本书阅读教学研讨"])
    starts_at: AwareDatetime = Field(description="With a UTC offset; dated in China Standard Time")
    hours: HoursIn


class SessionUpdate(Strict):
    title: Name | None = None
    starts_at: AwareDatetime | None = None
    hours: HoursIn | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> SessionUpdate:
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class SessionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: UUID
    studio_id: UUID
    kind: SessionKind
    title: str
    starts_at: datetime
    session_date: date = Field(description="Calendar day of starts_at in China Standard Time")
    hours: HoursOut
    created_at: datetime
    updated_at: datetime
    version: int


class AttendanceUpdate(Strict):
    staff_ids: list[UUID] = Field(max_length=1000, description="Members of the studio on the session's date")


class AttendanceRead(BaseModel):
    session_id: UUID
    session_date: date
    hours: HoursOut = Field(description="The session's hours, credited once to each attendee")
    staff_ids: list[UUID]
    attendees: int
    credited_hours: HoursOut = Field(description="hours × attendees")


# The training-hours ledger ---------------------------------------------------------------------

class TrainingHoursCreate(Strict):
    staff_id: UUID
    hours: HoursIn
    earned_on: date
    source: Source = Field(examples=["municipal_platform"])
    reference: Reference = Field(examples=["2024-PX-000317"])


class TrainingHoursRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: UUID
    staff_id: UUID
    hours: HoursOut
    earned_on: date
    source: str
    reference: str
    session_id: UUID | None = None
    created_at: datetime


class TrainingSummary(BaseModel):
    staff_id: UUID
    as_of: date
    window_years: int
    window_start: date = Field(description="Exclusive: credits with window_start < earned_on ≤ as_of count")
    total_hours: HoursOut
    by_source: dict[str, HoursOut]
    threshold: HoursOut
    met: bool


# Internal figures (docs/internal-api.md → Training) ---------------------------------------------

class CompletedStaff(BaseModel):
    as_of: date
    threshold: HoursOut
    window_years: int
    staff_ids: list[UUID]


class TrainingCompletionQuery(Strict):
    as_of: date
    staff_ids: list[UUID] = Field(max_length=200_000)


class TrainingCompletion(BaseModel):
    as_of: date
    threshold: HoursOut
    window_years: int
    staff: int
    completed: int


class DistrictStudioStats(BaseModel):
    district_code: str
    studios: int
    sessions: int
    hours: HoursOut


class StudioStats(BaseModel):
    academic_year: int
    period_from: date
    period_to: date
    districts: list[DistrictStudioStats]


class StaffMembership(BaseModel):
    studio_id: UUID
    studio_name: str
    kind: StudioKind
    district_code: str
    studio_status: StudioStatus
    joined_on: date
    left_on: date | None = None
    role: Literal["host", "member"]


class StaffMemberships(BaseModel):
    items: list[StaffMembership]
