"""Imports as durable jobs (services/common/jobs.py): a large file answers 202 at once, a worker
runs it in batches with visible progress while reads go on, and no job is lost or left `running`
when a worker dies, an upstream is down, or a job ends without a report."""

from __future__ import annotations

import asyncio
import json
import time

import httpx

from services.common.jobs import ENDED
from services.common.migrate import job_databases
from services.common.settings import Settings
from services.rotation.app import create_app as create_rotation
from tests.conftest import asgi, fetch
from tests.feed import drain, read_all
from tests.jobs import run_jobs
from tests.partnership import factories as f

URL = "/v1/imports/schools"
CSV = {"content-type": "text/csv"}
HEADER = "学校代码,学校名称,区县代码,学段,城乡类别,小学在校生数\n"
JOB = ("select queue_name, task_name, args, status::text as status, attempts from procrastinate.procrastinate_jobs "
       "order by id")
IMPORT = "select status, attempts, report->>'status' as reported, report->>'detail' as detail from partnership.imports"


def schools(n: int, prefix: str = "J") -> bytes:
    return (HEADER + "".join(f"{prefix}{i:06d},学校{i},110105,小学,乡村,{i % 100}\n" for i in range(n))).encode()


async def _start(partnership, body: bytes) -> dict:
    response = await partnership.post(URL, content=body, headers=CSV)
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/api/v1/imports/{response.json()['id']}"
    return response.json()


async def test_a_large_import_is_a_job_with_progress_while_reads_go_on(partnership, settings, db_engine):
    await f.district(partnership)
    started = time.monotonic()
    job = await _start(partnership, schools(20_000))
    assert time.monotonic() - started < 2.0
    assert (job["status"], job["total_rows"], job["processed_rows"], job["finished_at"]) == ("running", 20_000, 0,
                                                                                              None)
    # Accepted means stored: the file in the service's database, the job on the queue, nothing merged yet.
    assert await fetch(db_engine, JOB) == [{"queue_name": "partnership", "task_name": "spp.import", "status": "todo",
                                            "args": {"service": "partnership", "import_id": job["id"]},
                                            "attempts": 0}]
    assert await fetch(db_engine, "select count(*) as n, sum(length(data)) as size from partnership.import_files"
                       ) == [{"n": 1, "size": len(schools(20_000))}]
    assert await fetch(db_engine, "select count(*) as n from partnership.schools") == [{"n": 0}]

    worker = asyncio.create_task(run_jobs(settings.model_copy(update={"import_batch_rows": 2000})))
    seen: list[int] = []
    read_while_running = None
    while not worker.done():
        report = (await partnership.get(f"/v1/imports/{job['id']}")).json()
        if report["status"] == "running":
            seen.append(report["processed_rows"])
            if read_while_running is None and 0 < report["processed_rows"]:
                listed = await partnership.get("/v1/districts")
                still = await fetch(db_engine, "select status from partnership.imports")
                read_while_running = (listed.status_code, still)
        await asyncio.sleep(0.02)
    await worker
    assert read_while_running == (200, [{"status": "running"}])
    assert any(0 < n < 20_000 for n in seen), seen
    assert seen == sorted(seen)
    report = (await partnership.get(f"/v1/imports/{job['id']}")).json()
    assert (report["status"], report["total_rows"], report["processed_rows"], report["valid_rows"],
            report["inserted"], report["errors"]) == ("completed", 20_000, 20_000, 20_000, 20_000, [])
    assert report["created_at"] < report["finished_at"]
    assert await fetch(db_engine, "select count(*) as n, sum(primary_enrollment) as s from partnership.schools"
                       ) == [{"n": 20_000, "s": 990_000}]
    assert await fetch(db_engine, "select count(*) as n from partnership.changes") == [{"n": 20_001}]  # + district
    assert await fetch(db_engine, "select count(*) as n from partnership.import_files") == [{"n": 0}]
    assert [j["status"] for j in await fetch(db_engine, JOB)] == ["succeeded"]


