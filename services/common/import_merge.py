"""Check the staged rows by SQL and merge them into the service's tables with their change-feed
rows, in one statement (the only one of an import that writes the service's tables)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.errors import Conflict, _sqlstate
from services.common.import_model import ImportContext, ImportMode, ImportReport, ImportSpec, RowError
from services.common.outbox import record_created


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


UNIQUE_VIOLATION = "23505"


async def _merge(session: AsyncSession, spec: ImportSpec, context: ImportContext, report: ImportReport,
                 mode: ImportMode) -> None:
    params = {**spec.params, "entity": spec.entity, "actor": context.actor, "request_id": context.request_id}
    for sql in spec.lock_sql:
        await session.execute(text(sql), spec.params)
    if spec.lock_sql:
        await _scope_after_lock(session, spec, context, report, mode)
    outcome = None
    if spec.insert_sql is not None:
        try:
            async with session.begin_nested():
                outcome = await _update_then_insert(session, spec, params)
        except IntegrityError as exc:
            if _sqlstate(exc) != UNIQUE_VIOLATION:
                raise
    every_row_inserted = outcome is not None and outcome["inserted"] == report.valid_rows
    if outcome is None:
        outcome = await _merge_with(session, spec, spec.merge_sql, params)
    report.inserted, report.updated = outcome["inserted"], outcome["updated"]
    # A plain INSERT that stored every staged row met no key stored meanwhile (the unique index
    # would have refused it): nothing can conflict late. Rows it skipped as stored, or a fallback
    # to `merge_sql`, may have met a record stored since the checks: look again.
    if spec.recheck_after_merge and not every_row_inserted:
        late = await _late_conflicts(session, spec)
        if late and mode == ImportMode.all_or_nothing:
            raise Conflict(f"{len(late)} rows conflict with records stored while this import ran; "
                           "nothing was written", slug="import-conflict",
                           extra={"errors": [e.model_dump() for e in late]})
        report.errors = _sorted([*report.errors, *late])
        report.rejected_rows += len({e.row for e in late})
        report.valid_rows -= len({e.row for e in late})
    report.unchanged = report.valid_rows - report.inserted - report.updated


async def _scope_after_lock(session: AsyncSession, spec: ImportSpec, context: ImportContext,
                            report: ImportReport, mode: ImportMode) -> None:
    """The importer's scope again, on the facts `lock_sql` refreshed: a school moved out of the
    importer's districts since the checks takes its rows out of reach (none written, or only those
    rows left out in a partial import)."""
    if context.districts is None or not spec.scope_sql:
        return
    params = {**spec.params, "districts": sorted(context.districts)}
    rows = sorted({row["row_no"] for row in (await session.execute(text(spec.scope_sql), params)).mappings()})
    if not rows:
        return
    errors = [RowError(row=row, field=None, message="outside your districts") for row in rows]
    if mode == ImportMode.all_or_nothing:
        raise Conflict(f"{len(rows)} rows are outside your districts: their schools moved while this import ran; "
                       "nothing was written", slug="import-conflict",
                       extra={"errors": [e.model_dump() for e in errors]})
    await session.execute(text("DELETE FROM staged USING unnest(CAST(:rows AS integer[])) AS moved(row_no) "
                               "WHERE staged.row_no = moved.row_no"), {"rows": rows})
    report.errors = _sorted([*report.errors, *errors])
    report.rejected_rows += len(rows)
    report.valid_rows -= len(rows)


async def _merge_with(session: AsyncSession, spec: ImportSpec, merge_sql: str, params: dict[str, Any]) -> Any:
    """One statement: the merge, a change-feed row per record it wrote, the spec's extra CTEs."""
    return (await session.execute(text(
        f"WITH merged AS ({merge_sql}), "
        f"feed AS (INSERT INTO {spec.schema}.changes (entity, key, op, state, actor, request_id) "
        "SELECT :entity, key, CASE WHEN inserted THEN 'create' ELSE 'update' END, state, "
        "CAST(:actor AS text), CAST(:request_id AS text) FROM merged)"
        f"{spec.merge_ctes} "
        "SELECT count(*) FILTER (WHERE inserted) AS inserted, count(*) FILTER (WHERE NOT inserted) AS updated "
        "FROM merged"), params)).mappings().one()


async def _update_then_insert(session: AsyncSession, spec: ImportSpec, params: dict[str, Any]) -> dict[str, int]:
    """The usual merge: the stored keys updated (with their feed rows, as `merge_sql` would),
    then the new keys by a plain INSERT and their feed entries, a thousand ids to an entry. A new
    key stored by someone else meanwhile breaks the INSERT's unique index; the caller then rolls
    back to its savepoint and runs `merge_sql`."""
    assert spec.insert_sql is not None and spec.created is not None and not spec.merge_ctes
    outcome = dict(await _merge_with(session, spec, spec.update_sql, params)) if spec.update_sql else {
        "inserted": 0, "updated": 0}
    inserted = (await session.execute(text(spec.insert_sql), params)).rowcount
    if inserted:
        # Every staged row inserted (the usual first import): their ids are the staged ones.
        staged = (await session.execute(text("SELECT count(*) FROM staged"))).scalar_one()
        created_sql = ("SELECT s.id, s.row_no FROM staged s" if inserted == staged else
                       f"SELECT s.id, s.row_no FROM staged s WHERE EXISTS "
                       f"(SELECT 1 FROM {spec.created.table} t WHERE t.id = s.id)")
        await record_created(session, spec.schema, entity=spec.entity, created_sql=created_sql, params=params)
    return {"inserted": outcome["inserted"] + inserted, "updated": outcome["updated"]}


async def _late_conflicts(session: AsyncSession, spec: ImportSpec) -> list[RowError]:
    errors = []
    for field_name, sql in spec.checks_sql if spec.recheck_sql is None else spec.recheck_sql:
        for row in (await session.execute(text(sql), spec.params)).mappings():
            errors.append(RowError(row=row["row_no"], field=None if field_name == "scope" else field_name,
                                   message=row["message"]))
    return errors
