"""Bulk import: CSV as Chinese offices really produce it (UTF-8 with or without BOM, or GB18030;
Chinese or English headers), XLSX (services/common/xlsx_rows.py) or JSON; per-row reports; upsert
by natural key.

A plain CSV file is parsed by PostgreSQL itself (services/common/import_sql.py); other files are
parsed and validated in Python. The valid rows are staged by `COPY` into a temporary table; rules
that need the database (unknown references, district scope) are checked by SQL over the staged
rows, and the merge writes them with their change-feed rows in one transaction
(services/common/import_merge.py). All-or-nothing by default; with
`mode=partial` the good rows are kept. Each service supplies an `ImportSpec` for its kinds.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

# The engine's parts, one job each; their public names stay importable from here.
from services.common import import_sql, xlsx_rows
from services.common.audit import record_import
from services.common.import_merge import _check, _merge, _sorted
from services.common.import_model import (
    ImportContext,
    ImportMode,
    ImportReport,
    ImportSpec,
    Resolver,
    RowError,
    load_report,
    save_report,
)
from services.common.import_rows import (
    BOMS,
    NUL_MESSAGE,
    FastPath,
    Validator,
    _batches,
    count_data_rows,
    decode,
    iter_rows,
    parse_rows,
    sniff_delimiter,
)
from services.common.import_stage import copy_staged, create_staged

__all__ = ["BOMS", "NUL_MESSAGE", "FastPath", "ImportContext", "ImportMode", "ImportReport", "ImportSpec",
           "Resolver", "RowError", "Validator", "copy_staged", "count_data_rows", "create_staged", "decode",
           "iter_rows", "load_report", "parse_rows", "run_import", "save_report", "sniff_delimiter"]


Commit = Callable[[], Awaitable[None]]


async def _nothing() -> None:
    return None


PLAN_IN_THREAD = 1 << 20  # bytes


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
    await create_staged(session, spec, keep=commit is not None)
    await step()
    # Decoding a file and looking at its cells' edges takes 0.1-0.3 s for 20 MB: in a thread, so a
    # worker's heartbeats and other jobs are not held up (a small file is planned at once).
    in_sql = (await asyncio.to_thread(import_sql.plan, spec, body, content_type) if len(body) > PLAN_IN_THREAD
              else import_sql.plan(spec, body, content_type))
    if in_sql is not None:
        try:
            total, staged, errors = await import_sql.stage(session, spec, validator, in_sql)
        except import_sql.Unparsed:
            in_sql = None  # a file COPY refuses (ragged rows, …): Python reads it and words what is wrong
        else:
            await step()
            if context.progress is not None:
                await context.progress(total)
    if in_sql is None:
        total, staged = await _stage_in_python(session, spec, validator, body, content_type, context, errors, step)
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


async def _stage_in_python(session: AsyncSession, spec: ImportSpec, validator: Validator, body: bytes,
                           content_type: str, context: ImportContext, errors: list[RowError],
                           step: Commit) -> tuple[int, int]:
    """Parse and validate in batches, each batch's valid rows copied into `staged`: (rows, staged)."""
    total = staged = 0
    # A workbook is unzipped and parsed at once (CPU-bound): in a thread, off the event loop.
    written = validator.written
    rows = (await asyncio.to_thread(xlsx_rows.open_rows, body, spec.aliases, written)
            if xlsx_rows.is_xlsx(content_type, body) else iter_rows(body, content_type, spec.aliases, written))
    numbers = getattr(rows, "numbers", None)  # a sheet's rows keep the numbers Excel shows
    for batch in _batches(rows, context.batch_rows):
        first = total + 1 if numbers is None else numbers[total:total + len(batch)]
        valid, batch_errors = validator.batch(batch, first)
        errors.extend(batch_errors)
        if valid:
            await copy_staged(session, spec, valid)
            await step()
            staged += len(valid)
        total += len(batch)
        if context.progress is not None:
            await context.progress(total)
        await asyncio.sleep(0)  # let a worker's heartbeat and health answers through between batches
    return total, staged


async def _audit(session: AsyncSession, spec: ImportSpec, context: ImportContext, report: ImportReport,
                 body: bytes, content_type: str) -> None:
    """The import's one audit event, in the merge's transaction (services/common/audit.py)."""
    counts = {"mode": report.mode.value, "total_rows": report.total_rows, "valid_rows": report.valid_rows,
              "inserted": report.inserted, "updated": report.updated, "unchanged": report.unchanged,
              "rejected_rows": report.rejected_rows}
    await record_import(session, spec.schema, kind=spec.kind, import_id=report.id, actor=context.actor,
                        role=context.role, request_id=context.request_id, counts=counts, body=body,
                        file_name=context.file_name, content_type=content_type,
                        district_columns=spec.district_columns)
