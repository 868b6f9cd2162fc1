"""`GET /api/v1/audit-events` (issue 11 item 6): the three services' and the gateway's own events
merged newest first, paged exactly (no duplicates, no gaps, across services and equal
timestamps), scoped by role and district, exported as CSV; access log lines carry the caller's `sub`."""

from __future__ import annotations

import csv
import io
import json
import logging

from services.common.logging import JsonFormatter
from tests.conftest import fetch
from tests.training import factories as tf

CHAOYANG, YANQING = "110105", "110119"
SCHEMAS = ("partnership", "rotation", "training", "gateway")
# Two events per schema at one and the same instant, so the order must break ties by service and seq.
SAME_INSTANT = "2024-05-01T08:00:00+00:00"


async def world(partnership, rotation, training, gateway, db_engine) -> None:
    for code, name in ((CHAOYANG, "朝阳区"), (YANQING, "延庆区")):
        assert (await partnership.post("/v1/districts", json={"code": code, "name": name})).status_code == 201
    await tf.school(partnership, "11010501", district_code=CHAOYANG)
    await tf.school(partnership, "11011901", district_code=YANQING, locality="rural")
    host = await tf.staff(rotation, school_code="11011901")
    await tf.staff(rotation, school_code="11010501")
    await tf.studio(training, host_staff_id=host["id"], district_code=YANQING)
    client = await gateway.post("/api/v1/integration-clients",
                                json={"name": "统计系统", "role": "integrator", "districts": [YANQING]})
    assert client.status_code == 201, client.text
    async with db_engine.begin() as conn:
        for schema in SCHEMAS:
            await conn.exec_driver_sql(
                f"INSERT INTO {schema}.audit_events (occurred_at, actor, actor_role, entity, key, operation, "
                f"districts, request_id) VALUES ('{SAME_INSTANT}', 'seed', 'city_admin', 'x', '{schema}-1', "
                f"'create', '{{{CHAOYANG}}}', 'r1'), ('{SAME_INSTANT}', 'seed', 'city_admin', 'x', '{schema}-2', "
                f"'create', '{{{YANQING}}}', 'r2')")


async def stored(db_engine, district: str | None = None) -> list[tuple[str, int]]:
    """Every event as (service, seq), in the order the API promises: newest first, then service, then seq."""
    where = "" if district is None else f" WHERE '{district}' = ANY(districts)"
    union = " UNION ALL ".join(f"SELECT '{s}' AS service, seq, occurred_at FROM {s}.audit_events{where}"
                               for s in SCHEMAS)
    rows = await fetch(db_engine, f"SELECT service, seq FROM ({union}) e "
                                  "ORDER BY occurred_at DESC, service DESC, seq DESC")
    return [(r["service"], r["seq"]) for r in rows]


