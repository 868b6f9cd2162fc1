"""Response and request models of the composed views (api.md → Cross-service views).

Counts are integers; every rate sits next to its numerator and denominator (the adjacent count
fields) and is null when the denominator is 0. Rates are rounded half up to 4 decimals, and the
balance figures (`mean`, `cv`, `per_100`) to 6 decimals, only when presented: the arithmetic
behind them is exact (design.md §4). Training hours are exact decimals written as JSON numbers
(services/common/numbers.py), as in the training API.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.common.numbers import Hours

Rate = Annotated[float | None, Field(ge=0, description="Rounded half up to 4 decimals; null when the denominator is 0")]
Figure = Annotated[float | None, Field(description="Rounded half up to 6 decimals")]
Degraded = Annotated[list[str], Field(
    description="Services whose part could not be had; their part is null and the status stays 200",
    examples=[["training"]])]

# Example data shared by the models' documented examples (朝阳区 110105 on 2025-03-01, academic year 2024).
_PRIMARY = {"school_count": 3, "enrollment": 1900, "backbone": 25, "mean": 1.315789, "cv": 0.516398, "target_cv": 0.5,
            "meets_target_cv": False, "schools_below_one": 2}
_JUNIOR = {"school_count": 2, "enrollment": 800, "backbone": 11, "mean": 1.375, "cv": 0.157459, "target_cv": 0.45,
           "meets_target_cv": True, "schools_below_one": 0}
_JUNIOR_SCHOOLS = [
    {"code": "11010531", "name": "北京市朝阳区黑庄户学校", "enrollment": 200, "backbone": 2, "per_100": 1.0},
    {"code": "11010540", "name": "北京市第八十中学", "enrollment": 600, "backbone": 9, "per_100": 1.5}]
_BALANCE_BEFORE = {
    "district": {"code": "110105", "name": "朝阳区"}, "as_of": "2025-03-01",
    "primary": {**_PRIMARY, "schools": [
        {"code": "11010501", "name": "北京市朝阳区实验小学", "enrollment": 1200, "backbone": 22, "per_100": 1.833333},
        {"code": "11010523", "name": "北京市朝阳区金盏乡中心小学", "enrollment": 400, "backbone": 2, "per_100": 0.5},
        {"code": "11010531", "name": "北京市朝阳区黑庄户学校", "enrollment": 300, "backbone": 1, "per_100": 0.333333}]},
    "junior": {**_JUNIOR, "schools": _JUNIOR_SCHOOLS}}
# The same district with one municipal backbone teacher counted at 11010523 instead of 11010501.
_BALANCE_AFTER = {
    "district": {"code": "110105", "name": "朝阳区"}, "as_of": "2025-03-01",
    "primary": {**_PRIMARY, "cv": 0.442418, "meets_target_cv": True, "schools": [
        {"code": "11010501", "name": "北京市朝阳区实验小学", "enrollment": 1200, "backbone": 21, "per_100": 1.75},
        {"code": "11010523", "name": "北京市朝阳区金盏乡中心小学", "enrollment": 400, "backbone": 3, "per_100": 0.75},
        {"code": "11010531", "name": "北京市朝阳区黑庄户学校", "enrollment": 300, "backbone": 1, "per_100": 0.333333}]},
    "junior": {**_JUNIOR, "schools": _JUNIOR_SCHOOLS}}
_PARTNERSHIP = {
    "township_rural_schools": 2, "covered_schools": 1, "coverage_rate": 0.5, "active_pairings": 1, "activities": 6,
    "teacher_participations": 38, "student_participations": 180,
    "by_kind": {"lesson_delivery": {"activities": 4, "teacher_participations": 24, "student_participations": 180},
                "joint_research": {"activities": 2, "teacher_participations": 14, "student_participations": 0}}}
_ROTATION = {
    "eligible": 120, "rotated": 14, "rotation_rate": 0.1167, "backbone_rotated": 4, "backbone_share": 0.2857,
    "target_rate": 0.12, "target_backbone_share": 0.2, "meets_target_rate": False, "meets_target_backbone_share": True}
_TRAINING = {"staff": 150, "completed": 132, "completion_rate": 0.88, "studios": 3, "sessions": 27, "hours": 1440}
_BALANCE_SUMMARY = {"primary": _PRIMARY, "junior": _JUNIOR}
_ROTATION_OUT = {
    "id": "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9", "staff_id": "3f2b8c1e-6d4a-4c2e-9b7f-1a2b3c4d5e6f",
    "from_school_code": "11010501", "from_district_code": "110105", "to_school_code": "11010523",
    "to_district_code": "110105", "mode": "full_time", "start_date": "2024-09-01", "end_date": "2025-08-31",
    "status": "active", "current": True}
_STAFF_RECORD = {
    "id": "3f2b8c1e-6d4a-4c2e-9b7f-1a2b3c4d5e6f", "staff_no": "T20180001", "name": "张伟",
    "home_school_code": "11010501", "home_district_code": "110105", "role": "teacher", "section": "primary",
    "subject": "数学", "backbone_level": "district", "in_post_since": "2015-09-01", "retirement_date": None,
    "status": "active"}
_MEMBERSHIP_OUT = {
    "studio_id": "2d4f6a8c-1b3e-4d5f-9a7c-8e6b4d2f0a1c", "studio_name": "李华名师工作室", "kind": "famous_teacher",
    "district_code": "110105", "joined_on": "2024-09-15", "left_on": None, "role": "member", "current": True}
_HOURS_OUT = {
    "window_years": 5, "window_start": "2020-03-01", "total_hours": 372.5,
    "by_source": {"municipal_platform": 348, "studio_session": 24.5}, "threshold": 360, "met": True}
_SCHOOL_OUT = {
    "code": "11010523", "name": "北京市朝阳区金盏乡中心小学", "district_code": "110105", "stage": "primary",
    "locality": "rural", "primary_enrollment": 400, "junior_enrollment": 0, "senior_enrollment": 0}
_PAIRING_OUT = {
    "id": "7a1d2e3f-4b5c-4d6e-8f70-819a2b3c4d5e", "lead_school_code": "11010501", "partner_school_code": "11010523",
    "program": "城乡学校手拉手结对帮扶", "start_date": "2024-09-01", "end_date": "2027-08-31", "status": "active",
    "role": "partner", "active": True}
_SCHOOL_STAFF_OUT = {"staff": 36, "backbone_by_section": {"primary": 2}}


class DistrictRef(BaseModel):
    code: str = Field(examples=["110105"])
    name: str | None = Field(examples=["朝阳区"], description="null only when the partnership service is down")


class ActivityTotals(BaseModel):
    activities: int
    teacher_participations: int
    student_participations: int


class PartnershipBlock(BaseModel):
    """Pairing coverage of township and rural schools on `as_of`, and the activities dated in the academic year."""

    township_rural_schools: int = Field(description="Township and rural schools of the district")
    covered_schools: int = Field(description="…that are the partner school of a pairing active on as_of")
    coverage_rate: Rate = Field(description="covered_schools / township_rural_schools")
    active_pairings: int = Field(description="Pairings active on as_of with a school of the district on either side")
    activities: int
    teacher_participations: int
    student_participations: int
    by_kind: dict[str, ActivityTotals] = Field(default_factory=dict, description="The activity totals by activity kind")


class RotationBlock(BaseModel):
    """Rotation rate and backbone share for the academic year, against the district's policy targets."""

    eligible: int = Field(description="Staff eligible on 1 Sept of the academic year (district policy)")
    rotated: int = Field(description="Distinct staff with a rotation starting in the year, not planned or withdrawn")
    rotation_rate: Rate = Field(description="rotated / eligible")
    backbone_rotated: int = Field(description="Rotated staff who are county-level-and-above backbone")
    backbone_share: Rate = Field(description="backbone_rotated / rotated")
    target_rate: float = Field(description="The district policy's target (national bar 0.10)")
    target_backbone_share: float = Field(description="The district policy's target (national bar 0.20)")
    meets_target_rate: bool | None = Field(
        description="rotation_rate ≥ target_rate, decided exactly; null when undefined")
    meets_target_backbone_share: bool | None = Field(description="backbone_share ≥ target_backbone_share")


