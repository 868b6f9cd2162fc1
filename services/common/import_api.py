"""The HTTP side of bulk imports, shared by the services: answer a small file now, or keep a large
one in the service's database and hand it to the worker as a job (services/common/jobs.py).

The body is streamed, never read whole: up to `import_sync_rows` rows it is kept in memory and
imported inline (200 or 422); past that, it goes to `<schema>.import_files` in chunks of 1 MiB
as it arrives, and the answer is 202 with `Location` as soon as the last chunk is stored.
An XLSX workbook (a ZIP: its rows cannot be counted as it arrives) is held whole, its rows counted
once it is (`count_data_rows`, in a thread), and then imported inline or stored for a job alike.
"""

from __future__ import annotations

import asyncio
import email.message
import json
import uuid
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.auth import Principal, Role
from services.common.context import request_id_var
from services.common.errors import PROBLEM_JSON, Forbidden, NotFound
from services.common.imports import (
    ImportContext,
    ImportMode,
    ImportReport,
    ImportSpec,
    count_data_rows,
    load_report,
    run_import,
    save_report,
)
from services.common.jobs import defer_import
from services.common.messages import render, translate_title
from services.common.tracing import current_traceparent
from services.common.xlsx_rows import is_xlsx

IMPORTERS = (Role.city_admin, Role.district_admin, Role.integrator)
CHUNK_BYTES = 1 << 20


def limited_to(actor: Principal) -> frozenset[str] | None:
    """The districts an importer is limited to, or None for city-wide.

    Every role that carries districts is limited to them (an integrator registered for one
    district no less than that district's administrator); a district administrator always is."""
    if actor.role == Role.district_admin or (actor.role != Role.city_admin and actor.districts):
        return actor.districts
    return None


def file_name(request: Request) -> str | None:
    """The file's name when the upload says it (`Content-Disposition: attachment; filename="…"`,
    RFC 6266), for the import's audit event."""
    header = request.headers.get("content-disposition")
    if not header:
        return None
    message = email.message.Message()
    message["content-disposition"] = header
    name = message.get_filename()
    return name[:255] if name else None


def require_importer(actor: Principal) -> None:
    if actor.role not in IMPORTERS:
        raise Forbidden(f"role {actor.role} may not import", slug="role")


def _answer(report: ImportReport, status: int) -> JSONResponse:
    body = report.model_dump(mode="json")
    if report.status == "rejected":
        # The problem's numeric `status` replaces the report's textual one, kept as `import_status`;
        # the problem's `detail` replaces the report's (a job's failure, none here).
        body = {"type": "urn:spp:problem:import-rejected", "title": translate_title("Import rejected"),
                **body, "status": 422, "import_status": "rejected",
                "detail": render("import.rejected", rejected=report.rejected_rows, total=report.total_rows)}
        return JSONResponse(body, status_code=422, media_type=PROBLEM_JSON,
                            headers={"Location": f"/api/v1/imports/{report.id}"})
    return JSONResponse(body, status_code=status, headers={"Location": f"/api/v1/imports/{report.id}"})


class _Upload:
    """Counts rows as the body arrives and decides where the bytes go."""

    def __init__(self, content_type: str, sync_rows: int) -> None:
        self.content_type = content_type
        self.json = "json" in content_type
        self.sync_rows = sync_rows
        self.marks = 0           # newlines (CSV: the header's too) or '{' (JSON objects)
        self.buffer = bytearray()
        self.xlsx = is_xlsx(content_type, b"")  # or found by the first bytes
        self.counted: int | None = None         # a workbook's rows, once it is whole

    @property
    def rows(self) -> int:
        if self.xlsx:
            return self.counted or 0
        return self.marks if self.json else max(0, self.marks - 1)

    def add(self, piece: bytes) -> None:
        self.marks += piece.count(b"{" if self.json else b"\n")
        if not self.xlsx and len(self.buffer) < 4 <= len(self.buffer) + len(piece):
            self.xlsx = is_xlsx(self.content_type, bytes(self.buffer[:4]) + piece[:4])
        self.buffer += piece


