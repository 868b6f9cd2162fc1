"""Government integration on the rotation service: ETags on single resources, the rotation change
feed, and the integrator role (reads, imports and the feed; no other write)."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from tests.conftest import fetch
from tests.feed import drain, read_all
from tests.rotation import factories as f


class TestETags:
    async def test_staff_get_304_and_stale_patch_412(self, partnership, rotation, db_engine):
        await f.chaoyang_with_schools(partnership)
        member = await f.staff(rotation, name="王芳")
        url = f"/v1/staff/{member['id']}"
        first = await rotation.get(url)
        assert first.headers["etag"] == '"v1"'
        again = await rotation.get(url, headers={"If-None-Match": '"v1"'})
        assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", '"v1"')
        assert (await rotation.get(url, headers={"If-None-Match": '"v0"'})).status_code == 200
        updated = await rotation.patch(url, json={"name": "王芳芳"}, headers={"If-Match": '"v1"'})
        assert (updated.status_code, updated.headers["etag"]) == (200, '"v2"')
        stale = await rotation.patch(url, json={"name": "覆盖"}, headers={"If-Match": '"v1"'})
        assert stale.status_code == 412
        assert stale.headers["content-type"] == f.PROBLEM
        assert (stale.json()["type"], stale.json()["current_etag"]) == ("urn:spp:problem:stale-etag", '"v2"')
        garbage = await rotation.patch(url, json={"name": "覆盖"}, headers={"If-Match": "nonsense"})
        assert garbage.status_code == 412
        assert (await rotation.get(url, headers={"If-None-Match": '"v1"'})).status_code == 200
        assert await fetch(db_engine, "select name, version from rotation.staff") == [{"name": "王芳芳", "version": 2}]

    async def test_rotation_get_and_actions_with_if_match(self, partnership, rotation, db_engine):
        await f.chaoyang_with_schools(partnership)
        member = await f.staff(rotation)
        r = await f.rotation_of(rotation, member["id"])
        url = f"/v1/rotations/{r['id']}"
        assert (await rotation.get(url)).headers["etag"] == '"v1"'
        assert (await rotation.get(url, headers={"If-None-Match": 'W/"v1"'})).status_code == 304
        stale = await rotation.post(f"{url}/approve", headers={"If-Match": '"v2"'})
        assert (stale.status_code, stale.json()["current_etag"]) == (412, '"v1"')
        ok = await rotation.post(f"{url}/approve", headers={"If-Match": '"v1"'}, json={"comment": "同意"})
        assert (ok.status_code, ok.headers["etag"], ok.json()["status"]) == (200, '"v2"', "approved")
        # Two clerks holding the same ETag: exactly one of them wins.
        both = await asyncio.gather(rotation.post(f"{url}/withdraw", headers={"If-Match": '"v2"'}),
                                    rotation.patch(url, json={"end_date": "2025-06-30"}, headers={"If-Match": '"v2"'}))
        assert sorted(r.status_code for r in both) == [200, 412]
        assert await fetch(db_engine, "select version from rotation.rotations") == [{"version": 3}]
        # If-Match stays optional.
        assert (await rotation.get(url)).headers["etag"] == '"v3"'

    async def test_policy_default_v0_put_with_if_match(self, partnership, rotation, db_engine):
        await f.chaoyang_with_schools(partnership)
        url = "/v1/rotation-policies/110105"
        default = await rotation.get(url)
        assert (default.headers["etag"], default.json()["is_default"]) == ('"v0"', True)
        assert (await rotation.get(url, headers={"If-None-Match": '"v0"'})).status_code == 304
        first = await rotation.put(url, json={"min_years_teacher": 7}, headers={"If-Match": '"v0"'})
        assert (first.status_code, first.headers["etag"], first.json()["version"]) == (200, '"v1"', 1)
        stale = await rotation.put(url, json={"min_years_teacher": 9}, headers={"If-Match": '"v0"'})
        assert (stale.status_code, stale.json()["current_etag"]) == (412, '"v1"')
        second = await rotation.put(url, json={"min_years_teacher": 8}, headers={"If-Match": '"v1"'})
        assert (second.status_code, second.headers["etag"]) == (200, '"v2"')
        assert (await rotation.put(url, json={"min_years_teacher": 6})).headers["etag"] == '"v3"'  # optional
        assert (await rotation.get(url, headers={"If-None-Match": '"v2"'})).status_code == 200
        assert await fetch(db_engine, "select min_years_teacher, version from rotation.rotation_policies") == [
            {"min_years_teacher": 6, "version": 3}]

    async def test_concurrent_puts_with_the_same_if_match(self, partnership, rotation, db_engine):
        await f.chaoyang_with_schools(partnership)
        url = "/v1/rotation-policies/110119"
        # Both read "v0" (never set) and PUT at once: one creates the policy, the other is stale.
        first = await asyncio.gather(*(rotation.put(url, json={"min_years_teacher": n}, headers={"If-Match": '"v0"'})
                                       for n in (7, 8)))
        assert sorted(r.status_code for r in first) == [200, 412]
        # The same for an existing policy at "v1".
        second = await asyncio.gather(*(rotation.put(url, json={"min_years_cadre": n}, headers={"If-Match": '"v1"'})
                                        for n in (3, 4)))
        assert sorted(r.status_code for r in second) == [200, 412]
        winner = next(r for r in second if r.status_code == 200).json()
        rows = await fetch(db_engine, "select min_years_cadre, version from rotation.rotation_policies")
        assert rows == [{"min_years_cadre": winner["min_years_cadre"], "version": 2}]

    async def test_plan_etag_follows_its_rotations(self, partnership, rotation):
        await f.chaoyang_with_schools(partnership)
        plan = await rotation.post("/v1/rotation-plans", json={"district_code": "110105", "academic_year": 2024,
                                                               "title": "朝阳区2024学年交流轮岗计划"})
        assert (plan.status_code, plan.headers["etag"]) == (201, '"v1"')
        url = f"/v1/rotation-plans/{plan.json()['id']}"
        assert (await rotation.get(url)).headers["etag"] == '"v1"'
        assert (await rotation.get(url, headers={"If-None-Match": '"v1"'})).status_code == 304
        member = await f.staff(rotation)
        r = await f.rotation_of(rotation, member["id"], plan_id=plan.json()["id"])
        with_rotation = await rotation.get(url, headers={"If-None-Match": '"v1"'})
        assert with_rotation.status_code == 200  # the counts changed, so the ETag did
        assert with_rotation.json()["rotations_by_status"] == {"planned": 1}
        tag = with_rotation.headers["etag"]
        assert (await rotation.post(f"/v1/rotations/{r['id']}/withdraw")).status_code == 200
        after = await rotation.get(url, headers={"If-None-Match": tag})
        assert after.status_code == 200
        assert after.json()["rotations_by_status"] == {"withdrawn": 1}
        assert (await rotation.get(url, headers={"If-None-Match": after.headers["etag"]})).status_code == 304


class TestChangeFeed:
    async def test_every_write_with_natural_key_and_new_state_in_order(self, partnership, rotation):
        await f.chaoyang_with_schools(partnership)
        member = await f.staff(rotation, staff_no="T001", name="王芳")
        await rotation.patch(f"/v1/staff/{member['id']}", json={"backbone_level": "district"})
        await rotation.put("/v1/rotation-policies/110105", json={"min_years_teacher": 7})
        await rotation.put("/v1/rotation-policies/110105", json={"min_years_teacher": 6})
        plan = (await rotation.post("/v1/rotation-plans", json={
            "district_code": "110105", "academic_year": 2024, "title": "计划"})).json()
        r = await f.rotation_of(rotation, member["id"])
        await rotation.patch(f"/v1/rotations/{r['id']}", json={"end_date": "2025-06-30"})
        await rotation.post(f"/v1/rotation-plans/{plan['id']}/rotations", json={"rotation_id": r["id"]})
        await rotation.post(f"/v1/rotation-plans/{plan['id']}/approve")
        await rotation.post(f"/v1/rotations/{r['id']}/activate")
        items, cursor = await drain(rotation, None, 11)
        rid, pid = r["id"], plan["id"]
        assert [(c["entity"], c["key"], c["op"]) for c in items] == [
            ("staff", "T001", "create"), ("staff", "T001", "update"),
            ("rotation_policy", "110105", "create"), ("rotation_policy", "110105", "update"),
            ("rotation_plan", pid, "create"), ("rotation", rid, "create"), ("rotation", rid, "update"),
            ("rotation", rid, "update"),  # joined the plan
            ("rotation", rid, "state"), ("rotation_plan", pid, "state"),  # the plan approval, one transaction
            ("rotation", rid, "state")]
        states = [c["state"] for c in items]
        assert (states[0]["name"], states[1]["backbone_level"], states[1]["version"]) == ("王芳", "district", 2)
        assert (states[3]["min_years_teacher"], states[3]["version"]) == (6, 2)
        assert (states[6]["end_date"], states[7]["plan_id"]) == ("2025-06-30", pid)
        assert [states[i]["status"] for i in (5, 8, 10)] == ["planned", "approved", "active"]
        assert (states[9]["status"], states[9]["rotations_by_status"]) == ("approved", {"approved": 1})
        page = (await rotation.get("/v1/changes", params={"after": cursor})).json()
        assert (page["service"], page["items"], page["next_cursor"]) == ("rotation", [], cursor)

    async def test_only_integrators_and_city_readers(self, rotation, auth):
        for role in ("integrator", "viewer", "city_admin"):
            assert (await rotation.get("/v1/changes", headers=auth(role))).status_code == 200, role
        for headers in (auth("district_admin", districts=("110105",)), auth("viewer", districts=("110105",)),
                        auth("school_admin", districts=("110105",), schools=("11010501",))):
            assert (await rotation.get("/v1/changes", headers=headers)).status_code == 403
        assert (await rotation.get("/v1/changes", params={"after": "@@"})).status_code == 422

    async def test_a_refused_write_leaves_no_change(self, partnership, rotation, db_engine):
        await f.chaoyang_with_schools(partnership)
        await f.staff(rotation, staff_no="T001")
        assert (await rotation.post("/v1/staff", json=f.staff_body(staff_no="T001"))).status_code == 409
        assert await fetch(db_engine, "select key, op from rotation.changes") == [{"key": "T001", "op": "create"}]

    async def test_a_transaction_that_commits_late_is_not_skipped(self, partnership, rotation, db_engine):
        await f.chaoyang_with_schools(partnership)
        await f.staff(rotation, staff_no="FIRST")
        _, cursor = await drain(rotation, None, 1)
        async with db_engine.connect() as slow:
            # An older transaction writes its change first but commits last.
            await slow.execute(text("INSERT INTO rotation.changes (entity, key, op, state) "
                                    "VALUES ('staff', 'SLOW', 'create', '{}')"))
            await f.staff(rotation, staff_no="FAST")  # a younger transaction commits now
            held_back, held_cursor = await read_all(rotation, cursor)
            assert held_back == []  # FAST waits behind the still-open older transaction
            assert held_cursor == cursor
            await slow.commit()
        seen, cursor = await drain(rotation, cursor, 2)
        assert [c["key"] for c in seen] == ["SLOW", "FAST"]
        again, _ = await read_all(rotation, cursor)
        assert again == []

    async def test_concurrent_writes_and_reads_lose_and_repeat_nothing(self, partnership, rotation, db_engine):
        await f.chaoyang_with_schools(partnership)
        collected, cursor = [], None
        for round_ in range(3):
            writes = [rotation.post("/v1/staff", json=f.staff_body(staff_no=f"R{round_}-{i}")) for i in range(5)]
            *responses, (seen, cursor) = await asyncio.gather(*writes, read_all(rotation, cursor))
            assert {r.status_code for r in responses} == {201}
            collected.extend(seen)
        rest, _ = await drain(rotation, cursor, 15 - len(collected))
        collected.extend(rest)
        keys = [c["key"] for c in collected]
        assert len(keys) == len(set(keys)) == 15
        assert sorted(keys) == sorted(r["key"] for r in await fetch(db_engine, "select key from rotation.changes"))


PROPOSAL = "00000000-0000-4000-8000-000000000014"


class TestIntegratorRole:
    async def test_reads_imports_and_feed_but_no_other_write(self, partnership, rotation, rotation_app, auth,
                                                             db_engine):
        await f.chaoyang_with_schools(partnership)
        member = await f.staff(rotation)
        other = await f.staff(rotation, staff_no="T900", name="李强")
        r = await f.rotation_of(rotation, member["id"])
        plan = (await rotation.post("/v1/rotation-plans", json={
            "district_code": "110105", "academic_year": 2024, "title": "计划"})).json()
        await rotation.put("/v1/rotation-policies/110105", json={"min_years_teacher": 6})
        before = await fetch(db_engine, "select count(*) as n from rotation.changes")
        integrator = auth("integrator")
        writes = [
            ("POST", "/v1/staff", f.staff_body()),
            ("PATCH", f"/v1/staff/{member['id']}", {"name": "改名"}),
            ("PUT", "/v1/rotation-policies/110105", {"min_years_teacher": 3}),
            ("PUT", "/v1/rotation-policies/110119", {"min_years_teacher": 3}),
            ("POST", "/v1/rotations", {"staff_id": other["id"], "to_school_code": "11011901", "mode": "full_time",
                                       "start_date": "2024-09-01", "end_date": "2025-08-31"}),
            ("PATCH", f"/v1/rotations/{r['id']}", {"end_date": "2025-06-30"}),
            *[("POST", f"/v1/rotations/{r['id']}/{action}", None)
              for action in ("approve", "activate", "complete", "withdraw")],
            ("POST", "/v1/rotation-plans", {"district_code": "110105", "academic_year": 2025, "title": "另一个"}),
            ("POST", f"/v1/rotation-plans/{plan['id']}/rotations", {"rotation_id": r["id"]}),
            ("POST", f"/v1/rotation-plans/{plan['id']}/approve", None),
            ("POST", "/v1/districts/110105/rotation-proposals", {"academic_year": 2024, "as_of": "2024-09-01"}),
            ("POST", f"/v1/districts/110105/rotation-proposals/{PROPOSAL}/plan", None),
        ]
        for method, url, body in writes:
            response = await rotation.request(method, url, json=body, headers=integrator)
            assert response.status_code == 403, (method, url, response.text)
            assert response.json()["type"] == "urn:spp:problem:role", (method, url)
        # Every write route of the service is walked above (imports aside, which integrators may run).
        routes = {(method.upper(), path) for path, operations in rotation_app.openapi()["paths"].items()
                  for method in operations if method in ("post", "put", "patch", "delete")}
        walked = {(m, u.replace(member["id"], "{staff_id}").replace(r["id"], "{rotation_id}")
                   .replace(plan["id"], "{plan_id}").replace("110105", "{district_code}")
                   .replace("110119", "{district_code}").replace("/districts/{district_code}/", "/districts/{code}/")
                   .replace(PROPOSAL, "{proposal_id}")) for m, u, _ in writes}
        # Imports aside, the one other POST is the §4.6 what-if, a read that stores nothing.
        assert routes - walked == {("POST", "/v1/imports/staff"), ("POST", "/v1/imports/rotations"),
                                   ("POST", "/v1/internal/backbone-what-if")}
        what_if = await rotation.post("/v1/internal/backbone-what-if", headers=integrator, json={
            "as_of": "2024-12-01", "district_code": "110105", "moves": [
                {"staff_id": member["id"], "to_school_code": "11010502"}]})
        assert what_if.status_code == 200, what_if.text
        assert await fetch(db_engine, "select count(*) as n from rotation.changes") == before
        assert await fetch(db_engine, "select count(*) as n from rotation.staff") == [{"n": 2}]
        assert await fetch(db_engine, "select status, version from rotation.rotations") == [
            {"status": "planned", "version": 1}]
        # What an integrator may do.
        for url in ("/v1/staff", f"/v1/staff/{member['id']}", "/v1/rotations", f"/v1/rotations/{r['id']}",
                    f"/v1/rotations/{r['id']}/history", "/v1/rotation-policies/110105", "/v1/rotation-plans",
                    f"/v1/rotation-plans/{plan['id']}", "/v1/changes"):
            assert (await rotation.get(url, headers=integrator)).status_code == 200, url
        imported = await rotation.post("/v1/imports/staff", json=[f.staff_body(staff_no="T777")], headers=integrator)
        assert (imported.status_code, imported.json()["inserted"]) == (200, 1)
        assert (await rotation.get(f"/v1/imports/{imported.json()['id']}", headers=integrator)).status_code == 200
