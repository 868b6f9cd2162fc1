"""Bulk import of external training hours (继续教育学时), as other government systems send them.

Natural key (`source`, `reference`), the same as `POST /v1/training-hours`:

- a new key is inserted (and fed to the change feed as a `training_credit` create);
- a key already stored with the same staff, hours and date is an unchanged no-op, so re-importing a
  file inserts nothing;
- a key already stored with a different staff, hours or date is a per-row error (the 409
  `credit-mismatch` rule of the single post), found by a check SQL over the staged rows; the merge
  is `INSERT … ON CONFLICT (source, reference) DO NOTHING`, so an import can never change a credit;
- the source `studio_session` is reserved for studio attendance (row error).

Staff are owned by rotation; a row names its staff member by `staff_id` (our UUID) or by
`staff_no` (工号, the number provincial continuing-education systems know), or both. Both resolve
through the local staff directory (services/training/directory.py) in SQL over the staged rows:
the spec's `resolve_sql` fills `staff_id` from `staff_no`, then checks report an unknown staff_no,
a staff_no that is not the given staff_id's, and (district administrators) staff outside the
caller's districts. A `staff_id` the directory does not hold yet is asked of rotation before
anything is staged (`GET /v1/staff/{id}`, bounded concurrency; rotation unreachable → 503, nothing
written); the answers are bound into the checks as uuid/district arrays, so a large file that runs
as a background job checks against the same answer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from datetime import date
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator, model_validator
from sqlalchemy import bindparam, text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.auth import Principal, Role
from services.common.errors import Forbidden
from services.common.import_api import IMPORTERS
from services.common.imports import ImportSpec, parse_rows, validate_rows
from services.training.clients import RotationClient, StaffRef
from services.training.config import STUDIO_SESSION_SOURCE
from services.training.repository import UUIDS
from services.training.schemas import CreditHours, Reference, Source

KIND = "training-hours"  # also the import id's prefix, by which the gateway routes GET /imports/{id}
# Staff ids missing from the directory asked of rotation at once, so one import cannot flood it.
LOOKUP_CONCURRENCY = 8

# 工号 as rotation stores it (services/rotation/schemas.py StaffNo).
StaffNo = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
_CHINESE_DATE = re.compile(r"^\s*(\d{4})\s*[年/.\-]\s*(\d{1,2})\s*[月/.\-]\s*(\d{1,2})\s*日?\s*$")


class TrainingHoursImportRow(BaseModel):
    """One external credit; unknown columns (姓名, 备注, …) are ignored."""

    model_config = ConfigDict(extra="ignore")

    staff_id: UUID | None = None
    staff_no: StaffNo | None = None
    hours: CreditHours
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

    @model_validator(mode="after")
    def _names_a_staff_member(self) -> TrainingHoursImportRow:
        if self.staff_id is None and self.staff_no is None:
            raise ValueError("give staff_id or staff_no (工号)")
        return self


COLUMNS = ("staff_id", "staff_no", "hours", "earned_on", "source", "reference")

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
    WHERE s.staff_id IS NOT NULL
      AND (t.staff_id, t.hours, t.earned_on) IS DISTINCT FROM (s.staff_id, s.hours, s.earned_on)"""

