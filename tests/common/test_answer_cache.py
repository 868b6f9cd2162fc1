"""Figure answers kept between calls (services/common/answer_cache.py) in rotation and partnership:
a repeated question is answered from the kept answer, and every kind of write the figures read (a
service write, an import, a policy, a school changed in partnership and carried by the feed into
rotation's directory) is seen at the next call, with the hand-worked figures.
(Training's completion answers: tests/training/test_completion_cache.py.)"""

from __future__ import annotations

from tests.conftest import fetch
from tests.feed import synced
from tests.partnership import factories as pf
from tests.rotation import factories as f

CSV = {"content-type": "text/csv"}
YEAR = {"academic_year": 2024, "district_code": "110105"}
ON = {"as_of": "2024-12-01", "district_code": "110105"}


async def _stats(rotation) -> tuple[int, int, int]:
    answer = await rotation.get("/v1/internal/rotation-stats", params=YEAR)
    assert answer.status_code == 200, answer.text
    [row] = answer.json()["districts"]
    return row["eligible"], row["rotated"], row["backbone_rotated"]


async def _placement(rotation) -> list[tuple[str, str, int]]:
    answer = await rotation.get("/v1/internal/backbone-placement", params=ON)
    assert answer.status_code == 200, answer.text
    return [(i["school_code"], i["section"], i["backbone"]) for i in answer.json()["items"]]


async def _balance(rotation) -> dict:
    answer = await rotation.get("/v1/internal/balance-totals", params=ON)
    assert answer.status_code == 200, answer.text
    [district] = answer.json()["districts"]
    return district["sections"]["primary"]


async def test_rotation_figures_follow_every_kind_of_write(partnership, rotation, rotation_app, db_engine):
    """朝阳区 on E = 2024-09-01 with the default policy (teachers 6 years): A (since 2015, municipal
    backbone, 11010501) is eligible; B (since 2020) is not. Then, one write at a time: A rotates
    (approved, counted), B becomes backbone, the district's policy asks 4 years (B eligible), an
    import adds C, a rotations import records B's stay; A's full-time stay goes active on D and
    moves A's placement to 延庆."""
    cache = rotation_app.state.answer_cache
    await f.chaoyang_with_schools(partnership)
    await synced(db_engine, staff=False)
    a = await f.staff(rotation, name="甲", staff_no="A", in_post_since="2015-09-01", backbone_level="municipal")
    b = await f.staff(rotation, name="乙", staff_no="B", in_post_since="2020-09-01", home_school_code="11010502")

    assert await _stats(rotation) == (1, 0, 0)
    assert await _placement(rotation) == [("11010501", "primary", 1)]
    assert (cache.hits, cache.misses) == (0, 2)
    assert await _stats(rotation) == (1, 0, 0)
    assert await _placement(rotation) == [("11010501", "primary", 1)]
    assert (cache.hits, cache.misses) == (2, 2)  # nothing written: both kept

    stay = await f.rotation_of(rotation, a["id"], start="2024-09-01", end="2025-08-31", status="approved")
    assert await _stats(rotation) == (1, 1, 1)
    assert (cache.hits, cache.misses) == (2, 3)

    patched = await rotation.patch(f"/v1/staff/{b['id']}", json={"backbone_level": "district"})
    assert patched.status_code == 200, patched.text
    assert await _placement(rotation) == [("11010501", "primary", 1), ("11010502", "primary", 1)]

    policy = await rotation.put("/v1/rotation-policies/110105", json={"min_years_teacher": 4})
    assert policy.status_code == 200, policy.text
    assert await _stats(rotation) == (2, 1, 1)

    body = "工号,姓名,任职学校代码,岗位,任教学段,骨干级别,现岗位起始日期\nC,丙,11010502,教师,小学,无,2010-09-01\n"
    imported = await rotation.post("/v1/imports/staff", content=body.encode(), headers=CSV)
    assert (imported.status_code, imported.json()["inserted"]) == (200, 1), imported.text
    assert await _stats(rotation) == (3, 1, 1)

    body = "工号,交流学校代码,交流方式,开始日期,结束日期,状态\nB,11011901,兼职交流,2024-10-01,2024-12-31,已完成\n"
    imported = await rotation.post("/v1/imports/rotations", content=body.encode(), headers=CSV)
    assert (imported.status_code, imported.json()["inserted"]) == (200, 1), imported.text
    assert await _stats(rotation) == (3, 2, 2)

    active = await rotation.post(f"/v1/rotations/{stay['id']}/activate")
    assert active.status_code == 200, active.text
    assert await _placement(rotation) == [("11010502", "primary", 1)]  # A works in 延庆 on D
    assert await _stats(rotation) == (3, 2, 2)
    assert (cache.hits, cache.misses) == (2, 9)  # every call after a write recomputed


