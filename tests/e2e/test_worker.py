"""The worker as a real process: a large import through the gateway runs as a job in
`spp serve worker`; the worker is killed (SIGKILL) mid-job and a new one finishes it."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from services.common.settings import Settings
from services.common.supervisor import ProcessGroup, process_env
from tests.conftest import TEST_SECRET, fetch
from tests.e2e.conftest import free_port

pytestmark = pytest.mark.e2e
HEADER = "学校代码,学校名称,区县代码,学段,城乡类别,小学在校生数\n"
ROWS = 10_000


@pytest.fixture
def platform_with_quick_sweeps(database_url, tmp_path):
    settings = Settings(env="test", database_url=database_url, jwt_secret=TEST_SECRET,
                        gateway_port=free_port(), partnership_port=free_port(), rotation_port=free_port(),
                        training_port=free_port(), worker_port=free_port())
    env = process_env(settings, database_url)
    # A dead worker is noticed after 1 s of silence; small batches make a job long enough to interrupt.
    env.update({"SPP_WORKER_HEARTBEAT_SECONDS": "0.3", "SPP_WORKER_STALLED_SECONDS": "1",
                "SPP_IMPORT_BATCH_ROWS": "250", "SPP_JOB_RETRY_SECONDS": "0"})
    group = ProcessGroup(settings, env, log_dir=tmp_path / "logs")
    group.start_all()
    try:
        group.wait_ready(timeout=60)
        yield group
    finally:
        group.stop_all()


async def test_a_job_survives_its_worker_being_killed(platform_with_quick_sweeps, token, db_engine):
    platform = platform_with_quick_sweeps
    body = (HEADER + "".join(f"E{i:06d},学校{i},110105,小学,乡村,1\n" for i in range(ROWS))).encode()
    async with httpx.AsyncClient(base_url=f"{platform.url('gateway')}/api/v1", timeout=30,
                                 headers={"Authorization": f"Bearer {token()}", "Accept-Language": "en"}) as client:
        assert (await client.post("/districts", json={"code": "110105", "name": "朝阳区"})).status_code == 201
        started = await client.post("/imports/schools", content=body, headers={"content-type": "text/csv"})
        assert started.status_code == 202, started.text
        location = started.headers["location"].removeprefix("/api/v1")
        for _ in range(1000):
            report = (await client.get(location)).json()
            if report["processed_rows"] > 0:
                break
            await asyncio.sleep(0.01)
        assert report["status"] == "running" and 0 < report["processed_rows"] < ROWS, report
        platform.children["worker"].kill()  # SIGKILL: no goodbye, the job stays `doing`
        platform.children["worker"].wait()
        assert await fetch(db_engine, "select status::text as s from procrastinate.procrastinate_jobs") == [
            {"s": "doing"}]
        assert await fetch(db_engine, "select count(*) as n from partnership.schools") == [{"n": 0}]
        platform.start("worker")
        platform.wait_ready(timeout=30, names=("worker",))
        for _ in range(600):
            report = (await client.get(location)).json()
            if report["status"] != "running":
                break
            await asyncio.sleep(0.1)
    assert (report["status"], report["inserted"], report["processed_rows"]) == ("completed", ROWS, ROWS)
    assert await fetch(db_engine, "select attempts from partnership.imports") == [{"attempts": 2}]
    assert await fetch(db_engine, "select count(*) as n from partnership.schools") == [{"n": ROWS}]
    # The report commits inside the job; procrastinate records the job's success right after.
    for _ in range(100):
        jobs = await fetch(db_engine, "select status::text as s from procrastinate.procrastinate_jobs")
        if jobs != [{"s": "doing"}]:
            break
        await asyncio.sleep(0.05)
    assert jobs == [{"s": "succeeded"}]
