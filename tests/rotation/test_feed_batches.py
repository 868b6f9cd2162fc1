"""The staff an import creates are fed a thousand to an entry (services/common/outbox.py
`record_created`), and the feed gives each as its own `create`: in file order, once, resumable at
any record, with the state the record has when it is read."""

from __future__ import annotations

import base64

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import fetch
from tests.feed import drain, synced
from tests.rotation import factories as f

HEADER = "工号,姓名,任职学校代码,岗位,任教学段,学科,骨干级别,现岗位起始日期,退休日期,备注\n"
CSV = {"content-type": "text/csv"}
IMPORTED = 2345
STORED_STATES = "select staff_no, to_jsonb(t) as state from rotation.staff t"


def _file(count: int) -> bytes:
    return (HEADER + "".join(f"K{i:05d},老师{i}·Ü,11010501,教师,小学,数学,无,2015-09-01,,\n"
                             for i in range(1, count + 1))).encode()


async def _page_all(client: httpx.AsyncClient, limit: int, cursor: str | None = None) -> list[dict]:
    seen = []
    for _ in range(IMPORTED + 10):  # bounded: a page holds at least one change until the end
        page = (await client.get("/v1/changes", params={"after": cursor, "limit": limit})).json()
        if not page["items"]:
            assert page["next_cursor"] == cursor
            return seen
        assert len(page["items"]) <= limit
        seen.extend(page["items"])
        assert page["next_cursor"] == page["items"][-1]["cursor"]
        cursor = page["next_cursor"]
    raise AssertionError("the feed never ended")


@pytest.fixture
async def imported(partnership, rotation, rotation_app, db_engine):
    """One staff member posted alone, then 2,345 imported, then one of those corrected."""
    await f.chaoyang_with_schools(partnership)
    await f.staff(rotation, staff_no="T-单独", name="单独录入")
    rotation_app.state.settings = rotation_app.state.settings.model_copy(update={"import_sync_rows": 10_000})
    response = await rotation.post("/v1/imports/staff", content=_file(IMPORTED), headers=CSV)
    assert (response.status_code, response.json()["inserted"]) == (200, IMPORTED), response.text
    [staff] = await fetch(db_engine, "select id::text as id from rotation.staff where staff_no = 'K00002'")
    patched = await rotation.patch(f"/v1/staff/{staff['id']}", json={"subject": "物理"})
    assert patched.status_code == 200, patched.text
    # Everything readable before the tests page through it (tests/feed.py drain).
    await drain(rotation, None, IMPORTED + 2, limit=1000)


async def test_an_import_is_stored_as_entries_of_a_thousand_ids_in_file_order(imported, db_engine):
    entries = await fetch(db_engine, "select entity, key, op, state, cardinality(ids) as n, actor "
                                     "from rotation.changes order by seq")
    assert entries == [
        {"entity": "staff", "key": "T-单独", "op": "create", "state": entries[0]["state"], "n": None,
         "actor": "tester"},
        *[{"entity": "staff", "key": None, "op": "create", "state": None, "n": n, "actor": "tester"}
          for n in (1000, 1000, 345)],
        {"entity": "staff", "key": "K00002", "op": "update", "state": entries[4]["state"], "n": None,
         "actor": "tester"}]
    ids = await fetch(db_engine, "select u.id::text as id from rotation.changes c, "
                                 "unnest(c.ids) with ordinality as u(id, ord) order by c.seq, u.ord")
    by_staff_no = await fetch(db_engine, "select id::text as id from rotation.staff where staff_no like 'K%' "
                                         "order by staff_no")
    assert ids == by_staff_no


@pytest.mark.parametrize("limit", [7, 333, 1000])
async def test_the_feed_gives_every_record_once_in_file_order(imported, rotation, db_engine, limit):
    items = await _page_all(rotation, limit)
    expected_keys = ["T-单独", *(f"K{i:05d}" for i in range(1, IMPORTED + 1)), "K00002"]
    assert [c["key"] for c in items] == expected_keys
    assert [c["op"] for c in items] == ["create"] * (IMPORTED + 1) + ["update"]
    assert len({c["cursor"] for c in items}) == len(items)
    # A bulk create gives the record as it is when read: K00002 already with its correction.
    stored = {r["staff_no"]: r["state"] for r in await fetch(db_engine, STORED_STATES)}
    assert [c["state"] for c in items[1:-1]] == [stored[key] for key in expected_keys[1:-1]]
    assert (items[2]["state"]["subject"], items[2]["state"]["version"]) == ("物理", 2)
    assert (items[-1]["state"]["id"], items[-1]["state"]["version"]) == (stored["K00002"]["id"], 2)
    assert {c["actor"] for c in items} == {"tester"}
    # The records of one entry share its seq; entries' seqs grow.
    seqs = [c["seq"] for c in items]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5


