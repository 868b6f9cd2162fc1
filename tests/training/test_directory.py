"""Training's staff directory, kept from rotation's change feed (services/common/feed_consumer.py):
it follows rotation in the background, applies each change exactly once, bootstraps a fresh
database, has one active consumer at a time, and serves reference checks with rotation down."""

from __future__ import annotations

import asyncio
from uuid import UUID

import httpx
import pytest

from services.common.feed_consumer import FeedConsumer, FeedSpec
from services.common.upstream import Upstream
from services.training.app import create_app
from services.training.directory import apply_staff_changes
from tests.conftest import asgi, fetch
from tests.feed import STAFF_COPY, drain, read_all, synced
from tests.training import factories as f

DIRECTORY = STAFF_COPY


def refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


async def _until(db_engine, sql: str, expected: list[dict], within: float = 1.0) -> float:
    """Seconds until `sql` reads `expected`; fails after `within` seconds."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        rows = await fetch(db_engine, sql)
        if rows == expected:
            return loop.time() - started
        if loop.time() - started > within:
            raise AssertionError(f"not within {within} s: {rows} != {expected}")
        await asyncio.sleep(0.01)


def _entry(staff: dict, **changes) -> dict:
    row = {"id": UUID(staff["id"]), "staff_no": staff["staff_no"], "home_school_code": staff["home_school_code"],
           "home_district_code": staff["home_district_code"], "status": staff["status"], "version": staff["version"]}
    return {**row, **changes}


async def _two_districts(partnership) -> None:
    await f.district(partnership, *f.HAIDIAN)
    await f.district(partnership, *f.YANQING)
    await f.school(partnership, "11010801", district_code=f.HAIDIAN[0])
    await f.school(partnership, "11011901", district_code=f.YANQING[0], locality="township")


class TestFollowing:
    async def test_create_update_and_move_to_another_district_follow_within_a_second(
            self, partnership, rotation, training, db_engine):
        await _two_districts(partnership)
        staff = await f.staff(rotation, school_code="11010801", name="王芳")
        await _until(db_engine, DIRECTORY, [_entry(staff, home_district_code="110108", version=1)])

        updated = await rotation.patch(f"/v1/staff/{staff['id']}", json={"backbone_level": "municipal"})
        assert updated.status_code == 200
        await _until(db_engine, DIRECTORY, [_entry(staff, version=2)])

        moved = await rotation.patch(f"/v1/staff/{staff['id']}", json={"home_school_code": "11011901"})
        assert moved.status_code == 200
        await _until(db_engine, DIRECTORY, [_entry(staff, home_school_code="11011901", home_district_code="110119",
                                                   version=3)])
        retired = await rotation.patch(f"/v1/staff/{staff['id']}", json={"status": "retired"})
        assert retired.status_code == 200
        await _until(db_engine, DIRECTORY, [_entry(staff, home_school_code="11011901", home_district_code="110119",
                                                   status="retired", version=4)])
        # The completion figures follow the directory: the moved, then retired, teacher left 海淀.
        figures = await training.get("/v1/internal/training-completion", params={"as_of": "2025-06-30"})
        assert figures.json()["districts"] == []

        consumer = training._transport.app.state.feed_consumers[0]
        feed, last = await read_all(rotation, None)
        assert await fetch(db_engine, "select consumer, cursor, applied from training.feed_cursors") == [
            {"consumer": "training.staff_directory", "cursor": last, "applied": len(feed)}]
        ready = (await training.get("/readyz")).json()["feeds"]["training.staff_directory"]
        assert (ready["producer"], ready["state"], ready["lag_seconds"], ready["producer_reachable"]) == (
            "rotation", "active", 0.0, True)
        assert consumer.applied == len(feed) == 4

    async def test_a_vanished_cursor_row_rebuilds_the_directory(self, partnership, rotation, training, db_engine):
        """The test fixtures truncate every table between tests; an operator may too."""
        await _two_districts(partnership)
        for name in ("王芳", "张伟"):
            await f.staff(rotation, school_code="11010801", name=name)
        await synced(db_engine, schools=False)
        before = await fetch(db_engine, DIRECTORY)
        async with db_engine.begin() as conn:
            from sqlalchemy import text
            await conn.execute(text("DELETE FROM training.feed_cursors"))
            await conn.execute(text("DELETE FROM training.staff_directory"))
        await _until(db_engine, DIRECTORY, before)
        assert await fetch(db_engine, "select applied from training.feed_cursors") == [{"applied": 2}]


class TestExactlyOnce:
    async def test_a_batch_that_fails_midway_applies_nothing_and_the_rerun_applies_each_change_once(
            self, partnership, rotation, rotation_app, db_engine, token):
        await _two_districts(partnership)
        staff = [await f.staff(rotation, school_code="11010801", name=f"教师{i}") for i in range(5)]
        moved = await rotation.patch(f"/v1/staff/{staff[1]['id']}", json={"home_school_code": "11011901"})
        assert moved.status_code == 200
        # Poll until all six arrived: a transaction of another test process may hold the feed back a
        # moment (the horizon is cluster-wide). Once seen, the consumer below sees them all too.
        feed, last = await drain(rotation, None, 6)
        assert [(c["entity"], c["op"]) for c in feed] == [("staff", "create")] * 5 + [("staff", "update")]

        failing = {"armed": True}

        async def apply(conn, changes):
            """The real handler, logging each change it applies in the same transaction; on the first
            call it fails at the 3rd change of its batch (after applying two)."""
            from sqlalchemy import text
            for number, change in enumerate(changes, start=1):
                if failing["armed"] and number == 3:
                    failing["armed"] = False
                    raise RuntimeError("handler failed at the 3rd change")
                await apply_staff_changes(conn, [change])
                await conn.execute(text("INSERT INTO applied_log (cursor) VALUES (:c)"), {"c": change.cursor})

        upstream = Upstream("rotation", "http://rotation", timeout=5, transport=asgi(rotation_app),
                            token=lambda: token())
        spec = FeedSpec(name="training.staff_directory", producer="rotation", schema="training", apply=apply)
        consumer = FeedConsumer(spec, engine=db_engine, upstream=upstream, poll_interval=0.1, batch_size=4)
        try:
            async with db_engine.connect() as conn:
                from sqlalchemy import text
                await conn.execute(text("CREATE TEMP TABLE applied_log (n serial, cursor text)"))
                await conn.commit()
                with pytest.raises(RuntimeError):
                    await consumer.run_once(conn)
                # Rolled back whole: two applied changes, the log and the cursor alike.
                assert (await conn.execute(text("SELECT count(*) FROM applied_log"))).scalar() == 0
                await conn.commit()
                assert await fetch(db_engine, DIRECTORY) == []
                assert await fetch(db_engine, "select * from training.feed_cursors") == []

                assert [await consumer.run_once(conn) for _ in range(3)] == [4, 2, 0]
                log = (await conn.execute(text("SELECT cursor FROM applied_log ORDER BY n"))).scalars().all()
                await conn.commit()
        finally:
            await upstream.aclose()
        assert log == [c["cursor"] for c in feed]  # each change once, in feed order, none skipped
        assert await fetch(db_engine, "select consumer, cursor, applied from training.feed_cursors") == [
            {"consumer": "training.staff_directory", "cursor": last, "applied": 6}]
        expected = [_entry(s, home_district_code="110108") for s in staff]
        expected[1] = _entry(staff[1], home_school_code="11011901", home_district_code="110119", version=2)
        assert await fetch(db_engine, DIRECTORY) == sorted(expected, key=lambda r: r["id"])

    async def test_only_one_consumer_is_active_and_a_standby_takes_over(self, settings, partnership, rotation,
                                                                       rotation_app, training_app, db_engine):
        await _two_districts(partnership)
        second = create_app(settings, transports={"rotation": asgi(rotation_app)})
        async with second.router.lifespan_context(second):
            consumers = [training_app.state.feed_consumers[0], second.state.feed_consumers[0]]
            for _ in range(100):
                if sorted(c.state for c in consumers) == ["active", "standby"]:
                    break
                await asyncio.sleep(0.02)
            assert sorted(c.state for c in consumers) == ["active", "standby"]
            locks = await fetch(db_engine, "select count(*) as n from pg_locks where locktype = 'advisory' "
                                           "and granted and objid = ((hashtext('training.staff_directory')::bigint "
                                           "& 4294967295)::text)::oid and database = (select oid from pg_database "
                                           "where datname = current_database())")
            assert locks == [{"n": 1}]
            active = next(c for c in consumers if c.state == "active")
            standby = next(c for c in consumers if c.state == "standby")
            await active.stop()
            staff = await f.staff(rotation, school_code="11010801")
            await _until(db_engine, DIRECTORY, [_entry(staff)], within=2.0)
            assert standby.state == "active"


class TestBootstrap:
    async def test_a_fresh_database_bootstraps_its_directory_from_the_feed(self, settings, partnership, rotation,
                                                                          rotation_app, db_engine):
        """Training's tables as a new database has them (migrated, empty: no cursor row), rotation
        already full of history: the first consumer replays the whole feed. (Creating a real second
        database here would stall every feed on the server: CREATE/DROP DATABASE wait for a
        checkpoint while holding a transaction id.)"""
        await _two_districts(partnership)
        staff = [await f.staff(rotation, school_code="11010801", name=f"教师{i}") for i in range(3)]
        assert (await rotation.patch(f"/v1/staff/{staff[0]['id']}", json={"status": "left"})).status_code == 200
        assert (await rotation.patch(f"/v1/staff/{staff[2]['id']}",
                                     json={"home_school_code": "11011901"})).status_code == 200
        feed, last = await drain(rotation, None, 5)  # 3 creates, 2 updates, however long they are held back
        assert len(feed) == 5
        assert await fetch(db_engine, "select * from training.feed_cursors") == []
        assert await fetch(db_engine, DIRECTORY) == []

        app = create_app(settings, transports={"rotation": asgi(rotation_app)})
        async with app.router.lifespan_context(app):
            expected = sorted([_entry(staff[0], status="left", version=2), _entry(staff[1]),
                               _entry(staff[2], home_school_code="11011901", home_district_code="110119",
                                      version=2)], key=lambda r: r["id"])
            await _until(db_engine, DIRECTORY, expected, within=5.0)
            await _until(db_engine, "select cursor, applied from training.feed_cursors",
                         [{"cursor": last, "applied": len(feed)}])


class TestReferenceChecks:
    async def test_the_directory_answers_with_rotation_down_and_a_miss_is_503(self, settings, world, training,
                                                                             db_engine):
        await synced(db_engine, schools=False)
        dead = create_app(settings.model_copy(update={"feed_consumers": False}),
                          transports={"rotation": httpx.MockTransport(refuse)})
        async with dead.router.lifespan_context(dead):
            async with httpx.AsyncClient(transport=asgi(dead), base_url="http://training",
                                         headers=training.headers) as client:
                hit = await client.post("/v1/training-hours", json={
                    "staff_id": world.staff[0]["id"], "hours": "8", "earned_on": "2024-05-01", "source": "市级平台",
                    "reference": "DIR-1"})
                assert hit.status_code == 201, hit.text
                ghost = "6f1c2a9e-0000-4000-8000-000000000009"
                miss = await client.post("/v1/studios", json={
                    "name": "无名工作室", "kind": "famous_teacher", "host_staff_id": ghost, "subject": "数学",
                    "district_code": "110119", "start_date": "2024-09-01", "end_date": "2027-08-31"})
                assert miss.status_code == 503
                assert miss.headers["content-type"] == "application/problem+json"
                assert (miss.json()["type"], miss.json()["upstream"]) == (
                    "urn:spp:problem:upstream-unavailable", "rotation")
                # Readiness reports the producer down, and stays ready.
                ready = await client.get("/readyz")
                assert (ready.status_code, ready.json().get("feeds")) == (200, None)
        assert await fetch(db_engine, "select reference from training.training_hours") == [{"reference": "DIR-1"}]
        assert await fetch(db_engine, "select count(*) as n from training.studios") == [{"n": 0}]

    async def test_a_producer_down_is_reported_in_readyz_and_metrics_not_unready(self, settings):
        app = create_app(settings, transports={"rotation": httpx.MockTransport(refuse)})
        async with app.router.lifespan_context(app):
            consumer = app.state.feed_consumers[0]
            for _ in range(100):
                if consumer.last_error:
                    break
                await asyncio.sleep(0.02)
            async with httpx.AsyncClient(transport=asgi(app), base_url="http://training") as client:
                ready = await client.get("/readyz")
                metrics = (await client.get("/metrics")).text
        assert ready.status_code == 200
        detail = ready.json()["feeds"]["training.staff_directory"]
        assert (detail["state"], detail["producer_reachable"], detail["lag_seconds"]) == ("active", False, None)
        assert detail["last_error"].startswith("the rotation service is unavailable")
        assert 'spp_feed_errors_total{consumer="training.staff_directory",process="training"}' in metrics
        assert "spp_feed_lag_seconds" in metrics
