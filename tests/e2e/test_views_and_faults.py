"""Issue 5 through real processes: the hand-worked district's figures, the what-if, and faults —
a service stopped and started again while the gateway keeps answering."""

import time

import httpx
import pytest

from tests.conftest import fetch
from tests.feed import synced
from tests.gateway.conftest import AS_OF, build_chaoyang
from tests.gateway.test_district_views import JUNIOR, PARTNERSHIP, PRIMARY, ROTATION, TRAINING

pytestmark = pytest.mark.e2e
PARAMS = {"as_of": AS_OF, "academic_year": 2024}


def _client(platform, name, token, prefix=""):
    return httpx.AsyncClient(base_url=platform.url(name) + prefix, timeout=15,
                             headers={"Authorization": f"Bearer {token()}", "Accept-Language": "en"})


async def _world(platform, token, db_engine):
    async with (_client(platform, "partnership", token) as partnership, _client(platform, "rotation", token) as rotation,
                _client(platform, "training", token) as training):
        world = await build_chaoyang(partnership, rotation, training)
    await synced(db_engine)  # the processes' read models have caught up with the world
    return world


async def test_hand_worked_overview_and_what_if(platform, token, db_engine):
    world = await _world(platform, token, db_engine)
    async with _client(platform, "gateway", token, "/api/v1") as gateway:
        overview = (await gateway.get("/districts/110105/overview", params=PARAMS)).json()
        assert overview == {
            "district": {"code": "110105", "name": "朝阳区"}, "academic_year": 2024,
            "period_from": "2024-09-01", "period_to": "2025-08-31", "as_of": AS_OF,
            "partnership": PARTNERSHIP, "rotation": ROTATION, "training": TRAINING,
            "balance": {"primary": PRIMARY, "junior": JUNIOR}, "degraded": [],
        }
        before_rows = await fetch(db_engine, "select id, home_school_code, version from rotation.staff order by id")
        rotations_before = await fetch(db_engine, "select id, status, version from rotation.rotations order by id")
        s = world.staff
        what_if = await gateway.post("/districts/110105/balance/what-if", json={"as_of": AS_OF, "moves": [
            {"staff_id": s["T2"]["id"], "to_school_code": "S5"}, {"staff_id": s["T1"]["id"], "to_school_code": "S5"}]})
        assert what_if.status_code == 200
        after = what_if.json()["after"]["primary"]
        # Worked in tests/gateway/test_district_views.py::test_what_if: CV = √3.5.
        assert (after["mean"], after["cv"], after["schools_below_one"]) == (0.333333, 1.870829, 3)
        assert [(x["code"], x["backbone"]) for x in after["schools"]] == [("S1", 0), ("S2", 1), ("S3", 0), ("S5", 2)]
        assert await fetch(db_engine, "select id, home_school_code, version from rotation.staff order by id") == before_rows
        assert await fetch(db_engine, "select id, status, version from rotation.rotations order by id") == rotations_before


async def test_training_down_degrades_then_recovers(platform, token, db_engine):
    await _world(platform, token, db_engine)
    async with _client(platform, "gateway", token, "/api/v1") as gateway:
        platform.stop("training")
        started = time.monotonic()
        first = await gateway.get("/districts/110105/overview", params=PARAMS)
        assert time.monotonic() - started < 2.5  # within the 2 s upstream budget (plus the rest)
        assert first.status_code == 200
        assert (first.json()["degraded"], first.json()["training"]) == (["training"], None)
        assert first.json()["rotation"] == ROTATION  # the other parts are still served
        for _ in range(3):  # open the breaker
            await gateway.get("/districts/110105/overview", params=PARAMS)
        started = time.monotonic()
        fast = await gateway.get("/districts/110105/overview", params=PARAMS)
        assert time.monotonic() - started < 0.5  # breaker open: no time spent on the dead upstream
        assert fast.json()["degraded"] == ["training"]

        platform.start("training")
        platform.wait_ready(timeout=30, names=("training",))
        time.sleep(5.1)  # the breaker's cool-down (SPP_BREAKER_COOLDOWN, 5 s): the next call is a trial
        recovered = await gateway.get("/districts/110105/overview", params=PARAMS)
        assert recovered.json()["degraded"] == []
        assert recovered.json()["training"] == TRAINING


async def test_rotation_down_balance_is_503_and_overview_degraded(platform, token, db_engine):
    await _world(platform, token, db_engine)
    async with _client(platform, "gateway", token, "/api/v1") as gateway:
        platform.stop("rotation")
        balance = await gateway.get("/districts/110105/balance", params={"as_of": AS_OF})
        assert balance.status_code == 503
        assert balance.headers["content-type"] == "application/problem+json"
        overview = (await gateway.get("/districts/110105/overview", params=PARAMS)).json()
        assert overview["degraded"] == ["rotation"]
        assert (overview["rotation"], overview["balance"]) == (None, None)
        assert overview["partnership"] == PARTNERSHIP
        assert overview["training"] == TRAINING  # counted from training's own staff directory
