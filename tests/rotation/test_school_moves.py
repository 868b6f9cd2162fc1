"""A school moved to another district by partnership carries its people with it: rotation's school
directory consumer (services/rotation/directory.py) moves the school's staff and its rotations that
are not over yet in the same transaction, feeds each change, and training's staff directory and
the district overviews follow. Completed rotations keep the districts they were made in."""

from __future__ import annotations

import asyncio
from uuid import UUID

from sqlalchemy import text

from tests.conftest import fetch
from tests.feed import synced
from tests.rotation import factories as f

AS_OF = "2025-03-01"
STAFF = "select staff_no, home_school_code, home_district_code, status, version from rotation.staff order by staff_no"
DIRECTORY = ("select staff_no, home_school_code, home_district_code, status, version from training.staff_directory "
             "order by staff_no")
ROTATIONS = ("select staff_id, from_school_code, from_district_code, to_school_code, to_district_code, status, "
             "version from rotation.rotations order by start_date")


async def _world(partnership, rotation, training) -> dict:
    """朝阳 11010501 (A, retired C; B rotates in), 朝阳 11010502 (B), 延庆 11011901 (D)."""
    await f.chaoyang_with_schools(partnership)
    a = await f.staff(rotation, staff_no="A", backbone_level="municipal")
    b = await f.staff(rotation, staff_no="B", home_school_code="11010502")
    c = await f.staff(rotation, staff_no="C")
    d = await f.staff(rotation, staff_no="D", home_school_code="11011901")
    assert (await rotation.patch(f"/v1/staff/{c['id']}", json={"status": "retired"})).status_code == 200
    done = await f.rotation_of(rotation, a["id"], start="2022-09-01", end="2023-08-31", status="completed")
    planned = await f.rotation_of(rotation, a["id"], start="2025-09-01", end="2026-08-31")
    active = await f.rotation_of(rotation, b["id"], to="11010501", status="active")
    # A earned 360 hours in the window: completed in whichever district A's school is in.
    response = await training.post("/v1/training-hours", json={
        "staff_id": a["id"], "hours": "360", "earned_on": "2024-10-01", "source": "municipal_platform",
        "reference": "CE-A-1"})
    assert response.status_code == 201, response.text
    return {"a": a, "b": b, "c": c, "d": d, "done": done, "planned": planned, "active": active}


async def _blocks(gateway, district: str) -> dict:
    response = await gateway.get(f"/api/v1/districts/{district}/overview",
                                 params={"as_of": AS_OF, "academic_year": 2024})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["degraded"] == []
    return {"rotation": {k: body["rotation"][k] for k in ("eligible", "rotated", "backbone_rotated")},
            "training": {k: body["training"][k] for k in ("staff", "completed")}}


