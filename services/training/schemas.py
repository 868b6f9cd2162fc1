"""Request and response models of the training API (glossary: design.md §3).

Hours are exact decimals end to end: validated as `Decimal` (at most two decimal places, so half
and quarter hours are fine), stored as `numeric(6,2)`, summed by PostgreSQL and written to JSON as
numbers (`1.5`, `360`; services/common/numbers.py `Hours`), the same in the internal endpoints
(docs/internal-api.md). No float arithmetic happens anywhere; only the last step prints a number.
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
    StringConstraints,
    computed_field,
    model_validator,
)

from services.common.numbers import Hours
from services.common.vocabulary import DistrictCode, Name, Strict

# Positive, at most two decimal places (half and quarter hours happen), and bounded (issue 9; the
# same bounds are CHECK constraints, migration training_0005):
# - a studio session lasts at most one day, 24 hours;
# - one external credit is at most 1000 hours: provincial systems sometimes send a whole course's
#   total as one credit, yet a stray digit (12000 for 120.00) must not clear the 360-hour bar.
SESSION_MAX_HOURS = 24
CREDIT_MAX_HOURS = 1000
SessionHours = Annotated[Decimal, Field(gt=0, le=SESSION_MAX_HOURS, max_digits=4, decimal_places=2,
                                        examples=[2.5], description="0 < hours ≤ 24, two decimals at most")]
CreditHours = Annotated[Decimal, Field(gt=0, le=CREDIT_MAX_HOURS, max_digits=6, decimal_places=2,
                                       examples=[24], description="0 < hours ≤ 1000, two decimals at most")]

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



def default_cycle_end(start: date) -> date:
    """Inclusive end of a 3-year cycle starting on `start` (2024-09-01 -> 2027-08-31)."""
    try:
        after = start.replace(year=start.year + DEFAULT_CYCLE_YEARS)
    except ValueError:  # 29 February
        after = start.replace(year=start.year + DEFAULT_CYCLE_YEARS, month=3, day=1)
    return date.fromordinal(after.toordinal() - 1)


# Studios ---------------------------------------------------------------------------------------

class StudioCreate(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"name": "李华名师工作室", "kind": "famous_teacher", "host_staff_id": "4c3b2a1d-0e9f-4e8d-b7c6-a5b4c3d2e1f0",
         "subject": "语文", "district_code": "110105", "start_date": "2024-09-01", "end_date": "2027-08-31",
         "capacity": 10},
    ]})

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
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [
        {"id": "2d4f6a8c-1b3e-4d5f-9a7c-8e6b4d2f0a1c", "name": "李华名师工作室", "kind": "famous_teacher",
         "host_staff_id": "4c3b2a1d-0e9f-4e8d-b7c6-a5b4c3d2e1f0", "subject": "语文", "district_code": "110105",
         "start_date": "2024-09-01", "end_date": "2027-08-31", "capacity": 10, "status": "active", "closed_at": None,
         "created_at": "2024-08-30T14:00:00+08:00", "updated_at": "2024-08-30T14:00:00+08:00", "version": 1},
    ]})
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
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"staff_id": "3f2b8c1e-6d4a-4c2e-9b7f-1a2b3c4d5e6f", "joined_on": "2024-09-15"},
    ]})

    staff_id: UUID
    joined_on: date


class MembershipLeave(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"left_on": "2025-07-15"},
    ]})

    left_on: date


class MembershipRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [
        {"id": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "studio_id": "2d4f6a8c-1b3e-4d5f-9a7c-8e6b4d2f0a1c",
         "staff_id": "3f2b8c1e-6d4a-4c2e-9b7f-1a2b3c4d5e6f", "joined_on": "2024-09-15", "left_on": None,
         "current": True},
    ]})
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
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"kind": "collective_research", "title": "整本书阅读教学研讨", "starts_at": "2024-10-18T14:00:00+08:00",
         "hours": 2.5},
    ]})

    kind: SessionKind
    title: Name = Field(examples=["整本书阅读教学研讨"])
    starts_at: AwareDatetime = Field(description="With a UTC offset; dated in China Standard Time")
    hours: SessionHours


class SessionUpdate(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"title": "整本书阅读教学研讨（第二次）", "starts_at": "2024-10-25T14:00:00+08:00", "hours": 3},
    ]})

    title: Name | None = None
    starts_at: AwareDatetime | None = None
    hours: SessionHours | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> SessionUpdate:
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class SessionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [
        {"id": "6c5b4a3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d", "studio_id": "2d4f6a8c-1b3e-4d5f-9a7c-8e6b4d2f0a1c",
         "kind": "collective_research", "title": "整本书阅读教学研讨", "starts_at": "2024-10-18T14:00:00+08:00",
         "session_date": "2024-10-18", "hours": 2.5, "created_at": "2024-10-08T09:00:00+08:00",
         "updated_at": "2024-10-08T09:00:00+08:00", "version": 1},
    ]})
    id: UUID
    studio_id: UUID
    kind: SessionKind
    title: str
    starts_at: datetime
    session_date: date = Field(description="Calendar day of starts_at in China Standard Time")
    hours: Hours
    created_at: datetime
    updated_at: datetime
    version: int


class AttendanceUpdate(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"staff_ids": ["3f2b8c1e-6d4a-4c2e-9b7f-1a2b3c4d5e6f", "8d9e0f1a-2b3c-4d5e-8f6a-7b8c9d0e1f2a"]},
    ]})

    staff_ids: list[UUID] = Field(max_length=1000, description="Members of the studio on the session's date")


class AttendanceRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"session_id": "6c5b4a3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d", "session_date": "2024-10-18", "hours": 2.5,
         "staff_ids": ["3f2b8c1e-6d4a-4c2e-9b7f-1a2b3c4d5e6f", "8d9e0f1a-2b3c-4d5e-8f6a-7b8c9d0e1f2a"], "attendees": 2,
         "credited_hours": 5},
    ]})

    session_id: UUID
    session_date: date
    hours: Hours = Field(description="The session's hours, credited once to each attendee")
    staff_ids: list[UUID]
    attendees: int
    credited_hours: Hours = Field(description="hours × attendees")


# The training-hours ledger ---------------------------------------------------------------------

class TrainingHoursCreate(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"staff_id": "3f2b8c1e-6d4a-4c2e-9b7f-1a2b3c4d5e6f", "hours": 24, "earned_on": "2024-11-08",
         "source": "municipal_platform", "reference": "2024-PX-000317"},
    ]})

    staff_id: UUID
    hours: CreditHours
    earned_on: date
    source: Source = Field(examples=["municipal_platform"])
    reference: Reference = Field(examples=["2024-PX-000317"])


class TrainingHoursRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [
        {"id": "8e7d6c5b-4a39-4b28-8c17-0f6e5d4c3b2a", "staff_id": "3f2b8c1e-6d4a-4c2e-9b7f-1a2b3c4d5e6f",
         "hours": 24, "earned_on": "2024-11-08", "source": "municipal_platform", "reference": "2024-PX-000317",
         "session_id": None, "created_at": "2024-11-10T08:15:00+08:00"},
    ]})
    id: UUID
    staff_id: UUID
    hours: Hours
    earned_on: date
    source: str
    reference: str
    session_id: UUID | None = None
    created_at: datetime


class TrainingSummary(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"staff_id": "3f2b8c1e-6d4a-4c2e-9b7f-1a2b3c4d5e6f", "as_of": "2025-03-01", "window_years": 5,
         "window_start": "2020-03-01", "total_hours": 372.5,
         "by_source": {"municipal_platform": 348, "studio_session": 24.5}, "threshold": 360, "met": True},
    ]})

    staff_id: UUID
    as_of: date
    window_years: int
    window_start: date = Field(description="Exclusive: credits with window_start < earned_on ≤ as_of count")
    total_hours: Hours
    by_source: dict[str, Hours]
    threshold: Hours
    met: bool


# Internal figures (docs/internal-api.md → Training) ---------------------------------------------

class DistrictCompletion(BaseModel):
    district_code: str
    staff: int = Field(description="Active staff whose home school is in the district")
    completed: int = Field(description="...of whom credited hours in the window reach the threshold")


class TrainingCompletion(BaseModel):
    """Completion of the 360-hour bar per home district, from the staff directory and the ledger."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "as_of": "2025-03-01", "threshold": 360, "window_years": 5, "window_start": "2020-03-01",
        "districts": [{"district_code": "110105", "staff": 7, "completed": 3}]}]})

    as_of: date
    threshold: Hours
    window_years: int
    window_start: date = Field(description="Exclusive: credits count when window_start < earned_on ≤ as_of")
    districts: list[DistrictCompletion]


class DistrictStudioStats(BaseModel):
    district_code: str
    studios: int
    sessions: int
    hours: Hours


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
