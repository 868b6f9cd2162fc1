"""The HTTP side of bulk imports, shared by the services: answer now, or run as a job."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.auth import Principal, Role
from services.common.errors import PROBLEM_JSON, Forbidden, NotFound
from services.common.imports import (
    ImportMode,
    ImportReport,
    ImportSpec,
    count_data_rows,
    load_report,
    run_import,
    save_report,
)

_log = logging.getLogger("spp.imports")
IMPORTERS = (Role.city_admin, Role.district_admin, Role.integrator)


def limited_to(actor: Principal) -> frozenset[str] | None:
    """The districts an importer is limited to, or None for city-wide.

    Every role that carries districts is limited to them (an integrator registered for one
    district no less than that district's administrator); a district administrator always is."""
    if actor.role == Role.district_admin or (actor.role != Role.city_admin and actor.districts):
        return actor.districts
    return None


def scope_of(actor: Principal, scope_sql: str | None) -> tuple[str | None, dict[str, Any]]:
    if actor.role not in IMPORTERS:
        raise Forbidden(f"role {actor.role} may not import", slug="role")
    districts = limited_to(actor)
    if districts is not None and scope_sql:
        return scope_sql, {"districts": sorted(districts)}
    return None, {}


def _answer(report: ImportReport, status: int) -> JSONResponse:
    body = report.model_dump(mode="json")
    if report.status == "rejected":
        # The problem's numeric `status` replaces the report's textual one, kept as `import_status`.
        body = {"type": "urn:spp:problem:import-rejected", "title": "Import rejected",
                "detail": f"{report.rejected_rows} of {report.total_rows} rows have errors; nothing was written",
                **body, "status": 422, "import_status": "rejected"}
        return JSONResponse(body, status_code=422, media_type=PROBLEM_JSON,
                            headers={"Location": f"/api/v1/imports/{report.id}"})
    return JSONResponse(body, status_code=status, headers={"Location": f"/api/v1/imports/{report.id}"})


async def handle_import(request: Request, session: AsyncSession, actor: Principal, spec: ImportSpec, *,
                        mode: ImportMode, dry_run: bool, scope_sql: str | None = None) -> JSONResponse:
    scope, params = scope_of(actor, scope_sql)
    body = await request.body()
    content_type = request.headers.get("content-type", "text/csv")
    settings = request.app.state.settings
    if count_data_rows(body, content_type) <= settings.import_sync_rows:
        report = await run_import(session, spec, body=body, content_type=content_type, mode=mode, dry_run=dry_run,
                                  scope_sql=scope, scope_params=params)
        await save_report(session, spec.schema, report)
        return _answer(report, 200)
    # A large file: record the job, answer 202 at once, and work in the background.
    report = ImportReport(id=f"{spec.kind}.{uuid.uuid4()}", kind=spec.kind, status="running",
                          mode=mode, dry_run=dry_run, total_rows=count_data_rows(body, content_type))
    await save_report(session, spec.schema, report)
    factory = request.app.state.session_factory
    tasks: dict = request.app.state.__dict__.setdefault("import_tasks", {})
    task = asyncio.create_task(_run_job(factory, spec, report.id, body, content_type, mode, dry_run, scope, params))
    tasks[task] = (spec.schema, report.id)
    task.add_done_callback(lambda done: tasks.pop(done, None))
    return _answer(report, 202)


STOPPED = "the service stopped before the import finished; nothing was written, send the file again"


async def stop_import_jobs(app: Any) -> None:
    """On shutdown: cancel this process's import jobs and report them failed, so no report stays
    `running` forever (their transactions roll back, so nothing of them was written)."""
    tasks: dict = app.state.__dict__.get("import_tasks", {})
    jobs = list(tasks.values())
    for task in list(tasks):
        task.cancel()
    await asyncio.gather(*list(tasks), return_exceptions=True)
    if not jobs:
        return
    async with app.state.session_factory() as session:
        for schema, job_id in jobs:
            await session.execute(text(
                f"UPDATE {schema}.imports SET status = 'failed', finished_at = clock_timestamp(), "
                "report = report || jsonb_build_object('status', 'failed', 'detail', CAST(:detail AS text)) "
                "WHERE id = :id AND status = 'running'"), {"id": job_id, "detail": STOPPED})
        await session.commit()


async def _run_job(factory, spec: ImportSpec, job_id: str, body: bytes, content_type: str, mode: ImportMode,
                   dry_run: bool, scope: str | None, params: dict[str, Any]) -> None:
    # Let the request that created the job commit its 'running' row first.
    await asyncio.sleep(0.05)
    try:
        async with factory() as session:
            report = await run_import(session, spec, body=body, content_type=content_type, mode=mode,
                                      dry_run=dry_run, scope_sql=scope, scope_params=params)
            report.id = job_id
            await save_report(session, spec.schema, report)
            await session.commit()
    except Exception as exc:  # the job's report says it failed; the log says why
        _log.exception("import job failed", extra={"import_id": job_id})
        async with factory() as session:
            failed = await load_report(session, spec.schema, job_id)
            if failed is not None:
                failed.status = "failed"
                failed.errors = [*failed.errors]
                await save_report(session, spec.schema, failed)
                await session.commit()
        del exc


async def get_import(session: AsyncSession, actor: Principal, schema: str, import_id: str) -> ImportReport:
    if actor.role not in IMPORTERS:
        raise Forbidden(f"role {actor.role} may not read imports", slug="role")
    report = await load_report(session, schema, import_id)
    if report is None:
        raise NotFound(f"import {import_id} does not exist", slug="import-not-found")
    return report
