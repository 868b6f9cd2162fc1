"""Bulk import of external training hours (继续教育学时), as other government systems send them.

Natural key (`source`, `reference`), the same as `POST /v1/training-hours`:

- a new key is inserted (and fed to the change feed as a `training_credit` create);
- a key already stored with the same staff, hours and date is an unchanged no-op, so re-importing a
  file inserts nothing;
- a key already stored with a different staff, hours or date is a per-row error (the 409
  `credit-mismatch` rule of the single post), found by a check SQL over the staged rows; the merge
  is `INSERT … ON CONFLICT (source, reference) DO NOTHING`, so an import can never change a credit;
- the source `studio_session` is reserved for studio attendance (row error).

Staff are owned by rotation. A row names its staff member by `staff_id` (our UUID), by `staff_no`
(工号, the number provincial continuing-education systems know), or both. Once the rows are
staged, the resolve step reads the local staff directory (services/training/directory.py, a copy
of rotation's registry kept from its change feed): `staff_no` → `staff_id`, then each staff id's
home district. Staff ids the directory does not hold yet (created a moment ago) are asked of
rotation, with bounded concurrency, and so are staff numbers: the directory may be behind (a new
database still bootstrapping, a registry imported a moment ago), and a provincial file must not be
refused for that. Numbers go `STAFF_NOS_PER_CALL` to a call of rotation's `GET /v1/internal/staff`,
`LOOKUP_CONCURRENCY` calls at a time, and at most `MAX_STAFF_NOS_ASKED` per import, so one file
cannot flood rotation; the numbers past that cap are row errors ("not in the staff directory yet":
sent again once the directory caught up, they resolve locally). Rotation unreachable is a 503 with
nothing written for an inline import, and a retry for a job. Unknown staff numbers or ids, a
`staff_no` that is not the given `staff_id`'s, and (for importers limited to districts) staff
outside the caller's districts are row errors.
"""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator, model_validator
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common import fast_rows
from services.common.import_template import Template
from services.common.imports import ImportContext, ImportSpec
from services.common.outbox import CreatedRecords
from services.common.vocabulary import office_date
from services.training.clients import RotationClient, StaffRef
from services.training.config import STUDIO_SESSION_SOURCE
from services.training.schemas import CREDIT_MAX_HOURS, CreditHours, Reference, Source

KIND = "training-hours"  # also the import id's prefix, by which the gateway routes GET /imports/{id}
# Staff ids missing from the directory asked of rotation at once, so one import cannot flood it.
LOOKUP_CONCURRENCY = 8
# Staff numbers per call of rotation's GET /v1/internal/staff (its limit), and at most per import.
STAFF_NOS_PER_CALL = 100
MAX_STAFF_NOS_ASKED = 2000

# 工号 as rotation stores it (services/rotation/schemas.py StaffNo).
StaffNo = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


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
    def _office_date(cls, value: Any) -> Any:
        return office_date(value)

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

# The ledger grows to millions of credits, a file brings a few hundred thousand: each staged row
# looks its key up in the ledger's unique index (a file's references run in order, so the lookups
# touch neighbouring pages), where a hash join would read and hash the whole ledger for every
# import. `OFFSET 0` keeps each lookup a lookup (the planner cannot turn it into a join).
LEDGER_HAS_KEY = """SELECT 1 FROM training.training_hours h
                    WHERE h.source = s.source AND h.reference = s.reference OFFSET 0"""

# Those lookups are made once, here, and marked on the staged row (`stored`): on a ledger of three
# million credits they take a second per 250,000 rows, and the mismatch check and the insert of
# new credits each made them again. Not at all when no stored credit of a source the file names
# has a reference between the file's lowest and highest of that source (a file of new credits,
# numbered on from the last one: the usual provincial delivery): one range probe per source,
# evaluated once (an uncorrelated EXISTS is the UPDATE's one-time filter).
MARK_STORED = f"""
    UPDATE staged s SET stored = true
    WHERE EXISTS (
            SELECT 1 FROM (SELECT source, min(reference) AS low, max(reference) AS high
                           FROM staged GROUP BY source) AS file
            WHERE EXISTS (SELECT 1 FROM training.training_hours h
                          WHERE h.source = file.source AND h.reference BETWEEN file.low AND file.high))
      AND EXISTS ({LEDGER_HAS_KEY})"""

# A stored credit with the same key but other facts: the single post's 409 `credit-mismatch`.
# Among the rows marked stored; after a merge that met keys stored meanwhile, among every row.
MISMATCH = """
    SELECT s.row_no,
           'a credit with source ' || quote_literal(s.source) || ' and reference ' || quote_literal(s.reference)
           || ' already exists with a different '
           || array_to_string(ARRAY[
                  CASE WHEN t.staff_id <> s.staff_id THEN 'staff_id' END,
                  CASE WHEN t.hours <> s.hours THEN 'hours' END,
                  CASE WHEN t.earned_on <> s.earned_on THEN 'earned_on' END], ', ') AS message
    FROM staged s CROSS JOIN LATERAL (
        SELECT t.staff_id, t.hours, t.earned_on FROM training.training_hours t
        WHERE t.source = s.source AND t.reference = s.reference OFFSET 0) AS t
    WHERE s.staff_id IS NOT NULL {rows}
      AND (t.staff_id, t.hours, t.earned_on) IS DISTINCT FROM (s.staff_id, s.hours, s.earned_on)"""