async def test_a_write_during_an_import_job_reaches_the_change_feed_before_the_job_ends(partnership, settings,
                                                                                        db_engine):
    """The feed shows only changes below the oldest running transaction id, cluster-wide: a job that
    held one write transaction from its first batch on stalled every feed for its whole length. Now
    it parses, validates and stages outside it, and only its merge holds one."""
    await f.district(partnership)
    # Past the first district (another test process's transaction in flight may hold it back a moment).
    first, cursor = await drain(partnership, None, expected=1)
    assert [(c["entity"], c["op"]) for c in first] == [("district", "create")]
    job = await _start(partnership, schools(40_000))
    worker = asyncio.create_task(run_jobs(settings.model_copy(update={"import_batch_rows": 2000})))
    while (await partnership.get(f"/v1/imports/{job['id']}")).json()["processed_rows"] == 0:
        assert not worker.done()
        await asyncio.sleep(0.02)
    await f.district(partnership, *f.YANQING)
    seen: list[dict] = []
    while not seen and not worker.done():
        seen, cursor = await read_all(partnership, cursor)
        import_status = (await fetch(db_engine, "select status from partnership.imports"))[0]["status"]
        await asyncio.sleep(0.02)
    await worker
    assert [(c["entity"], c["key"], c["op"]) for c in seen] == [("district", "110119", "create")]
    assert import_status == "running"
    assert await fetch(db_engine, "select entity, count(*) as n from partnership.changes group by entity "
                       "order by entity") == [{"entity": "district", "n": 2}, {"entity": "school", "n": 40_000}]
    assert (await partnership.get(f"/v1/imports/{job['id']}")).json()["status"] == "completed"


async def test_an_all_or_nothing_job_with_one_bad_row_writes_nothing(partnership, partnership_app, settings,
                                                                     db_engine):
    await f.district(partnership)
    partnership_app.state.settings = settings.model_copy(update={"import_sync_rows": 10})
    body = schools(30) + "X1,坏学校,119999,小学,乡村,1\n".encode()
    job = await _start(partnership, body)
    await run_jobs(settings.model_copy(update={"import_batch_rows": 7}))
    report = (await partnership.get(f"/v1/imports/{job['id']}")).json()
    assert (report["status"], report["total_rows"], report["rejected_rows"], report["errors"]) == (
        "rejected", 31, 1, [{"row": 31, "field": "district_code", "message": "unknown district 119999"}])
    assert await fetch(db_engine, "select count(*) as n from partnership.schools") == [{"n": 0}]


async def _left_doing_by_a_dead_worker(db_engine, attempts: int) -> None:
    """What a worker killed mid-job leaves: its job `doing`, its heartbeat old, one attempt counted."""
    async with db_engine.begin() as conn:
        from sqlalchemy import text

        dead = (await conn.execute(text(
            "INSERT INTO procrastinate.procrastinate_workers (last_heartbeat) VALUES (now() - interval '1 hour') "
            "RETURNING id"))).scalar_one()
        await conn.execute(text("UPDATE procrastinate.procrastinate_jobs SET status = 'doing', worker_id = :w"),
                           {"w": dead})
        await conn.execute(text("UPDATE partnership.imports SET attempts = :n, "
                                "report = jsonb_set(report, '{processed_rows}', '5')"), {"n": attempts})


async def test_a_job_left_doing_by_a_dead_worker_is_retried(partnership, partnership_app, settings, db_engine):
    await f.district(partnership)
    partnership_app.state.settings = settings.model_copy(update={"import_sync_rows": 3})
    job = await _start(partnership, schools(10))
    await _left_doing_by_a_dead_worker(db_engine, attempts=1)
    await run_jobs(settings)
    assert await fetch(db_engine, IMPORT) == [{"status": "completed", "attempts": 2, "reported": "completed",
                                               "detail": None}]
    report = (await partnership.get(f"/v1/imports/{job['id']}")).json()
    assert (report["inserted"], report["processed_rows"]) == (10, 10)
    assert await fetch(db_engine, "select count(*) as n from procrastinate.procrastinate_workers") == [{"n": 0}]


async def test_a_file_that_keeps_killing_its_worker_is_reported_failed(partnership, partnership_app, settings,
                                                                       db_engine):
    await f.district(partnership)
    partnership_app.state.settings = settings.model_copy(update={"import_sync_rows": 3})
    await _start(partnership, schools(10))
    await _left_doing_by_a_dead_worker(db_engine, attempts=settings.job_attempts)
    await run_jobs(settings)
    assert await fetch(db_engine, IMPORT) == [{
        "status": "failed", "attempts": 4, "reported": "failed",
        "detail": "the import failed 3 times; the last time: its worker stopped while running it"}]
    assert await fetch(db_engine, "select count(*) as n from partnership.schools") == [{"n": 0}]
    assert await fetch(db_engine, "select count(*) as n from partnership.import_files") == [{"n": 0}]


