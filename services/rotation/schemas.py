"""Request and response models of the rotation API (glossary: design.md §3; contract: api.md → Rotation)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from services.common.indicators import DEFAULT_TARGET_BACKBONE_SHARE, DEFAULT_TARGET_RATE
from services.common.vocabulary import CODE_MAX_LENGTH, DistrictCode, Name, SchoolCode, Strict

StaffNo = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Subject = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Comment = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
Years = Annotated[int, Field(ge=0, le=60)]
# Rates within 0..1, at most four decimals; JSON numbers and decimal strings are both accepted and
# the answer is always a decimal string, so no float rounding creeps into the figures.
Rate = Annotated[Decimal, Field(ge=0, le=1, max_digits=5, decimal_places=4)]
AcademicYear = Annotated[int, Field(ge=1900, le=2999, description="Start year: 2024 means 1 Sept 2024 – 31 Aug 2025")]


class StaffRole(StrEnum):
    teacher = "teacher"
    principal = "principal"
    vice_principal = "vice_principal"
    middle_manager = "middle_manager"


class Section(StrEnum):
    primary = "primary"
    junior = "junior"
    senior = "senior"


class BackboneLevel(StrEnum):
    none = "none"
    school = "school"
    district = "district"
    municipal = "municipal"
    special_grade = "special_grade"


class StaffStatus(StrEnum):
    active = "active"
    retired = "retired"
    left = "left"


class RotationMode(StrEnum):
    full_time = "full_time"
    part_time = "part_time"
    subject_guidance = "subject_guidance"


class RotationStatus(StrEnum):
    planned = "planned"
    approved = "approved"
    active = "active"
    completed = "completed"
    withdrawn = "withdrawn"


class PlanStatus(StrEnum):
    draft = "draft"
    approved = "approved"



# Staff ---------------------------------------------------------------------------------------

class StaffCreate(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"staff_no": "T20180001", "name": "张伟", "home_school_code": "11010501", "role": "teacher",
         "section": "primary", "subject": "数学", "backbone_level": "district", "in_post_since": "2015-09-01",
         "retirement_date": None},
    ]})

    staff_no: StaffNo = Field(examples=["T20180001"], description="Number in the source system; unique")
    name: Name = Field(examples=["张伟"])
    home_school_code: SchoolCode = Field(examples=["11010501"])
    role: StaffRole
    section: Section
    subject: Subject | None = Field(default=None, examples=["数学"])
    backbone_level: BackboneLevel = BackboneLevel.none
    in_post_since: date = Field(description="At this school (teachers) or in this post (cadres) since")
    retirement_date: date | None = None


class StaffUpdate(Strict):
    """Corrections. A changed home school is checked against the registry and refreshes the
    stored district; `retirement_date` and `subject` may be cleared with an explicit null."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"backbone_level": "municipal", "subject": "数学"},
    ]})

    name: Name | None = None
    home_school_code: SchoolCode | None = None
    role: StaffRole | None = None
    section: Section | None = None
    subject: Subject | None = None
    backbone_level: BackboneLevel | None = None
    in_post_since: date | None = None
    retirement_date: date | None = None
    status: StaffStatus | None = None

    @model_validator(mode="after")
    def _no_null_for_required(self) -> StaffUpdate:
        nullable = {"subject", "retirement_date"}
        for name in self.model_fields_set - nullable:
            if getattr(self, name) is None:
                raise ValueError(f"{name} may not be null")
        return self


class StaffRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [
        {"id": "3f2b8c1e-6d4a-4c2e-9b7f-1a2b3c4d5e6f", "staff_no": "T20180001", "name": "张伟",
         "home_school_code": "11010501", "home_district_code": "110105", "role": "teacher", "section": "primary",
         "subject": "数学", "backbone_level": "district", "in_post_since": "2015-09-01", "retirement_date": None,
         "status": "active", "version": 2, "created_at": "2024-08-28T10:00:00+08:00",
         "updated_at": "2024-09-03T16:45:00+08:00"},
    ]})
    id: UUID
    staff_no: str
    name: str
    home_school_code: str
    home_district_code: str
    role: StaffRole
    section: Section
    subject: str | None
    backbone_level: BackboneLevel
    in_post_since: date
    retirement_date: date | None
    status: StaffStatus
    version: int
    created_at: datetime
    updated_at: datetime


# At most this many staff numbers per call of GET /v1/internal/staff (a URL stays short).
STAFF_NOS_PER_CALL = 100


