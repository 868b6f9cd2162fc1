"""Shared fixtures: one embedded PostgreSQL for the run, a database per xdist worker migrated once,
real commits, and every table truncated after each test.

Why truncate instead of roll back: services call each other in process through httpx's
ASGITransport and race tests need concurrent transactions that really commit, so each request
owns a real transaction exactly as in production; a TRUNCATE of every table restores isolation.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.auth import mint_token
from services.common.db import create_engine
from services.common.embedded import EmbeddedPostgres
from services.common.migrate import upgrade_all
from services.common.settings import SERVICES, Settings

TEST_SECRET = "spp-test-secret-0123456789abcdef0123456789"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def embedded_pg() -> EmbeddedPostgres:
    server = EmbeddedPostgres(ROOT / ".spp-test")
    server.start()
    return server


@pytest.fixture
def spp_data_dir() -> Iterator[Path]:
    """A fresh SPP_DATA_DIR for a test that starts its own embedded PostgreSQL.

    Not under pytest's tmp_path: the server runs as an unprivileged user when the tests run as
    root, so the library opens up every parent directory, and each new pytest session (another
    xdist worker, a parallel run) closes its base temp directory to 0700 again, which makes
    initdb or a restart fail with "Permission denied"."""
    path = Path(tempfile.mkdtemp(prefix="spp-data-"))
    yield path / "spp"
    if not os.environ.get("SPP_KEEP_DATA"):
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(embedded_pg: EmbeddedPostgres, worker_id: str):
    # One database per test process: xdist workers and developers' parallel runs never collide.
    name = f"spp_test_{worker_id}_{os.getpid()}"
    url = embedded_pg.create_database(name)
    # Alembic runs its own event loop; keep it off the test loop's thread.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(upgrade_all, Settings(env="test", database_url=url)).result()
    # A spare database for tests of per-service URLs (SPP_<SERVICE>_DATABASE_URL), made now rather
    # than mid-run: CREATE/DROP DATABASE hold a transaction id for seconds, and the change feed's
    # horizon is cluster-wide, so other workers' feed tests would wait on them.
    embedded_pg.create_database(f"{name}_spare")
    yield url
    embedded_pg.drop_database(f"{name}_spare")
    embedded_pg.drop_database(name)


@pytest.fixture(scope="session")
def spare_database_url(database_url: str) -> str:
    """An empty database beside the test database (not migrated, not cleaned between tests)."""
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(path=f"{parts.path}_spare"))


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    # Feed consumers poll often so local read models follow within a fraction of a second.
    return Settings(env="test", database_url=database_url, jwt_secret=TEST_SECRET,
                    upstream_timeout=2.0, breaker_failures=3, breaker_cooldown=0.5, feed_poll_interval=0.1)


@pytest.fixture(scope="session")
async def db_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings.database_url, settings, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def all_tables(db_engine: AsyncEngine) -> list[str]:
    async with db_engine.connect() as conn:
        rows = await conn.execute(text(
            "select schemaname, tablename from pg_tables where schemaname = any(:schemas) "
            "and tablename <> 'alembic_version'"), {"schemas": [*SERVICES, "gateway", "procrastinate"]})
        return [f'"{s}"."{t}"' for s, t in rows]


@pytest.fixture(autouse=True)
async def clean_db(db_engine: AsyncEngine, all_tables: list[str]) -> AsyncIterator[None]:
    yield
    if all_tables:
        async with db_engine.begin() as conn:
            await conn.execute(text(f"truncate {', '.join(all_tables)} restart identity cascade"))


async def fetch(db_engine: AsyncEngine, sql: str, **params) -> list[dict]:
    """Read stored state directly, so tests assert what the database holds, not what an API says."""
    async with db_engine.connect() as conn:
        result = await conn.execute(text(sql), params)
        return [dict(row._mapping) for row in result]


@pytest.fixture
def token() -> Callable[..., str]:
    def make(role: str = "city_admin", districts: tuple[str, ...] = (), schools: tuple[str, ...] = (),
             sub: str = "tester", ttl: int = 3600) -> str:
        return mint_token(TEST_SECRET, sub=sub, role=role, districts=districts, schools=schools,
                          ttl_seconds=ttl)
    return make


@pytest.fixture
def auth(token) -> Callable[..., dict[str, str]]:
    """Headers for a role: `auth("district_admin", districts=("110105",))`."""
    def make(role: str = "city_admin", districts: tuple[str, ...] = (), schools: tuple[str, ...] = ()) -> dict:
        return {"Authorization": f"Bearer {token(role, districts, schools)}"}
    return make


def asgi(app) -> httpx.ASGITransport:
    return httpx.ASGITransport(app=app, raise_app_exceptions=False)



@pytest.fixture
async def partnership_app(settings: Settings):
    from services.partnership.app import create_app

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def rotation_app(settings: Settings, partnership_app):
    from services.rotation.app import create_app

    app = create_app(settings, transports={"partnership": asgi(partnership_app)})
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def training_app(settings: Settings, rotation_app):
    from services.training.app import create_app

    app = create_app(settings, transports={"rotation": asgi(rotation_app)})
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def gateway_app(settings: Settings, partnership_app, rotation_app, training_app):
    from gateway.app import create_app

    app = create_app(settings, transports={"partnership": asgi(partnership_app),
                                           "rotation": asgi(rotation_app),
                                           "training": asgi(training_app)})
    async with app.router.lifespan_context(app):
        yield app


# Problems and import messages are Chinese unless English is asked for (services/common/messages.py).
# The fixtures' clients ask for English, so tests read the English texts; Chinese is tested explicitly.
ENGLISH = {"Accept-Language": "en"}


def _client(app, base: str, token: Callable[..., str]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=asgi(app), base_url=f"http://{base}",
                             headers={"Authorization": f"Bearer {token()}", **ENGLISH}, timeout=30)


@pytest.fixture
async def partnership(partnership_app, token) -> AsyncIterator[httpx.AsyncClient]:
    """A city_admin client of the partnership service, in process."""
    async with _client(partnership_app, "partnership", token) as client:
        yield client


@pytest.fixture
async def rotation(rotation_app, token) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(rotation_app, "rotation", token) as client:
        yield client


@pytest.fixture
async def training(training_app, token) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(training_app, "training", token) as client:
        yield client


@pytest.fixture
async def gateway(gateway_app, token) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(gateway_app, "gateway", token) as client:
        yield client
