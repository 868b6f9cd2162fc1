"""Rotation tables; the migration (rotation_0001) is the source of truth for their constraints."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from uuid import UUID, uuid4

from sqlalchemy import BigInteger, Column, Numeric
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from services.common.clock import utcnow

SCHEMA = "rotation"


class Staff(SQLModel, table=True):
    """A teacher or cadre; `home_district_code` is the home school's district, kept locally."""

    __tablename__ = "staff"
    __table_args__ = {"schema": SCHEMA}

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    staff_no: str
    name: str
    home_school_code: str
    home_district_code: str
    role: str
    section: str
    subject: str | None = None
    backbone_level: str = "none"
    in_post_since: date
    retirement_date: date | None = None
    status: str = "active"
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    version: int = 1


class RotationPolicy(SQLModel, table=True):
    """A district's rotation rules; absent rows mean the defaults of api.md."""

    __tablename__ = "rotation_policies"
    __table_args__ = {"schema": SCHEMA}

    district_code: str = Field(primary_key=True)
    min_years_teacher: int
    min_years_cadre: int
    retirement_exempt_years: int
    target_rate: Decimal = Field(sa_column=Column(Numeric(asdecimal=True), nullable=False))
    target_backbone_share: Decimal = Field(sa_column=Column(Numeric(asdecimal=True), nullable=False))
    updated_by: str
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    version: int = 1


class RotationPlan(SQLModel, table=True):
    __tablename__ = "rotation_plans"
    __table_args__ = {"schema": SCHEMA}

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    district_code: str
    academic_year: int
    title: str
    status: str = "draft"
    created_by: str
    approved_by: str | None = None
    approved_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    version: int = 1


class Rotation(SQLModel, table=True):
    """One stay of a staff member at another school; both schools' districts are kept locally."""

    __tablename__ = "rotations"
    __table_args__ = {"schema": SCHEMA}

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    staff_id: UUID = Field(foreign_key="rotation.staff.id")
    plan_id: UUID | None = Field(default=None, foreign_key="rotation.rotation_plans.id")
    from_school_code: str
    from_district_code: str
    to_school_code: str
    to_district_code: str
    mode: str
    start_date: date
    end_date: date
    status: str = "planned"
    created_by: str
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    version: int = 1


class RotationTransition(SQLModel, table=True):
    """The audit trail of a rotation: creation (from_status null) and every state change."""

    __tablename__ = "rotation_transitions"
    __table_args__ = {"schema": SCHEMA}

    id: int | None = Field(default=None, primary_key=True, sa_type=BigInteger)  # bigint identity
    rotation_id: UUID = Field(foreign_key="rotation.rotations.id", ondelete="CASCADE")
    from_status: str | None = None
    to_status: str
    actor: str
    occurred_at: datetime = Field(default_factory=utcnow)
    comment: str | None = None


class RotationProposal(SQLModel, table=True):
    """A rotation proposal (services/rotation/proposals): its inputs, its result, and the plan made of it."""

    __tablename__ = "rotation_proposals"
    __table_args__ = {"schema": SCHEMA}

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    district_code: str
    academic_year: int
    status: str
    inputs: dict = Field(sa_column=Column(JSONB, nullable=False))
    result: dict | None = Field(default=None, sa_column=Column(JSONB))
    detail: str | None = None
    job_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    attempts: int = 0
    plan_id: UUID | None = Field(default=None, foreign_key="rotation.rotation_plans.id")
    created_by: str
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