class TrainingBlock(BaseModel):
    """Completion of the 360-hour training bar in the 5-year window, counted by the training service
    from its staff directory (a copy of rotation's staff, kept from rotation's change feed) and its
    ledger; the block is null, with "training" in `degraded`, when training is down."""

    staff: int | None = Field(description="Active staff of the district (home school)")
    completed: int | None = Field(description="…with ≥ 360 credited hours in the 5 years up to as_of")
    completion_rate: Rate = Field(description="completed / staff (national bar 1.0)")
    studios: int = Field(description="Studios whose district is this district")
    sessions: int = Field(description="Their sessions starting within the academic year")
    hours: Hours = Field(description="Hours those sessions credited (session hours × attendees)")


class SectionSummary(BaseModel):
    """Backbone balance (校际差异系数) for one section; schools with no enrollment in the section are left out."""

    school_count: int = Field(description="Schools with enrollment in the section")
    enrollment: int = Field(description="P: their students in the section")
    backbone: int = Field(description="County-level-and-above backbone teachers working there on as_of")
    mean: Figure = Field(description="X̄ = ΣP_i·X_i / P = 100 × backbone / enrollment; null when P = 0")
    cv: Figure = Field(description="S / X̄ (enrollment-weighted); null when X̄ = 0 or P = 0")
    target_cv: float = Field(description="National bar (2017): primary 0.50, junior 0.45")
    meets_target_cv: bool | None = Field(description="cv ≤ target_cv, decided exactly; null when cv is null")
    schools_below_one: int = Field(description="Schools with X_i < 1 backbone teacher per 100 students")


