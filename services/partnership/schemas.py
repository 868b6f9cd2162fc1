"""Request and response models of the partnership API (glossary: design.md §3)."""

from __future__ import annotations

import datetime as dt
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from services.common.vocabulary import DistrictCode, Name, SchoolCode, Strict

Count = Annotated[int, Field(ge=0, le=10_000_000)]


class Stage(StrEnum):
    primary = "primary"
    junior = "junior"
    nine_year = "nine_year"
    senior = "senior"
    complete_secondary = "complete_secondary"
    twelve_year = "twelve_year"


class Locality(StrEnum):
    urban = "urban"
    township = "township"
    rural = "rural"


class PairingStatus(StrEnum):
    proposed = "proposed"
    active = "active"
    suspended = "suspended"
    ended = "ended"


class ActivityKind(StrEnum):
    teacher_training = "teacher_training"
    lesson_delivery = "lesson_delivery"
    joint_research = "joint_research"
    student_exchange = "student_exchange"
    cadre_shadowing = "cadre_shadowing"
    resource_sharing = "resource_sharing"
    other = "other"



class DistrictCreate(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"code": "110105", "name": "朝阳区"},
    ]})

    code: DistrictCode = Field(examples=["110105"])
    name: Name = Field(examples=["朝阳区"])


class DistrictUpdate(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"name": "朝阳区"},
    ]})

    name: Name


class DistrictRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [
        {"code": "110105", "name": "朝阳区", "created_at": "2024-08-20T09:00:00+08:00",
         "updated_at": "2024-08-20T09:00:00+08:00"},
    ]})
    code: str
    name: str
    created_at: datetime | None = None
    updated_at: datetime | None = None


class SchoolCreate(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"code": "11010501", "name": "北京市朝阳区实验小学", "district_code": "110105", "stage": "primary",
         "locality": "urban", "primary_enrollment": 1260, "junior_enrollment": 0, "senior_enrollment": 0},
    ]})

    code: SchoolCode = Field(examples=["11010501"])
    name: Name = Field(examples=["北京市朝阳区实验小学"])
    district_code: DistrictCode
    stage: Stage
    locality: Locality
    primary_enrollment: Count = 0
    junior_enrollment: Count = 0
    senior_enrollment: Count = 0


class SchoolUpdate(Strict):
    """Corrections to a school; the code is its identity and never changes."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"name": "北京市朝阳区实验小学", "primary_enrollment": 1285},
    ]})

    name: Name | None = None
    district_code: DistrictCode | None = None
    stage: Stage | None = None
    locality: Locality | None = None
    primary_enrollment: Count | None = None
    junior_enrollment: Count | None = None
    senior_enrollment: Count | None = None


class SchoolRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [
        {"code": "11010501", "name": "北京市朝阳区实验小学", "district_code": "110105", "stage": "primary",
         "locality": "urban", "primary_enrollment": 1260, "junior_enrollment": 0, "senior_enrollment": 0,
         "created_at": "2024-08-20T09:05:00+08:00", "updated_at": "2024-09-02T10:30:00+08:00"},
    ]})
    code: str
    name: str
    district_code: str
    stage: Stage
    locality: Locality
    primary_enrollment: int
    junior_enrollment: int
    senior_enrollment: int
    created_at: datetime | None = None
    updated_at: datetime | None = None


class PairingCreate(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"lead_school_code": "11010501", "partner_school_code": "11010523", "program": "城乡学校手拉手结对帮扶",
         "start_date": "2024-09-01", "end_date": "2027-08-31",
         "goals": "共建数学、语文教研组，每学期送课到校不少于4次，骨干教师结对带徒"},
    ]})

    lead_school_code: SchoolCode = Field(description="The supporting school (usually urban)")
    partner_school_code: SchoolCode = Field(description="The supported township or rural school")
    program: Name = Field(examples=["城乡学校手拉手结对帮扶"])
    start_date: date
    end_date: date
    goals: Annotated[str, StringConstraints(max_length=4000)] | None = None

    @model_validator(mode="after")
    def _dates_in_order(self) -> PairingCreate:
        if self.end_date < self.start_date:
            raise ValueError("end_date must not be before start_date")
        return self


class PairingRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [
        {"id": "7a1d2e3f-4b5c-4d6e-8f70-819a2b3c4d5e", "lead_school_code": "11010501",
         "partner_school_code": "11010523", "program": "城乡学校手拉手结对帮扶", "start_date": "2024-09-01",
         "end_date": "2027-08-31", "goals": "共建数学、语文教研组，每学期送课到校不少于4次，骨干教师结对带徒",
         "status": "active", "created_at": "2024-08-26T14:00:00+08:00", "updated_at": "2024-09-01T08:30:00+08:00"},
    ]})
    id: UUID
    lead_school_code: str
    partner_school_code: str
    program: str
    start_date: date
    end_date: date
    goals: str | None
    status: PairingStatus
    created_at: datetime | None = None
    updated_at: datetime | None = None


class ActivityCreate(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"kind": "lesson_delivery", "date": "2024-10-16", "title": "送课到校：四年级数学",
         "teacher_participants": 6, "student_participants": 45},
    ]})

    kind: ActivityKind
    date: dt.date
    title: Name = Field(examples=["送课到校：四年级数学"])
    teacher_participants: Count = 0
    student_participants: Count = 0


class ActivityRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [
        {"id": "c4e5f6a7-b8c9-4dae-8f01-2345a6b7c8d9", "pairing_id": "7a1d2e3f-4b5c-4d6e-8f70-819a2b3c4d5e",
         "kind": "lesson_delivery", "date": "2024-10-16", "title": "送课到校：四年级数学", "teacher_participants": 6,
         "student_participants": 45, "created_at": "2024-10-16T17:20:00+08:00"},
    ]})
    id: UUID
    pairing_id: UUID
    kind: ActivityKind
    date: dt.date
    title: str
    teacher_participants: int
    student_participants: int
    created_at: datetime | None = None


# Internal figures for the gateway (docs/internal-api.md).

class KindTotals(BaseModel):
    activities: int = 0
    teacher_participations: int = 0
    student_participations: int = 0


class DistrictPartnershipStats(BaseModel):
    district_code: str
    name: str
    township_rural_schools: int
    covered_schools: int
    active_pairings: int
    activities: int
    teacher_participations: int
    student_participations: int
    by_kind: dict[str, KindTotals]


class PartnershipStats(BaseModel):
    as_of: date
    period_from: date = Field(serialization_alias="from")
    period_to: date = Field(serialization_alias="to")
    districts: list[DistrictPartnershipStats]


class SchoolBrief(BaseModel):
    code: str
    name: str
    district_code: str
    stage: str
    locality: str
    primary_enrollment: int
    junior_enrollment: int
    senior_enrollment: int


class SchoolBriefList(BaseModel):
    items: list[SchoolBrief]