async def test_a_school_moved_to_another_district_takes_its_staff_and_open_rotations(
        partnership, rotation, training, gateway, db_engine):
    w = await _world(partnership, rotation, training)
    await synced(db_engine)
    # Before: A and B are 朝阳's eligible teachers (C is retired), B rotated (the active stay), A
    # completed the hours; D alone in 延庆.
    assert await _blocks(gateway, "110105") == {"rotation": {"eligible": 2, "rotated": 1, "backbone_rotated": 0},
                                                "training": {"staff": 2, "completed": 1}}
    assert await _blocks(gateway, "110119") == {"rotation": {"eligible": 1, "rotated": 0, "backbone_rotated": 0},
                                                "training": {"staff": 1, "completed": 0}}
    before = await fetch(db_engine, "select max(seq) as seq from rotation.changes")
    stored = await fetch(db_engine, STAFF), await fetch(db_engine, ROTATIONS)
    # A change that keeps the district moves nobody and feeds nothing.
    renamed = await partnership.patch("/v1/schools/11010501", json={"name": "北京市朝阳区实验小学（本部）"})
    assert renamed.status_code == 200, renamed.text
    await synced(db_engine, staff=False)
    assert (await fetch(db_engine, STAFF), await fetch(db_engine, ROTATIONS)) == stored
    assert await fetch(db_engine, "select count(*) as n from rotation.changes where seq > :seq",
                       seq=before[0]["seq"]) == [{"n": 0}]

    moved = await partnership.patch("/v1/schools/11010501", json={"district_code": "110119"},
                                    headers={"X-Request-ID": "move-11010501"})
    assert moved.status_code == 200, moved.text
    # The school reaches rotation's directory first (with its staff, in one transaction), then the
    # staff reach training's: two waits, so the second compares after the first has landed.
    await synced(db_engine, staff=False)
    await synced(db_engine, schools=False)

    assert await fetch(db_engine, STAFF) == [
        {"staff_no": "A", "home_school_code": "11010501", "home_district_code": "110119", "status": "active",
         "version": 2},
        {"staff_no": "B", "home_school_code": "11010502", "home_district_code": "110105", "status": "active",
         "version": 1},
        {"staff_no": "C", "home_school_code": "11010501", "home_district_code": "110119", "status": "retired",
         "version": 3},
        {"staff_no": "D", "home_school_code": "11011901", "home_district_code": "110119", "status": "active",
         "version": 1}]
    assert await fetch(db_engine, DIRECTORY) == await fetch(db_engine, STAFF)
    a, b = UUID(w["a"]["id"]), UUID(w["b"]["id"])
    # The completed stay keeps the district it was made in; the planned and the active one follow.
    assert await fetch(db_engine, ROTATIONS) == [
        {"staff_id": a, "from_school_code": "11010501", "from_district_code": "110105",
         "to_school_code": "11011901", "to_district_code": "110119", "status": "completed",
         "version": w["done"]["version"]},
        {"staff_id": b, "from_school_code": "11010502", "from_district_code": "110105",
         "to_school_code": "11010501", "to_district_code": "110119", "status": "active",
         "version": w["active"]["version"] + 1},
        {"staff_id": a, "from_school_code": "11010501", "from_district_code": "110119",
         "to_school_code": "11011901", "to_district_code": "110119", "status": "planned",
         "version": w["planned"]["version"] + 1}]
    # One feed row per changed record, as rotation's own work, quoting the request that moved the school.
    fed = await fetch(db_engine, "select entity, key, op, actor, request_id, state->>'home_district_code' as home, "
                                 "state->>'to_district_code' as to_district, state->>'from_district_code' as from_"
                                 " from rotation.changes where seq > :seq order by seq", seq=before[0]["seq"])
    common = {"op": "update", "actor": "service:rotation", "request_id": "move-11010501"}
    assert fed == [
        {**common, "entity": "staff", "key": "A", "home": "110119", "to_district": None, "from_": None},
        {**common, "entity": "staff", "key": "C", "home": "110119", "to_district": None, "from_": None},
        {**common, "entity": "rotation", "key": w["planned"]["id"], "home": None, "to_district": "110119",
         "from_": "110119"},
        {**common, "entity": "rotation", "key": w["active"]["id"], "home": None, "to_district": "110119",
         "from_": "110105"}]

    # The overviews count A and C in 延庆 now: 朝阳 keeps B (and B's stay), 延庆 has A and D
    # eligible, and A's completed hours.
    assert await _blocks(gateway, "110105") == {"rotation": {"eligible": 1, "rotated": 1, "backbone_rotated": 0},
                                                "training": {"staff": 1, "completed": 0}}
    assert await _blocks(gateway, "110119") == {"rotation": {"eligible": 2, "rotated": 0, "backbone_rotated": 0},
                                                "training": {"staff": 2, "completed": 1}}
    # §4.6: A (municipal backbone, at home on as_of) now works in a 延庆 school.
    placement = await rotation.get("/v1/internal/backbone-placement", params={"as_of": AS_OF,
                                                                              "district_code": "110119"})
    assert placement.json()["items"] == [
        {"school_code": "11010501", "district_code": "110119", "section": "primary", "backbone": 1}]



