"""The change feed across transaction-id digit boundaries, and who wrote each change.

Transaction ids are cluster-wide and only grow, so the boundary test runs on a PostgreSQL cluster
of its own, fresh from initdb (xid ≈ 750): it writes changes over HTTP from several concurrent
clients while it burns transaction ids across 999 → 1000 and 9999 → 10000, then pages the feed with
limits 1, 7 and 100. Ordered as text, 999 sorted after 1000 and consumers skipped or repeated
changes at exactly those boundaries.
"""

from __future__ import annotations

import asyncio
import base64
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import text

from services.common.auth import mint_token
from services.common.db import create_engine
from services.common.embedded import EmbeddedPostgres
from services.common.migrate import upgrade_all
from services.common.settings import Settings
from tests.conftest import TEST_SECRET, asgi, fetch
from tests.feed import drain
from tests.partnership import factories as f
from tests.rotation.factories import staff_body

WRITERS = 4


@pytest.fixture(scope="module")
async def fresh_cluster(tmp_path_factory):
    server = EmbeddedPostgres(tmp_path_factory.mktemp("fresh-pg"))
    url = server.start()
    with ThreadPoolExecutor(1) as pool:  # Alembic runs its own event loop
        pool.submit(upgrade_all, Settings(env="test", database_url=url)).result()
    settings = Settings(env="test", database_url=url, jwt_secret=TEST_SECRET)
    engine = create_engine(url, settings, pool_size=2)
    yield settings, engine
    await engine.dispose()
    server.stop()


async def _current_xid(engine) -> int:
    async with engine.begin() as conn:
        return int((await conn.execute(text("SELECT pg_current_xact_id()::text"))).scalar_one())


async def burn_to(engine, target: int) -> None:
    """Consume transaction ids until the next one assigned is `target`: one transaction whose
    subtransactions each take an id (≈ 40 ms for 10,000)."""
    async with engine.begin() as conn:
        now = int((await conn.execute(text("SELECT pg_current_xact_id()::text"))).scalar_one())
        burn = target - now - 1
        assert burn >= 0, f"xid {now} is already past {target}"
        await conn.execute(text(
            "DO $$ BEGIN CREATE TEMP TABLE burn (n int) ON COMMIT DROP; "
            f"FOR i IN 1..{burn} LOOP BEGIN INSERT INTO burn VALUES (i); "
            "EXCEPTION WHEN OTHERS THEN NULL; END; END LOOP; END $$"))
    assert await _current_xid(engine) == target


async def _write_batch(clients: list[httpx.AsyncClient], batch: str) -> None:
    """Every writer at once: each creates two schools and updates one, as its own requests."""
    async def writer(i: int, client: httpx.AsyncClient) -> None:
        for n in range(2):
            code = f"{batch}-{i}-{n}"
            created = await client.post("/v1/schools", headers={"X-Request-ID": f"req-{code}"}, json={
                "code": code, "name": f"学校{code}", "district_code": "110105", "stage": "primary",
                "locality": "rural", "primary_enrollment": n})
            assert created.status_code == 201, created.text
        updated = await client.patch(f"/v1/schools/{batch}-{i}-0", json={"primary_enrollment": 7},
                                     headers={"X-Request-ID": f"req-{batch}-{i}-patch"})
        assert updated.status_code == 200, updated.text

    await asyncio.gather(*(writer(i, c) for i, c in enumerate(clients)))


def _xid_of(cursor: str) -> int:
    return int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split(":")[0])


async def _page_all(client: httpx.AsyncClient, limit: int) -> list[dict]:
    seen, cursor = [], None
    for _ in range(1000):  # bounded: ~60 changes need at most ~60 pages
        page = (await client.get("/v1/changes", params={"after": cursor, "limit": limit})).json()
        if not page["items"]:
            assert page["next_cursor"] == (cursor or page["next_cursor"])
            return seen
        assert len(page["items"]) <= limit
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        assert cursor == page["items"][-1]["cursor"]
    raise AssertionError("the feed never ended")


