"""Bulk import of external training hours (继续教育学时), as other government systems send them.

Natural key (`source`, `reference`), the same as `POST /v1/training-hours`:

- a new key is inserted (and fed to the change feed as a `training_credit` create);
- a key already stored with the same staff, hours and date is an unchanged no-op, so re-importing a
  file inserts nothing;
- a key already stored with a different staff, hours or date is a per-row error (the 409
  `credit-mismatch` rule of the single post), found by a check SQL over the staged rows; the merge
  is `INSERT … ON CONFLICT (source, reference) DO NOTHING`, so an import can never change a credit;
- the source `studio_session` is reserved for studio attendance (row error).

Staff are owned by rotation: once the rows are staged, the resolve step looks the distinct staff
ids up there (one call to `GET /v1/internal/active-staff`, then `GET /v1/staff/{id}` with bounded
concurrency for the ids it does not list, such as retired staff) and marks the staged rows with
what it learned; ids rotation does not know are row errors, and an importer limited to districts
has rows for staff outside them rejected too. Rotation unreachable → 503 with nothing written for
an inline import; a job is retried.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, field_validator
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.imports import ImportContext, ImportSpec
from services.training.clients import RotationClient
from services.training.config import STUDIO_SESSION_SOURCE
from services.training.schemas import HoursIn, Reference, Source

KIND = "training-hours"  # also the import id's prefix, by which the gateway routes GET /imports/{id}

_CHINESE_DATE = re.compile(r"^\s*(\d{4})\s*[年/.\-]\s*(\d{1,2})\s*[月/.\-]\s*(\d{1,2})\s*日?\s*$")


class TrainingHoursImportRow(BaseModel):
    """One external credit; unknown columns (姓名, 备注, …) are ignored."""

    model_config = ConfigDict(extra="ignore")

    staff_id: UUID
    hours: HoursIn
    earned_on: date
    source: Source
    reference: Reference

    @field_validator("earned_on", mode="before")
    @classmethod
    def _chinese_date(cls, value: Any) -> Any:
        """2024-03-05 as offices also write it: 2024/3/5, 2024.3.5, 2024年3月5日."""
        if isinstance(value, str) and (match := _CHINESE_DATE.match(value)):
            year, month, day = match.groups()
            return f"{year}-{int(month):02d}-{int(day):02d}"
        return value

    @field_validator("source")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value == STUDIO_SESSION_SOURCE:
            raise ValueError(f"source {STUDIO_SESSION_SOURCE!r} is reserved for studio attendance")
        return value


COLUMNS = ("staff_id", "hours", "earned_on", "source", "reference")

# A stored credit with the same key but other facts: the single post's 409 `credit-mismatch`.
MISMATCH_SQL = """
    SELECT s.row_no,
           'a credit with source ' || quote_literal(s.source) || ' and reference ' || quote_literal(s.reference)
           || ' already exists with a different '
           || array_to_string(ARRAY[
                  CASE WHEN t.staff_id <> s.staff_id THEN 'staff_id' END,
                  CASE WHEN t.hours <> s.hours THEN 'hours' END,
                  CASE WHEN t.earned_on <> s.earned_on THEN 'earned_on' END], ', ') AS message
    FROM staged s JOIN training.training_hours t ON t.source = s.source AND t.reference = s.reference
    WHERE (t.staff_id, t.hours, t.earned_on) IS DISTINCT FROM (s.staff_id, s.hours, s.earned_on)"""

TRAINING_HOURS = ImportSpec(
    kind=KIND,
    model=TrainingHoursImportRow,
    aliases={
        "教师编号": "staff_id", "教师ID": "staff_id", "教职工编号": "staff_id",
        "学时": "hours", "学时数": "hours",
        "取得日期": "earned_on", "获得日期": "earned_on", "日期": "earned_on",
        "来源": "source", "学时来源": "source",
        "凭证编号": "reference", "证书编号": "reference",
    },
    key=("source", "reference"),
    columns=COLUMNS,
    column_types={"staff_id": "uuid", "hours": "numeric(6,2)", "earned_on": "date"},
    prepare=lambda row: {c: getattr(row, c) for c in COLUMNS},
    checks_sql=[("reference", MISMATCH_SQL)],
    # ON CONFLICT DO NOTHING: an existing credit is never changed (identical rows are no-ops and
    # differing ones were rejected above); only new credits come back, as feed `create`s.
    merge_sql="""
        INSERT INTO training.training_hours AS t (id, staff_id, hours, earned_on, source, reference)
        SELECT gen_random_uuid(), staff_id, hours, earned_on, source, reference
        FROM staged ORDER BY row_no
        ON CONFLICT (source, reference) DO NOTHING
        RETURNING (xmax = 0) AS inserted, t.source || ':' || t.reference AS key,
                  jsonb_build_object(
                      'id', t.id, 'staff_id', t.staff_id, 'hours', trim_scale(t.hours)::text,
                      'earned_on', t.earned_on, 'source', t.source, 'reference', t.reference,
                      'session_id', t.session_id, 'created_at', t.created_at) AS state""",
    schema="training",
    entity="training_credit",
)


async def resolve_staff(session: AsyncSession, context: ImportContext) -> None:
    """Resolve step: which of the staged staff ids rotation knows, and their home districts."""
    staff_ids = set((await session.execute(text("SELECT DISTINCT staff_id FROM staged"))).scalars())
    known = await RotationClient(context.upstreams["rotation"]).staff_districts(staff_ids) if staff_ids else {}
    ids = sorted(known, key=str)
    await session.execute(text(
        "UPDATE staged s SET staff_known = true, staff_district = m.district "
        "FROM unnest(CAST(:ids AS uuid[]), CAST(:districts AS text[])) AS m(id, district) WHERE s.staff_id = m.id"),
        {"ids": ids, "districts": [known[i] for i in ids]})


TRAINING_HOURS.extra_columns.update({"staff_known": "boolean", "staff_district": "text"})
TRAINING_HOURS.resolve = resolve_staff
TRAINING_HOURS.upstreams = ("rotation",)
TRAINING_HOURS.checks_sql = [*TRAINING_HOURS.checks_sql, ("staff_id", """
    SELECT row_no, 'unknown staff member ' || staff_id AS message FROM staged WHERE staff_known IS NOT TRUE""")]
TRAINING_HOURS.recheck_after_merge = True
# Importers limited to districts: staff outside the caller's districts.
TRAINING_HOURS.scope_sql = """
    SELECT row_no, 'staff member ' || staff_id || ' is outside your districts' AS message
    FROM staged WHERE staff_known AND (staff_district IS NULL OR NOT (staff_district = ANY(:districts)))"""

SPECS = {KIND: TRAINING_HOURS}
