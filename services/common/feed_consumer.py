"""Local read models fed by another service's change feed (design.md §2, event-carried state transfer).

A `FeedConsumer` reads the producer's `GET /v1/changes?after=&limit=` over HTTP, through the
service's `Upstream` client and its service token (never the producer's tables), and hands each
page to the read model's `apply` function. Three rules make each change land exactly once:

- **One active consumer per read model**: a session-level PostgreSQL advisory lock, held on a
  dedicated connection for as long as the consumer is active. Other processes of the same service
  stay on standby and take over when that connection goes away.
- **The cursor moves with the changes**: a page is applied and `<schema>.feed_cursors` advanced in
  one transaction on that connection. The cursor row is read `FOR UPDATE` and must still be the
  one the page was asked after (a vanished or moved row means someone else wrote it: the page is
  dropped and read again), so a failure anywhere rolls the changes back together with the cursor.
- **No transaction is open while the producer is asked**: the page is fetched between two short
  transactions, so a slow producer never holds a transaction id (which would hold back every feed
  on the server, see services/common/outbox.py).

A missing cursor row means "from the start of the feed": a new database bootstraps its read model
by replaying the whole feed. The lag is a Prometheus gauge and part of `/readyz`'s detail; a
producer that cannot be read is reported there, never a reason to be unready.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.common.errors import UpstreamUnavailable
from services.common.middleware import Metrics
from services.common.outbox import Change, ChangePage
from services.common.upstream import Upstream

_log = logging.getLogger("spp.feed")

Apply = Callable[[AsyncConnection, list[Change]], Awaitable[None]]


@dataclass(frozen=True)
class FeedSpec:
    """One read model: whose feed it follows and how a page of changes is applied."""

    name: str        # e.g. "training.staff_directory": the cursor row and the advisory lock key
    producer: str    # the upstream whose feed is read, e.g. "rotation"
    schema: str      # the consumer's schema, which holds `feed_cursors`
    apply: Apply     # writes a page of changes (in feed order) on the given connection; never commits


class CursorMoved(Exception):
    """The saved cursor is not the one the page was read after (another writer, or the row vanished)."""


class FeedConsumer:
    def __init__(self, spec: FeedSpec, *, engine: AsyncEngine, upstream: Upstream, poll_interval: float,
                 batch_size: int = 500, metrics: Metrics | None = None, process: str = "") -> None:
        self.spec = spec
        self._engine = engine
        self._upstream = upstream
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self._metrics = metrics
        self._process = process or (metrics.process if metrics else "")
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task | None = None
        self.state = "stopped"        # starting, active, standby, stopped
        self.caught_up_at: float | None = None   # wall clock of the last empty page
        self.pending_since: datetime | None = None  # changed_at of the oldest change known unapplied
        self.last_error: str | None = None
        self.applied = 0

    # Lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self._stopping = False
        self.state = "starting"
        self._task = asyncio.create_task(self._run(), name=f"feed:{self.spec.name}")

    async def stop(self, timeout: float = 5.0) -> None:
        """Finish the page in hand (it commits or rolls back whole), release the lock, return."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        self.state = "stopped"

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    # The loop --------------------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = self.poll_interval
        while not self._stopping:
            try:
                async with self._engine.connect() as conn:
                    locked = await self._try_lock(conn)
                    if locked:
                        self.state = "active"
                        try:
                            backoff = await self._follow(conn, backoff)
                        finally:
                            await self._unlock(conn)
                if not locked:
                    # Another process of this service is the active consumer: stand by, try again later.
                    self.state = "standby"
                    await self._sleep(self.poll_interval)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database gone, a handler bug: log, back off, start over
                self._failed(f"{type(exc).__name__}: {exc}")
                _log.warning("feed consumer %s failed: %s", self.spec.name, exc, exc_info=exc)
                self.state = "starting"
                await self._sleep(backoff)
                backoff = min(backoff * 2, max(self.poll_interval, 10.0))
        self.state = "stopped"

    async def _follow(self, conn: AsyncConnection, backoff: float) -> float:
        """Poll and apply until asked to stop, holding the lock."""
        while not self._stopping:
            try:
                while not self._stopping and await self.run_once(conn):
                    pass
            except UpstreamUnavailable as exc:
                # The producer is down: report it and keep polling; nothing was applied.
                self._failed(str(exc))
                await self._sleep(backoff)
                backoff = min(backoff * 2, max(self.poll_interval, 10.0))
                continue
            backoff = self.poll_interval
            await self._sleep(self.poll_interval)
        return backoff

    def _lock_key(self) -> dict[str, str]:
        return {"key": self.spec.name}

    async def _try_lock(self, conn: AsyncConnection) -> bool:
        got = (await conn.execute(text("SELECT pg_try_advisory_lock(hashtext(:key))"), self._lock_key())).scalar()
        await conn.commit()
        return bool(got)

    async def _unlock(self, conn: AsyncConnection) -> None:
        # The connection goes back to the pool: the session-level lock must not go with it.
        try:
            if conn.in_transaction():
                await conn.rollback()
            await conn.execute(text("SELECT pg_advisory_unlock(hashtext(:key))"), self._lock_key())
            await conn.commit()
        except Exception:  # a broken connection: discard it, which releases the lock server-side
            with contextlib.suppress(Exception):
                await conn.invalidate()

    # One page --------------------------------------------------------------------------------

    async def saved_cursor(self, conn: AsyncConnection) -> str | None:
        cursor = (await conn.execute(text(
            f"SELECT cursor FROM {self.spec.schema}.feed_cursors WHERE consumer = :name"),
            {"name": self.spec.name})).scalar()
        await conn.commit()
        return cursor

    async def read_page(self, after: str | None) -> ChangePage:
        params: dict[str, Any] = {"limit": self.batch_size}
        if after:
            params["after"] = after
        # Its own back-off instead of the breaker: a producer still starting must not open the
        # circuit for the requests that ask it about a directory miss.
        body = await self._upstream.get_json("/v1/changes", params=params, breaker=False)
        try:
            return ChangePage.model_validate(body)
        except ValidationError:
            raise UpstreamUnavailable(f"the {self.spec.producer} service answered a change page this service "
                                      "cannot read", slug="upstream-unavailable",
                                      extra={"upstream": self.spec.producer}) from None

    async def run_once(self, conn: AsyncConnection) -> int:
        """Apply the next page of the feed in one transaction; the number of changes applied
        (0: caught up). Callers hold the advisory lock on `conn` (tests may call it directly)."""
        after = await self.saved_cursor(conn)
        page = await self.read_page(after)
        if not page.items:
            self._caught_up()
            return 0
        self.pending_since = page.items[0].changed_at
        self.report_lag()
        try:
            async with conn.begin():
                await self._save(conn, after, page)
        except CursorMoved:
            return 1  # read again after the cursor as it now is
        self.applied += len(page.items)
        self.last_error = None
        if self._metrics is not None:
            self._metrics.feed_applied.labels(self._process, self.spec.name).inc(len(page.items))
        return len(page.items)

    async def _save(self, conn: AsyncConnection, after: str | None, page: ChangePage) -> None:
        table = f"{self.spec.schema}.feed_cursors"
        held = (await conn.execute(text(f"SELECT cursor FROM {table} WHERE consumer = :name FOR UPDATE"),
                                   {"name": self.spec.name})).scalar()
        if held != after:
            raise CursorMoved(self.spec.name)
        await self.spec.apply(conn, page.items)
        values = {"name": self.spec.name, "cursor": page.next_cursor, "n": len(page.items),
                  "last": page.items[-1].changed_at}
        if after is None:
            # No row yet: a plain INSERT, so a concurrent bootstrap fails on the key instead of applying twice.
            await conn.execute(text(f"INSERT INTO {table} (consumer, cursor, applied, last_changed_at) "
                                    "VALUES (:name, :cursor, :n, :last)"), values)
        else:
            await conn.execute(text(f"UPDATE {table} SET cursor = :cursor, applied = applied + :n, "
                                    "last_changed_at = :last, updated_at = now() WHERE consumer = :name"), values)

    # Reporting -------------------------------------------------------------------------------

    def _caught_up(self) -> None:
        self.caught_up_at = time.time()
        self.pending_since = None
        self.last_error = None
        self.report_lag()

    def _failed(self, why: str) -> None:
        self.last_error = why
        if self._metrics is not None:
            self._metrics.feed_errors.labels(self._process, self.spec.name).inc()
        self.report_lag()

    def lag_seconds(self) -> float | None:
        """0 when the last read found nothing new; the age of the oldest unapplied change when
        changes are pending; the time since the last catch-up when the producer cannot be read."""
        now = time.time()
        if self.pending_since is not None:
            return max(0.0, now - self.pending_since.timestamp())
        if self.last_error is not None:
            return None if self.caught_up_at is None else now - self.caught_up_at
        return 0.0 if self.caught_up_at is not None else None

    def report_lag(self) -> None:
        """After each pass, and at each scrape (services/common/app.py)."""
        if self._metrics is not None:
            lag = self.lag_seconds()
            self._metrics.feed_lag.labels(self._process, self.spec.name, self.spec.producer).set(
                float("nan") if lag is None else lag)

    def status(self) -> dict[str, Any]:
        lag = self.lag_seconds()
        return {
            "producer": self.spec.producer,
            "state": self.state,
            "lag_seconds": None if lag is None else round(lag, 3),
            "caught_up_at": (None if self.caught_up_at is None
                             else datetime.fromtimestamp(self.caught_up_at, UTC).isoformat()),
            "producer_reachable": self.last_error is None if self.state == "active" else None,
            "last_error": self.last_error,
        }


def start_consumers(specs: Sequence[FeedSpec], *, engine: AsyncEngine, upstreams: dict[str, Upstream],
                    poll_interval: float, batch_size: int, metrics: Metrics) -> list[FeedConsumer]:
    consumers = [FeedConsumer(spec, engine=engine, upstream=upstreams[spec.producer], poll_interval=poll_interval,
                              batch_size=batch_size, metrics=metrics) for spec in specs]
    for consumer in consumers:
        consumer.start()
    return consumers


async def stop_consumers(consumers: Sequence[FeedConsumer]) -> None:
    await asyncio.gather(*(consumer.stop() for consumer in consumers))
