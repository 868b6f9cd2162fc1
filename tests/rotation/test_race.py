"""One person, one rotation at a time — decided by PostgreSQL under concurrent requests."""

from __future__ import annotations

import asyncio

from tests.conftest import fetch
from tests.rotation import factories as f


async def test_twenty_concurrent_overlapping_creates(partnership, rotation, db_engine):
    await f.chaoyang_with_schools(partnership)
    member = await f.staff(rotation, name="张伟")
    # Twenty different but pairwise overlapping ranges (all contain 2024-12-01).
    bodies = [{"staff_id": member["id"], "to_school_code": "11011901" if n % 2 else "11010502",
               "mode": "full_time", "start_date": f"2024-{9 + n % 3:02d}-{1 + n:02d}",
               "end_date": f"2025-0{1 + n % 8}-15"} for n in range(20)]
    responses = await asyncio.gather(*(rotation.post("/v1/rotations", json=b) for b in bodies))
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * 19, [r.text for r in responses if r.status_code not in (201, 409)]
    for refused in (r for r in responses if r.status_code == 409):
        assert refused.json()["type"] == "urn:spp:problem:rotation-overlap"
    assert await fetch(db_engine, "select count(*) as n from rotation.rotations") == [{"n": 1}]
    assert await fetch(db_engine, "select count(*) as n from rotation.rotation_transitions") == [{"n": 1}]


async def test_concurrent_patches_into_overlap(partnership, rotation, db_engine):
    await f.chaoyang_with_schools(partnership)
    member = await f.staff(rotation)
    first = await f.rotation_of(rotation, member["id"], start="2024-09-01", end="2024-12-31")
    second = await f.rotation_of(rotation, member["id"], start="2025-03-01", end="2025-06-30")
    # Each change is fine on its own; together they overlap: exactly one may win.
    results = await asyncio.gather(
        rotation.patch(f"/v1/rotations/{first['id']}", json={"end_date": "2025-02-15"}),
        rotation.patch(f"/v1/rotations/{second['id']}", json={"start_date": "2025-01-15"}),
    )
    assert sorted(r.status_code for r in results) == [200, 409]
    rows = await fetch(db_engine, "select start_date::text as s, end_date::text as e from rotation.rotations "
                                  "order by start_date")
    assert rows in ([{"s": "2024-09-01", "e": "2025-02-15"}, {"s": "2025-03-01", "e": "2025-06-30"}],
                    [{"s": "2024-09-01", "e": "2024-12-31"}, {"s": "2025-01-15", "e": "2025-06-30"}])
    # And a PATCH straight into the other rotation is refused by the same rule.
    overlap = await rotation.patch(f"/v1/rotations/{second['id']}", json={"start_date": "2024-10-01"})
    assert overlap.status_code == 409
    assert overlap.json()["type"] == "urn:spp:problem:rotation-overlap"


async def test_concurrent_creates_for_different_people_all_succeed(partnership, rotation, db_engine):
    await f.chaoyang_with_schools(partnership)
    people = [await f.staff(rotation, name=f"教师{n}") for n in range(8)]
    responses = await asyncio.gather(*(rotation.post("/v1/rotations", json={
        "staff_id": p["id"], "to_school_code": "11011901", "mode": "subject_guidance",
        "start_date": "2024-09-01", "end_date": "2025-08-31"}) for p in people))
    assert [r.status_code for r in responses] == [201] * 8
    assert await fetch(db_engine, "select count(*) as n from rotation.rotations") == [{"n": 8}]
