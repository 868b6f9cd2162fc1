"""Bulk import: CSV as Chinese offices really produce it (UTF-8 with or without BOM, or GB18030;
Chinese or English headers) or JSON; per-row reports; upsert by natural key.

The fast path stages the valid rows with asyncpg `COPY` into a temporary table and merges them
with one `INSERT … ON CONFLICT DO UPDATE`; rules that need the database (unknown references,
district scope) are checked by SQL over the staged rows. All-or-nothing by default; with
`mode=partial` the good rows are kept. Each service supplies an `ImportSpec` for its kinds.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.audit import record_import
from services.common.errors import Conflict, Unprocessable


class ImportMode(StrEnum):
    all_or_nothing = "all_or_nothing"
    partial = "partial"


class RowError(BaseModel):
    row: int = Field(description="1-based data row (the header is row 0)")
    field: str | None = None
    message: str


class ImportReport(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "staff.0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f", "kind": "staff", "status": "completed",
        "mode": "partial", "dry_run": False, "total_rows": 120, "processed_rows": 120, "valid_rows": 118,
        "inserted": 95, "updated": 23, "rejected_rows": 2,
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
    updated: int = 0
    rejected_rows: int = 0
    errors: list[RowError] = []
    detail: str | None = Field(default=None, description="why a job failed (status failed)")
    created_at: datetime | None = None
    finished_at: datetime | None = None


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
    prepare: Callable[[BaseModel], dict[str, Any]] | None = None
    column_types: dict[str, str] = field(default_factory=dict)  # staged column -> SQL type
    # Staged columns the file does not carry, filled by the resolve step (name -> SQL type).
    extra_columns: dict[str, str] = field(default_factory=dict)
    resolve_sql: Sequence[str] = ()         # e.g. UPDATE staged SET … FROM <local directory> …
    resolve: Resolver | None = None         # e.g. ask the owner service over HTTP, then UPDATE staged
    # Rows outside the importer's districts (:districts, a text[]): SELECT row_no[, message] FROM staged …
    scope_sql: str | None = None
    # Extra data-modifying CTEs after `merged` (e.g. a history row per inserted record).
    merge_ctes: str = ""
    upstreams: Sequence[str] = ()           # the services `resolve` calls
    # The fast path (see `FastPath`): per staged column, a plain-Python converter from a CSV cell
    # (stripped, not blank) to the value `prepare` would stage, raising when it is not sure;
    # `fast_row` (values in `columns` order) rejects what the model's row validators would.
    fast: Mapping[str, Callable[[str], Any]] | None = None
    fast_row: Callable[[tuple], bool] | None = None
    # Staged columns naming districts: the districts the import touched, on its one audit event.
    district_columns: Sequence[str] = ()


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


# Byte-order marks, longest first. Excel's "Unicode text" is UTF-16 (LE) with a BOM; GB18030 has
# its own BOM (the encoding of U+FEFF), which some Chinese office tools write.
BOMS = ((b"\x84\x31\x95\x33", "gb18030"), (b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"),
        (b"\xfe\xff", "utf-16-be"))
NUL_MESSAGE = "contains a NUL character (\\x00), which cannot be stored"


def decode(body: bytes) -> str:
    """A BOM decides; without one, UTF-8 first, then GB18030 (a superset of GBK/GB2312)."""
    for bom, encoding in BOMS:
        if body.startswith(bom):
            try:
                return body[len(bom):].decode(encoding)
            except UnicodeDecodeError as exc:
                raise Unprocessable(f"the file starts with a {encoding} byte-order mark but is not {encoding} "
                                    "text", slug="bad-encoding") from exc
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return body.decode("gb18030")
        except UnicodeDecodeError as exc:
            raise Unprocessable("the file is neither UTF-8 nor GB18030 text", slug="bad-encoding") from exc


def sniff_delimiter(text: str) -> str:
    """Tab or comma, by the header line: Excel's "Unicode text" export is tab-separated."""
    header = text.split("\n", 1)[0]
    return "\t" if header.count("\t") > header.count(",") else ","


