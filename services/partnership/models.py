"""Partnership tables; the migration (partnership_0001) holds their constraints."""

from __future__ import annotations

import datetime as dt
from datetime import date, datetime
from uuid import UUID

from sqlmodel import Field, SQLModel

from services.common.clock import utcnow

SCHEMA = "partnership"


class District(SQLModel, table=True):
    __tablename__ = "districts"
    __table_args__ = {"schema": SCHEMA}

    code: str = Field(primary_key=True, max_length=6)
    name: str
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    version: int = 1


class School(SQLModel, table=True):
    __tablename__ = "schools"
    __table_args__ = {"schema": SCHEMA}

    code: str = Field(primary_key=True, max_length=64)
    name: str
    district_code: str = Field(foreign_key="partnership.districts.code")
    stage: str
    locality: str
    primary_enrollment: int = 0
    junior_enrollment: int = 0
    senior_enrollment: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    version: int = 1


class Pairing(SQLModel, table=True):
    __tablename__ = "pairings"
    __table_args__ = {"schema": SCHEMA}

    id: UUID = Field(primary_key=True)
    lead_school_code: str = Field(foreign_key="partnership.schools.code")
    partner_school_code: str = Field(foreign_key="partnership.schools.code")
    program: str
    start_date: date
    end_date: date
    goals: str | None = None
    status: str = "proposed"
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    version: int = 1


class Activity(SQLModel, table=True):
    __tablename__ = "activities"
    __table_args__ = {"schema": SCHEMA}

    id: UUID = Field(primary_key=True)
    pairing_id: UUID = Field(foreign_key="partnership.pairings.id")
    kind: str
    date: dt.date
    title: str
    teacher_participants: int = 0
    student_participants: int = 0
    created_at: datetime = Field(default_factory=utcnow)
