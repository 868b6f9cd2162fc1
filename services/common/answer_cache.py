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
scan otherwise. A miss computes the answer after reading the stamp, so anything committed in
between is seen by the next check as a change: the cache can only recompute too often, never
serve an answer that misses a committed write.

Each process keeps its own bounded LRU; there is no shared state and nothing to invalidate across
processes, since every process checks against the database. A request with `Cache-Control:
no-cache` is answered afresh (and that answer kept). `hits`/`misses` count the lookups (tests read
them; `spp_answer_cache_lookups_total` exports them). Answers must not depend on today's date:
every figure takes its dates as parameters.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy import bindparam, text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.context import fresh_var

T = TypeVar("T")


@dataclass(frozen=True)
class Stamp:
    """What the database looked like when an answer was computed: its snapshot (as text; asyncpg
    would want pg_snapshot's binary form) and the read models' cursors."""

    snapshot: str
    cursors: tuple[str, ...]


def _check_sql(schema: str, with_consumers: bool) -> Any:
    # `moved`: has a feed row committed that the kept snapshot did not see? NULL snapshot: nothing kept.
    cursors = (f"ARRAY(SELECT consumer || '=' || coalesce(cursor, '') FROM {schema}.feed_cursors "
               f"WHERE consumer IN :consumers ORDER BY consumer)" if with_consumers else "CAST(ARRAY[] AS text[])")
    statement = text(f"""
        WITH kept AS (SELECT CAST(CAST(:snapshot AS text) AS pg_snapshot) AS snapshot),
        newest AS (SELECT xid FROM {schema}.changes ORDER BY xid DESC, seq DESC LIMIT 1)
        SELECT pg_current_snapshot()::text AS snapshot, {cursors} AS cursors,
               CASE WHEN (SELECT snapshot FROM kept) IS NULL THEN true
                    WHEN coalesce((SELECT xid FROM newest) < (SELECT pg_snapshot_xmin(snapshot) FROM kept), true)
                    THEN false
                    ELSE EXISTS (SELECT 1 FROM kept, {schema}.changes c
                                 WHERE c.xid >= pg_snapshot_xmin(kept.snapshot)
                                   AND NOT pg_visible_in_snapshot(c.xid, kept.snapshot)) END AS moved""")
    return statement.bindparams(bindparam("consumers", expanding=True)) if with_consumers else statement


class AnswerCache:
    """A bounded LRU of one service's figure answers, each kept with the stamp it was computed
    under. `schema` is the service's schema (its feed); `consumers` the feed consumers that write
    its local read models (their cursors are part of the stamp)."""

    def __init__(self, schema: str, consumers: Sequence[str] = (), *, size: int = 512,
                 counted: Callable[[str], None] | None = None) -> None:
        self.schema = schema
        self.consumers = tuple(sorted(consumers))
        self._check = _check_sql(schema, bool(self.consumers))
        self._size = size
        self._entries: OrderedDict[Hashable, tuple[Stamp, Any]] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self._counted = counted  # "hit" or "miss", for the metrics

    async def answer(self, session: AsyncSession, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        """The kept answer for `key` while nothing it depends on changed; else `compute()`'s
        (kept with the stamp read before it ran). `key` names the figure and every parameter."""
        kept = self._entries.get(key)
        params: dict[str, Any] = {"snapshot": kept[0].snapshot if kept else None}
        if self.consumers:
            params["consumers"] = list(self.consumers)
        now = (await session.execute(self._check, params)).one()
        stamp = Stamp(snapshot=now.snapshot, cursors=tuple(now.cursors))
        if kept is not None and not now.moved and kept[0].cursors == stamp.cursors and not fresh_var.get():
            self._entries.move_to_end(key)
            self.hits += 1
            if self._counted is not None:
                self._counted("hit")
            return kept[1]
        self.misses += 1
        if self._counted is not None:
            self._counted("miss")
        value = await compute()
        self._entries[key] = (stamp, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        self._entries.clear()


async def answer_cache(request: Request) -> AnswerCache:
    """The process's answer cache (made by services/common/app.py for every service app)."""
    return request.app.state.answer_cache


AnswerCacheDep = Annotated[AnswerCache, Depends(answer_cache)]


async def cached(cache: AnswerCache | None, session: AsyncSession, key: Hashable,
                 compute: Callable[[], Awaitable[T]]) -> T:
    """`cache.answer(...)`, or just `compute()` where no cache is given (a caller outside a request)."""
    if cache is None:
        return await compute()
    return await cache.answer(session, key, compute)
