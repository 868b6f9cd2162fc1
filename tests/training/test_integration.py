"""Government integration: ETags on studios, sessions, attendance and credits; the training change
feed; integrators read, import and read the feed, and write nothing else (design.md §5)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from sqlalchemy import text

from tests.conftest import fetch
from tests.feed import drain, read_all
from tests.training import factories as f


@pytest.fixture
async def studio(training, world):
    studio = await f.studio(training, host_staff_id=world.host["id"])
    for member in world.staff[:3]:
        await f.member(training, studio["id"], member["id"])
    return studio


async def _credits(db_engine):
    return await fetch(db_engine, "select staff_id::text as staff_id, hours from training.training_hours "
                                  "order by staff_id")


class TestETags:
    async def test_studio_get_gives_etag_and_304(self, training, studio):
        first = await training.get(f"/v1/studios/{studio['id']}")
        assert first.headers["etag"] == '"v1"'
        again = await training.get(f"/v1/studios/{studio['id']}", headers={"If-None-Match": '"v1"'})
        assert (again.status_code, again.headers["etag"], again.content) == (304, '"v1"', b"")
        assert (await training.get(f"/v1/studios/{studio['id']}", headers={"If-None-Match": '"v0"'})
                ).status_code == 200

    async def test_close_with_a_stale_if_match_is_412_and_nothing_changes(self, training, studio, db_engine):
        stale = await training.post(f"/v1/studios/{studio['id']}/close", headers={"If-Match": '"v2"'})
        assert stale.status_code == 412
        assert stale.headers["content-type"] == "application/problem+json"
        assert (stale.json()["type"], stale.json()["current_etag"]) == ("urn:spp:problem:stale-etag", '"v1"')
        garbage = await training.post(f"/v1/studios/{studio['id']}/close", headers={"If-Match": "1"})
        assert garbage.status_code == 412
        assert await fetch(db_engine, "select status, version from training.studios") == [
            {"status": "active", "version": 1}]
        closed = await training.post(f"/v1/studios/{studio['id']}/close", headers={"If-Match": '"v1"'})
        assert (closed.status_code, closed.headers["etag"], closed.json()["status"]) == (200, '"v2"', "closed")

    async def test_close_without_if_match_still_works(self, training, studio):
        closed = await training.post(f"/v1/studios/{studio['id']}/close")
        assert (closed.status_code, closed.headers["etag"]) == (200, '"v2"')

    async def test_session_get_patch(self, training, studio, db_engine):
        session = await f.session(training, studio["id"], hours="2")
        url = f"/v1/sessions/{session['id']}"
        read = await training.get(url)
        assert read.headers["etag"] == '"v1"'
        assert (await training.get(url, headers={"If-None-Match": 'W/"v1", "v9"'})).status_code == 304
        patched = await training.patch(url, json={"hours": "3"}, headers={"If-Match": '"v1"'})
        assert (patched.status_code, patched.headers["etag"]) == (200, '"v2"')
        stale = await training.patch(url, json={"hours": "9"}, headers={"If-Match": '"v1"'})
        assert (stale.status_code, stale.json()["current_etag"]) == (412, '"v2"')
        assert await fetch(db_engine, "select hours, version from training.sessions") == [
            {"hours": Decimal("3.00"), "version": 2}]

    async def test_attendance_carries_the_session_etag_and_a_change_bumps_it(self, training, world, studio,
                                                                             db_engine):
        session = await f.session(training, studio["id"], hours="2")
        url = f"/v1/sessions/{session['id']}/attendance"
        a, b, c = (s["id"] for s in world.staff[:3])
        assert (await training.get(url)).headers["etag"] == '"v1"'
        first = await training.put(url, json={"staff_ids": [a, b]}, headers={"If-Match": '"v1"'})
        assert (first.status_code, first.headers["etag"]) == (200, '"v2"')
        # A writer who read version 1 (of the session or its attendance) is now stale.
        stale = await training.put(url, json={"staff_ids": [c]}, headers={"If-Match": '"v1"'})
        assert (stale.status_code, stale.json()["current_etag"]) == (412, '"v2"')
        stale_patch = await training.patch(f"/v1/sessions/{session['id']}", json={"hours": "5"},
                                           headers={"If-Match": '"v1"'})
        assert stale_patch.status_code == 412
        assert await _credits(db_engine) == sorted([{"staff_id": a, "hours": Decimal("2.00")},
                                                    {"staff_id": b, "hours": Decimal("2.00")}],
                                                   key=lambda r: r["staff_id"])
        # The same list again changes nothing: the version stays.
        same = await training.put(url, json={"staff_ids": [b, a]}, headers={"If-Match": '"v2"'})
        assert (same.status_code, same.headers["etag"]) == (200, '"v2"')
        assert (await training.get(url, headers={"If-None-Match": '"v2"'})).status_code == 304
        assert (await training.get(f"/v1/sessions/{session['id']}")).json()["version"] == 2

    async def test_concurrent_attendance_writers_with_one_etag_one_wins(self, training, world, studio, db_engine):
        session = await f.session(training, studio["id"], hours="2")
        url = f"/v1/sessions/{session['id']}/attendance"
        a, b = world.staff[0]["id"], world.staff[1]["id"]
        responses = await asyncio.gather(*(training.put(url, json={"staff_ids": [who]}, headers={"If-Match": '"v1"'})
                                           for who in (a, b)))
        assert sorted(r.status_code for r in responses) == [200, 412]
        winner = next(r for r in responses if r.status_code == 200).json()["staff_ids"]
        assert [r["staff_id"] for r in await _credits(db_engine)] == winner
        assert await fetch(db_engine, "select version from training.sessions") == [{"version": 2}]

    async def test_credit_get_gives_etag_and_304(self, training, world):
        credit = await f.credit(training, world.staff[0]["id"], hours="8", earned_on="2024-05-01")
        url = f"/v1/training-hours/{credit['id']}"
        assert (await training.get(url)).headers["etag"] == '"v1"'
        assert (await training.get(url, headers={"If-None-Match": '"v1"'})).status_code == 304


class TestChangeFeed:
    async def test_every_change_with_its_key_and_new_state_in_order(self, training, world, studio, db_engine):
        host, (a, b, c) = world.host["id"], (s["id"] for s in world.staff[:3])
        sid = studio["id"]
        session = await f.session(training, sid, hours="2")
        await f.attend(training, session["id"], [a, b])
        await training.patch(f"/v1/sessions/{session['id']}", json={"hours": "2.5"})
        await f.attend(training, session["id"], [b])
        left = await training.post(f"/v1/studios/{sid}/members/{c}/leave", json={"left_on": "2025-01-31"})
        assert left.status_code == 200
        await training.post(f"/v1/studios/{sid}/close")
        external = await f.credit(training, a, hours="24", earned_on="2024-11-08", source="市级平台",
                                  reference="PX-1")
        # A replay is the same credit: no second change.
        replay = await training.post("/v1/training-hours", json={
            "staff_id": a, "hours": "24", "earned_on": "2024-11-08", "source": "市级平台", "reference": "PX-1"})
        assert replay.status_code == 200

        items, cursor = await drain(training, None, 16)
        assert (await training.get("/v1/changes")).json()["service"] == "training"
        sa, sb = (f"studio_session:{session['id']}:{x}" for x in (a, b))
        first_two = sorted([("training_credit", sa, "create"), ("training_credit", sb, "create")])  # by key
        assert [(c_["entity"], c_["key"], c_["op"]) for c_ in items] == [
            ("studio", sid, "create"),
            ("membership", f"{sid}:{a}", "create"),
            ("membership", f"{sid}:{b}", "create"),
            ("membership", f"{sid}:{c}", "create"),
            ("session", session["id"], "create"),
            ("attendance", session["id"], "update"),
            *first_two,
            ("session", session["id"], "update"),
            *[(e, k, "update") for e, k, _ in first_two],
            ("attendance", session["id"], "update"),
            ("training_credit", sa, "delete"),
            ("membership", f"{sid}:{c}", "state"),
            ("studio", sid, "state"),
            ("training_credit", "市级平台:PX-1", "create"),
        ]
        assert items[0]["state"]["host_staff_id"] == host and items[0]["state"]["name"] == "李华名师工作室"
        assert items[5]["state"]["staff_ids"] == sorted([a, b]) and items[5]["state"]["hours"] == 2
        assert items[8]["state"]["hours"] == 2.5
        assert {items[9]["state"]["hours"], items[10]["state"]["hours"]} == {2.5}
        assert (items[11]["state"]["staff_ids"], items[11]["state"]["credited_hours"]) == ([b], 2.5)
        assert items[12]["state"] is None
        assert (items[13]["state"]["left_on"], items[13]["state"]["current"]) == ("2025-01-31", False)
        assert (items[14]["state"]["status"], items[14]["state"]["version"]) == ("closed", 2)
        assert items[15]["state"] == external
        empty = (await training.get("/v1/changes", params={"after": cursor})).json()
        assert (empty["items"], empty["next_cursor"]) == ([], cursor)

    async def test_a_refused_write_leaves_no_change(self, training, studio, db_engine):
        session = await f.session(training, studio["id"])
        _, cursor = await drain(training, None, 5)
        outside = await training.patch(f"/v1/sessions/{session['id']}", json={"starts_at": "2030-01-01T09:00:00+08:00"})
        assert outside.status_code == 409
        assert (await training.put(f"/v1/sessions/{session['id']}/attendance", json={"staff_ids": []})
                ).status_code == 200  # unchanged (empty before and after): nothing to report
        assert await fetch(db_engine, "select count(*) as n from training.changes") == [{"n": 5}]
        assert (await read_all(training, cursor))[0] == []

    async def test_only_integrators_and_city_readers(self, training, auth):
        assert (await training.get("/v1/changes", headers=auth("integrator"))).status_code == 200
        assert (await training.get("/v1/changes", headers=auth("viewer"))).status_code == 200
        assert (await training.get("/v1/changes", headers=auth("district_admin", districts=("110119",)))
                ).status_code == 403
        assert (await training.get("/v1/changes", params={"after": "@@"})).status_code == 422

    async def test_a_transaction_that_commits_late_is_not_skipped(self, training, world, db_engine):
        await f.studio(training, host_staff_id=world.host["id"], name="甲工作室")
        _, cursor = await drain(training, None, 1)
        async with db_engine.connect() as slow:
            # An older transaction writes its change first but commits last.
            await slow.execute(text("INSERT INTO training.changes (entity, key, op, state) "
                                    "VALUES ('studio', 'SLOW', 'create', '{}')"))
            fast = await f.studio(training, host_staff_id=world.host["id"], name="乙工作室")
            held_back, held_cursor = await read_all(training, cursor)
            assert held_back == []  # the younger commit waits behind the still-open older transaction
            assert held_cursor == cursor
            await slow.commit()
        seen, cursor = await drain(training, cursor, 2)
        assert [c["key"] for c in seen] == ["SLOW", fast["id"]]
        again, _ = await read_all(training, cursor)
        assert again == []


class TestIntegratorRole:
    async def test_every_write_endpoint_is_403_for_integrators(self, training, world, studio, auth, db_engine):
        session = await f.session(training, studio["id"])
        await f.attend(training, session["id"], [world.staff[0]["id"]])
        before = await fetch(db_engine, "select count(*) as n from training.changes")
        integrator = auth("integrator")
        sid, staff = studio["id"], world.staff[4]["id"]
        writes = [
            ("POST", "/v1/studios", {"name": "某工作室", "kind": "famous_teacher", "host_staff_id": world.host["id"],
                                     "subject": "语文", "district_code": "110119", "start_date": "2024-09-01"}),
            ("POST", f"/v1/studios/{sid}/close", None),
            ("POST", f"/v1/studios/{sid}/members", {"staff_id": staff, "joined_on": "2024-09-01"}),
            ("POST", f"/v1/studios/{sid}/members/{world.staff[1]['id']}/leave", {"left_on": "2025-01-01"}),
            ("POST", f"/v1/studios/{sid}/sessions", {"kind": "lecture", "title": "讲座",
                                                      "starts_at": "2024-10-20T09:00:00+08:00", "hours": "2"}),
            ("PATCH", f"/v1/sessions/{session['id']}", {"hours": "5"}),
            ("PUT", f"/v1/sessions/{session['id']}/attendance", {"staff_ids": []}),
            ("POST", "/v1/training-hours", {"staff_id": staff, "hours": "8", "earned_on": "2024-05-01",
                                            "source": "municipal_platform", "reference": "PX-1"}),
        ]
        for method, url, body in writes:
            response = await training.request(method, url, json=body, headers=integrator)
            assert (method, url, response.status_code) == (method, url, 403), response.text
            assert response.headers["content-type"] == "application/problem+json"
        assert await fetch(db_engine, "select count(*) as n from training.changes") == before
        assert await fetch(db_engine, "select count(*) as n from training.studios") == [{"n": 1}]
        assert await _credits(db_engine) == [{"staff_id": world.staff[0]["id"], "hours": Decimal("3.00")}]

    async def test_integrators_read_import_and_read_the_feed(self, training, world, studio, auth):
        integrator = auth("integrator")
        assert (await training.get(f"/v1/studios/{studio['id']}", headers=integrator)).status_code == 200
        assert (await training.get("/v1/changes", headers=integrator)).status_code == 200
        imported = await training.post("/v1/imports/training-hours", headers={**integrator, "content-type": "text/csv"},
                                       content=f"staff_id,hours,earned_on,source,reference\n"
                                               f"{world.staff[0]['id']},8,2024-05-01,municipal_platform,PX-1\n")
        assert (imported.status_code, imported.json()["inserted"]) == (200, 1)
        assert (await training.get(f"/v1/imports/{imported.json()['id']}", headers=integrator)).status_code == 200