async def test_a_running_import_whose_job_ended_is_reported_failed(partnership, partnership_app, settings,
                                                                   db_engine):
    await f.district(partnership)
    partnership_app.state.settings = settings.model_copy(update={"import_sync_rows": 3})
    job = await _start(partnership, schools(10))
    async with db_engine.begin() as conn:
        from sqlalchemy import text

        await conn.execute(text("UPDATE procrastinate.procrastinate_jobs SET status = 'failed'"))
    await run_jobs(settings)
    report = (await partnership.get(f"/v1/imports/{job['id']}")).json()
    assert (report["status"], report["detail"], report["finished_at"] is not None) == ("failed", ENDED, True)
    assert await fetch(db_engine, "select count(*) as n from partnership.import_files") == [{"n": 0}]


async def test_a_job_whose_upstream_is_down_is_retried_then_reported_failed(partnership, settings, token,
                                                                            db_engine):
    await f.district(partnership)
    await f.school(partnership, "11010501")
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    app = create_rotation(settings.model_copy(update={"import_sync_rows": 2}),
                          transports={"partnership": httpx.MockTransport(refuse)})
    lines = "".join(f"D{i},老师{i},11010501,教师,小学,数学,无,2015-09-01,\n" for i in range(5))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=asgi(app), base_url="http://rotation",
                                     headers={"Authorization": f"Bearer {token()}", "Accept-Language": "en"}) as client:
            started = await client.post("/v1/imports/staff", headers=CSV, content=(
                "工号,姓名,任职学校代码,岗位,任教学段,学科,骨干级别,现岗位起始日期,退休日期\n" + lines).encode())
            assert started.status_code == 202, started.text
            # Accepting the file needs no upstream; the job's resolve step does, twice.
            await run_jobs(settings.model_copy(update={"job_attempts": 2, "job_retry_seconds": 0}),
                           partnership=httpx.MockTransport(refuse))
            report = (await client.get(f"/v1/imports/{started.json()['id']}")).json()
    assert (report["status"], report["detail"]) == (
        "failed", "the import failed 2 times; the last time: the partnership service is unavailable "
                  "(ConnectError)")
    assert await fetch(db_engine, "select count(*) as n from rotation.staff") == [{"n": 0}]
    assert await fetch(db_engine, "select status::text as status, attempts from procrastinate.procrastinate_jobs"
                       ) == [{"status": "succeeded", "attempts": 2}]


def test_each_service_database_holds_its_own_jobs():
    shared = Settings(database_url="postgresql://spp@db/spp")
    assert job_databases(shared) == ["postgresql://spp@db/spp"]
    split = Settings(database_url="postgresql://spp@db/spp", training_database_url="postgresql://spp@db/training")
    assert job_databases(split) == ["postgresql://spp@db/spp", "postgresql://spp@db/training"]


async def test_params_record_the_importers_rights(partnership, partnership_app, settings, auth, db_engine):
    await f.district(partnership)
    partnership_app.state.settings = settings.model_copy(update={"import_sync_rows": 3})
    response = await partnership.post(URL, content=schools(10), headers={
        **CSV, **auth("integrator", districts=("110119",)), "X-Request-ID": "import-rights-1"})
    assert response.status_code == 202
    stored = await fetch(db_engine, "select params from partnership.imports")
    assert stored == [{"params": {"actor": "tester", "request_id": "import-rights-1", "role": "integrator",
                                  "mode": "all_or_nothing", "dry_run": False, "content_type": "text/csv",
                                  "file_name": None, "districts": ["110119"]}}]
    await run_jobs(settings)
    report = (await partnership.get(f"/v1/imports/{response.json()['id']}")).json()
    assert (report["status"], report["rejected_rows"], report["errors"][0]) == (
        "rejected", 10, {"row": 1, "field": None, "message": "outside your districts"})
    assert json.dumps(report)  # the report is plain JSON