async def test_feed_is_exactly_once_across_xid_digit_boundaries(fresh_cluster):
    settings, engine = fresh_cluster
    from services.partnership.app import create_app

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        def client(sub: str) -> httpx.AsyncClient:
            token = mint_token(TEST_SECRET, sub=sub, role="city_admin")
            return httpx.AsyncClient(transport=asgi(app), base_url="http://partnership", timeout=30,
                                     headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"})

        writers = [client(f"writer-{i}") for i in range(WRITERS)]
        reader = client("reader")
        try:
            assert await _current_xid(engine) < 990, "a fresh cluster should start below xid 1000"
            await f.district(writers[0])
            await _write_batch(writers, "a")       # below 1000
            await burn_to(engine, 996)
            await _write_batch(writers, "b")       # across 999 → 1000
            await burn_to(engine, 9996)
            await _write_batch(writers, "c")       # across 9999 → 10000
            await burn_to(engine, 10051)
            await _write_batch(writers, "d")       # above 10050

            outbox = await fetch(engine, "SELECT xid::text AS xid_text, seq, actor, request_id "
                                         "FROM partnership.changes ORDER BY changes.xid, changes.seq")
            expected = [(int(r["xid_text"]), r["seq"]) for r in outbox]
            assert len(expected) == 1 + 4 * WRITERS * 3
            xids = [x for x, _ in expected]
            # the precondition that makes this test mean something: both boundaries are inside the data
            for low, high in ((999, 1000), (9999, 10000)):
                assert any(x <= low for x in xids) and any(x >= high for x in xids)
            assert any(1000 < x < 9999 for x in xids) and any(x > 10050 for x in xids)

            settled, _ = await drain(reader, None, len(expected))  # nothing in flight any more
            assert len(settled) == len(expected)
            for limit in (1, 7, 100):
                items = await _page_all(reader, limit)
                assert [(_xid_of(c["cursor"]), c["seq"]) for c in items] == expected, f"limit={limit}"
                assert [(c["actor"], c["request_id"]) for c in items] == [
                    (r["actor"], r["request_id"]) for r in outbox]
            by_key = {(c["key"], c["op"]): c for c in items}
            assert (by_key[("b-2-0", "create")]["actor"], by_key[("b-2-0", "create")]["request_id"]) == (
                "writer-2", "req-b-2-0")
            assert (by_key[("c-3-0", "update")]["actor"], by_key[("c-3-0", "update")]["request_id"]) == (
                "writer-3", "req-c-3-patch")
        finally:
            for c in (*writers, reader):
                await c.aclose()


class TestActorAndRequestId:
    async def test_a_service_write_carries_the_callers_sub_and_request_id(self, partnership, db_engine):
        created = await partnership.post("/v1/districts", json={"code": "110105", "name": "朝阳区"},
                                         headers={"X-Request-ID": "req-district-1"})
        assert created.status_code == 201
        untagged = await partnership.post("/v1/districts", json={"code": "110119", "name": "延庆区"})
        assert untagged.status_code == 201
        generated = untagged.headers["x-request-id"]
        items, _ = await drain(partnership, None, 2)
        assert [(c["key"], c["actor"], c["request_id"]) for c in items] == [
            ("110105", "tester", "req-district-1"), ("110119", "tester", generated)]
        assert await fetch(db_engine, "SELECT key, actor, request_id FROM partnership.changes ORDER BY seq") == [
            {"key": "110105", "actor": "tester", "request_id": "req-district-1"},
            {"key": "110119", "actor": "tester", "request_id": generated}]

    async def test_through_the_gateway_the_callers_request_id_reaches_the_feed(self, gateway, token):
        headers = {"X-Request-ID": "req-gw-1", "Authorization": f"Bearer {token(sub='li.na@chaoyang')}"}
        created = await gateway.post("/api/v1/districts", json={"code": "110105", "name": "朝阳区"},
                                     headers=headers)
        assert created.status_code == 201
        # A transaction in flight elsewhere on the server (another test process) may hold the feed
        # back for a moment (tests/feed.py drain): poll, bounded.
        for _ in range(300):
            page = (await gateway.get("/api/v1/changes", params={"service": "partnership"})).json()
            if page["items"]:
                break
            await asyncio.sleep(0.05)
        assert [(c["key"], c["op"], c["actor"], c["request_id"]) for c in page["items"]] == [
            ("110105", "create", "li.na@chaoyang", "req-gw-1")]

    async def test_bulk_import_rows_carry_them_too(self, partnership, token, db_engine):
        await f.district(partnership)
        csv = ("学校代码,学校名称,区县代码,学段,城乡类别,小学在校生数,初中在校生数\n"
               "11010501,北京市朝阳区实验小学,110105,小学,城区,1200,0\n"
               "11010502,北京市朝阳区第二中学,110105,初中,城区,0,800\n")
        response = await partnership.post("/v1/imports/schools", content=csv.encode(), headers={
            "content-type": "text/csv", "X-Request-ID": "req-import-7",
            "Authorization": f"Bearer {token(role='integrator', sub='edu-bureau-sync')}"})
        assert response.status_code == 200, response.text
        assert await fetch(db_engine, "SELECT key, actor, request_id FROM partnership.changes "
                                      "WHERE entity = 'school' ORDER BY seq") == [
            {"key": "11010501", "actor": "edu-bureau-sync", "request_id": "req-import-7"},
            {"key": "11010502", "actor": "edu-bureau-sync", "request_id": "req-import-7"}]
        items, _ = await drain(partnership, None, 3)
        assert [(c["key"], c["actor"], c["request_id"]) for c in items[1:]] == [
            ("11010501", "edu-bureau-sync", "req-import-7"), ("11010502", "edu-bureau-sync", "req-import-7")]

    async def test_a_reference_check_on_the_way_does_not_replace_them(self, partnership, rotation, db_engine):
        """Rotation asks partnership about the school with its own service token mid-request (in
        process here, in the caller's context); the staff change is still the caller's."""
        await f.district(partnership)
        await f.school(partnership, "11010501")
        created = await rotation.post("/v1/staff", json=staff_body(staff_no="T000001"),
                                      headers={"X-Request-ID": "req-staff-1"})
        assert created.status_code == 201, created.text
        assert await fetch(db_engine, "SELECT key, actor, request_id FROM rotation.changes") == [
            {"key": "T000001", "actor": "tester", "request_id": "req-staff-1"}]


async def test_bulk_create_entries_are_read_exactly_once_across_the_100000_boundary(fresh_cluster):
    """Entries of imported records (one per import here, with a plain change beside each), written
    by transactions whose ids straddle 99,999 → 100,000, paged with limits 1, 2 and 1000: every
    record once, in order, and each cursor, one inside an entry included, resumes exactly after it."""
    settings, engine = fresh_cluster
    from services.rotation.app import create_app

    await burn_to(engine, max(await _current_xid(engine) + 1, 99_997))
    for n in range(6):  # xids 99,997 … 100,002
        async with engine.begin() as conn:
            ids = []
            for i in range(3):
                row = await conn.execute(text(
                    "INSERT INTO rotation.staff (id, staff_no, name, home_school_code, home_district_code, role, "
                    "section, in_post_since) VALUES (gen_random_uuid(), :no, :name, '11010501', '110105', "
                    "'teacher', 'primary', '2016-09-01') RETURNING id"), {"no": f"X{n}{i}", "name": f"跨界{n}之{i}"})
                ids.append(row.scalar_one())
            await conn.execute(text("INSERT INTO rotation.changes (entity, op, ids) VALUES ('staff', 'create', :ids)"),
                               {"ids": ids})
            await conn.execute(text("INSERT INTO rotation.changes (entity, key, op, state) "
                                    "VALUES ('staff', :key, 'update', '{}')"), {"key": f"X{n}0"})
    xids = [int(r["x"]) for r in await fetch(engine, "SELECT xid::text AS x FROM rotation.changes ORDER BY seq")]
    assert min(xids) <= 99_999 < 100_000 <= max(xids)
    expected = [key for n in range(6) for key in (f"X{n}0", f"X{n}1", f"X{n}2", f"X{n}0")]
    app = create_app(settings.model_copy(update={"feed_consumers": False}))
    async with app.router.lifespan_context(app):
        token = mint_token(TEST_SECRET, sub="reader", role="city_admin")
        async with httpx.AsyncClient(transport=asgi(app), base_url="http://rotation", timeout=30,
                                     headers={"Authorization": f"Bearer {token}"}) as reader:
            settled, _ = await drain(reader, None, len(expected))
            assert [c["key"] for c in settled] == expected
            for limit in (1, 2, 1000):
                items = await _page_all(reader, limit)
                assert [(c["key"], c["op"]) for c in items] == [(c["key"], c["op"]) for c in settled], limit
                assert [c["state"].get("name") for c in items if c["op"] == "create"] == [
                    f"跨界{n}之{i}" for n in range(6) for i in range(3)]
            for at, item in enumerate(items):
                page = (await reader.get("/v1/changes", params={"after": item["cursor"], "limit": 3})).json()
                assert [c["cursor"] for c in page["items"]] == [c["cursor"] for c in items[at + 1:at + 4]], at
