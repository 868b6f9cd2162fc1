"""The Prometheus metrics docs/operations.md names appear, with exact labels, after a few requests:
process metrics, requests by route template (never the raw path), circuit-breaker state, pool
gauges, feed lag and the job queue."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from gateway.routes import route_label
from services.common.middleware import Metrics
from tests.conftest import fetch
from tests.jobs import run_jobs
from tests.partnership import factories as f


def samples(exposition: str) -> dict[tuple[str, frozenset], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(exposition) for s in family.samples}


def value(found: dict, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


async def scrape(client) -> dict:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return samples(response.text)


async def test_gateway_labels_requests_by_route_template_and_reports_breakers_pools_and_the_process(
        gateway, gateway_app):
    made = await gateway.post("/api/v1/districts", json={"code": "110105", "name": "朝阳区"})
    assert made.status_code == 201
    for code in ("S001", "S002"):
        assert (await gateway.get(f"/api/v1/schools/{code}")).status_code == 404
    assert (await gateway.get("/api/v1/districts")).status_code == 200
    assert (await gateway.get("/api/v1/districts/110105/overview",
                              params={"as_of": "2025-03-01"})).status_code == 200
    assert (await gateway.get("/api/v1/nothing-here/1")).status_code == 404
    breaker = gateway_app.state.upstreams["training"].breaker
    for _ in range(breaker.failures):
        breaker.record_failure()

    found = await scrape(gateway)
    requests = {(dict(labels)["method"], dict(labels)["route"], dict(labels)["status"]): count
                for (name, labels), count in found.items() if name == "spp_http_requests_total"}
    assert requests == {
        ("POST", "/api/v1/districts", "201"): 1.0,
        ("GET", "/api/v1/schools/{code}", "404"): 2.0,
        ("GET", "/api/v1/districts", "200"): 1.0,
        ("GET", "/api/v1/districts/{code}/overview", "200"): 1.0,
        ("GET", "unmatched", "404"): 1.0,
    }
    states = {(dict(labels)["upstream"], dict(labels)["state"]): v
              for (name, labels), v in found.items() if name == "spp_upstream_circuit_state"}
    assert states == {(u, s): float(u == "training" and s == "open" or u != "training" and s == "closed")
                      for u in ("partnership", "rotation", "training") for s in ("closed", "half_open", "open")}
    assert value(found, "spp_db_pool_size", process="gateway", pool="primary") == 15.0
    assert value(found, "spp_db_pool_in_use", process="gateway", pool="primary") == 0.0
    assert value(found, "spp_db_pool_open", process="gateway", pool="primary") is not None
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                 "process_start_time_seconds", "process_max_fds", "process_virtual_memory_bytes"):
        assert value(found, name) > 0, name
    assert ("python_info", ) == tuple({n for (n, _) in found if n == "python_info"})


async def test_a_service_reports_its_pool_in_use_and_its_breakers(partnership_app, partnership, rotation,
                                                                  rotation_app):
    pool = partnership_app.state.engine.pool
    async with partnership_app.state.engine.connect() as held:
        assert held is not None
        # The gauge is the pool's own count at the scrape. Rotation's feed consumer polls
        # partnership's feed in the background and holds a connection for a moment now and then,
        # so compare with the pool read around the scrape and retry when the two moments differ.
        for _ in range(50):
            before = pool.checkedout()
            found = await scrape(partnership)
            seen = value(found, "spp_db_pool_in_use", process="partnership", pool="primary")
            if before == pool.checkedout() == seen:
                break
    assert before >= 1  # the held connection
    assert value(found, "spp_db_pool_in_use", process="partnership", pool="primary") == before
    assert value(found, "spp_db_pool_size", process="partnership", pool="primary") == 15.0
    assert value(found, "spp_upstream_circuit_state", process="rotation", upstream="partnership",
                 state="closed") is None  # each process reports its own
    found = await scrape(rotation)
    assert {s: value(found, "spp_upstream_circuit_state", process="rotation", upstream="partnership", state=s)
            for s in ("closed", "half_open", "open")} == {"closed": 1.0, "half_open": 0.0, "open": 0.0}


async def test_feed_lag_keeps_its_name_per_consumer(training):
    found = await scrape(training)  # before the consumer's first pass too: it is read at the scrape
    assert ("spp_feed_lag_seconds", frozenset({"process": "training", "consumer": "training.staff_directory",
                                               "producer": "rotation"}.items())) in found


async def test_job_queue_depth_and_oldest_age_by_queue_and_status(partnership, partnership_app, settings,
                                                                  db_engine):
    from services.common.jobs import JobRunner

    await f.district(partnership)
    body = "学校代码,学校名称,区县代码,学段,城乡类别,小学在校生数\n" + "".join(
        f"J{n:07d},北京市朝阳区测试学校{n},110105,小学,乡村,100\n" for n in range(3))
    # Past the sync limit an import is a job on the partnership queue.
    partnership_app.state.settings = settings.model_copy(update={"import_sync_rows": 1})
    started = await partnership.post("/v1/imports/schools", content=body.encode(), headers={"Content-Type": "text/csv"})
    assert started.status_code == 202, started.text
    async with db_engine.begin() as conn:
        await conn.execute(text("update procrastinate.procrastinate_events set at = clock_timestamp() - "
                                "interval '90 s' where type = 'deferred'"))

    runner = JobRunner(settings, metrics=Metrics("worker"))
    await runner.open()
    try:
        await runner.metrics.sample()
        found = samples(generate_latest(runner.metrics.registry).decode())
    finally:
        await runner.close()
    depth = {(dict(labels)["queue"], dict(labels)["status"]): v
             for (name, labels), v in found.items() if name == "spp_job_queue_jobs"}
    assert depth == {(q, s): float(q == "partnership" and s == "todo")
                     for q in ("partnership", "rotation", "training") for s in ("todo", "doing")}
    age = value(found, "spp_job_queue_oldest_age_seconds", process="worker", queue="partnership", status="todo")
    assert 90 <= age < 120
    assert value(found, "spp_job_queue_oldest_age_seconds", process="worker", queue="training", status="todo") == 0
    assert value(found, "spp_db_pool_size", process="worker", pool="partnership+rotation+training") == 4.0

    await run_jobs(settings)
    assert await fetch(db_engine, "select count(*) as n from partnership.schools") == [{"n": 3}]


def test_proxied_paths_are_labelled_by_the_public_operations_template():
    assert route_label("GET", "schools/S001") == "/api/v1/schools/{code}"
    assert route_label("GET", "training-hours/summary") == "/api/v1/training-hours/summary"
    assert route_label("GET", "training-hours/9f0c") == "/api/v1/training-hours/{credit_id}"
    assert route_label("POST", "studios/1/members/2/leave") == "/api/v1/studios/{studio_id}/members/{staff_id}/leave"
    assert route_label("GET", "imports/schools.5b0e") == "/api/v1/imports/{import_id}"
    assert route_label("DELETE", "schools/S001") == "unmatched"
    assert route_label("GET", "schools/S001/x/y") == "unmatched"