async def handle_import(request: Request, session: AsyncSession, actor: Principal, spec: ImportSpec, *,
                        mode: ImportMode, dry_run: bool) -> JSONResponse:
    require_importer(actor)
    content_type = request.headers.get("content-type", "text/csv")
    settings = request.app.state.settings
    upload = _Upload(content_type, settings.import_sync_rows)
    report: ImportReport | None = None
    chunks = 0
    async for piece in request.stream():
        upload.add(piece)
        if report is None and upload.rows > settings.import_sync_rows:
            report = await _open_job(session, spec, actor, mode=mode, dry_run=dry_run, content_type=content_type,
                                     file_name=file_name(request))
        if report is not None and len(upload.buffer) >= CHUNK_BYTES:
            await _store_chunk(session, spec.schema, report.id, chunks, upload.buffer)
            chunks += 1
            upload.buffer.clear()
    if report is None and upload.xlsx:
        upload.counted = await asyncio.to_thread(count_data_rows, upload.buffer, content_type)
        if upload.counted > settings.import_sync_rows:
            report = await _open_job(session, spec, actor, mode=mode, dry_run=dry_run, content_type=content_type)
            for start in range(0, len(upload.buffer), CHUNK_BYTES):
                await _store_chunk(session, spec.schema, report.id, chunks, upload.buffer[start:start + CHUNK_BYTES])
                chunks += 1
            upload.buffer.clear()
    if report is None:
        context = ImportContext(actor=actor.sub, request_id=request_id_var.get(), districts=limited_to(actor),
                                upstreams=request.app.state.upstreams, batch_rows=settings.import_batch_rows,
                                role=str(actor.role), file_name=file_name(request))
        report = await run_import(session, spec, body=bytes(upload.buffer), content_type=content_type, mode=mode,
                                  dry_run=dry_run, context=context)
        await save_report(session, spec.schema, report)
        return _answer(report, 200)
    if upload.buffer:
        await _store_chunk(session, spec.schema, report.id, chunks, upload.buffer)
    # An estimate (lines, objects or a sheet's rows) until the worker has read the file.
    report.total_rows = upload.rows
    await save_report(session, spec.schema, report)
    await defer_import(session, service=spec.schema, import_id=report.id)
    return _answer(report, 202)


async def _open_job(session: AsyncSession, spec: ImportSpec, actor: Principal, *, mode: ImportMode, dry_run: bool,
                    content_type: str, file_name: str | None = None) -> ImportReport:
    """Record the import as `running`, with what the worker needs to run it as this caller."""
    report = ImportReport(id=f"{spec.kind}.{uuid.uuid4()}", kind=spec.kind, status="running", mode=mode,
                          dry_run=dry_run, total_rows=0)
    await save_report(session, spec.schema, report)
    districts = limited_to(actor)
    params: dict[str, Any] = {"actor": actor.sub, "request_id": request_id_var.get(), "role": str(actor.role),
                              "mode": mode.value, "dry_run": dry_run,
                              "content_type": content_type, "file_name": file_name,
                              "districts": sorted(districts) if districts is not None else None}
    traceparent = current_traceparent()
    if traceparent is not None:  # the job continues the upload's trace
        params["traceparent"] = traceparent
    await session.execute(text(f"UPDATE {spec.schema}.imports SET params = CAST(:params AS jsonb) WHERE id = :id"),
                          {"params": json.dumps(params), "id": report.id})
    return report


async def _store_chunk(session: AsyncSession, schema: str, import_id: str, seq: int, data: bytearray) -> None:
    await session.execute(text(f"INSERT INTO {schema}.import_files (import_id, seq, data) VALUES (:id, :seq, :data)"),
                          {"id": import_id, "seq": seq, "data": bytes(data)})


async def get_import(session: AsyncSession, actor: Principal, schema: str, import_id: str) -> ImportReport:
    if actor.role not in IMPORTERS:
        raise Forbidden(f"role {actor.role} may not read imports", slug="role")
    report = await load_report(session, schema, import_id)
    if report is None:
        raise NotFound(f"import {import_id} does not exist", slug="import-not-found")
    return report