TRAINING_HOURS = ImportSpec(
    kind=KIND,
    model=TrainingHoursImportRow,
    aliases={
        "工号": "staff_no", "教职工号": "staff_no",
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
                      'id', t.id, 'staff_id', t.staff_id, 'hours', trim_scale(t.hours),
                      'earned_on', t.earned_on, 'source', t.source, 'reference', t.reference,
                      'session_id', t.session_id, 'created_at', t.created_at) AS state""",
    schema="training",
    entity="training_credit",
)


# staff_no → staff_id through the directory. A staff_no held by two directory rows (a renumbering
# that reached the copy out of order) resolves to nobody and is reported as unknown.
RESOLVE_STAFF_NO = """
    UPDATE staged s SET staff_id = d.id
    FROM (SELECT staff_no, (array_agg(id))[1] AS id FROM training.staff_directory
          WHERE staff_no IN (SELECT staff_no FROM staged WHERE staff_id IS NULL)
          GROUP BY staff_no HAVING count(*) = 1) d
    WHERE s.staff_id IS NULL AND s.staff_no = d.staff_no"""

# Staff the directory holds, and those rotation confirmed on a miss (bound per request); one row
# each, the directory's when the consumer caught up with a staff member in between.
_KNOWN = """
    SELECT id, home_district_code AS district FROM training.staff_directory
    UNION ALL
    SELECT a.id, a.district FROM unnest(CAST(:asked_ids AS uuid[]), CAST(:asked_districts AS text[])) a(id, district)
    WHERE NOT EXISTS (SELECT 1 FROM training.staff_directory d WHERE d.id = a.id)"""

STAFF_CHECKS = [
    ("staff_no", """
        SELECT row_no, 'unknown staff_no ' || quote_literal(staff_no) AS message
        FROM staged WHERE staff_id IS NULL"""),
    ("staff_no", """
        SELECT s.row_no, 'staff_no ' || quote_literal(s.staff_no) || ' is not staff member ' || s.staff_id
               AS message
        FROM staged s JOIN training.staff_directory d ON d.id = s.staff_id
        WHERE s.staff_no IS NOT NULL AND d.staff_no <> s.staff_no"""),
    ("staff_id", f"""
        SELECT s.row_no, 'unknown staff member ' || s.staff_id AS message
        FROM staged s WHERE s.staff_id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM ({_KNOWN}) k WHERE k.id = s.staff_id)"""),
]

SCOPE_CHECK = ("scope", f"""
    SELECT s.row_no, 'staff member ' || s.staff_id || ' is outside your districts' AS message
    FROM staged s JOIN ({_KNOWN}) k ON k.id = s.staff_id
    WHERE NOT coalesce(k.district = ANY(CAST(:my_districts AS text[])), false)""")


def spec_for(actor: Principal, asked: dict[UUID, str | None]) -> ImportSpec:
    """The spec with this request's staff steps. `asked`: staff ids missing from the directory
    that rotation knows, with their home districts."""
    ids = sorted(asked, key=str)
    params: dict[str, Any] = {"asked_ids": ids, "asked_districts": [asked[i] for i in ids]}
    checks = [*TRAINING_HOURS.checks_sql, *STAFF_CHECKS]
    if actor.role == Role.district_admin:
        params["my_districts"] = sorted(actor.districts)
        checks.append(SCOPE_CHECK)
    return dataclasses.replace(TRAINING_HOURS, resolve_sql=[RESOLVE_STAFF_NO], checks_sql=checks, params=params,
                               recheck_after_merge=True)


async def _ask_rotation(rotation: RotationClient, staff_ids: list[UUID]) -> dict[UUID, str | None]:
    gate = asyncio.Semaphore(LOOKUP_CONCURRENCY)

    async def one(staff_id: UUID) -> StaffRef | None:
        async with gate:
            return await rotation.get_staff(staff_id)

    return {staff.id: staff.home_district_code
            for staff in await asyncio.gather(*(one(i) for i in staff_ids)) if staff is not None}


async def prepare(*, body: bytes, content_type: str, actor: Principal, rotation: RotationClient,
                  session: AsyncSession) -> ImportSpec:
    """Ask rotation about the file's staff ids the directory does not hold (before anything is
    written) and build the spec."""
    if actor.role not in IMPORTERS:
        raise Forbidden(f"role {actor.role} may not import", slug="role")
    rows = parse_rows(body, content_type, TRAINING_HOURS.aliases)
    valid, _ = validate_rows(TRAINING_HOURS, rows)
    staff_ids = sorted({values["staff_id"] for _, values in valid if values["staff_id"] is not None}, key=str)
    missing: list[UUID] = []
    if staff_ids:
        held = set((await session.execute(
            text("SELECT id FROM training.staff_directory WHERE id = ANY(:ids)").bindparams(
                bindparam("ids", type_=UUIDS)), {"ids": staff_ids})).scalars())
        missing = [i for i in staff_ids if i not in held]
    return spec_for(actor, await _ask_rotation(rotation, missing) if missing else {})
