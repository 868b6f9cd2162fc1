"""Running the job queue in a test: the worker's runner in process, until the queues are empty."""

from __future__ import annotations

import httpx

from services.common.jobs import JobRunner
from services.common.settings import Settings


async def run_jobs(settings: Settings, **transports: httpx.AsyncBaseTransport) -> None:
    """Work off every queued job (as `spp serve worker` would), then stop."""
    runner = JobRunner(settings, transports)
    await runner.open()
    try:
        await runner.run(wait=False)
    finally:
        await runner.close()