async def walk(gateway, limit: int, headers: dict | None = None) -> list[tuple[str, int]]:
    seen: list[tuple[str, int]] = []
    cursor = None
    for _ in range(200):
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        response = await gateway.get("/api/v1/audit-events", params=params, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        seen += [(e["service"], e["seq"]) for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("the cursor never ended")


async def test_pages_exactly_across_services_and_equal_timestamps(partnership, rotation, training, gateway,
                                                                  db_engine):
    await world(partnership, rotation, training, gateway, db_engine)
    expected = await stored(db_engine)
    assert {s for s, _ in expected} == set(SCHEMAS)
    assert len(expected) == 4 + 2 + 1 + 1 + 8  # partnership 4, rotation 2, training 1, gateway 1, 8 seeded
    whole = await gateway.get("/api/v1/audit-events", params={"limit": 500})
    assert [(e["service"], e["seq"]) for e in whole.json()["items"]] == expected
    assert whole.json()["next_cursor"] is None
    for limit in (1, 2, 3, 5, 8):
        assert await walk(gateway, limit) == expected, limit
    # The seeded instant: training, rotation, partnership, gateway; within each, the higher seq first.
    tail = [(e["service"], e["key"]) for e in whole.json()["items"] if e["occurred_at"].startswith("2024-05-01")]
    assert tail == [(s, f"{s}-{n}") for s in ("training", "rotation", "partnership", "gateway") for n in (2, 1)]


async def test_filters_and_the_gateways_own_event(partnership, rotation, training, gateway, db_engine):
    await world(partnership, rotation, training, gateway, db_engine)
    schools = await gateway.get("/api/v1/audit-events", params={"entity": "school", "service": "partnership"})
    assert [(e["service"], e["key"], e["operation"]) for e in schools.json()["items"]] == [
        ("partnership", "11011901", "create"), ("partnership", "11010501", "create")]
    seeded = await gateway.get("/api/v1/audit-events", params={"actor": "seed", "until": "2024-05-01T08:00:01Z",
                                                               "since": SAME_INSTANT, "service": "gateway"})
    assert [e["key"] for e in seeded.json()["items"]] == ["gateway-2", "gateway-1"]
    clients = await gateway.get("/api/v1/audit-events", params={"entity": "integration_client"})
    [event] = clients.json()["items"]
    assert (event["service"], event["actor"], event["actor_role"], event["operation"], event["districts"]) == (
        "gateway", "tester", "city_admin", "create", [YANQING])
    assert event["after"]["name"] == "统计系统" and "secret_hash" not in event["after"]


async def test_scoping(partnership, rotation, training, gateway, db_engine, auth):
    await world(partnership, rotation, training, gateway, db_engine)
    yanqing = auth("district_admin", districts=(YANQING,))
    expected = await stored(db_engine, YANQING)
    assert len(expected) == 1 + 1 + 1 + 1 + 1 + 4  # district, school, host, studio, client, 4 seeded
    assert await walk(gateway, 2, headers=yanqing) == expected
    whole = await gateway.get("/api/v1/audit-events", params={"limit": 500}, headers=yanqing)
    assert all(YANQING in e["districts"] for e in whole.json()["items"])
    assert not [e for e in whole.json()["items"] if e["key"] in ("11010501", CHAOYANG)]
    # A city-wide viewer is a city-wide role: it reads the whole trail, as city_admin does.
    assert await walk(gateway, 3, headers=auth("viewer")) == await stored(db_engine)
    refused = await gateway.get("/api/v1/audit-events", headers={**auth("school_admin"), "X-Request-ID": "a-403"})
    assert refused.status_code == 403
    assert refused.json() == {"type": "urn:spp:problem:role", "title": "Not allowed", "status": 403,
                              "detail": "role school_admin may not read the audit trail", "request_id": "a-403"}


async def test_bad_cursor_is_422(gateway):
    response = await gateway.get("/api/v1/audit-events", params={"cursor": "bm90IGEgY3Vyc29y"})
    assert (response.status_code, response.json()["type"]) == (422, "urn:spp:problem:invalid-cursor")


async def test_csv_export(partnership, rotation, training, gateway, db_engine):
    await world(partnership, rotation, training, gateway, db_engine)
    response = await gateway.get("/api/v1/audit-events", params={"format": "csv", "service": "partnership",
                                                                 "entity": "district"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="audit-events.csv"'
    text = response.content.decode("utf-8")
    assert text.split("\r\n")[0] == "\ufeff时间,服务,操作人,角色,对象类型,对象标识,操作,修改前,修改后,涉及区县,请求编号,详情"
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))[1:]
    assert [(r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9]) for r in rows] == [
        ("partnership", "tester", "city_admin", "district", YANQING, "create", "",
         json.dumps({"code": YANQING, "name": "延庆区"}, ensure_ascii=False), YANQING),
        ("partnership", "tester", "city_admin", "district", CHAOYANG, "create", "",
         json.dumps({"code": CHAOYANG, "name": "朝阳区"}, ensure_ascii=False), CHAOYANG)]


async def test_access_log_lines_carry_sub(gateway, caplog):
    caplog.set_level(logging.INFO, logger="spp.access")
    assert (await gateway.get("/api/v1/districts")).status_code == 200
    assert (await gateway.get("/api/v1/districts", headers={"Authorization": ""})).status_code == 401
    lines = [json.loads(JsonFormatter("test").format(r)) for r in caplog.records if r.name == "spp.access"]
    # The read-model consumers poll the feeds in the background as `service:*`; leave them out.
    lines = [line for line in lines if not (line["sub"] or "").startswith("service:")]
    # The gateway's line and the partnership service's (the proxied call), then the refused call.
    assert [(line["path"], line["status"], line["sub"]) for line in lines] == [
        ("/v1/districts", 200, "tester"), ("/api/v1/districts", 200, "tester"), ("/api/v1/districts", 401, None)]