def iter_rows(body: bytes, content_type: str, aliases: dict[str, str]) -> Iterator[dict[str, Any]]:
    """The file's data rows, one dict each (field name -> value), read lazily for CSV.

    Problems with the file as a whole (encoding, JSON syntax or shape, an empty CSV) raise a 422
    before the first row is yielded; a CSV broken further down raises when it is reached."""
    if "json" in content_type:
        try:
            data = json.loads(decode(body))
        except json.JSONDecodeError as exc:
            raise Unprocessable(f"the JSON body is not valid: {exc.msg}", slug="bad-file") from exc
        except RecursionError:  # e.g. 100,000 nested arrays: a file built to exhaust the parser
            raise Unprocessable("the JSON body is nested too deeply", slug="bad-file") from None
        rows = data.get("rows") if isinstance(data, dict) else data
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise Unprocessable("a JSON import is a list of objects (or {\"rows\": [...]})", slug="bad-file")
        return iter([{aliases.get(str(k).strip(), str(k).strip()): v for k, v in r.items()} for r in rows])
    content = decode(body)
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=sniff_delimiter(content))
    try:
        header = next(reader)
    except StopIteration:
        raise Unprocessable("the CSV file is empty", slug="bad-file") from None
    except csv.Error as exc:
        raise Unprocessable(f"the CSV file cannot be read at line {reader.line_num}: {exc}", slug="bad-file") from exc
    return _csv_rows(reader, [aliases.get(h.strip(), h.strip()) for h in header])


def _csv_rows(reader: Any, names: list[str]) -> Iterator[dict[str, Any]]:
    try:
        for values in reader:
            if not any(v.strip() for v in values):
                continue  # blank lines that spreadsheets leave at the end
            yield {name: (value.strip() or None) for name, value in zip(names, values)}
    except csv.Error as exc:
        raise Unprocessable(f"the CSV file cannot be read at line {reader.line_num}: {exc}",
                            slug="bad-file") from exc


def parse_rows(body: bytes, content_type: str, aliases: dict[str, str]) -> list[dict[str, Any]]:
    return list(iter_rows(body, content_type, aliases))


class FastPath:
    """Validation of the common row in plain Python, about ten times cheaper than the model.

    Each converter accepts only the canonical forms whose staged value is certain (a date as
    2024-03-05 or a form `office_date` rewrites to it, a label or an enum value, text within its
    length) and raises on anything else; a row with a value it refuses, a blank required column,
    a NUL, or one `fast_row` refuses goes through the model instead, so every error message is the
    model's own. Columns the file does not carry take the model field's default."""

    def __init__(self, spec: ImportSpec) -> None:
        self.row_check = spec.fast_row
        self.plan: list[tuple[str, Callable[[str], Any], bool, Any]] = []
        converters = spec.fast or {}
        for name in spec.columns:
            info = spec.model.model_fields[name]
            default = None if info.is_required() else info.get_default(call_default_factory=True)
            self.plan.append((name, converters[name], info.is_required(),
                              default.value if isinstance(default, Enum) else default))

    def __call__(self, raw: dict[str, Any]) -> tuple | None:
        values = []
        try:
            for name, convert, required, default in self.plan:
                value = raw.get(name)
                if value is None:
                    if required:
                        return None
                    values.append(default)
                elif "\x00" in value:
                    return None
                else:
                    values.append(convert(value))
        except Exception:  # noqa: BLE001 - anything the fast path is unsure of goes to the model
            return None
        row = tuple(values)
        return row if self.row_check is None or self.row_check(row) else None


class Validator:
    """Model validation per row (or the spec's fast path first, for CSV cells), and duplicates
    of the natural key across the whole file. Valid rows come out as tuples in `columns` order."""

    def __init__(self, spec: ImportSpec, *, fast: bool = False) -> None:
        self.spec = spec
        self.first_seen: dict[tuple, int] = {}
        self.fast = FastPath(spec) if fast and spec.fast is not None else None
        self.key_at = [list(spec.columns).index(k) for k in spec.key]

    def _slow(self, raw: dict[str, Any], number: int, errors: list[RowError]) -> tuple | None:
        spec = self.spec
        cleaned = {k: v for k, v in raw.items() if v is not None}
        # PostgreSQL text cannot hold NUL: a row error here, not a failed COPY (500) later.
        nul = [k for k, v in cleaned.items() if isinstance(v, str) and "\x00" in v]
        if nul:
            errors.extend(RowError(row=number, field=k.replace("\x00", "\\x00"), message=NUL_MESSAGE)
                          for k in nul)
            return None
        try:
            record = spec.model.model_validate(cleaned)
        except ValidationError as exc:
            for err in exc.errors():
                errors.append(RowError(row=number, field=".".join(str(p) for p in err["loc"]) or None,
                                       message=err["msg"]))
            return None
        values = spec.prepare(record) if spec.prepare else record.model_dump(mode="python")
        return tuple(values.get(c) for c in spec.columns)

    def batch(self, rows: list[dict[str, Any]], first: int) -> tuple[list[tuple], list[RowError]]:
        """Rows numbered from `first`: the valid ones as (number, *staged values), and the errors."""
        valid: list[tuple] = []
        errors: list[RowError] = []
        fast, seen_at, key_at, key_field = self.fast, self.first_seen.setdefault, self.key_at, self.spec.key[0]
        for number, raw in enumerate(rows, start=first):
            values = fast(raw) if fast is not None else None
            if values is None:
                values = self._slow(raw, number, errors)
                if values is None:
                    continue
            key = tuple(values[i] for i in key_at)
            seen = seen_at(key, number)
            if seen != number:
                errors.append(RowError(row=number, field=key_field, message=f"duplicate of row {seen} in this file"))
                continue
            valid.append((number, *values))
        return valid, errors