async def test_balance_totals_follow_a_school_changed_in_partnership(partnership, rotation, rotation_app, db_engine):
    """朝阳区's primary schools: 11010501 (1,200 pupils, A backbone) and 11010502 (600, none).
    Σ B²/P = 1/1200. 11010502 grows to 800 pupils in partnership: the change reaches rotation's
    directory through the feed (its cursor moves) and the next answer has 2,000 pupils."""
    cache = rotation_app.state.answer_cache
    await f.chaoyang_with_schools(partnership)
    await synced(db_engine, staff=False)
    await f.staff(rotation, name="甲", staff_no="A", backbone_level="municipal")
    expected = {"school_count": 2, "enrollment": 1800, "backbone": 1, "schools_below_one": 2,
                "backbone_squared_per_enrollment": "1/1200"}
    assert await _balance(rotation) == expected
    assert await _balance(rotation) == expected
    assert (cache.hits, cache.misses) == (1, 1)

    grown = await partnership.patch("/v1/schools/11010502", json={"primary_enrollment": 800})
    assert grown.status_code == 200, grown.text
    await synced(db_engine, staff=False)
    assert await _balance(rotation) == {**expected, "enrollment": 2000}
    assert (cache.hits, cache.misses) == (1, 2)


async def test_partnership_figures_follow_schools_and_activities(partnership, partnership_app):
    """朝阳区: urban 11010501 leads rural 11010591 from 2024-09-01. Coverage on 2024-12-01 is 1 of 1
    township/rural schools; activities in the year: 0, then 1 after one is recorded; the school
    list grows by the school created after it was first answered."""
    cache = partnership_app.state.answer_cache
    await pf.district(partnership)
    await pf.school(partnership, "11010501", primary=1200)
    await pf.school(partnership, "11010591", locality="rural", primary=300)
    pairing = await pf.pairing(partnership, "11010501", "11010591", activate=True)
    params = {"as_of": "2024-12-01", "from": "2024-09-01", "to": "2025-08-31", "district_code": "110105"}

    async def activities() -> int:
        answer = await partnership.get("/v1/internal/partnership-stats", params=params)
        assert answer.status_code == 200, answer.text
        return answer.json()["districts"][0]["activities"]

    async def schools() -> list[str]:
        answer = await partnership.get("/v1/internal/schools", params={"district_code": "110105"})
        assert answer.status_code == 200, answer.text
        return [s["code"] for s in answer.json()["items"]]

    assert (await activities(), await activities()) == (0, 0)
    assert (await schools(), await schools()) == (["11010501", "11010591"], ["11010501", "11010591"])
    assert (cache.hits, cache.misses) == (2, 2)
    await pf.activity(partnership, pairing["id"], date="2024-10-10")
    assert await activities() == 1
    await pf.school(partnership, "11010502", primary=600)
    assert await schools() == ["11010501", "11010502", "11010591"]
    assert (cache.hits, cache.misses) == (2, 4)


