"""Figures kept between calls while the change feed says nothing they read has changed.

Every overview asks the services the same few questions (a district's figures on a date), and the
answers are aggregates over whole districts: at Beijing scale they were most of PostgreSQL's CPU,
so one client's overview already kept both cores busy and more clients got no more answers a second.
An answer depends only on the service's own tables and its local read models, and both say when
they change:

- every write of a service's tables puts a row on its change feed (`<schema>.changes`) in the same
  transaction: the outbox (services/common/outbox.py), the import merge (import_merge.py) and the
  read-model consumers' own follow-up writes (e.g. services/rotation/directory.py) all do. A new
  write path that skips the feed would make these answers stale: it must write its feed row too;
- a local read model is written only by its feed consumer, which moves its cursor
  (`<schema>.feed_cursors`) in the same transaction as the rows it applied.

So each lookup first reads, in one statement, the current snapshot (`pg_current_snapshot()`) and
the consumers' cursors: the stamp. A kept answer is served while the cursors equal its stamp's and
no feed row of a transaction its stamp's snapshot did not see has committed. Those transactions
all have ids at or above the snapshot's xmin, so the check is one backward probe of the feed's
`(xid, seq)` index while nothing was written (the usual case between imports), and a short range
scan otherwise. A miss computes the answer after reading the stamp (its transaction begins
later), so anything committed in between is seen by the next check as a change: the cache can
only recompute too often, never serve an answer that misses a committed write.

The check runs on a pooled connection of its own in autocommit: a kept answer costs one round
trip, not a session's three (BEGIN READ ONLY, the check, ROLLBACK). Lookups that arrive while a
check runs share the next one (`lookup`): with 16 clients of the overview, a service otherwise
ran a check per call, and that was most of its CPU. What is kept is the whole response, before
routing (services/common/kept_answers.py).

Each process keeps its own bounded LRU; there is no shared state and nothing to invalidate across
processes, since every process checks against the database. A request with `Cache-Control:
no-cache` is answered afresh (and that answer kept). `hits`/`misses` count the lookups (tests read
them; `spp_answer_cache_lookups_total` exports them). Answers must not depend on today's date:
every figure takes its dates as parameters.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass(frozen=True)
class Stamp:
    """What the database looked like when an answer was computed: its snapshot (as text; asyncpg
    would want pg_snapshot's binary form) and the read models' cursors."""

    snapshot: str
    cursors: tuple[str, ...]


def _check_sql(schema: str, with_consumers: bool) -> Any:
    # `moved[i]`: has a feed row committed that kept snapshot i did not see?
    cursors = (f"ARRAY(SELECT consumer || '=' || coalesce(cursor, '') FROM {schema}.feed_cursors "
               f"WHERE consumer IN :consumers ORDER BY consumer)" if with_consumers else "CAST(ARRAY[] AS text[])")
    statement = text(f"""
        WITH kept AS (SELECT ord, CAST(s AS pg_snapshot) AS snapshot
                      FROM unnest(CAST(:snapshots AS text[])) WITH ORDINALITY AS u(s, ord)),
        newest AS (SELECT xid FROM {schema}.changes ORDER BY xid DESC, seq DESC LIMIT 1)
        SELECT pg_current_snapshot()::text AS snapshot, {cursors} AS cursors,
               ARRAY(SELECT CASE WHEN coalesce((SELECT xid FROM newest) < pg_snapshot_xmin(kept.snapshot), true)
                                 THEN false
                                 ELSE EXISTS (SELECT 1 FROM {schema}.changes c
                                              WHERE c.xid >= pg_snapshot_xmin(kept.snapshot)
                                                AND NOT pg_visible_in_snapshot(c.xid, kept.snapshot)) END
                     FROM kept ORDER BY kept.ord) AS moved""")
    return statement.bindparams(bindparam("consumers", expanding=True)) if with_consumers else statement


@dataclass
class _Waiting:
    key: Hashable
    fresh: bool
    answer: asyncio.Future[tuple[Any | None, Stamp]]
    kept: tuple[Stamp, Any] | None = None


class AnswerCache:
    """A bounded LRU of one service's figure answers, each kept with the stamp it was computed
    under. `schema` is the service's schema (its feed); `consumers` the feed consumers that write
    its local read models (their cursors are part of the stamp); `engine` the one the check runs
    on, in autocommit. What an answer is (a response's status line, headers and body) and what
    names it is the caller's business: services/common/kept_answers.py keeps whole responses."""

    def __init__(self, schema: str, engine: AsyncEngine, consumers: Sequence[str] = (), *, size: int = 512,
                 max_bytes: int = 64 * 1024 * 1024, counted: Callable[[str], None] | None = None) -> None:
        self.schema = schema
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.consumers = tuple(sorted(consumers))
        self._check = _check_sql(schema, bool(self.consumers))
        self._size = size
        self._max_bytes = max_bytes
        self.kept_bytes = 0  # what the kept answers weigh together (`keep`'s `weight`)
        self._weights: dict[Hashable, int] = {}
        self._entries: OrderedDict[Hashable, tuple[Stamp, Any]] = OrderedDict()
        self._waiting: list[_Waiting] = []
        self._checking: asyncio.Task[None] | None = None
        self.hits = 0
        self.misses = 0
        self.checks = 0  # statements run: fewer than lookups when lookups arrive together
        self._counted = counted  # "hit" or "miss", for the metrics

    async def lookup(self, key: Hashable, *, fresh: bool = False) -> tuple[Any | None, Stamp]:
        """The answer kept for `key` while nothing it depends on changed (None otherwise, and
        always when `fresh`), and the stamp to keep a newly computed answer under.

        Lookups that arrive while a check is running wait for the next one, which answers them
        all: it begins after every one of them arrived, so it sees every write committed before
        any of them (with one lookup at a time, each has its own check at once)."""
        waiting = _Waiting(key, fresh, asyncio.get_running_loop().create_future())
        self._waiting.append(waiting)
        if self._checking is None:
            self._checking = asyncio.create_task(self._check_waiting())
        return await waiting.answer

    async def _check_waiting(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    await self._check_batch(batch)
                except Exception as exc:  # the database is down, say: each caller decides what then
                    for waiting in batch:
                        if not waiting.answer.done():
                            waiting.answer.set_exception(exc)
        finally:
            self._checking = None

    async def _check_batch(self, batch: list[_Waiting]) -> None:
        snapshots: dict[str, int] = {}  # each kept snapshot checked once
        for waiting in batch:
            waiting.kept = None if waiting.fresh else self._entries.get(waiting.key)
            if waiting.kept is not None:
                snapshots.setdefault(waiting.kept[0].snapshot, len(snapshots))
        params: dict[str, Any] = {"snapshots": list(snapshots)}
        if self.consumers:
            params["consumers"] = list(self.consumers)
        self.checks += 1
        async with self._engine.connect() as connection:
            now = (await connection.execute(self._check, params)).one()
        stamp = Stamp(snapshot=now.snapshot, cursors=tuple(now.cursors))
        for waiting in batch:
            kept = waiting.kept
            answer = None
            if kept is not None and not now.moved[snapshots[kept[0].snapshot]] and kept[0].cursors == stamp.cursors:
                answer = kept[1]
                if waiting.key in self._entries:
                    self._entries.move_to_end(waiting.key)
            self._count("miss" if answer is None else "hit")
            if not waiting.answer.done():  # its caller may have gone (a cancelled request)
                waiting.answer.set_result((answer, stamp))

    def keep(self, key: Hashable, stamp: Stamp, value: Any, *, weight: int = 0) -> None:
        """Keep `value`, computed after `stamp` was read, for `key`. The least recently used
        answers go while there are more than `size` of them or they weigh more than `max_bytes`
        together (`weight`: what this one weighs, e.g. its body's length)."""
        self.kept_bytes += weight - self._weights.get(key, 0)
        self._weights[key] = weight
        self._entries[key] = (stamp, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size or (self.kept_bytes > self._max_bytes and len(self._entries) > 1):
            gone, _ = self._entries.popitem(last=False)
            self.kept_bytes -= self._weights.pop(gone)

    def _count(self, result: str) -> None:
        if result == "hit":
            self.hits += 1
        else:
            self.misses += 1
        if self._counted is not None:
            self._counted(result)

    def clear(self) -> None:
        self._entries.clear()
        self._weights.clear()
        self.kept_bytes = 0