async def test_a_consumer_resumes_at_any_record_inside_an_entry(imported, rotation):
    items = await _page_all(rotation, 1000)
    for at in (0, 1, 999, 1000, 1001, 1500, 2000, 2001, IMPORTED - 1, IMPORTED):
        page = (await rotation.get("/v1/changes", params={"after": items[at]["cursor"], "limit": 5})).json()
        assert [(c["key"], c["cursor"]) for c in page["items"]] == [
            (c["key"], c["cursor"]) for c in items[at + 1:at + 6]], f"after item {at}"


async def test_a_record_removed_since_is_skipped_and_the_page_still_fills(imported, rotation, db_engine):
    """No route removes staff, but an operator may: the feed skips what is gone and goes on, so a
    page is short only at the end of the feed (a consumer reads a short page as caught up)."""
    async with db_engine.begin() as conn:
        await conn.execute(text("delete from rotation.staff where staff_no between 'K00001' and 'K01003'"))
    page = (await rotation.get("/v1/changes", params={"limit": 10})).json()
    assert [c["key"] for c in page["items"]] == ["T-单独", *(f"K{i:05d}" for i in range(1004, 1013))]
    rest = await _page_all(rotation, 500, page["next_cursor"])
    # The correction of K00002 is an entry of its own, with its state as it was: it stays.
    assert [c["key"] for c in rest] == [*(f"K{i:05d}" for i in range(1013, IMPORTED + 1)), "K00002"]


@pytest.mark.parametrize("raw", ["1:2:-1", "1:2:1001", "1:2:3:4", "x:2:3"])
async def test_a_cursor_inside_an_entry_is_checked(rotation, raw):
    cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    response = await rotation.get("/v1/changes", params={"after": cursor})
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "query.after", "message": "invalid cursor", "type": "value_error"}]


async def test_trainings_staff_directory_follows_an_import(imported, training, db_engine):
    await synced(db_engine, schools=False)
    assert await fetch(db_engine, "select count(*) as n, count(*) filter (where staff_no like 'K%') as k "
                                  "from training.staff_directory") == [{"n": IMPORTED + 1, "k": IMPORTED}]


async def test_a_page_over_many_small_imports_renders_their_records_in_one_statement(
        partnership, rotation, db_engine):
    """Thirty imports of two staff each are thirty feed entries: a page of them is read with one
    statement for the entries and one for all their records, not one per entry."""
    from sqlalchemy import event
    from sqlmodel.ext.asyncio.session import AsyncSession

    from services.common.integration_api import created_records
    from services.common.outbox import read_changes

    await f.chaoyang_with_schools(partnership)
    for n in range(30):
        response = await rotation.post("/v1/imports/staff", content=(HEADER + "".join(
            f"S{n:02d}{i},小批{n}之{i},11010502,教师,小学,数学,无,2016-09-01,,\n" for i in (1, 2))).encode(),
            headers=CSV)
        assert (response.status_code, response.json()["inserted"]) == (200, 2), response.text
    await drain(rotation, None, 60, limit=100)
    async with db_engine.connect() as connection:
        statements: list[str] = []
        event.listen(connection.sync_connection, "before_cursor_execute",
                     lambda conn, cursor, statement, *rest: statements.append(statement))
        page = await read_changes(AsyncSession(bind=connection), "rotation", "rotation", after=None, limit=100,
                                  created=created_records("rotation"))
    assert [c["key"] for c in page.model_dump()["items"]] == [f"S{n:02d}{i}" for n in range(30) for i in (1, 2)]
    assert [c.state["name"] for c in page.items[:2]] == ["小批0之1", "小批0之2"]
    # the entries, all their records, and the look for more that finds none
    assert len(statements) == 3, statements
