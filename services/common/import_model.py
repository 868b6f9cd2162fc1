"""What a bulk import is: its modes, its per-row report, the spec a service declares for each kind
of record, the context it runs in (services/common/imports.py runs it), and the stored report."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_serializer
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.messages import translate, use_language
from services.common.outbox import CreatedRecords

if TYPE_CHECKING:
    from services.common.import_template import Template


class ImportMode(StrEnum):
    all_or_nothing = "all_or_nothing"
    partial = "partial"


class RowError(BaseModel):
    row: int = Field(description="CSV and JSON: the 1-based data row (the header is row 0); XLSX: the row "
                                 "number Excel shows (the header is usually row 1)")
    field: str | None = None
    message: str

    @field_serializer("message")
    def _in_readers_language(self, message: str) -> str:
        return translate(message) or message  # stored in English (save_report)


class ImportReport(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "staff.0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f", "kind": "staff", "status": "completed",
        "mode": "partial", "dry_run": False, "total_rows": 120, "processed_rows": 120, "valid_rows": 118,
        "inserted": 95, "updated": 20, "unchanged": 3, "rejected_rows": 2,
        "errors": [{"row": 17, "field": "home_school_code", "message": "unknown school 11019999"},
                   {"row": 42, "field": "staff_no", "message": "duplicate of row 8 in this file"}],
        "created_at": "2024-08-28T10:00:00+08:00", "finished_at": "2024-08-28T10:00:03+08:00"}]})

    id: str
    kind: str
    status: str = Field(description="validated (dry run), completed, rejected, running or failed")
    mode: ImportMode
    dry_run: bool
    total_rows: int
    processed_rows: int = 0
    valid_rows: int = 0
    inserted: int = 0
    updated: int = Field(default=0, description="stored records this file changed")
    unchanged: int = Field(default=0, description="valid rows equal to what is stored: nothing written, "
                           "nothing in the change feed (a file sent again is all unchanged)")
    rejected_rows: int = 0
    errors: list[RowError] = []
    detail: str | None = Field(default=None, description="why a job failed (status failed)")
    created_at: datetime | None = None
    finished_at: datetime | None = None

    @field_serializer("detail")
    def _in_readers_language(self, detail: str | None) -> str | None:
        return translate(detail)


Resolver = Callable[[AsyncSession, "ImportContext"], Awaitable[None]]


@dataclass
class ImportSpec:
    """How one kind of record is imported into one service's tables.

    The engine stages the file's valid rows in a temporary table `staged` (row_no + `columns` +
    `extra_columns`), then runs `resolve_sql` and `resolve` (fill references the file names
    indirectly: a school's district, a staff number's id), then `checks_sql` and, for an importer
    limited to districts, `scope_sql`, and finally the merge."""

    kind: str
    model: type[BaseModel]
    aliases: dict[str, str]                 # header as written (Chinese or English) -> field name
    key: Sequence[str]                      # natural key fields
    columns: Sequence[str]                  # staged and merged columns, in order
    # INSERT … SELECT … FROM staged ON CONFLICT … RETURNING (xmax = 0) AS inserted, <key> AS key,
    # to_jsonb(<row>) AS state — the merge feeds the change feed in the same statement. Bound:
    # :actor (who imports).
    merge_sql: str
    schema: str                             # the service schema whose `changes` table is fed
    entity: str                             # the change feed's entity name
    checks_sql: Sequence[tuple[str, str]] = ()  # (field, SELECT row_no, message FROM staged WHERE …)
    params: dict[str, Any] = field(default_factory=dict)  # bound into checks_sql
    # Run again after the merge: a concurrent import may have stored a conflicting row between the
    # checks and the merge (the merge then skipped ours). Such rows are errors after all.
    recheck_after_merge: bool = False
    # The checks made again after such a merge (default: `checks_sql`), e.g. without a shortcut
    # the first checks took on facts marked while staging, which a concurrent writer may have changed.
    recheck_sql: Sequence[tuple[str, str]] | None = None
    prepare: Callable[[BaseModel], dict[str, Any]] | None = None
    column_types: dict[str, str] = field(default_factory=dict)  # staged column -> SQL type
    # Staged columns the file does not carry, filled by the resolve step (name -> SQL type).
    extra_columns: dict[str, str] = field(default_factory=dict)
    # Extra columns filled while a plain CSV is staged in SQL (services/common/import_sql.py), from
    # a join on the converted values (`v_<column>`), e.g. a school's district from the local
    # directory: `staged_join` "LEFT JOIN <table> d ON d.code = v_school", `staged_sql`
    # {"district": "d.district_code"}. The resolve steps must still fill what this left NULL (rows
    # the model staged, codes the directory does not hold yet).
    staged_join: str | None = None
    staged_sql: dict[str, str] = field(default_factory=dict)
    resolve_sql: Sequence[str] = ()         # e.g. UPDATE staged SET … FROM <local directory> …
    resolve: Resolver | None = None         # e.g. ask the owner service over HTTP, then UPDATE staged
    # Rows outside the importer's districts (:districts, a text[]): SELECT row_no[, message] FROM staged …
    scope_sql: str | None = None
    # The merge for when nobody else stores one of the file's keys meanwhile, in plain statements
    # (no ON CONFLICT, no RETURNING through a CTE: together about a third of a 150,000-row merge).
    # `update_sql` (upserts only): `merge_sql` over the staged rows whose key is stored already,
    # RETURNING as `merge_sql` does. `insert_sql`: INSERT … SELECT s.id, … FROM staged s WHERE the
    # key is not stored, nothing returned, unsorted (the staged rows lie in file order already, and
    # sorting 250,000 of them cost 0.1 s); the ids come from the staged column `id`, which the
    # engine adds for such a spec (services/common/import_stage.py `ordered_id`). `created`: the
    # table the rows went into and how the feed gives one (services/common/outbox.py
    # `record_created`: the feed holds the new ids a thousand to an entry). Tried first under a
    # savepoint; a unique violation (a concurrent writer won a key) rolls it back and `merge_sql`
    # runs instead.
    insert_sql: str | None = None
    created: CreatedRecords | None = None
    update_sql: str | None = None
    # Extra data-modifying CTEs after `merged` (e.g. a history row per inserted record).
    merge_ctes: str = ""
    # Run first in the merge's transaction: lock the read-model rows the merge copies facts from
    # (e.g. a school's district), so they cannot change before the merge commits, and refresh the
    # staged copies of those facts from them (they were resolved in an earlier transaction).
    lock_sql: Sequence[str] = ()
    upstreams: Sequence[str] = ()           # the services `resolve` calls
    # Staged columns naming districts: the districts the import touched, on its one audit event.
    district_columns: Sequence[str] = ()
    # The fast path (see `FastPath`): per staged column, a plain-Python converter from a CSV cell
    # (stripped, not blank) to the value `prepare` would stage, raising when it is not sure;
    # `fast_row` (values in `columns` order) rejects what the model's row validators would.
    fast: Mapping[str, Callable[[str], Any]] | None = None
    fast_row: Callable[[tuple], bool] | None = None
    # `fast_row` in SQL, for a CSV file PostgreSQL parses (services/common/import_sql.py): a
    # condition with each column named as {column}, e.g. "{staff_id} IS NOT NULL".
    fast_row_sql: str | None = None
    # The downloadable template of this kind (services/common/import_template.py).
    template: Template | None = None


@dataclass
class ImportContext:
    """Who imports and with what: the same for an import answered inline and for a job."""

    actor: str                               # the token's `sub`, for created_by and audit
    districts: frozenset[str] | None         # the importer's limit; None is city-wide
    request_id: str | None = None            # the upload's request id, carried into the change feed
    role: str | None = None                  # the importer's role, for the audit event
    file_name: str | None = None             # as the upload named it (Content-Disposition), for audit
    upstreams: Mapping[str, Any] = field(default_factory=dict)  # name -> services.common.upstream.Upstream
    batch_rows: int = 5000
    # Called with the rows processed so far, after each batch (a job reports its progress).
    progress: Callable[[int], Awaitable[None]] | None = None


async def save_report(session: AsyncSession, schema: str, report: ImportReport) -> None:
    """Insert or update the stored report; the report then carries the stored timestamps.

    `finished_at` is the clock at the save (not the transaction's start), so it never precedes
    `created_at`."""
    row = (await session.execute(text(
        f"INSERT INTO {schema}.imports (id, kind, status, report, finished_at) "
        "VALUES (:id, :kind, :status, CAST(:report AS jsonb), "
        "CASE WHEN :status IN ('running') THEN NULL ELSE clock_timestamp() END) "
        "ON CONFLICT (id) DO UPDATE SET status = excluded.status, report = excluded.report, "
        "finished_at = excluded.finished_at RETURNING created_at, finished_at"),
        {"id": report.id, "kind": report.kind, "status": report.status,
         "report": _stored(report)})).mappings().one()
    report.created_at, report.finished_at = row["created_at"], row["finished_at"]


def _stored(report: ImportReport) -> str:
    """Stored in English; RowError and ImportReport translate their texts when read."""
    with use_language("en"):
        return report.model_dump_json()


async def load_report(session: AsyncSession, schema: str, import_id: str) -> ImportReport | None:
    row = (await session.execute(text(
        f"SELECT report, created_at, finished_at FROM {schema}.imports WHERE id = :id"),
        {"id": import_id})).mappings().first()
    if row is None:
        return None
    report = ImportReport.model_validate(row["report"])
    report.created_at, report.finished_at = row["created_at"], row["finished_at"]
    return report
