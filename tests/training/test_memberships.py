"""Memberships: capacity, host and duplicate rules (409 naming the rule), held under concurrency."""

from __future__ import annotations

import asyncio
import uuid

from tests.conftest import fetch
from tests.training import factories as f


async def _join(training, studio_id, staff_id, joined_on="2024-09-01", **kwargs):
    return await training.post(f"/v1/studios/{studio_id}/members",
                               json={"staff_id": staff_id, "joined_on": joined_on}, **kwargs)


async def _current(db_engine, studio_id):
    return await fetch(db_engine, "select staff_id::text as staff_id from training.memberships "
                                  "where studio_id = :s and left_on is null order by staff_id", s=uuid.UUID(studio_id))


class TestJoin:
    async def test_members_from_any_district(self, training, world, db_engine):
        studio = await f.studio(training, host_staff_id=world.host["id"], district_code="110119")
        yanqing, haidian = world.staff[0], world.staff[4]
        first = await _join(training, studio["id"], yanqing["id"])
        assert first.status_code == 201, first.text
        assert first.headers["location"] == f"/api/v1/studios/{studio['id']}/members/{yanqing['id']}"
        assert first.json() | {"id": None} == {"id": None, "studio_id": studio["id"], "staff_id": yanqing["id"],
                                              "joined_on": "2024-09-01", "left_on": None, "current": True}
        second = await _join(training, studio["id"], haidian["id"], "2024-10-08")
        assert second.status_code == 201
        rows = await fetch(db_engine, "select staff_id::text as staff_id, joined_on::text as joined_on, left_on "
                                      "from training.memberships order by joined_on")
        assert rows == [{"staff_id": yanqing["id"], "joined_on": "2024-09-01", "left_on": None},
                        {"staff_id": haidian["id"], "joined_on": "2024-10-08", "left_on": None}]

    async def test_the_host_cannot_be_a_member(self, training, world, db_engine):
        studio = await f.studio(training, host_staff_id=world.host["id"])
        response = await _join(training, studio["id"], world.host["id"])
        assert response.status_code == 409
        assert response.json()["type"] == "urn:spp:problem:host-not-member"
        assert response.headers["content-type"] == "application/problem+json"
        assert await _current(db_engine, studio["id"]) == []

    async def test_no_duplicate_membership(self, training, world, db_engine):
        studio = await f.studio(training, host_staff_id=world.host["id"])
        await f.member(training, studio["id"], world.staff[0]["id"])
        response = await _join(training, studio["id"], world.staff[0]["id"], "2024-12-01")
        assert response.status_code == 409
        assert response.json()["type"] == "urn:spp:problem:already-member"
        assert len(await _current(db_engine, studio["id"])) == 1

    async def test_full_studio_is_409(self, training, world, db_engine):
        studio = await f.studio(training, host_staff_id=world.host["id"], capacity=2)
        await f.member(training, studio["id"], world.staff[0]["id"])
        await f.member(training, studio["id"], world.staff[1]["id"])
        response = await _join(training, studio["id"], world.staff[2]["id"])
        assert response.status_code == 409
        problem = response.json()
        assert problem["type"] == "urn:spp:problem:studio-full"
        assert (problem["capacity"], problem["current_members"]) == (2, 2)
        assert len(await _current(db_engine, studio["id"])) == 2

    async def test_a_member_who_left_frees_the_place(self, training, world, db_engine):
        studio = await f.studio(training, host_staff_id=world.host["id"], capacity=1)
        await f.member(training, studio["id"], world.staff[0]["id"])
        left = await training.post(f"/v1/studios/{studio['id']}/members/{world.staff[0]['id']}/leave",
                                   json={"left_on": "2025-06-30"})
        assert left.status_code == 200
        assert left.json()["left_on"] == "2025-06-30" and left.json()["current"] is False
        assert (await _join(training, studio["id"], world.staff[1]["id"], "2025-07-01")).status_code == 201
        assert await _current(db_engine, studio["id"]) == [{"staff_id": world.staff[1]["id"]}]

    async def test_unknown_staff_is_422(self, training, world, db_engine):
        studio = await f.studio(training, host_staff_id=world.host["id"])
        response = await _join(training, studio["id"], str(uuid.uuid4()))
        assert response.status_code == 422
        assert response.json()["type"] == "urn:spp:problem:unknown-staff"
        assert await _current(db_engine, studio["id"]) == []

    async def test_joined_on_outside_the_cycle_is_409(self, training, world):
        studio = await f.studio(training, host_staff_id=world.host["id"])
        response = await _join(training, studio["id"], world.staff[0]["id"], "2027-09-01")
        assert response.status_code == 409
        assert response.json()["type"] == "urn:spp:problem:outside-cycle"

    async def test_scope_and_unknown_studio(self, training, world, auth):
        studio = await f.studio(training, host_staff_id=world.host["id"], district_code="110119")
        for headers in (auth("viewer"), auth("integrator"), auth("district_admin", districts=("110108",))):
            assert (await _join(training, studio["id"], world.staff[0]["id"], headers=headers)).status_code == 403
        ok = await _join(training, studio["id"], world.staff[0]["id"],
                         headers=auth("district_admin", districts=("110119",)))
        assert ok.status_code == 201
        assert (await _join(training, str(uuid.uuid4()), world.staff[1]["id"])).status_code == 404


