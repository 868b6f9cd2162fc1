"""`spp serve worker`: the process that runs the services' jobs (services/common/jobs.py).

It is an ASGI app like the others only so it has the same `/livez`, `/readyz` and `/metrics`
(the supervisor and container health checks wait on them); the jobs run beside it, off any
service's request loop.
"""

from __future__ import annotations

import asyncio
import contextlib

import httpx
from fastapi import FastAPI

from services.common.app import create_service_app
from services.common.jobs import JobRunner
from services.common.settings import Settings, get_settings


def create_app(settings: Settings | None = None,
               transports: dict[str, httpx.AsyncBaseTransport] | None = None) -> FastAPI:
    settings = settings or get_settings()
    runner = JobRunner(settings, transports)

    async def start(app: FastAPI) -> None:
        runner.metrics = app.state.metrics  # queue depth, breakers and pools on the worker's /metrics
        await runner.open()
        app.state.jobs = runner
        app.state.jobs_task = asyncio.create_task(runner.run(wait=True), name="jobs")

    async def stop(app: FastAPI) -> None:
        # Cancelling the procrastinate workers lets running jobs finish for `worker_shutdown_seconds`,
        # then aborts them; an aborted attempt is retried (by the next worker) like a failed one.
        task = app.state.jobs_task
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await runner.close()

    return create_service_app(process="worker", settings=settings, routers=[], title="spp worker",
                              description="Runs bulk imports and other long work as durable jobs",
                              uses_database=False, extra_lifespan=start, on_shutdown=stop, docs=False)