async def test_with_its_own_database_a_services_jobs_and_files_stay_there(spare_database_url, settings,
                                                                           rotation_app, token, db_engine):
    """SPP_TRAINING_DATABASE_URL: training's file, report and job live in training's database, and
    the worker runs them there; the shared database's queue never sees them."""
    from concurrent.futures import ThreadPoolExecutor

    from services.common.db import create_engine
    from services.common.migrate import upgrade_all
    from services.training.app import create_app as create_training

    url = spare_database_url
    split = settings.model_copy(update={"training_database_url": url, "import_sync_rows": 1})
    engine = create_engine(url, split, pool_size=2)
    try:
        with ThreadPoolExecutor(1) as pool:
            await asyncio.get_running_loop().run_in_executor(pool, upgrade_all, split)
        app = create_training(split, transports={"rotation": asgi(rotation_app)})
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=asgi(app), base_url="http://training",
                                         headers={"Authorization": f"Bearer {token()}", "Accept-Language": "en"}) as client:
                rows = [{"staff_id": "6f1c2a9e-0000-4000-8000-000000000001", "hours": "2", "earned_on": "2024-05-01",
                         "source": "区级平台", "reference": f"S-{i}"} for i in range(3)]
                started = await client.post("/v1/imports/training-hours", json=rows, params={"mode": "partial"})
                assert started.status_code == 202, started.text
                assert await fetch(engine, JOB) == [{
                    "queue_name": "training", "task_name": "spp.import", "status": "todo", "attempts": 0,
                    "args": {"service": "training", "import_id": started.json()["id"]}}]
                assert await fetch(db_engine, JOB) == []
                await run_jobs(split, rotation=asgi(rotation_app))
                report = (await client.get(f"/v1/imports/{started.json()['id']}")).json()
        assert (report["status"], report["rejected_rows"]) == ("completed", 3)
        assert [j["status"] for j in await fetch(engine, JOB)] == ["succeeded"]
        assert await fetch(db_engine, "select count(*) as n from training.imports") == [{"n": 0}]
    finally:
        await engine.dispose()


async def test_a_32_mib_upload_is_streamed_into_the_database_and_answered_within_2_s(partnership, settings,
                                                                                      db_engine):
    await f.district(partnership)
    line = "J0000000,北京市朝阳区某某中心小学分校,110105,小学,乡村,100\n".encode()
    count = (settings.max_import_bytes - len(HEADER.encode())) // len(line)
    body = HEADER.encode() + line * count
    assert settings.max_import_bytes - len(line) < len(body) <= settings.max_import_bytes

    async def pieces():
        for start in range(0, len(body), 65536):  # as a server hands the body over
            yield body[start:start + 65536]

    started = time.monotonic()
    response = await partnership.post(URL, content=pieces(), headers=CSV)
    elapsed = time.monotonic() - started
    assert response.status_code == 202, response.text
    assert elapsed < 2.0, elapsed
    assert response.json()["total_rows"] == count
    assert await fetch(db_engine, "select count(*) as n, sum(length(data)) as size, max(length(data)) as largest "
                                  "from partnership.import_files") == [
        {"n": 32, "size": len(body), "largest": 1 << 20}]
    too_large = await partnership.post(URL, content=body + line, headers=CSV)
    assert too_large.status_code == 413


async def test_the_job_queue_history_is_reversible_and_idempotent(database_url, db_engine):
    from concurrent.futures import ThreadPoolExecutor

    from alembic import command

    from services.common.migrate import alembic_config, upgrade_all

    tables = ("select tablename from pg_tables where schemaname = 'procrastinate' and tablename <> 'alembic_version' "
              "order by 1")
    before = await fetch(db_engine, tables)
    assert [t["tablename"] for t in before] == ["procrastinate_events", "procrastinate_jobs",
                                                "procrastinate_periodic_defers", "procrastinate_workers"]
    with ThreadPoolExecutor(1) as pool:
        pool.submit(command.downgrade, alembic_config("jobs", database_url), "base").result()
        assert await fetch(db_engine, tables) == []
        assert await fetch(db_engine, "select count(*) as n from pg_proc "
                                      "where pronamespace = 'procrastinate'::regnamespace") == [{"n": 0}]
        pool.submit(upgrade_all, Settings(env="test", database_url=database_url)).result()
        pool.submit(upgrade_all, Settings(env="test", database_url=database_url)).result()  # again: a no-op
    assert await fetch(db_engine, tables) == before
    # Every function finds its tables whatever the caller's search path (the services defer with SQL).
    assert await fetch(db_engine, "select count(*) as n from pg_proc where pronamespace = "
                                  "'procrastinate'::regnamespace and proconfig is null") == [{"n": 0}]
