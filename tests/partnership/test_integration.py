"""ETags on single resources and the partnership change feed."""

import asyncio

from sqlalchemy import text

from tests.conftest import fetch
from tests.feed import drain, read_all
from tests.partnership import factories as f


class TestETags:
    async def test_get_gives_etag_and_304(self, partnership):
        await f.district(partnership)
        await f.school(partnership, "S1")
        first = await partnership.get("/v1/schools/S1")
        assert first.headers["etag"] == '"v1"'
        again = await partnership.get("/v1/schools/S1", headers={"If-None-Match": '"v1"'})
        assert again.status_code == 304
        assert again.content == b""
        assert (await partnership.get("/v1/schools/S1", headers={"If-None-Match": '"v0"'})).status_code == 200

    async def test_stale_if_match_is_412_and_nothing_changes(self, partnership, db_engine):
        await f.district(partnership)
        await f.school(partnership, "S1", primary=100)
        updated = await partnership.patch("/v1/schools/S1", json={"primary_enrollment": 110},
                                          headers={"If-Match": '"v1"'})
        assert updated.status_code == 200
        assert updated.headers["etag"] == '"v2"'
        stale = await partnership.patch("/v1/schools/S1", json={"primary_enrollment": 999},
                                        headers={"If-Match": '"v1"'})
        assert stale.status_code == 412
        assert stale.headers["content-type"] == "application/problem+json"
        assert stale.json()["current_etag"] == '"v2"'
        garbage = await partnership.patch("/v1/schools/S1", json={"primary_enrollment": 999},
                                          headers={"If-Match": "nonsense"})
        assert garbage.status_code == 412
        assert await fetch(db_engine, "select primary_enrollment, version from partnership.schools") == [
            {"primary_enrollment": 110, "version": 2}]

    async def test_pairing_transition_with_if_match(self, partnership):
        await f.district(partnership)
        await f.school(partnership, "A")
        await f.school(partnership, "B", locality="rural")
        pid = (await f.pairing(partnership, "A", "B"))["id"]
        assert (await partnership.get(f"/v1/pairings/{pid}")).headers["etag"] == '"v1"'
        assert (await partnership.post(f"/v1/pairings/{pid}/activate", headers={"If-Match": '"v2"'})).status_code == 412
        ok = await partnership.post(f"/v1/pairings/{pid}/activate", headers={"If-Match": '"v1"'})
        assert (ok.status_code, ok.headers["etag"]) == (200, '"v2"')


class TestChangeFeed:
    async def test_carries_natural_key_and_new_state_in_order(self, partnership):
        await f.district(partnership)
        await f.school(partnership, "S1", primary=100)
        await partnership.patch("/v1/schools/S1", json={"primary_enrollment": 120})
        items, cursor = await drain(partnership, None, 3)
        assert (await partnership.get("/v1/changes")).json()["service"] == "partnership"
        assert [(c["entity"], c["key"], c["op"]) for c in items] == [
            ("district", "110105", "create"), ("school", "S1", "create"), ("school", "S1", "update")]
        assert items[2]["state"]["primary_enrollment"] == 120
        assert items[0]["state"]["name"] == "朝阳区"
        empty = (await partnership.get("/v1/changes", params={"after": cursor})).json()
        assert (empty["items"], empty["next_cursor"]) == ([], cursor)

    async def test_only_integrators_and_city_readers(self, partnership, auth):
        assert (await partnership.get("/v1/changes", headers=auth("integrator"))).status_code == 200
        assert (await partnership.get("/v1/changes", headers=auth("district_admin", districts=("110105",)))
                ).status_code == 403
        assert (await partnership.get("/v1/changes", params={"after": "@@"})).status_code == 422

    async def test_a_transaction_that_commits_late_is_not_skipped(self, partnership, db_engine):
        await f.district(partnership)
        _, cursor = await drain(partnership, None, 1)
        async with db_engine.connect() as slow:
            # An older transaction writes its change first but commits last.
            await slow.execute(text("INSERT INTO partnership.changes (entity, key, op, state) "
                                    "VALUES ('school', 'SLOW', 'create', '{}')"))
            await f.school(partnership, "FAST")  # a younger transaction commits now
            held_back, held_cursor = await read_all(partnership, cursor)
            assert held_back == []  # FAST waits behind the still-open older transaction
            assert held_cursor == cursor
            await slow.commit()
        seen, cursor = await drain(partnership, cursor, 2)
        assert [c["key"] for c in seen] == ["SLOW", "FAST"]
        again, _ = await read_all(partnership, cursor)
        assert again == []

    async def test_rolled_back_change_never_appears(self, partnership, db_engine):
        async with db_engine.connect() as doomed:
            await doomed.execute(text("INSERT INTO partnership.changes (entity, key, op, state) "
                                      "VALUES ('school', 'GHOST', 'create', '{}')"))
            await doomed.rollback()
        await f.district(partnership)
        await f.district(partnership, *f.YANQING)
        seen, _ = await drain(partnership, None, 2)
        assert [c["key"] for c in seen] == ["110105", "110119"]

    async def test_interleaved_concurrent_writes_and_reads_lose_and_repeat_nothing(self, partnership, db_engine):
        await f.district(partnership)
        collected, cursor = [], None
        for round_ in range(4):
            writes = [partnership.post("/v1/schools", json={
                "code": f"R{round_}-{i}", "name": f"学校{round_}-{i}", "district_code": "110105",
                "stage": "primary", "locality": "urban"}) for i in range(6)]
            reader = read_all(partnership, cursor)
            *responses, (seen, cursor) = await asyncio.gather(*writes, reader)
            assert {r.status_code for r in responses} == {201}
            collected.extend(seen)
        rest, _ = await drain(partnership, cursor, 25 - len(collected))
        collected.extend(rest)
        keys = [c["key"] for c in collected]
        assert len(keys) == len(set(keys)) == 1 + 24
        stored = await fetch(db_engine, "select key from partnership.changes")
        assert sorted(keys) == sorted(r["key"] for r in stored)