MISMATCH_SQL = MISMATCH.format(rows="AND s.stored")
LATE_MISMATCH_SQL = MISMATCH.format(rows="")

# staff_no → staff_id through the directory. A staff_no held by two directory rows (a renumbering
# that reached the copy out of order) resolves to nobody and is reported as unknown.
RESOLVE_STAFF_NO = """
    UPDATE staged s SET staff_id = d.id, staff_known = true, staff_district = d.home_district_code
    FROM (SELECT staff_no, (array_agg(id))[1] AS id, (array_agg(home_district_code))[1] AS home_district_code
          FROM training.staff_directory
          WHERE staff_no IN (SELECT staff_no FROM staged WHERE staff_id IS NULL)
          GROUP BY staff_no HAVING count(*) = 1) d
    WHERE s.staff_id IS NULL AND s.staff_no = d.staff_no"""

# Staff ids the file gives: known when the directory holds them.
RESOLVE_STAFF_ID = """
    UPDATE staged s SET staff_known = true, staff_district = d.home_district_code
    FROM training.staff_directory d WHERE d.id = s.staff_id AND s.staff_known IS NOT TRUE"""

# A new credit as the change feed carries it (`create`): its key and state.
CREDIT_KEY = "t.source || ':' || t.reference"
CREDIT_STATE = """jsonb_build_object(
    'id', t.id, 'staff_id', t.staff_id, 'hours', trim_scale(t.hours), 'earned_on', t.earned_on,
    'source', t.source, 'reference', t.reference, 'session_id', t.session_id, 'created_at', t.created_at)"""
CREDIT_FEED = f"{CREDIT_KEY} AS key, {CREDIT_STATE} AS state"

TRAINING_HOURS = ImportSpec(
    district_columns=("staff_district",),
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
    extra_columns={"staff_known": "boolean", "staff_district": "text", "staff_no_unasked": "boolean",
                   "stored": "boolean"},
    prepare=lambda row: {c: getattr(row, c) for c in COLUMNS},
    # Staff ids the file gives are looked up while staging (one hash join on the directory, not an
    # UPDATE of every row); RESOLVE_STAFF_ID then sees only the rows that left unknown.
    staged_join="LEFT JOIN training.staff_directory d ON d.id = CAST(converted.v_staff_id AS uuid)",
    staged_sql={"staff_known": "CASE WHEN d.id IS NOT NULL THEN true END", "staff_district": "d.home_district_code"},
    resolve_sql=(RESOLVE_STAFF_NO, RESOLVE_STAFF_ID, MARK_STORED),
    checks_sql=[
        ("reference", MISMATCH_SQL),
        ("staff_no", """
            SELECT row_no, 'unknown staff_no ' || quote_literal(staff_no) AS message
            FROM staged WHERE staff_id IS NULL AND staff_no_unasked IS NOT TRUE"""),
        ("staff_no", """
            SELECT row_no, 'staff_no ' || quote_literal(staff_no) || ' is not in the staff directory yet' AS message
            FROM staged WHERE staff_id IS NULL AND staff_no_unasked"""),
        ("staff_no", """
            SELECT s.row_no, 'staff_no ' || quote_literal(s.staff_no) || ' is not staff member ' || s.staff_id
                   AS message
            FROM staged s JOIN training.staff_directory d ON d.id = s.staff_id
            WHERE s.staff_no IS NOT NULL AND d.staff_no <> s.staff_no"""),
        ("staff_id", """
            SELECT row_no, 'unknown staff member ' || staff_id AS message
            FROM staged WHERE staff_id IS NOT NULL AND staff_known IS NOT TRUE"""),
    ],
    # Importers limited to districts: staff outside the caller's districts.
    scope_sql="""
        SELECT row_no, 'staff member ' || staff_id || ' is outside your districts' AS message
        FROM staged WHERE staff_known AND (staff_district IS NULL OR NOT (staff_district = ANY(:districts)))""",
    recheck_after_merge=True,
    recheck_sql=[("reference", LATE_MISMATCH_SQL)],
    # ON CONFLICT DO NOTHING: an existing credit is never changed (identical rows are no-ops and
    # differing ones were rejected above); only new credits come back, as feed `create`s.
    merge_sql=f"""
        INSERT INTO training.training_hours AS t (id, staff_id, hours, earned_on, source, reference)
        SELECT gen_random_uuid(), staff_id, hours, earned_on, source, reference
        FROM staged ORDER BY row_no
        ON CONFLICT (source, reference) DO NOTHING
        RETURNING (xmax = 0) AS inserted, {CREDIT_FEED}""",
    # The same in plain statements, for the usual case: nobody stores one of the keys meanwhile.
    insert_sql="""
        INSERT INTO training.training_hours (id, staff_id, hours, earned_on, source, reference)
        SELECT s.id, s.staff_id, s.hours, s.earned_on, s.source, s.reference
        FROM staged s WHERE s.stored IS NOT TRUE""",
    created=CreatedRecords(table="training.training_hours", key=CREDIT_KEY, state=CREDIT_STATE),
    schema="training",
    entity="training_credit",
    upstreams=("rotation",),
    # TrainingHoursImportRow's fields and its row rule, for the common row (the model decides the
    # rest and words the errors).
    fast={"staff_id": fast_rows.canonical_uuid, "staff_no": fast_rows.text(64),
          "hours": fast_rows.decimal(integer_digits=4, places=2, above=Decimal(0), at_most=Decimal(CREDIT_MAX_HOURS)),
          "earned_on": fast_rows.iso_date(office_date),
          "source": fast_rows.text(64, refuse=(STUDIO_SESSION_SOURCE,)), "reference": fast_rows.text(200)},
    fast_row=lambda row: row[0] is not None or row[1] is not None,
    fast_row_sql="{staff_id} IS NOT NULL OR {staff_no} IS NOT NULL",
    template=Template(
        title="继续教育学时",
        example={"staff_no": "T20180001", "hours": 4.5, "earned_on": date(2024, 10, 12), "source": "市级培训",
                 "reference": "BJ-2024-000123"},
        notes={"staff_id": "与工号二选一", "staff_no": "与教师编号二选一", "reference": "同一来源内唯一"}),
)


