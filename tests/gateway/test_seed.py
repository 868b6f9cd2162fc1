"""`spp seed --demo` / `spp up --demo`: Beijing's districts through the public API, idempotently."""

from services.common.seed import BEIJING_DISTRICTS, seed_demo
from tests.conftest import asgi, fetch
from tests.feed import synced


async def test_demo_data_loads_once_and_gives_a_full_overview(gateway_app, gateway, token, db_engine):
    counts = await seed_demo("http://gateway", token(), transport=asgi(gateway_app))
    assert counts == {"districts": 16, "schools": 64, "pairings": 16, "activities": 16, "staff": 384,
                      "rotations": 16, "studios": 16, "sessions": 16, "training_credits": 48}
    assert len(BEIJING_DISTRICTS) == 16
    assert await fetch(db_engine, "select name from partnership.districts where code = '110108'") == [
        {"name": "海淀区"}]
    again = await seed_demo("http://gateway", token(), transport=asgi(gateway_app))
    assert again == {}
    await synced(db_engine)  # training counts completion from its staff directory (rotation's feed)
    overview = (await gateway.get("/api/v1/districts/110119/overview",
                                  params={"academic_year": 2024, "as_of": "2025-03-01"})).json()
    assert overview["degraded"] == []
    # 延庆: the township and rural schools are 2, the rural one is paired; 24 staff, 3 of them with
    # 360 external hours; one studio session of 3.5 hours attended by 3 members.
    assert (overview["partnership"]["township_rural_schools"], overview["partnership"]["covered_schools"]) == (2, 1)
    assert (overview["training"]["staff"], overview["training"]["completed"]) == (24, 3)
    assert (overview["training"]["sessions"], overview["training"]["hours"]) == (1, 10.5)
    assert overview["rotation"]["rotated"] == 1
