"""Work that takes seconds runs as a job on a PostgreSQL-backed queue (procrastinate), in the
worker process (`spp serve worker`), never on a request's event loop (design.md §2).

- A service accepts a file, keeps it in its own database (`<schema>.import_files`), records the
  import as `running` and defers the job with one SQL call in the same transaction
  (`defer_import`): the file, the report and the job commit together or not at all.
- The worker runs one procrastinate worker per distinct database of the services (one when they
  share `SPP_DATABASE_URL`; with `SPP_<SERVICE>_DATABASE_URL`, each service's jobs and files stay
  in that service's database), listening to the queues named after those services.
- A job survives a restart. A failed attempt (an upstream down, a lost connection) rolls back
  and is retried with backoff; an attempt cut short by a worker that died is found by the sweep
  (procrastinate's stalled jobs: a `doing` job whose worker stopped sending heartbeats) and
  retried; a file that keeps killing its worker is reported `failed` after `job_attempts`
  starts; and the sweep reports `failed` any `running` import whose job has ended or vanished.
  No report stays `running` forever.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import procrastinate
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.db import create_engine, create_session_factory, sync_free_url
from services.common.errors import DomainError, UpstreamUnavailable
from services.common.imports import (
    ImportContext,
    ImportMode,
    ImportReport,
    ImportSpec,
    RowError,
    run_import,
    save_report,
)
from services.common.settings import SERVICES, Settings
from services.common.tracing import job_span

_log = logging.getLogger("spp.jobs")
IMPORT_TASK = "spp.import"
GAVE_UP = "the import failed {attempts} times; the last time: {why}"
JOB_WORK_MEM = "64MB"  # per import job's connection (a 250,000-row file sorts in about 40 MB)
ENDED = "the import's job ended without a report (its worker stopped); send the file again"


def specs_of(service: str) -> dict[str, ImportSpec]:
    """The import kinds a service declares in `services/<service>/imports.py` (`SPECS`).

    The worker hosts every service's jobs, so it reads their import declarations; it never
    touches another service's tables (each job works in the database of the service it runs for)."""
    return importlib.import_module(f"services.{service}.imports").SPECS


# Deferring with SQL in the request's own transaction (asyncpg), instead of procrastinate's
# psycopg connector in another one: the job exists exactly when the import row and file do.
DEFER_SQL = """
    SELECT unnest(procrastinate.procrastinate_defer_jobs_v1(ARRAY[
        ROW(:queue, :task, 0, NULL, NULL, CAST(:args AS jsonb), NULL)::procrastinate.procrastinate_job_to_defer_v1
    ])) AS id"""


# Other work a service runs as a job: `services/<service>/tasks.py` declares `TASKS` (name → an
# async function taking `sessions`, `args` and `attempts`), deferred with `defer_task`.
SERVICE_TASK = "spp.task"


def tasks_of(service: str) -> dict[str, Any]:
    try:
        return importlib.import_module(f"services.{service}.tasks").TASKS
    except ModuleNotFoundError:
        return {}


async def defer_task(session: AsyncSession, *, service: str, task: str, args: dict[str, Any]) -> int:
    """Queue `task` of `service` in the caller's transaction: the job exists exactly when its rows do."""
    return (await session.execute(text(DEFER_SQL), {
        "queue": service, "task": SERVICE_TASK,
        "args": json.dumps({"service": service, "task": task, "args": args})})).scalar_one()


async def defer_import(session: AsyncSession, *, service: str, import_id: str) -> int:
    job_id = (await session.execute(text(DEFER_SQL), {
        "queue": service, "task": IMPORT_TASK,
        "args": json.dumps({"service": service, "import_id": import_id})})).scalar_one()
    await session.execute(text(f"UPDATE {service}.imports SET job_id = :job WHERE id = :id"),
                          {"job": job_id, "id": import_id})
    return job_id