class TestConcurrentJoins:
    """The rotation check is gated so all joins reach the capacity check together."""

    async def test_one_seat_left_exactly_one_join_succeeds(self, gated, world, db_engine):
        training = gated.client
        studio = await f.studio(training, host_staff_id=world.host["id"], capacity=3)
        await f.member(training, studio["id"], world.staff[0]["id"])
        await f.member(training, studio["id"], world.staff[1]["id"])
        contenders = [s["id"] for s in world.staff[2:]]  # four staff race for the last seat
        gated.gate.arm(len(contenders))
        responses = await asyncio.gather(*(_join(training, studio["id"], sid) for sid in contenders))
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201, 409, 409, 409]
        assert {r.json()["type"] for r in responses if r.status_code == 409} == {"urn:spp:problem:studio-full"}
        count = await fetch(db_engine, "select count(*) as n from training.memberships "
                                       "where studio_id = :s and left_on is null", s=uuid.UUID(studio["id"]))
        assert count == [{"n": 3}]

    async def test_the_same_staff_twice_at_once_is_one_membership(self, gated, world, db_engine):
        training = gated.client
        studio = await f.studio(training, host_staff_id=world.host["id"])
        gated.gate.arm(3)
        responses = await asyncio.gather(*(_join(training, studio["id"], world.staff[0]["id"]) for _ in range(3)))
        assert sorted(r.status_code for r in responses) == [201, 409, 409]
        assert len(await _current(db_engine, studio["id"])) == 1


class TestLeaveAndList:
    async def test_leave_rules(self, training, world, db_engine):
        studio = await f.studio(training, host_staff_id=world.host["id"])
        await f.member(training, studio["id"], world.staff[0]["id"], joined_on="2024-10-01")
        base = f"/v1/studios/{studio['id']}/members"
        early = await training.post(f"{base}/{world.staff[0]['id']}/leave", json={"left_on": "2024-09-30"})
        assert early.status_code == 409 and early.json()["type"] == "urn:spp:problem:left-before-joined"
        stranger = await training.post(f"{base}/{world.staff[1]['id']}/leave", json={"left_on": "2025-01-01"})
        assert stranger.status_code == 404
        ok = await training.post(f"{base}/{world.staff[0]['id']}/leave", json={"left_on": "2025-01-31"})
        assert ok.status_code == 200
        rows = await fetch(db_engine, "select left_on::text as left_on from training.memberships")
        assert rows == [{"left_on": "2025-01-31"}]
        again = await training.post(f"{base}/{world.staff[0]['id']}/leave", json={"left_on": "2025-02-28"})
        assert again.status_code == 404
        # Rejoining inside the earlier membership overlaps it; after it, it is a new membership.
        overlap = await _join(training, studio["id"], world.staff[0]["id"], "2025-01-15")
        assert overlap.status_code == 409 and overlap.json()["type"] == "urn:spp:problem:already-member"
        assert (await _join(training, studio["id"], world.staff[0]["id"], "2025-03-01")).status_code == 201

    async def test_cannot_leave_before_a_session_attended(self, training, world):
        studio = await f.studio(training, host_staff_id=world.host["id"])
        await f.member(training, studio["id"], world.staff[0]["id"])
        session = await f.session(training, studio["id"], starts_at="2024-11-20T14:00:00+08:00")
        await f.attend(training, session["id"], [world.staff[0]["id"]])
        response = await training.post(f"/v1/studios/{studio['id']}/members/{world.staff[0]['id']}/leave",
                                       json={"left_on": "2024-11-19"})
        assert response.status_code == 409
        assert response.json()["type"] == "urn:spp:problem:attended-after-leaving"

    async def test_list_and_get_members(self, training, world, auth):
        studio = await f.studio(training, host_staff_id=world.host["id"])
        await f.member(training, studio["id"], world.staff[0]["id"], joined_on="2024-09-01")
        await f.member(training, studio["id"], world.staff[1]["id"], joined_on="2024-09-15")
        await training.post(f"/v1/studios/{studio['id']}/members/{world.staff[0]['id']}/leave",
                            json={"left_on": "2025-01-31"})
        listed = await training.get(f"/v1/studios/{studio['id']}/members")
        assert [(m["staff_id"], m["current"]) for m in listed.json()["items"]] == [
            (world.staff[0]["id"], False), (world.staff[1]["id"], True)]
        current = await training.get(f"/v1/studios/{studio['id']}/members", params={"current": "true"})
        assert [m["staff_id"] for m in current.json()["items"]] == [world.staff[1]["id"]]
        one = await training.get(f"/v1/studios/{studio['id']}/members/{world.staff[0]['id']}",
                                 headers=auth("viewer"))
        assert one.status_code == 200 and one.json()["left_on"] == "2025-01-31"
        missing = await training.get(f"/v1/studios/{studio['id']}/members/{world.staff[2]['id']}")
        assert missing.status_code == 404