def _batches(rows: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


async def create_staged(session: AsyncSession, spec: ImportSpec, *, keep: bool = False) -> None:
    """The temporary table `staged`: row_no, the spec's columns and the columns resolve fills.

    Dropped at commit, or with `keep` kept for the connection's session (a job stages in several
    short transactions and drops it itself). No index: the resolve steps rewrite every row, and
    the checks and the merge read the whole table anyway."""
    types = ", ".join([*(f"{c} {spec.column_types.get(c, 'text')}" for c in spec.columns),
                       *(f"{c} {t}" for c, t in spec.extra_columns.items())])
    await session.execute(text(f"CREATE TEMP TABLE staged (row_no integer NOT NULL, {types}) "
                               f"ON COMMIT {'PRESERVE ROWS' if keep else 'DROP'}"))


async def copy_staged(session: AsyncSession, spec: ImportSpec, valid: list[tuple]) -> None:
    """COPY valid rows (row_no, *columns) into `staged` (binary COPY: 13–23× the ORM's insert rate)."""
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    await raw.copy_records_to_table("staged", columns=["row_no", *spec.columns], records=valid)


def _sorted(errors: list[RowError]) -> list[RowError]:
    return sorted(errors, key=lambda e: (e.row, e.field or ""))


async def _check(session: AsyncSession, spec: ImportSpec, context: ImportContext) -> list[RowError]:
    """The spec's checks over the staged rows, and the importer's scope."""
    errors = []
    checks = list(spec.checks_sql)
    if context.districts is not None and spec.scope_sql:
        checks.append(("scope", spec.scope_sql))
    params = {**spec.params, "districts": sorted(context.districts or ())}
    for field_name, sql in checks:
        for row in (await session.execute(text(sql), params)).mappings():
            errors.append(RowError(row=row["row_no"], field=None if field_name == "scope" else field_name,
                                   message=row.get("message") or "outside your districts"))
    return errors


Commit = Callable[[], Awaitable[None]]


async def _nothing() -> None:
    return None


async def run_import(session: AsyncSession, spec: ImportSpec, *, body: bytes, content_type: str,
                     mode: ImportMode, dry_run: bool, context: ImportContext,
                     report: ImportReport | None = None, commit: Commit | None = None) -> ImportReport:
    """Parse and validate in batches, stage, resolve, check and (unless a dry run or rejected) merge.

    Without `commit` everything runs in the caller's transaction (a small file answered inline).
    A job passes `commit` (its session is bound to one connection): validation then runs outside
    any transaction, and staging, each resolve step and the checks commit on their own, all of
    them on the session's temporary table, so the only transaction that writes the service's
    tables, and holds back every change feed while it is open, is the merge, which the caller
    commits with the report. All-or-nothing is that transaction."""
    report = report or ImportReport(id=f"{spec.kind}.{uuid.uuid4()}", kind=spec.kind, status="running",
                                    mode=mode, dry_run=dry_run, total_rows=0)
    step = commit or _nothing
    validator = Validator(spec, fast="json" not in content_type)
    errors: list[RowError] = []
    staged = total = 0
    await create_staged(session, spec, keep=commit is not None)
    await step()
    for batch in _batches(iter_rows(body, content_type, spec.aliases), context.batch_rows):
        valid, batch_errors = validator.batch(batch, total + 1)
        errors.extend(batch_errors)
        if valid:
            await copy_staged(session, spec, valid)
            await step()
            staged += len(valid)
        total += len(batch)
        if context.progress is not None:
            await context.progress(total)
        await asyncio.sleep(0)  # let a worker's heartbeat and health answers through between batches
    report.total_rows = total
    if staged:
        await session.execute(text("ANALYZE staged"))  # temporary tables are never auto-analyzed
        for sql in spec.resolve_sql:
            await session.execute(text(sql), spec.params)
            await step()
        if spec.resolve is not None:
            await spec.resolve(session, context)
            await step()
        errors.extend(await _check(session, spec, context))
        await step()
    bad_rows = {e.row for e in errors}
    report.errors = _sorted(errors)
    report.rejected_rows = len(bad_rows)
    report.valid_rows = total - len(bad_rows)
    report.processed_rows = total
    if dry_run:
        report.status = "validated"
        return report
    if bad_rows and mode == ImportMode.all_or_nothing:
        report.status = "rejected"
        return report
    if staged:
        if bad_rows:
            # A join, not `row_no = ANY(:rows)`: `staged` has no index, and a list of rows as long
            # as the file would be compared with every row.
            await session.execute(text("DELETE FROM staged USING unnest(CAST(:rows AS integer[])) AS bad(row_no) "
                                       "WHERE staged.row_no = bad.row_no"), {"rows": sorted(bad_rows)})
            await step()
        await _merge(session, spec, context, report, mode)
    await _audit(session, spec, context, report, body, content_type)
    report.status = "completed"
    return report


async def _audit(session: AsyncSession, spec: ImportSpec, context: ImportContext, report: ImportReport,
                 body: bytes, content_type: str) -> None:
    """The import's one audit event, in the merge's transaction (services/common/audit.py)."""
    counts = {"mode": report.mode.value, "total_rows": report.total_rows, "valid_rows": report.valid_rows,
              "inserted": report.inserted, "updated": report.updated, "rejected_rows": report.rejected_rows}
    await record_import(session, spec.schema, kind=spec.kind, import_id=report.id, actor=context.actor,
                        role=context.role, request_id=context.request_id, counts=counts, body=body,
                        file_name=context.file_name, content_type=content_type,
                        district_columns=spec.district_columns)


async def _merge(session: AsyncSession, spec: ImportSpec, context: ImportContext, report: ImportReport,
                 mode: ImportMode) -> None:
    outcome = (await session.execute(text(
        f"WITH merged AS ({spec.merge_sql}), "
        f"feed AS (INSERT INTO {spec.schema}.changes (entity, key, op, state, actor, request_id) "
        "SELECT :entity, key, CASE WHEN inserted THEN 'create' ELSE 'update' END, state, "
        "CAST(:actor AS text), CAST(:request_id AS text) FROM merged)"
        f"{spec.merge_ctes} "
        "SELECT count(*) FILTER (WHERE inserted) AS inserted, count(*) FILTER (WHERE NOT inserted) AS updated "
        "FROM merged"), {**spec.params, "entity": spec.entity, "actor": context.actor,
                         "request_id": context.request_id})).mappings().one()
    report.inserted, report.updated = outcome["inserted"], outcome["updated"]
    if spec.recheck_after_merge:
        late = await _late_conflicts(session, spec)
        if late and mode == ImportMode.all_or_nothing:
            raise Conflict(f"{len(late)} rows conflict with records stored while this import ran; "
                           "nothing was written", slug="import-conflict",
                           extra={"errors": [e.model_dump() for e in late]})
        report.errors = _sorted([*report.errors, *late])
        report.rejected_rows += len({e.row for e in late})
        report.valid_rows -= len({e.row for e in late})


async def _late_conflicts(session: AsyncSession, spec: ImportSpec) -> list[RowError]:
    errors = []
    for field_name, sql in spec.checks_sql:
        for row in (await session.execute(text(sql), spec.params)).mappings():
            errors.append(RowError(row=row["row_no"], field=None if field_name == "scope" else field_name,
                                   message=row["message"]))
    return errors


def count_data_rows(body: bytes, content_type: str) -> int:
    """A cheap estimate of the rows in a file, to decide between answering now and a job."""
    if "json" in content_type:
        return body.count(b"{")
    return max(0, body.count(b"\n") - 1)


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
         "report": report.model_dump_json()})).mappings().one()
    report.created_at, report.finished_at = row["created_at"], row["finished_at"]


async def load_report(session: AsyncSession, schema: str, import_id: str) -> ImportReport | None:
    row = (await session.execute(text(
        f"SELECT report, created_at, finished_at FROM {schema}.imports WHERE id = :id"),
        {"id": import_id})).mappings().first()
    if row is None:
        return None
    report = ImportReport.model_validate(row["report"])
    report.created_at, report.finished_at = row["created_at"], row["finished_at"]
    return report
