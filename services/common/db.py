"""Async engine, per-request session and the transaction the request owns (style.md habit 2)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.settings import Settings
from services.common.tracing import instrument_engine


def async_url(url: str) -> str:
    """Accept plain `postgresql://` URLs (as operators write them) and pick the asyncpg driver."""
    scheme = urlsplit(url).scheme
    if scheme in ("postgres", "postgresql"):
        return "postgresql+asyncpg" + url[len(scheme):]
    return url


def sync_free_url(url: str) -> str:
    """The same URL without a SQLAlchemy driver suffix, for asyncpg.connect and psql."""
    scheme = urlsplit(url).scheme
    return "postgresql" + url[len(scheme):]


def create_engine(url: str, settings: Settings, *, pool_size: int | None = None) -> AsyncEngine:
    # Pool sized on purpose and a short pool timeout: a saturated pool should fail fast (503)
    # rather than queue requests for the 30 s default.
    engine = create_async_engine(
        async_url(url),
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_pre_ping=False,
        connect_args={"server_settings": {"application_name": "spp", "timezone": "UTC"}},
    )
    instrument_engine(engine)  # a span per statement when traces are exported
    return engine


def read_only(engine: AsyncEngine) -> AsyncEngine:
    """The same engine and pool, every transaction `BEGIN READ ONLY`: a figure endpoint that tried
    to write would fail on the primary exactly as it would on a replica."""
    return engine.execution_options(postgresql_readonly=True)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False, autoflush=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The one owner of the transaction: commit when the handler returns, roll back on error.

    Used with scope="function" so the commit happens before the response is sent: a commit that
    fails turns into an error response instead of a 201 for data that was never stored. FastAPI
    leaves it only after the route handler has built the response, which is when a keyed POST
    stores that response with its Idempotency-Key (services/common/idempotency.py): one commit.
    """
    async with request.app.state.session_factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A read-only session for the figure endpoints (`/v1/internal/*-stats` and the like): on the
    service's replica when `SPP_<SERVICE>_READ_DATABASE_URL` is set, else on the primary. Its
    figures may lag the primary by the replica's delay (docs/scaling.md §1)."""
    async with request.app.state.read_session_factory() as session:
        yield session  # nothing to commit: closing the session ends its transaction


ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
# The one type of a `lock` parameter: FOR UPDATE (to change the row) or FOR SHARE (to keep it from
# changing while something that depends on it is admitted); None reads without a lock.
RowLock = Literal["update", "share"]


def locked(stmt: Any, lock: RowLock | None) -> Any:
    """`stmt` with the row lock asked for. A locked read sees the row as the lock holder committed
    it (populate_existing), not a copy the session cached before the lock was granted."""
    if lock is None:
        return stmt
    return stmt.with_for_update(read=lock == "share").execution_options(populate_existing=True)
