"""Training tables; the migration (training_0001) holds their constraints and is the source of truth."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from sqlalchemy import Column, Computed, Date, ForeignKeyConstraint, Numeric
from sqlmodel import Field, SQLModel

from services.common.calendar import CHINA_ZONE
from services.common.clock import utcnow

SCHEMA = "training"


class Studio(SQLModel, table=True):
    __tablename__ = "studios"
    __table_args__ = {"schema": SCHEMA}

    id: UUID = Field(primary_key=True)
    name: str
    kind: str
    host_staff_id: UUID
    subject: str
    district_code: str = Field(max_length=6)
    start_date: date
    end_date: date
    capacity: int = 10
    status: str = "active"
    closed_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    version: int = 1


class Membership(SQLModel, table=True):
    __tablename__ = "memberships"
    __table_args__ = {"schema": SCHEMA}

    id: UUID = Field(primary_key=True)
    studio_id: UUID = Field(foreign_key="training.studios.id")
    staff_id: UUID
    joined_on: date
    left_on: date | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    version: int = 1


class Session(SQLModel, table=True):
    __tablename__ = "sessions"
    __table_args__ = {"schema": SCHEMA}
    # session_date is computed by PostgreSQL; fetch it back with RETURNING on insert and update.
    __mapper_args__ = {"eager_defaults": True}

    id: UUID = Field(primary_key=True)
    studio_id: UUID = Field(foreign_key="training.studios.id")
    kind: str
    title: str
    starts_at: datetime
    session_date: date | None = Field(
        default=None,
        sa_column=Column(Date, Computed(f"((starts_at AT TIME ZONE '{CHINA_ZONE}')::date)",
                                        persisted=True)),
    )
    hours: Decimal = Field(sa_column=Column(Numeric(6, 2), nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    version: int = 1


class Attendance(SQLModel, table=True):
    __tablename__ = "attendance"
    __table_args__ = {"schema": SCHEMA}

    session_id: UUID = Field(primary_key=True, foreign_key="training.sessions.id")
    staff_id: UUID = Field(primary_key=True)
    created_at: datetime = Field(default_factory=utcnow)


class TrainingHours(SQLModel, table=True):
    """One credit of the ledger: studio attendance (source `studio_session`) or an external credit."""

    __tablename__ = "training_hours"
    # A studio credit points at the attendance row that earned them; removing it removes the credit.
    __table_args__ = (
        ForeignKeyConstraint(["session_id", "staff_id"], [f"{SCHEMA}.attendance.session_id",
                                                          f"{SCHEMA}.attendance.staff_id"],
                             name="fk_training_hours_attendance", ondelete="CASCADE"),
        {"schema": SCHEMA},
    )

    id: UUID = Field(primary_key=True)
    staff_id: UUID
    hours: Decimal = Field(sa_column=Column(Numeric(6, 2), nullable=False))
    earned_on: date
    source: str
    reference: str
    session_id: UUID | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    version: int = 1