async def ask_rotation_about_misses(session: AsyncSession, context: ImportContext) -> None:
    """Resolve step, after the directory: staff numbers and staff ids it does not hold yet, asked
    of rotation. Every call is made before the merge, so rotation down is a 503 (or a job's
    retry) with nothing written."""
    rotation = RotationClient(context.upstreams["rotation"])
    gate = asyncio.Semaphore(LOOKUP_CONCURRENCY)
    await _ask_staff_numbers(session, rotation, gate)
    await _ask_staff_ids(session, rotation, gate)


async def _ask_staff_numbers(session: AsyncSession, rotation: RotationClient, gate: asyncio.Semaphore) -> None:
    unresolved = list((await session.execute(text(
        "SELECT DISTINCT staff_no FROM staged WHERE staff_id IS NULL AND staff_no IS NOT NULL ORDER BY staff_no"
    ))).scalars())
    if not unresolved:
        return
    asked, unasked = unresolved[:MAX_STAFF_NOS_ASKED], unresolved[MAX_STAFF_NOS_ASKED:]

    async def ask(numbers: list[str]) -> list[StaffRef]:
        async with gate:
            return await rotation.staff_by_numbers(numbers)

    wanted = set(asked)
    answers = await asyncio.gather(*(ask(asked[i:i + STAFF_NOS_PER_CALL])
                                     for i in range(0, len(asked), STAFF_NOS_PER_CALL)))
    known = [staff for answer in answers for staff in answer if staff.staff_no in wanted]
    if known:
        await session.execute(text(
            "UPDATE staged s SET staff_id = m.id, staff_known = true, staff_district = m.district "
            "FROM unnest(CAST(:nos AS text[]), CAST(:ids AS uuid[]), CAST(:districts AS text[])) "
            "AS m(staff_no, id, district) WHERE s.staff_id IS NULL AND s.staff_no = m.staff_no"),
            {"nos": [s.staff_no for s in known], "ids": [s.id for s in known],
             "districts": [s.home_district_code for s in known]})
    if unasked:
        await session.execute(text(
            "UPDATE staged s SET staff_no_unasked = true FROM unnest(CAST(:nos AS text[])) AS m(staff_no) "
            "WHERE s.staff_id IS NULL AND s.staff_no = m.staff_no"), {"nos": unasked})


async def _ask_staff_ids(session: AsyncSession, rotation: RotationClient, gate: asyncio.Semaphore) -> None:
    missing = list((await session.execute(text(
        "SELECT DISTINCT staff_id FROM staged WHERE staff_id IS NOT NULL AND staff_known IS NOT TRUE"))).scalars())
    if not missing:
        return

    async def ask(staff_id: UUID) -> StaffRef | None:
        async with gate:
            return await rotation.get_staff(staff_id)

    known = [staff for staff in await asyncio.gather(*(ask(i) for i in missing)) if staff is not None]
    if known:
        await session.execute(text(
            "UPDATE staged s SET staff_known = true, staff_district = m.district "
            "FROM unnest(CAST(:ids AS uuid[]), CAST(:districts AS text[])) AS m(id, district) "
            "WHERE s.staff_id = m.id"),
            {"ids": [s.id for s in known], "districts": [s.home_district_code for s in known]})


TRAINING_HOURS.resolve = ask_rotation_about_misses

SPECS = {KIND: TRAINING_HOURS}
