"""Sessions and attendance: dated in China Standard Time inside the cycle; each attendee credited
the session's hours exactly once; credits follow attendance and the session's hours and date."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from tests.conftest import fetch
from tests.training import factories as f


async def _credits(db_engine):
    return await fetch(db_engine, "select staff_id::text as staff_id, hours, earned_on::text as earned_on, "
                                  "source, reference from training.training_hours order by staff_id")


@pytest.fixture
async def studio(training, world):
    studio = await f.studio(training, host_staff_id=world.host["id"])
    for member in world.staff[:4]:
        await f.member(training, studio["id"], member["id"])
    return studio


class TestSessions:
    async def test_created_stored_and_listed(self, training, world, studio, db_engine):
        response = await training.post(f"/v1/studios/{studio['id']}/sessions", json={
            "kind": "air_classroom", "title": "空中课堂：古诗词教学", "starts_at": "2024-10-12T09:00:00+08:00",
            "hours": "2.5"})
        assert response.status_code == 201, response.text
        body = response.json()
        assert response.headers["location"] == f"/api/v1/sessions/{body['id']}"
        assert (body["hours"], body["session_date"], body["starts_at"]) == (2.5, "2024-10-12",
                                                                           "2024-10-12T01:00:00Z")
        rows = await fetch(db_engine, "select kind, title, hours, session_date::text as d from training.sessions")
        assert rows == [{"kind": "air_classroom", "title": "空中课堂：古诗词教学", "hours": Decimal("2.50"),
                         "d": "2024-10-12"}]
        await f.session(training, studio["id"], starts_at="2024-09-20T14:00:00+08:00")
        listed = await training.get(f"/v1/studios/{studio['id']}/sessions")
        assert [s["session_date"] for s in listed.json()["items"]] == ["2024-09-20", "2024-10-12"]
        assert (await training.get(f"/v1/sessions/{body['id']}")).json()["title"] == "空中课堂：古诗词教学"

    @pytest.mark.parametrize("payload, field", [
        ({"hours": "0"}, "body.hours"), ({"hours": "-1"}, "body.hours"), ({"hours": "1.255"}, "body.hours"),
        ({"starts_at": "2024-10-12T09:00:00"}, "body.starts_at"), ({"kind": "party"}, "body.kind"),
    ])
    async def test_invalid_session_is_422(self, training, studio, payload, field, db_engine):
        body = {"kind": "lecture", "title": "讲座", "starts_at": "2024-10-12T09:00:00+08:00", "hours": "2", **payload}
        response = await training.post(f"/v1/studios/{studio['id']}/sessions", json=body)
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == field
        assert await fetch(db_engine, "select id from training.sessions") == []

    async def test_outside_the_cycle_is_409_dated_in_china(self, training, studio, db_engine):
        # 2024-08-31T20:00Z is 04:00 on 1 September in Beijing: inside the cycle that starts that day.
        inside = await training.post(f"/v1/studios/{studio['id']}/sessions", json={
            "kind": "lecture", "title": "开班仪式", "starts_at": "2024-08-31T20:00:00Z", "hours": "1"})
        assert inside.status_code == 201 and inside.json()["session_date"] == "2024-09-01"
        before = await training.post(f"/v1/studios/{studio['id']}/sessions", json={
            "kind": "lecture", "title": "预备会", "starts_at": "2024-08-31T15:59:00Z", "hours": "1"})
        assert before.status_code == 409 and before.json()["type"] == "urn:spp:problem:outside-cycle"
        after = await training.post(f"/v1/studios/{studio['id']}/sessions", json={
            "kind": "lecture", "title": "结业", "starts_at": "2027-09-01T09:00:00+08:00", "hours": "1"})
        assert after.status_code == 409
        assert len(await fetch(db_engine, "select id from training.sessions")) == 1

    async def test_scope_and_unknowns(self, training, studio, auth):
        body = {"kind": "lecture", "title": "讲座", "starts_at": "2024-10-12T09:00:00+08:00", "hours": "2"}
        for headers in (auth("viewer"), auth("integrator"), auth("district_admin", districts=("110108",))):
            assert (await training.post(f"/v1/studios/{studio['id']}/sessions", json=body,
                                        headers=headers)).status_code == 403
        assert (await training.post(f"/v1/studios/{uuid.uuid4()}/sessions", json=body)).status_code == 404
        assert (await training.get(f"/v1/sessions/{uuid.uuid4()}")).status_code == 404
        assert (await training.patch(f"/v1/sessions/{uuid.uuid4()}", json={"hours": "1"})).status_code == 404
        assert (await training.put(f"/v1/sessions/{uuid.uuid4()}/attendance",
                                   json={"staff_ids": []})).status_code == 404


class TestAttendance:
    async def test_each_attendee_credited_once(self, training, world, studio, db_engine):
        session = await f.session(training, studio["id"], hours="3.5", starts_at="2024-10-12T09:00:00+08:00")
        a, b = world.staff[0]["id"], world.staff[1]["id"]
        response = await training.put(f"/v1/sessions/{session['id']}/attendance", json={"staff_ids": [a, b, a]})
        assert response.status_code == 200, response.text
        assert response.json() == {"session_id": session["id"], "session_date": "2024-10-12", "hours": 3.5,
                                   "staff_ids": sorted([a, b]), "attendees": 2, "credited_hours": 7}
        again = await training.put(f"/v1/sessions/{session['id']}/attendance", json={"staff_ids": [b, a]})
        assert again.json()["credited_hours"] == 7
        assert await _credits(db_engine) == sorted([
            {"staff_id": s, "hours": Decimal("3.50"), "earned_on": "2024-10-12", "source": "studio_session",
             "reference": f"{session['id']}:{s}"} for s in (a, b)], key=lambda r: r["staff_id"])
        assert (await training.get(f"/v1/sessions/{session['id']}/attendance")).json()["attendees"] == 2

    async def test_replacing_removes_and_adds_credits(self, training, world, studio, db_engine):
        session = await f.session(training, studio["id"], hours="2")
        a, b, c = (s["id"] for s in world.staff[:3])
        await f.attend(training, session["id"], [a, b])
        body = await f.attend(training, session["id"], [b, c])
        assert body["staff_ids"] == sorted([b, c])
        assert [r["staff_id"] for r in await _credits(db_engine)] == sorted([b, c])
        assert await fetch(db_engine, "select count(*) as n from training.attendance") == [{"n": 2}]
        emptied = await f.attend(training, session["id"], [])
        assert (emptied["attendees"], emptied["credited_hours"]) == (0, 0)
        assert await _credits(db_engine) == []

    async def test_only_members_on_the_session_date(self, training, world, studio, db_engine):
        session = await f.session(training, studio["id"], hours="2", starts_at="2024-11-05T14:00:00+08:00")
        await f.attend(training, session["id"], [world.staff[0]["id"]])
        outsider = world.staff[5]["id"]  # never joined
        response = await training.put(f"/v1/sessions/{session['id']}/attendance",
                                      json={"staff_ids": [world.staff[1]["id"], outsider]})
        assert response.status_code == 422
        problem = response.json()
        assert problem["type"] == "urn:spp:problem:not-a-member"
        assert problem["errors"] == [{"field": "body.staff_ids.1", "message": f"{outsider} is not a member",
                                      "type": "not_a_member"}]
        # Nothing changed: the earlier list and its credit stand.
        assert [r["staff_id"] for r in await _credits(db_engine)] == [world.staff[0]["id"]]
        assert (await training.put(f"/v1/sessions/{session['id']}/attendance",
                                   json={"staff_ids": [world.host["id"]]})).status_code == 422

    async def test_a_member_who_left_keeps_earlier_sessions_only(self, training, world, studio):
        early = await f.session(training, studio["id"], starts_at="2024-10-10T09:00:00+08:00")
        late = await f.session(training, studio["id"], starts_at="2025-03-10T09:00:00+08:00")
        leaver = world.staff[0]["id"]
        left = await training.post(f"/v1/studios/{studio['id']}/members/{leaver}/leave", json={"left_on": "2024-12-31"})
        assert left.status_code == 200
        assert (await training.put(f"/v1/sessions/{early['id']}/attendance",
                                   json={"staff_ids": [leaver]})).status_code == 200
        assert (await training.put(f"/v1/sessions/{late['id']}/attendance",
                                   json={"staff_ids": [leaver]})).status_code == 422

    async def test_scope(self, training, world, studio, auth):
        session = await f.session(training, studio["id"])
        for headers in (auth("viewer"), auth("integrator"), auth("district_admin", districts=("110108",))):
            response = await training.put(f"/v1/sessions/{session['id']}/attendance",
                                          json={"staff_ids": [world.staff[0]["id"]]}, headers=headers)
            assert response.status_code == 403
        ok = await training.put(f"/v1/sessions/{session['id']}/attendance", json={"staff_ids": []},
                                headers=auth("district_admin", districts=("110119",)))
        assert ok.status_code == 200


class TestUpdateSession:
    async def test_changing_hours_changes_every_credit(self, training, world, studio, db_engine):
        session = await f.session(training, studio["id"], hours="3")
        await f.attend(training, session["id"], [world.staff[0]["id"], world.staff[1]["id"]])
        response = await training.patch(f"/v1/sessions/{session['id']}", json={"hours": "4.5", "title": "修订后的标题"})
        assert response.status_code == 200
        # Version 1 at creation, 2 when the attendance changed, 3 now.
        assert (response.json()["hours"], response.json()["title"], response.json()["version"]) == (4.5, "修订后的标题", 3)
        assert response.headers["etag"] == '"v3"'
        assert {r["hours"] for r in await _credits(db_engine)} == {Decimal("4.50")}
        attendance = await training.get(f"/v1/sessions/{session['id']}/attendance")
        assert attendance.json()["credited_hours"] == 9

    async def test_moving_the_session_moves_earned_on(self, training, world, studio, db_engine):
        session = await f.session(training, studio["id"], starts_at="2024-10-12T09:00:00+08:00")
        await f.attend(training, session["id"], [world.staff[0]["id"]])
        response = await training.patch(f"/v1/sessions/{session['id']}",
                                        json={"starts_at": "2024-10-19T23:30:00Z"})
        assert response.status_code == 200 and response.json()["session_date"] == "2024-10-20"
        assert [r["earned_on"] for r in await _credits(db_engine)] == ["2024-10-20"]
        outside = await training.patch(f"/v1/sessions/{session['id']}", json={"starts_at": "2028-01-01T09:00:00+08:00"})
        assert outside.status_code == 409 and outside.json()["type"] == "urn:spp:problem:outside-cycle"
        assert [r["earned_on"] for r in await _credits(db_engine)] == ["2024-10-20"]

    async def test_moving_before_an_attendee_joined_is_409(self, training, world, studio):
        late_joiner = world.staff[4]["id"]
        await f.member(training, studio["id"], late_joiner, joined_on="2024-12-01")
        session = await f.session(training, studio["id"], starts_at="2024-12-10T09:00:00+08:00")
        await f.attend(training, session["id"], [late_joiner])
        response = await training.patch(f"/v1/sessions/{session['id']}", json={"starts_at": "2024-11-10T09:00:00+08:00"})
        assert response.status_code == 409
        assert response.json()["type"] == "urn:spp:problem:attendee-not-member"

    async def test_if_match_prevents_lost_updates(self, training, studio, db_engine):
        session = await f.session(training, studio["id"], hours="2")
        stale = await training.patch(f"/v1/sessions/{session['id']}", json={"hours": "3"}, headers={"If-Match": '"v7"'})
        assert stale.status_code == 412
        fresh = await training.patch(f"/v1/sessions/{session['id']}", json={"hours": "3"}, headers={"If-Match": '"v1"'})
        assert fresh.status_code == 200
        assert await fetch(db_engine, "select hours, version from training.sessions") == [
            {"hours": Decimal("3.00"), "version": 2}]

    async def test_invalid_patch_is_422(self, training, studio):
        session = await f.session(training, studio["id"])
        for body in ({"hours": "0"}, {"hours": None}, {"studio_id": str(uuid.uuid4())}):
            assert (await training.patch(f"/v1/sessions/{session['id']}", json=body)).status_code == 422
