"""Request and response models of rotation proposals (issue 14; api.md → Rotation)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.common.vocabulary import Name, SchoolCode, Strict
from services.rotation.schemas import AcademicYear, Rate, RotationMode

OBJECTIVE = ("Meet both rate bars (rotation rate ≥ target_rate, backbone share ≥ target_backbone_share); "
             "then minimise the weighted CV (the sum over primary and junior of CV², 校际差异系数); "
             "then make as few moves as possible; ties are broken by 先教师后干部 (teachers before cadres) "
             "and 先骨干后普通 (backbone before others).")


class ProposalCreate(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"academic_year": 2024, "as_of": "2024-09-01", "max_incoming_per_school": 3,
         "exclude_school_codes": ["11010599"], "prefer_same_subject": True},
    ]})

    academic_year: AcademicYear = Field(examples=[2024])
    as_of: date = Field(description="The day the balance is measured (before and after the moves)")
    target_rate: Rate | None = Field(default=None, description="Defaults to the district policy's")
    target_backbone_share: Rate | None = Field(default=None, description="Defaults to the district policy's")
    max_moves: int | None = Field(default=None, ge=0, le=100_000)
    mode: RotationMode = RotationMode.full_time
    start_date: date | None = Field(default=None, description="Of the rotations; defaults to 1 Sept of the year")
    end_date: date | None = Field(default=None, description="Of the rotations; defaults to 31 Aug the year after")
    keep_section: bool = Field(default=True, description="Movers go only to schools that enrol their section")
    prefer_same_subject: bool = Field(
        default=False, description="Where the counts allow, a mover goes to a school already teaching their "
                                   "subject in their section")
    exclude_school_codes: list[SchoolCode] = Field(default_factory=list, max_length=1000,
                                                   description="Neither send nor receive anyone")
    exclude_staff_ids: list[UUID] = Field(default_factory=list, max_length=100_000)
    include_staff_ids: list[UUID] = Field(default_factory=list, max_length=100_000,
                                          description="Must move (each must be eligible and able to move)")
    max_incoming_per_school: int | None = Field(default=None, ge=0, le=100_000)
    time_limit_seconds: float = Field(default=15.0, gt=0, le=25, description="Of the optimiser")

    @model_validator(mode="after")
    def _consistent(self) -> ProposalCreate:
        if set(self.exclude_staff_ids) & set(self.include_staff_ids):
            raise ValueError("a staff member cannot be both included and excluded")
        first, last = date(self.academic_year, 9, 1), date(self.academic_year + 1, 8, 31)
        start, end = self.start_date or first, self.end_date or last
        if not first <= start <= last:
            raise ValueError(f"start_date must lie in academic year {self.academic_year} ({first} to {last})")
        if end < start:
            raise ValueError("end_date must not be before start_date")
        return self

    @property
    def dates(self) -> tuple[date, date]:
        return (self.start_date or date(self.academic_year, 9, 1),
                self.end_date or date(self.academic_year + 1, 8, 31))


class SchoolFigure(BaseModel):
    code: str
    per_100_before: float | None = Field(description="Backbone teachers per 100 students of the mover's section")
    per_100_after: float | None


class MoveRead(BaseModel):
    staff_id: UUID
    staff_no: str
    name: str
    role: str
    section: str
    subject: str | None
    backbone_level: str
    from_school_code: str
    to_school_code: str
    changes_balance: bool = Field(description="A county-level backbone teacher on a full-time move (§4.6)")
    same_subject: bool = Field(description="The receiving school already teaches the subject in the section")
    why: str
    from_school: SchoolFigure
    to_school: SchoolFigure


class SectionFigures(BaseModel):
    school_count: int
    enrollment: int
    backbone: int
    mean: float | None
    cv: float | None
    target_cv: float
    meets_target_cv: bool | None
    schools_below_one: int


class Figures(BaseModel):
    eligible: int
    rotated: int
    rotation_rate: float | None
    backbone_rotated: int
    backbone_share: float | None
    primary: SectionFigures
    junior: SectionFigures


class Bar(BaseModel):
    target: float
    met: bool | None = Field(description="null when undefined (nobody rotates: no share)")
    why: str | None = Field(default=None, description="When the bar cannot be met: which limit stops it")


class Optimiser(BaseModel):
    method: Literal["cp-sat", "greedy"]
    status: Literal["optimal", "feasible"]
    gap: float | None = Field(description="(objective − bound) / objective of the balance solve; null for greedy")
    seconds: float
    time_limit_seconds: float
    exact_weights: bool = Field(description="The objective's coefficients were exact (not rounded)")
    fallback_reason: str | None = None


class ProposalResult(BaseModel):
    objective: str = OBJECTIVE
    optimiser: Optimiser
    rotation_rate: Bar
    backbone_share: Bar
    before: Figures
    after: Figures
    candidates: int = Field(description="Eligible staff who could move under the constraints")
    moves: list[MoveRead]


_SECTION = {"school_count": 4, "enrollment": 2400, "backbone": 6, "mean": 0.25, "cv": 0.894427, "target_cv": 0.5,
            "meets_target_cv": False, "schools_below_one": 4}
_EXAMPLE = {
    "id": "7c1e2d3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f", "district_code": "110105", "academic_year": 2024, "status": "done",
    "inputs": {"academic_year": 2024, "as_of": "2024-09-01", "mode": "full_time", "keep_section": True},
    "result": {
        "objective": OBJECTIVE,
        "optimiser": {"method": "cp-sat", "status": "optimal", "gap": 0.0, "seconds": 0.041,
                      "time_limit_seconds": 20.0, "exact_weights": True, "fallback_reason": None},
        "rotation_rate": {"target": 0.1, "met": True, "why": None},
        "backbone_share": {"target": 0.2, "met": True, "why": None},
        "before": {"eligible": 8, "rotated": 0, "rotation_rate": 0.0, "backbone_rotated": 0, "backbone_share": None,
                   "primary": _SECTION, "junior": {**_SECTION, "school_count": 2, "enrollment": 1200, "backbone": 4,
                                                   "mean": 0.333333, "cv": 0.176777, "target_cv": 0.45,
                                                   "meets_target_cv": True, "schools_below_one": 2}},
        "after": {"eligible": 8, "rotated": 2, "rotation_rate": 0.25, "backbone_rotated": 2, "backbone_share": 1.0,
                  "primary": {**_SECTION, "cv": 0.182574, "meets_target_cv": True},
                  "junior": {**_SECTION, "school_count": 2, "enrollment": 1200, "backbone": 4, "mean": 0.333333,
                             "cv": 0.176777, "target_cv": 0.45, "meets_target_cv": True, "schools_below_one": 2}},
        "candidates": 8,
        "moves": [{"staff_id": "3f2b8c1e-6d4a-4c2e-9b7f-1a2b3c4d5e6f", "staff_no": "T20180001", "name": "张伟",
                   "role": "teacher", "section": "primary", "subject": "数学", "backbone_level": "municipal",
                   "from_school_code": "11010501", "to_school_code": "11010502", "changes_balance": True,
                   "same_subject": True,
                   "why": "county-level backbone teacher of primary: 11010501 has 0.5 per 100 students, 11010502 "
                          "0.0; the move lowers the district's CV",
                   "from_school": {"code": "11010501", "per_100_before": 0.5, "per_100_after": 0.3},
                   "to_school": {"code": "11010502", "per_100_before": 0.0, "per_100_after": 0.2}}]},
    "detail": None, "plan_id": None, "created_by": "chaoyang-admin", "created_at": "2024-07-01T09:00:00+08:00",
    "finished_at": "2024-07-01T09:00:01+08:00"}


class ProposalRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_EXAMPLE]})

    id: UUID
    district_code: str
    academic_year: int
    status: Literal["running", "done", "failed"]
    inputs: dict
    result: ProposalResult | None
    detail: str | None
    plan_id: UUID | None
    created_by: str
    created_at: datetime
    finished_at: datetime | None


class ProposalPlanCreate(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"title": "朝阳区2024学年干部教师交流轮岗方案"}]})

    title: Name | None = Field(default=None, description="Defaults to one naming the proposal")