async def test_no_cache_asks_every_service_for_fresh_figures(partnership, rotation, gateway, partnership_app,
                                                             rotation_app, training_app, db_engine):
    """A district overview asks five figures of three services (partnership one, rotation and
    training two each). Asked again, all five are kept answers; asked with `Cache-Control:
    no-cache`, the gateway passes it on and all five are computed afresh (the same figures), and
    kept for the next plain call."""
    await f.chaoyang_with_schools(partnership)
    await synced(db_engine, staff=False)
    await f.staff(rotation, name="甲", staff_no="A", backbone_level="municipal")
    await synced(db_engine, schools=False)
    caches = [app.state.answer_cache for app in (partnership_app, rotation_app, training_app)]
    params = {"as_of": "2024-12-01", "academic_year": 2024}

    async def overview(headers: dict[str, str] | None = None) -> dict:
        answer = await gateway.get("/api/v1/districts/110105/overview", params=params, headers=headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["degraded"] == []
        return body

    first = await overview()
    assert [(c.hits, c.misses) for c in caches] == [(0, 1), (0, 2), (0, 2)]
    assert await overview() == first
    assert [(c.hits, c.misses) for c in caches] == [(1, 1), (2, 2), (2, 2)]
    assert await overview({"Cache-Control": "no-cache"}) == first
    assert [(c.hits, c.misses) for c in caches] == [(1, 2), (2, 4), (2, 4)]
    assert await overview() == first
    assert [(c.hits, c.misses) for c in caches] == [(2, 2), (4, 4), (4, 4)]
    assert (first["training"]["staff"], first["balance"]["primary"]["backbone"]) == (1, 1)
    registry = rotation_app.state.metrics.registry
    assert [registry.get_sample_value("spp_answer_cache_lookups_total", {"process": "rotation", "result": result})
            for result in ("hit", "miss")] == [4.0, 4.0]


async def test_transaction_ids_compare_as_numbers_across_digit_boundaries(partnership, rotation, rotation_app,
                                                                          db_engine):
    """The kept snapshot's xmin against the feed's newest transaction id, as numbers: a kept answer
    whose snapshot ends at 999 is stale once the feed has rows of later transactions (whose ids
    have more digits: as text, '1000' and '10000' sort before '999'); one whose snapshot starts
    past every id of the feed (100000000) is still valid."""
    from services.common.answer_cache import Stamp

    cache = rotation_app.state.answer_cache
    await f.chaoyang_with_schools(partnership)
    await synced(db_engine, staff=False)
    await f.staff(rotation, name="甲", staff_no="A", in_post_since="2015-09-01")
    [newest] = await fetch(db_engine, "select max(xid)::text::bigint as xid from rotation.changes")
    assert 999 < newest["xid"] < 100_000_000
    assert await _stats(rotation) == (1, 0, 0)  # computed and kept
    [key] = [key for key in cache._entries if key[0] == "/v1/internal/rotation-stats"]
    stamp, kept = cache._entries[key]
    for xmin, served in ((999, False), (100_000_000, True)):
        cache._entries[key] = (Stamp(snapshot=f"{xmin}:{xmin}:", cursors=stamp.cursors), kept)
        hits = cache.hits
        assert await _stats(rotation) == (1, 0, 0)
        assert (cache.hits - hits, cache._entries[key][1] is kept) == (int(served), served)


async def test_lookups_arriving_together_share_a_check_and_a_later_one_waits_for_its_own(
        partnership, rotation, rotation_app, db_engine):
    """Ten calls at once are answered by one or two checks. A call that arrives while a check is
    running (held here by a lock on the cursors table the check reads) is not answered by that
    check, which may have read the database before the call arrived: it waits for a check of its
    own, and a staff member committed before it arrived is in its figures."""
    import asyncio

    from sqlalchemy import text

    cache = rotation_app.state.answer_cache
    await f.chaoyang_with_schools(partnership)
    await synced(db_engine, staff=False)
    await f.staff(rotation, name="甲", staff_no="A", in_post_since="2015-09-01")
    assert await _stats(rotation) == (1, 0, 0)
    checks, hits = cache.checks, cache.hits
    assert set(await asyncio.gather(*(_stats(rotation) for _ in range(10)))) == {(1, 0, 0)}
    assert (cache.hits - hits, cache.checks - checks <= 2) == (10, True)

    async with db_engine.connect() as holder:
        transaction = await holder.begin()
        await holder.execute(text("LOCK TABLE rotation.feed_cursors IN ACCESS EXCLUSIVE MODE"))
        first = asyncio.create_task(_stats(rotation))
        while not await fetch(db_engine, "select 1 from pg_stat_activity where wait_event_type = 'Lock' "
                                         "and query like '%pg_current_snapshot%'"):
            await asyncio.sleep(0.01)
        await f.staff(rotation, name="丙", staff_no="C", in_post_since="2015-09-01")  # committed
        checks = cache.checks
        second = asyncio.create_task(_stats(rotation))
        await asyncio.sleep(0.1)
        assert (first.done(), second.done(), cache.checks) == (False, False, checks)
        await transaction.commit()
    assert await second == (2, 0, 0)
    assert await first in {(1, 0, 0), (2, 0, 0)}  # it arrived before the write: either is right
    assert cache.checks == checks + 1  # the second call's own check, after the first's