QUEUE_SQL = """
    SELECT j.queue_name, j.status::text, count(*),
           coalesce(extract(epoch FROM clock_timestamp() - min(e.at)), 0)::float8
    FROM procrastinate.procrastinate_jobs j
    LEFT JOIN procrastinate.procrastinate_events e ON e.job_id = j.id AND e.type = 'deferred'
    WHERE j.status IN ('todo', 'doing') AND j.queue_name = ANY(:queues)
    GROUP BY 1, 2"""


@dataclass
class Database:
    """One database of the services: its engine for the jobs' work and its procrastinate app."""

    url: str
    services: list[str]
    engine: AsyncEngine
    app: procrastinate.App
    sessions: Any = None


@dataclass
class JobRunner:
    """The worker's jobs for every service, grouped by database."""

    settings: Settings
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None
    databases: list[Database] = field(default_factory=list)
    upstreams: dict[str, Any] = field(default_factory=dict)
    by_service: dict[str, Database] = field(default_factory=dict)
    metrics: Any = None  # the worker app's (services.common.middleware.Metrics), so /metrics shows ours

    async def open(self) -> None:
        from services.common.app import ServiceToken, make_upstreams
        from services.common.middleware import Metrics

        groups: dict[str, list[str]] = {}
        for service in SERVICES:
            url = self.settings.database_url_of(service)
            if not url:
                raise RuntimeError(f"no database URL for {service}: set SPP_DATABASE_URL")
            groups.setdefault(url, []).append(service)
        for url, services in groups.items():
            app = procrastinate.App(connector=procrastinate.PsycopgConnector(
                conninfo=sync_free_url(url), min_size=1, max_size=4,
                kwargs={"options": "-c search_path=procrastinate", "application_name": "spp-worker"}))
            self._register(app)
            await app.open_async()
            engine = create_engine(url, self.settings, pool_size=4)
            database = Database(url=url, services=services, engine=engine, app=app,
                                sessions=create_session_factory(engine))
            self.databases.append(database)
            self.by_service.update(dict.fromkeys(services, database))
        names = sorted({u for s in SERVICES for spec in specs_of(s).values() for u in spec.upstreams})
        token = ServiceToken(self.settings, "worker") if self.settings.signing_key() else None
        self.metrics = self.metrics or Metrics("worker")
        self.upstreams = make_upstreams(self.settings, "worker", names, self.metrics,
                                        dict(self.transports or {}), token)
        self.metrics.watch_breakers(self.upstreams)
        for database in self.databases:
            self.metrics.watch_pool("+".join(database.services), database.engine)
        self.metrics.add_sampler("jobs", self.sample_queues)

    async def sample_queues(self) -> None:
        """Queue depth and the oldest job's age per queue and status, for the worker's /metrics:
        what to scale the workers on (KEDA, docs/operations.md). Only `todo` and `doing` jobs are
        read (procrastinate's partial index covers them), so finished jobs piling up cost nothing."""
        for database in self.databases:
            async with database.engine.connect() as conn:
                rows = (await conn.execute(text(QUEUE_SQL), {"queues": database.services})).all()
            found = {(queue, status): (jobs, age) for queue, status, jobs, age in rows}
            for queue in database.services:
                for status in ("todo", "doing"):
                    jobs, age = found.get((queue, status), (0, 0.0))
                    self.metrics.jobs.labels(self.metrics.process, queue, status).set(jobs)
                    self.metrics.job_age.labels(self.metrics.process, queue, status).set(age)

    async def close(self) -> None:
        for upstream in self.upstreams.values():
            await upstream.aclose()
        for database in self.databases:
            await database.app.close_async()
            await database.engine.dispose()
        self.databases.clear()

    def _register(self, app: procrastinate.App) -> None:
        retry = procrastinate.RetryStrategy(max_attempts=self.settings.job_attempts,
                                            wait=self.settings.job_retry_seconds)

        @app.task(name=IMPORT_TASK, pass_context=True, retry=retry)
        async def import_task(context: procrastinate.JobContext, service: str, import_id: str) -> None:
            await self.run_import_job(service, import_id)

        @app.task(name=SERVICE_TASK, pass_context=True, retry=retry)
        async def service_task(context: procrastinate.JobContext, service: str, task: str,
                               args: dict[str, Any]) -> None:
            await tasks_of(service)[task](sessions=self.by_service[service].sessions, args=args,
                                          attempts=self.settings.job_attempts)

    async def run(self, *, wait: bool = True) -> None:
        """Sweep, then work: until stopped (`wait`), or until the queues are empty (tests)."""
        await self.sweep()
        workers = [database.app.run_worker_async(
            queues=database.services, wait=wait, install_signal_handlers=False,
            concurrency=self.settings.worker_concurrency, listen_notify=wait,
            fetch_job_polling_interval=1.0 if wait else 0.1,
            update_heartbeat_interval=self.settings.worker_heartbeat_seconds,
            stalled_worker_timeout=self.settings.worker_stalled_seconds,
            shutdown_graceful_timeout=self.settings.worker_shutdown_seconds,
            name="spp-worker") for database in self.databases]
        if wait:
            workers.append(self._sweep_forever())
        await asyncio.gather(*workers)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.worker_heartbeat_seconds)
            try:
                await self.sweep()
            except Exception:  # a sweep that fails (database restarting) is tried again next time
                _log.exception("job sweep failed")

    async def sweep(self) -> None:
        """Retry the jobs of workers that stopped sending heartbeats; report `failed` the running
        imports whose job has ended or vanished."""
        for database in self.databases:
            manager = database.app.job_manager
            await manager.prune_stalled_workers(self.settings.worker_stalled_seconds)
            for job in await manager.get_stalled_jobs(seconds_since_heartbeat=self.settings.worker_stalled_seconds):
                _log.warning("retrying stalled job", extra={"job_id": job.id, "task": job.task_name})
                await manager.retry_job(job)
            async with database.engine.begin() as conn:
                for service in database.services:
                    await conn.execute(text(
                        f"UPDATE {service}.imports i SET status = 'failed', finished_at = clock_timestamp(), "
                        "report = i.report || jsonb_build_object('status', 'failed', 'detail', CAST(:detail AS text)) "
                        "WHERE i.status = 'running' AND i.job_id IS NOT NULL AND NOT EXISTS ("
                        "  SELECT 1 FROM procrastinate.procrastinate_jobs j "
                        "  WHERE j.id = i.job_id AND j.status IN ('todo', 'doing'))"), {"detail": ENDED})
                    await conn.execute(text(
                        f"DELETE FROM {service}.import_files f USING {service}.imports i "
                        "WHERE i.id = f.import_id AND i.status <> 'running'"))

    async def run_import_job(self, service: str, import_id: str) -> None:
        database = self.by_service[service]
        async with database.sessions() as session:
            row = (await session.execute(text(
                f"UPDATE {service}.imports SET attempts = attempts + 1 WHERE id = :id AND status = 'running' "
                "RETURNING kind, params, report, attempts"), {"id": import_id})).mappings().first()
            await session.commit()
        if row is None:
            return  # finished (or failed) already: a retry after the report was saved
        report = ImportReport.model_validate(row["report"])
        if row["attempts"] > self.settings.job_attempts:
            await self._fail(database, service, report, GAVE_UP.format(
                attempts=row["attempts"] - 1, why="its worker stopped while running it"))
            return
        # The job continues the trace of the upload that deferred it (services/common/tracing.py).
        with job_span(f"import {row['kind']}", traceparent=row["params"].get("traceparent"),
                      attributes={"spp.service": service, "spp.import_id": import_id}):
            await self._run_import(database, service, import_id, row, report)

    async def _run_import(self, database: Database, service: str, import_id: str, row: Any,
                          report: ImportReport) -> None:
        params = row["params"]
        spec = specs_of(service)[row["kind"]]
        context = ImportContext(
            actor=params["actor"], request_id=params.get("request_id"), role=params.get("role"),
            file_name=params.get("file_name"),
            districts=frozenset(params["districts"]) if params.get("districts") is not None else None,
            upstreams=self.upstreams, batch_rows=self.settings.import_batch_rows,
            progress=lambda n: self._progress(database, service, import_id, n))
        try:
            # One connection for the whole job, its session committing step by step (run_import):
            # the staging table is the connection's, and only the merge holds a write transaction
            # on the service's tables, committed here with the report.
            async with database.engine.connect() as connection:
                session = AsyncSession(bind=connection, expire_on_commit=False, autoflush=False)
                try:
                    # Sorts and hash joins over a whole file's staged rows stay in memory.
                    await session.execute(text(f"SET work_mem = '{JOB_WORK_MEM}'"))
                    body = await read_file(session, service, import_id)
                    await session.commit()
                    report = await run_import(session, spec, body=body, content_type=params["content_type"],
                                              mode=ImportMode(params["mode"]), dry_run=params["dry_run"],
                                              context=context, report=report, commit=session.commit)
                    del body
                    await save_report(session, service, report)
                    await session.execute(text(f"DELETE FROM {service}.import_files WHERE import_id = :id"),
                                          {"id": import_id})
                    await session.commit()
                finally:
                    await session.close()
                    await _drop_staged(connection)
        except Exception as exc:
            transient = isinstance(exc, UpstreamUnavailable) or not isinstance(exc, DomainError)
            if transient and row["attempts"] < self.settings.job_attempts:
                _log.warning("import attempt failed; it will be retried", extra={"import_id": import_id},
                             exc_info=exc)
                raise  # procrastinate retries it after `job_retry_seconds`
            why = exc.detail if isinstance(exc, DomainError) else f"{type(exc).__name__}"
            if transient:
                why = GAVE_UP.format(attempts=row["attempts"], why=why)
            errors = (exc.extra or {}).get("errors") if isinstance(exc, DomainError) else None
            await self._fail(database, service, report, why, errors)

    async def _progress(self, database: Database, service: str, import_id: str, rows: int) -> None:
        # Its own short transaction, so GET /v1/imports/{id} sees it while the import's runs on.
        async with database.engine.begin() as conn:
            await conn.execute(text(
                f"UPDATE {service}.imports "
                "SET report = jsonb_set(report, '{processed_rows}', to_jsonb(CAST(:n AS int))) "
                "WHERE id = :id AND status = 'running'"), {"n": rows, "id": import_id})

    async def _fail(self, database: Database, service: str, report: ImportReport, why: str,
                    errors: list[dict] | None = None) -> None:
        _log.error("import failed", extra={"import_id": report.id, "reason": why})
        report.status, report.detail = "failed", why
        if errors:
            report.errors = [*report.errors, *(RowError.model_validate(e) for e in errors)]
        async with database.sessions() as session:
            await save_report(session, service, report)
            await session.execute(text(f"DELETE FROM {service}.import_files WHERE import_id = :id"),
                                  {"id": report.id})
            await session.commit()


async def _drop_staged(connection: Any) -> None:
    """The job's staging table and memory setting go with the job, not with the pooled connection."""
    if connection.closed or connection.invalidated:
        return
    try:
        if connection.in_transaction():
            await connection.rollback()
        await connection.execute(text("DROP TABLE IF EXISTS pg_temp.staged"))
        await connection.execute(text("RESET work_mem"))
        await connection.commit()
    except Exception:  # a connection lost with the job's failure: the pool discards it anyway
        _log.warning("could not drop an import's staging table", exc_info=True)


async def read_file(session: AsyncSession, schema: str, import_id: str) -> bytearray:
    """The stored file, chunk by chunk into one buffer (held once, not again as a copy)."""
    body = bytearray()
    result = await session.stream(text(f"SELECT data FROM {schema}.import_files WHERE import_id = :id ORDER BY seq"),
                                  {"id": import_id})
    async for (chunk,) in result:
        body += chunk
    return body
