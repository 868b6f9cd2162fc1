"""Completion answers kept between calls (services/common/answer_cache.py): a repeated question
is answered from the kept answer, and every write the answer depends on (a credit, an import, a
directory change, a transaction that was still open when the answer was computed) is seen at once,
with figures equal to the hand-worked ones."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import text

from tests.conftest import fetch
from tests.feed import synced
from tests.training import factories as f

URL = "/v1/internal/training-completion"
D = {"as_of": "2024-08-31", "district_code": "110119"}  # window 2019-09-01 … 2024-08-31


async def _figures(training) -> tuple[int, int]:
    answer = await training.get(URL, params=D)
    assert answer.status_code == 200, answer.text
    [row] = answer.json()["districts"]
    return row["staff"], row["completed"]


async def test_a_kept_answer_follows_credits_imports_and_directory_changes(training, training_app, rotation, world,
                                                                          db_engine):
    """design.md §4.5's worked example in 延庆 (staff 0–2): A = staff0 has 200 h on 2019-08-31 (out),
    300 h on 2019-09-01 and 60 h on 2024-08-31 (360 in: completed); B = staff1 has 359.5 h (not);
    staff2 has nothing. 3 active staff, 1 completed."""
    cache = training_app.state.answer_cache
    a, b, c = (member["id"] for member in world.staff[:3])
    for staff_id, hours, earned_on in [(a, "200", "2019-08-31"), (a, "300", "2019-09-01"), (a, "60", "2024-08-31"),
                                       (b, "359.5", "2020-05-01")]:
        await f.credit(training, staff_id, hours=hours, earned_on=earned_on)
    await synced(db_engine, schools=False)

    assert await _figures(training) == (3, 1)
    assert (cache.hits, cache.misses) == (0, 1)
    assert await _figures(training) == (3, 1)  # nothing changed: the kept answer
    assert (cache.hits, cache.misses) == (1, 1)

    # Half an hour more for B: 360 h, completed.
    await f.credit(training, b, hours="0.5", earned_on="2024-08-31")
    assert await _figures(training) == (3, 2)
    assert (cache.hits, cache.misses) == (1, 2)

    # An import gives staff2 360 h by 工号 (one row inside the window, one on D + 1 day, outside).
    body = ("工号,学时,取得日期,来源,凭证编号\n"
            f"{world.staff[2]['staff_no']},360,2024-08-31,省平台,CC-1\n"
            f"{world.staff[2]['staff_no']},500,2024-09-01,省平台,CC-2\n").encode()
    imported = await training.post("/v1/imports/training-hours", content=body, headers={"content-type": "text/csv"})
    assert (imported.status_code, imported.json()["inserted"]) == (200, 2)
    assert await _figures(training) == (3, 3)
    assert await _figures(training) == (3, 3)
    assert (cache.hits, cache.misses) == (2, 3)

    # A moves to a 海淀 school and C retires: the directory follows rotation's feed, and so does the answer.
    moved = await rotation.patch(f"/v1/staff/{a}", json={"home_school_code": "11010801"})
    assert moved.status_code == 200, moved.text
    retired = await rotation.patch(f"/v1/staff/{c}", json={"status": "retired"})
    assert retired.status_code == 200, retired.text
    await synced(db_engine, schools=False)
    assert await _figures(training) == (1, 1)
    assert (cache.hits, cache.misses) == (2, 4)
    assert await fetch(db_engine, "select home_district_code, status from training.staff_directory where id = :a",
                       a=a) == [{"home_district_code": "110108", "status": "active"}]
    assert await fetch(db_engine, "select count(*) as n, sum(hours) as h from training.training_hours") == [
        {"n": 7, "h": Decimal("1780.00")}]


async def test_a_credit_committed_after_the_answer_but_begun_before_is_seen(training, training_app, world,
                                                                           db_engine):
    """A writer's transaction that is still open when the answer is computed (its credit invisible
    to that statement) and commits afterwards makes the kept answer stale: the next call recomputes."""
    cache = training_app.state.answer_cache
    b = world.staff[1]["id"]
    await f.credit(training, b, hours="359.5", earned_on="2020-05-01")
    await synced(db_engine, schools=False)
    async with db_engine.connect() as writer:
        transaction = await writer.begin()
        # What the ledger's writers do: the credit and its feed row in one transaction.
        await writer.execute(text(
            "INSERT INTO training.training_hours (id, staff_id, hours, earned_on, source, reference) "
            "VALUES (gen_random_uuid(), :b, 0.5, '2024-08-31', '市级平台', 'OPEN-1')"), {"b": b})
        await writer.execute(text(
            "INSERT INTO training.changes (entity, key, op, state) "
            "VALUES ('training_credit', '市级平台:OPEN-1', 'create', '{}'::jsonb)"))
        assert await _figures(training) == (3, 0)  # the open credit is not visible yet
        assert await _figures(training) == (3, 0)
        assert cache.hits == 1
        await transaction.commit()
    assert await _figures(training) == (3, 1)
    assert cache.hits == 1