class BalanceSummary(BaseModel):
    primary: SectionSummary
    junior: SectionSummary


class DistrictOverview(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"district": {"code": "110105", "name": "朝阳区"}, "academic_year": 2024,
         "period_from": "2024-09-01", "period_to": "2025-08-31", "as_of": "2025-03-01",
         "partnership": _PARTNERSHIP, "rotation": _ROTATION, "training": _TRAINING, "balance": _BALANCE_SUMMARY,
         "degraded": []},
        # The training service did not answer: its part is null and the status stays 200.
        {"district": {"code": "110105", "name": "朝阳区"}, "academic_year": 2024,
         "period_from": "2024-09-01", "period_to": "2025-08-31", "as_of": "2025-03-01",
         "partnership": _PARTNERSHIP, "rotation": _ROTATION, "training": None, "balance": _BALANCE_SUMMARY,
         "degraded": ["training"]},
    ]})

    district: DistrictRef
    academic_year: int = Field(description="Start year: 2024 means 1 Sept 2024 – 31 Aug 2025")
    period_from: date
    period_to: date
    as_of: date
    partnership: PartnershipBlock | None
    rotation: RotationBlock | None
    training: TrainingBlock | None
    balance: BalanceSummary | None = Field(description="Needs partnership (enrollment) and rotation (placement)")
    degraded: Degraded


class CityDistrictRow(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"code": "110105", "name": "朝阳区", "partnership": _PARTNERSHIP, "rotation": _ROTATION, "training": _TRAINING,
         "balance": _BALANCE_SUMMARY},
    ]})

    code: str
    name: str | None
    partnership: PartnershipBlock | None
    rotation: RotationBlock | None
    training: TrainingBlock | None
    balance: BalanceSummary | None


class CityOverview(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"academic_year": 2024, "period_from": "2024-09-01", "period_to": "2025-08-31", "as_of": "2025-03-01",
         "districts": [{"code": "110105", "name": "朝阳区", "partnership": _PARTNERSHIP, "rotation": _ROTATION,
                        "training": _TRAINING, "balance": _BALANCE_SUMMARY}],
         "degraded": []},
        # No service answered: every district's blocks are null and the status stays 200.
        {"academic_year": 2024, "period_from": "2024-09-01", "period_to": "2025-08-31", "as_of": "2025-03-01",
         "districts": [{"code": "110105", "name": None, "partnership": None, "rotation": None,
                        "training": None, "balance": None}],
         "degraded": ["partnership", "rotation", "training"]},
    ]})

    academic_year: int
    period_from: date
    period_to: date
    as_of: date
    districts: list[CityDistrictRow]
    degraded: Degraded


# Balance -------------------------------------------------------------------------------------

class SchoolBalance(BaseModel):
    code: str
    name: str
    enrollment: int = Field(description="P_i: students in the section")
    backbone: int = Field(description="B_i: county-level-and-above backbone teachers working here on as_of")
    per_100: float = Field(description="X_i = 100·B_i/P_i, rounded half up to 6 decimals")


class SectionBalance(SectionSummary):
    schools: list[SchoolBalance]


class DistrictBalance(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_BALANCE_BEFORE]})

    district: DistrictRef
    as_of: date
    primary: SectionBalance
    junior: SectionBalance


SchoolCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class WhatIfMove(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"staff_id": "0b7f6a52-7d8e-4d5e-9a43-2f5cbb4b5f10", "to_school_code": "11010523"}]})
    staff_id: UUID
    to_school_code: SchoolCode = Field(examples=["11011901"])


class WhatIfRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "as_of": "2025-03-01",
        "moves": [{"staff_id": "0b7f6a52-7d8e-4d5e-9a43-2f5cbb4b5f10", "to_school_code": "11010523"}]}]})

    as_of: date | None = Field(default=None, description="Defaults to today (China Standard Time)")
    moves: list[WhatIfMove] = Field(max_length=500, description="Each staff member at most once")


class MoveEffect(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"staff_id": "0b7f6a52-7d8e-4d5e-9a43-2f5cbb4b5f10", "name": "王芳", "section": "primary",
         "from_school_code": "11010501", "to_school_code": "11010523", "counts_as_backbone": True},
    ]})

    staff_id: UUID
    name: str
    section: str
    from_school_code: str = Field(description="Where the staff member works on as_of (§4.6)")
    to_school_code: str
    counts_as_backbone: bool = Field(description="Active county-level-and-above backbone teacher of the primary "
                                                 "or junior section: only these change the balance")


class WhatIfAnswer(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"before": _BALANCE_BEFORE, "after": _BALANCE_AFTER, "moves": [
            {"staff_id": "0b7f6a52-7d8e-4d5e-9a43-2f5cbb4b5f10", "name": "王芳", "section": "primary",
             "from_school_code": "11010501", "to_school_code": "11010523", "counts_as_backbone": True}]},
    ]})

    before: DistrictBalance
    after: DistrictBalance
    moves: list[MoveEffect]


# Profiles ------------------------------------------------------------------------------------

class StaffRecordOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_STAFF_RECORD]})

    id: UUID
    staff_no: str
    name: str
    home_school_code: str
    home_district_code: str | None
    role: str
    section: str
    subject: str | None
    backbone_level: str
    in_post_since: date | None
    retirement_date: date | None
    status: str


class RotationOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_ROTATION_OUT]})

    id: UUID
    staff_id: UUID
    from_school_code: str
    from_district_code: str | None
    to_school_code: str
    to_district_code: str | None
    mode: str
    start_date: date
    end_date: date
    status: str
    current: bool = Field(description="active, and its dates contain as_of")


class MembershipOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_MEMBERSHIP_OUT]})

    studio_id: UUID
    studio_name: str
    kind: str
    district_code: str | None
    joined_on: date
    left_on: date | None
    role: str
    current: bool = Field(description="Joined on or before as_of and not left before it")


class TrainingHoursOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_HOURS_OUT]})

    window_years: int
    window_start: date | None = Field(description="Exclusive")
    total_hours: Hours
    by_source: dict[str, Hours]
    threshold: Hours
    met: bool


class StaffProfile(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "as_of": "2025-03-01", "staff": _STAFF_RECORD, "working_at": "11010523", "rotations": [_ROTATION_OUT],
        "memberships": [_MEMBERSHIP_OUT], "training_hours": _HOURS_OUT, "degraded": []}]})

    as_of: date
    staff: StaffRecordOut
    working_at: str = Field(description="School where the staff member works on as_of (§4.6)")
    rotations: list[RotationOut] | None
    memberships: list[MembershipOut] | None
    training_hours: TrainingHoursOut | None
    degraded: Degraded


class SchoolOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_SCHOOL_OUT]})

    code: str
    name: str
    district_code: str
    stage: str
    locality: str
    primary_enrollment: int
    junior_enrollment: int
    senior_enrollment: int


class PairingOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_PAIRING_OUT]})

    id: UUID
    lead_school_code: str
    partner_school_code: str
    program: str
    start_date: date
    end_date: date
    status: str
    role: str = Field(description="This school's side: lead or partner")
    active: bool = Field(description="status active and as_of within its dates")


class SchoolStaffOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_SCHOOL_STAFF_OUT]})

    staff: int = Field(description="Active staff whose home school this is")
    backbone_by_section: dict[str, int] = Field(
        description="County-level-and-above backbone teachers working here on as_of, by section")


class SchoolProfile(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "as_of": "2025-03-01", "school": _SCHOOL_OUT, "pairings": [_PAIRING_OUT], "rotations_in": [_ROTATION_OUT],
        "rotations_out": [], "staff": _SCHOOL_STAFF_OUT, "degraded": []}]})

    as_of: date
    school: SchoolOut
    pairings: list[PairingOut] | None
    rotations_in: list[RotationOut] | None
    rotations_out: list[RotationOut] | None
    staff: SchoolStaffOut | None
    degraded: Degraded