class StaffByNumber(BaseModel):
    """The staff members with the asked numbers whom the caller may read, ordered by staff_no;
    a number nobody has (or outside the caller's districts) is simply absent."""

    items: list[StaffRead]


# Policies ------------------------------------------------------------------------------------

class PolicyWrite(Strict):
    """The whole policy; an omitted field takes its default (6 years for teachers and for cadres, 5
    years' retirement exemption, target rate 0.10, target backbone share 0.20)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"min_years_teacher": 6, "min_years_cadre": 6, "retirement_exempt_years": 5, "target_rate": "0.12",
         "target_backbone_share": "0.20"},
    ]})

    min_years_teacher: Years = 6
    min_years_cadre: Years = 6
    retirement_exempt_years: Years = 5
    target_rate: Rate = DEFAULT_TARGET_RATE
    target_backbone_share: Rate = DEFAULT_TARGET_BACKBONE_SHARE


class PolicyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [
        {"district_code": "110105", "min_years_teacher": 6, "min_years_cadre": 6, "retirement_exempt_years": 5,
         "target_rate": "0.12", "target_backbone_share": "0.20", "is_default": False, "version": 1,
         "updated_by": "chaoyang-admin", "updated_at": "2024-08-15T11:20:00+08:00"},
    ]})
    district_code: str
    min_years_teacher: int
    min_years_cadre: int
    retirement_exempt_years: int
    target_rate: Decimal
    target_backbone_share: Decimal
    is_default: bool = Field(default=False, description="True when the district never set a policy")
    version: int = 0
    updated_by: str | None = None
    updated_at: datetime | None = None


DEFAULT_POLICY = PolicyWrite()


# Rotations -----------------------------------------------------------------------------------

class RotationCreate(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"staff_id": "3f2b8c1e-6d4a-4c2e-9b7f-1a2b3c4d5e6f", "to_school_code": "11010523", "mode": "full_time",
         "start_date": "2024-09-01", "end_date": "2025-08-31", "plan_id": "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"},
    ]})

    staff_id: UUID
    to_school_code: SchoolCode
    mode: RotationMode
    start_date: date
    end_date: date
    plan_id: UUID | None = Field(default=None, description="Put the rotation into this district plan")

    @model_validator(mode="after")
    def _dates_in_order(self) -> RotationCreate:
        if self.end_date < self.start_date:
            raise ValueError("end_date must not be before start_date")
        return self


class RotationUpdate(Strict):
    """Date changes, allowed while the rotation is planned or approved."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"start_date": "2024-09-01", "end_date": "2026-08-31"},
    ]})

    start_date: date | None = None
    end_date: date | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> RotationUpdate:
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} may not be null")
        return self


class RotationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [
        {"id": "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9", "staff_id": "3f2b8c1e-6d4a-4c2e-9b7f-1a2b3c4d5e6f",
         "plan_id": "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "from_school_code": "11010501",
         "from_district_code": "110105",
         "to_school_code": "11010523", "to_district_code": "110105", "mode": "full_time", "start_date": "2024-09-01",
         "end_date": "2025-08-31", "status": "approved", "created_by": "chaoyang-admin", "version": 2,
         "created_at": "2024-07-10T09:30:00+08:00", "updated_at": "2024-07-25T15:00:00+08:00"},
    ]})
    id: UUID
    staff_id: UUID
    plan_id: UUID | None
    from_school_code: str
    from_district_code: str
    to_school_code: str
    to_district_code: str
    mode: RotationMode
    start_date: date
    end_date: date
    status: RotationStatus
    created_by: str
    version: int
    created_at: datetime
    updated_at: datetime


class TransitionRequest(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"comment": "区教委2024年第3次会议审议通过"},
    ]})

    comment: Comment | None = Field(default=None, examples=["区教委2024年第3次会议审议通过"])


class TransitionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [
        {"id": 42, "rotation_id": "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9", "from_status": "planned",
         "to_status": "approved", "actor": "chaoyang-admin", "occurred_at": "2024-07-25T15:00:00+08:00",
         "comment": "区教委2024年第3次会议审议通过"},
    ]})
    id: int
    rotation_id: UUID
    from_status: RotationStatus | None = Field(description="null for the creation entry")
    to_status: RotationStatus
    actor: str = Field(description="The `sub` of the token that made the change")
    occurred_at: datetime
    comment: str | None


