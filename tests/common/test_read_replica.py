"""SPP_<SERVICE>_READ_DATABASE_URL: the figure endpoints the gateway's overviews call read the
replica; every write, and every other read, stays on the primary (docs/scaling.md §1).

The "replica" is the spare database beside the test database, migrated and holding other data
than the primary, so an answer shows where it was read."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text

from services.common.db import create_engine, get_read_session
from services.common.migrate import upgrade_all
from services.common.settings import SERVICES
from tests.conftest import asgi, fetch
from tests.partnership import factories as f

FIGURES = {
    "partnership": ("/v1/internal/partnership-stats", "/v1/internal/schools"),
    "rotation": ("/v1/internal/rotation-stats", "/v1/internal/backbone-placement", "/v1/internal/balance-totals"),
    "training": ("/v1/internal/training-completion", "/v1/internal/studio-stats"),
}


@pytest.fixture
async def replica(spare_database_url, settings):
    """The spare database with every service schema, emptied of the services' rows afterwards."""
    split = settings.model_copy(update={f"{s}_database_url": spare_database_url for s in SERVICES})
    with ThreadPoolExecutor(1) as pool:
        await asyncio.get_running_loop().run_in_executor(pool, upgrade_all, split)
    engine = create_engine(spare_database_url, settings, pool_size=2)
    try:
        yield engine
    finally:
        async with engine.begin() as conn:
            tables = (await conn.execute(text(
                "select format('%I.%I', schemaname, tablename) from pg_tables "
                "where schemaname = any(:schemas) and tablename <> 'alembic_version'"), {"schemas": list(SERVICES)})).scalars()
            await conn.execute(text(f"truncate {', '.join(tables)} restart identity cascade"))
        await engine.dispose()


def _client(app, token) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=asgi(app), base_url="http://service",
                             headers={"Authorization": f"Bearer {token()}"})


async def test_partnership_figures_read_the_replica_while_writes_go_to_the_primary(
        replica, spare_database_url, settings, token, db_engine):
    from services.partnership.app import create_app

    # What only the replica holds: Yanqing and one rural school.
    writer = create_app(settings.model_copy(update={"partnership_database_url": spare_database_url}))
    async with writer.router.lifespan_context(writer), _client(writer, token) as client:
        await f.district(client, *f.YANQING)
        await f.school(client, "Y001", district_code=f.YANQING[0], name="延庆区某小学", locality="rural", primary=120)

    app = create_app(settings.model_copy(update={"partnership_read_database_url": spare_database_url}))
    async with app.router.lifespan_context(app), _client(app, token) as client:
        await f.district(client)
        await f.school(client, "C001", name="朝阳区某小学", primary=800)
        assert (await client.get("/v1/schools/C001")).status_code == 200  # a public read: the primary
        assert (await client.get("/v1/schools/Y001")).status_code == 404
        briefs = await client.get("/v1/internal/schools")
        stats = await client.get("/v1/internal/partnership-stats",
                                 params={"as_of": "2025-03-01", "from": "2024-09-01", "to": "2025-08-31"})
    assert briefs.status_code == 200
    assert briefs.json() == {"items": [{
        "code": "Y001", "name": "延庆区某小学", "district_code": "110119", "stage": "primary", "locality": "rural",
        "primary_enrollment": 120, "junior_enrollment": 0, "senior_enrollment": 0}]}
    assert stats.status_code == 200
    assert [(d["district_code"], d["name"], d["township_rural_schools"]) for d in stats.json()["districts"]] == [
        ("110119", "延庆区", 1)]
    assert await fetch(db_engine, "select code from partnership.schools") == [{"code": "C001"}]
    assert await fetch(replica, "select code from partnership.schools") == [{"code": "Y001"}]


async def test_training_completion_counts_the_replicas_staff(replica, spare_database_url, settings, token,
                                                             rotation_app, db_engine):
    from services.training.app import create_app

    staff_id = uuid.uuid4()
    async with replica.begin() as conn:
        await conn.execute(text(
            "insert into training.staff_directory (id, staff_no, home_school_code, home_district_code, status, "
            "version) values (:id, 'R0000001', 'Y001', '110119', 'active', 1)"), {"id": staff_id})
    params = {"as_of": "2025-03-01"}
    for read_url, expected in ((None, []), (spare_database_url, [
            {"district_code": "110119", "staff": 1, "completed": 0}])):
        app = create_app(settings.model_copy(update={"training_read_database_url": read_url,
                                                     "feed_consumers": False}),
                         transports={"rotation": asgi(rotation_app)})
        async with app.router.lifespan_context(app), _client(app, token) as client:
            response = await client.get("/v1/internal/training-completion", params=params)
        assert response.status_code == 200, response.text
        assert response.json()["districts"] == expected
    assert await fetch(db_engine, "select count(*) as n from training.staff_directory") == [{"n": 0}]


async def test_rotation_stats_read_the_replica_while_a_policy_is_written_to_the_primary(
        replica, spare_database_url, settings, token, partnership_app, partnership, db_engine):
    from services.rotation.app import create_app

    await f.district(partnership)

    async with replica.begin() as conn:
        await conn.execute(text(
            "insert into rotation.rotation_policies (district_code, min_years_teacher, min_years_cadre, "
            "retirement_exempt_years, target_rate, target_backbone_share, updated_by) "
            "values ('110119', 6, 6, 5, 0.15, 0.25, 'replica')"))
    app = create_app(settings.model_copy(update={"rotation_read_database_url": spare_database_url,
                                                 "feed_consumers": False}),
                     transports={"partnership": asgi(partnership_app)})
    async with app.router.lifespan_context(app), _client(app, token) as client:
        written = await client.put("/v1/rotation-policies/110105", json={"target_rate": "0.12"})
        stats = await client.get("/v1/internal/rotation-stats", params={"academic_year": 2024})
    assert written.status_code == 200, written.text
    assert stats.status_code == 200
    assert [(d["district_code"], d["target_rate"]) for d in stats.json()["districts"]] == [("110119", "0.15")]
    assert await fetch(db_engine, "select district_code, target_rate from rotation.rotation_policies") == [
        {"district_code": "110105", "target_rate": Decimal("0.12")}]


@pytest.mark.parametrize("service", SERVICES)
async def test_every_figure_endpoint_the_overviews_call_uses_the_read_session(service):
    import importlib

    internal = importlib.import_module(f"services.{service}.api").internal
    reading = {route.path for route in internal.routes
               if get_read_session in {d.call for d in route.dependant.dependencies}}
    assert reading == set(FIGURES[service])