async def _import_while_the_school_moves(rotation, db_engine, **request):
    """A staff import of M1 at 11010502 whose merge starts while the directory's consumer holds the
    school's row, moving it to 延庆 (the consumer's first step with such a page: lock, then write);
    the move commits once the merge waits for the row. The import's answer."""
    body = "工号,姓名,任职学校代码,岗位,任教学段,骨干级别,现岗位起始日期\nM1,甲,11010502,教师,小学,无,2015-09-01\n"
    waiting_sql = ("select count(*) as n from pg_stat_activity "
                   "where wait_event_type = 'Lock' and query like '%school_directory%FOR SHARE%'")
    async with db_engine.connect() as consumer:
        move = await consumer.begin()
        await consumer.execute(text("SELECT code FROM rotation.school_directory WHERE code = '11010502' FOR UPDATE"))
        await consumer.execute(text("UPDATE rotation.school_directory SET district_code = '110119' "
                                    "WHERE code = '11010502'"))
        imported = asyncio.create_task(rotation.post("/v1/imports/staff", content=body.encode(), **request))
        for _ in range(400):  # until the merge waits for the school's row (bounded: 10 s)
            waiting = await fetch(db_engine, waiting_sql)
            if waiting[0]["n"] or imported.done():
                break
            await asyncio.sleep(0.025)
        assert waiting == [{"n": 1}]
        await move.commit()
    return await imported


async def test_a_staff_import_merged_while_its_school_moves_takes_the_new_district(partnership, rotation, db_engine):
    """The import resolves 11010502's district (朝阳) in one transaction and merges in another. The
    merge waits for the moving school's row (it locks the schools it reads FOR SHARE) and stores
    the district the directory has once the move commits, not the one resolved before."""
    await f.chaoyang_with_schools(partnership)
    await synced(db_engine, staff=False)
    answer = await _import_while_the_school_moves(rotation, db_engine, headers={"content-type": "text/csv"})
    assert (answer.status_code, answer.json()["inserted"]) == (200, 1), answer.text
    assert await fetch(db_engine, "select home_school_code, home_district_code from rotation.staff "
                                  "where staff_no = 'M1'") == [{"home_school_code": "11010502",
                                                                "home_district_code": "110119"}]


async def test_a_school_moved_out_of_the_importers_districts_meanwhile_is_out_of_reach(partnership, rotation,
                                                                                       db_engine, auth):
    """朝阳's district admin imports M1 at 11010502; the school moves to 延庆 before the merge. The
    scope holds on the district the merge would store: all or nothing, 409 and nothing written;
    partial, the row is rejected as outside the admin's districts and nothing else changes."""
    await f.chaoyang_with_schools(partnership)
    await synced(db_engine, staff=False)
    admin = auth("district_admin", districts=("110105",))
    refused = await _import_while_the_school_moves(rotation, db_engine,
                                                   headers={**admin, "content-type": "text/csv"})
    assert refused.status_code == 409, refused.text
    assert (refused.json()["type"], refused.json()["errors"]) == (
        "urn:spp:problem:import-conflict", [{"row": 1, "field": None, "message": "outside your districts"}])
    back = await fetch(db_engine, "select district_code from rotation.school_directory where code = '11010502'")
    assert back == [{"district_code": "110119"}]
    async with db_engine.begin() as conn:  # the school back in 朝阳 for the partial import's move
        await conn.execute(text("UPDATE rotation.school_directory SET district_code = '110105' "
                                "WHERE code = '11010502'"))
    partial = await _import_while_the_school_moves(rotation, db_engine, params={"mode": "partial"},
                                                   headers={**admin, "content-type": "text/csv"})
    assert partial.status_code == 200, partial.text
    report = partial.json()
    assert (report["inserted"], report["rejected_rows"], report["valid_rows"], report["errors"]) == (
        0, 1, 0, [{"row": 1, "field": None, "message": "outside your districts"}])
    assert await fetch(db_engine, "select count(*) as n from rotation.staff") == [{"n": 0}]