# Plans ---------------------------------------------------------------------------------------

class PlanCreate(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"district_code": "110105", "academic_year": 2024, "title": "朝阳区2024学年干部教师交流轮岗计划"},
    ]})

    district_code: DistrictCode = Field(examples=["110105"])
    academic_year: AcademicYear = Field(examples=[2024])
    title: Name = Field(examples=["朝阳区2024学年干部教师交流轮岗计划"])


class PlanAddRotation(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"rotation_id": "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"},
    ]})

    rotation_id: UUID


class PlanRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [
        {"id": "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "district_code": "110105", "academic_year": 2024,
         "title": "朝阳区2024学年干部教师交流轮岗计划", "status": "approved", "created_by": "chaoyang-admin",
         "approved_by": "chaoyang-director", "approved_at": "2024-07-26T10:00:00+08:00", "version": 5,
         "created_at": "2024-07-01T09:00:00+08:00", "updated_at": "2024-07-26T10:00:00+08:00", "rotations": 3,
         "rotations_by_status": {"approved": 2, "withdrawn": 1}},
    ]})
    id: UUID
    district_code: str
    academic_year: int
    title: str
    status: PlanStatus
    created_by: str
    approved_by: str | None
    approved_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime
    rotations: int = Field(default=0, description="Rotations in the plan")
    rotations_by_status: dict[RotationStatus, int] = Field(default_factory=dict)


# Internal figures for the gateway (docs/internal-api.md → Rotation) -------------------------

class StatsDefaults(BaseModel):
    target_rate: Decimal
    target_backbone_share: Decimal


class DistrictRotationStats(BaseModel):
    district_code: str
    eligible: int
    rotated: int
    backbone_rotated: int
    rotation_rate: Decimal | None = Field(description="rotated / eligible, 4 decimals; null when eligible = 0")
    backbone_share: Decimal | None = Field(description="backbone_rotated / rotated, 4 decimals; null when 0")
    target_rate: Decimal
    target_backbone_share: Decimal


class RotationStats(BaseModel):
    academic_year: int
    defaults: StatsDefaults
    districts: list[DistrictRotationStats]


class PlacementItem(BaseModel):
    school_code: str
    district_code: str
    section: Section
    backbone: int


class BackbonePlacement(BaseModel):
    as_of: date
    items: list[PlacementItem]


class SectionTotals(BaseModel):
    """One section of a district's backbone balance, as sums over its schools."""

    school_count: int
    enrollment: int
    backbone: int
    schools_below_one: int
    backbone_squared_per_enrollment: str = Field(
        description="Σ B_i²/P_i over the section's schools, an exact fraction 'numerator/denominator'",
        examples=["23/5"])


class DistrictBalanceTotals(BaseModel):
    district_code: str
    sections: dict[str, SectionTotals] = Field(description="`primary`, `junior`; a section without enrolled "
                                                           "schools is absent")


class BalanceTotals(BaseModel):
    as_of: date
    districts: list[DistrictBalanceTotals]


class SchoolStaff(BaseModel):
    school_code: str
    as_of: date
    staff: int
    backbone_by_section: dict[Section, int]


# A what-if names schools as the public view does: any code, checked against the registry (an
# unknown one is a field error of `unknown_reference`, not a pattern failure).
MoveSchoolCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=CODE_MAX_LENGTH)]


class ProposedMove(Strict):
    staff_id: UUID
    to_school_code: MoveSchoolCode


class BackboneWhatIfRequest(Strict):
    as_of: date
    district_code: Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]
    moves: list[ProposedMove] = Field(max_length=500, description="Each staff member at most once")


class MovePlacement(BaseModel):
    staff_id: UUID
    name: str
    section: Section
    from_school_code: str = Field(description="Where the staff member works on as_of (§4.6)")
    to_school_code: str
    counts_as_backbone: bool = Field(description="Active county-level-and-above backbone teacher of a section "
                                                 "the balance counts (primary, junior)")


class BackboneWhatIf(BaseModel):
    as_of: date
    district_code: str
    before: list[PlacementItem] = Field(description="The district's placement on as_of, as backbone-placement")
    after: list[PlacementItem] = Field(description="The same with every counted move made")
    moves: list[MovePlacement]


class StaffWorkplace(BaseModel):
    staff_id: UUID
    as_of: date
    school_code: str = Field(description="Where the staff member works on as_of (§4.6)")
    district_code: str
