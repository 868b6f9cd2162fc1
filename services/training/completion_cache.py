"""Completion answers (design.md §4.5) kept between calls while nothing they depend on has changed.

Every district overview asks training the same question (one district, one date) and its answer is
the overview's most expensive aggregate: a window sum for every active staff member of the district.
The answer depends on two things only, and both say when they change:

- the ledger: every write of `training.training_hours` puts a `training_credit` row on training's
  change feed in the same transaction (the outbox, services/training/feed.py and the import merge);
- the staff directory: only its feed consumer writes it, and the consumer moves its cursor
  (`training.feed_cursors`) in the same transaction as the rows it applied.

So an answer computed by a statement whose snapshot is S (`pg_current_snapshot()`, read in that same
statement) with directory cursor C is still exact while the cursor is C and no `training_credit`
row of a transaction S did not see has committed: those transactions all have ids at or above S's
xmin, so checking is one short range scan of the feed's `(xid, seq)` index, not the aggregate.
A miss costs what the aggregate always cost. Each process keeps its own small LRU (no shared
state, nothing to invalidate across processes: every process checks against the database).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.training.schemas import DistrictCompletion

DIRECTORY_CONSUMER = "training.staff_directory"  # services/training/directory.py STAFF_FEED.name
CREDIT_ENTITY = "training_credit"

# The state a computed answer saw, read in the statement that computes it.
STAMP_SQL = (f"SELECT pg_current_snapshot()::text AS snapshot, (SELECT cursor FROM training.feed_cursors "
             f"WHERE consumer = '{DIRECTORY_CONSUMER}') AS directory_cursor")

# The snapshot goes in as text: asyncpg would otherwise want pg_snapshot's binary form.
# While nothing was written since the answer was kept (the usual case between imports), the feed's
# newest row is below the snapshot's xmin: one backward probe of ix_changes_xid_seq says so. Only
# otherwise are the rows from xmin on looked at. Measured at scale: the range scan alone, run on
# every overview, was most of PostgreSQL's CPU under 16 clients (its bound on xmin is a parameter,
# so a generic plan cannot count on the range being short).
_STILL_VALID = text(f"""
    WITH kept AS (SELECT CAST(CAST(:snapshot AS text) AS pg_snapshot) AS snapshot),
    newest AS (SELECT xid FROM training.changes ORDER BY xid DESC, seq DESC LIMIT 1)
    SELECT (SELECT cursor FROM training.feed_cursors WHERE consumer = '{DIRECTORY_CONSUMER}') AS directory_cursor,
           CASE WHEN coalesce((SELECT xid FROM newest) < (SELECT pg_snapshot_xmin(snapshot) FROM kept), true)
                THEN false
                ELSE EXISTS (SELECT 1 FROM kept, training.changes c
                             WHERE c.xid >= pg_snapshot_xmin(kept.snapshot) AND c.entity = '{CREDIT_ENTITY}'
                               AND NOT pg_visible_in_snapshot(c.xid, kept.snapshot)) END AS ledger_moved""")


@dataclass(frozen=True)
class Key:
    after: date
    as_of: date
    threshold: Decimal
    district_code: str | None


@dataclass(frozen=True)
class Entry:
    snapshot: str
    directory_cursor: str | None
    rows: tuple[DistrictCompletion, ...]


class CompletionCache:
    """A bounded LRU of completion answers with the state each one saw; `hits`/`misses` count
    the lookups (tests and metrics read them)."""

    def __init__(self, size: int = 512) -> None:
        self._size = size
        self._entries: OrderedDict[Key, Entry] = OrderedDict()
        self.hits = 0
        self.misses = 0

    async def lookup(self, session: AsyncSession, key: Key) -> list[DistrictCompletion] | None:
        """The kept answer when nothing it depends on changed since; None otherwise."""
        entry = self._entries.get(key)
        if entry is not None:
            now = (await session.execute(_STILL_VALID, {"snapshot": entry.snapshot})).one()
            if not now.ledger_moved and now.directory_cursor == entry.directory_cursor:
                self._entries.move_to_end(key)
                self.hits += 1
                return list(entry.rows)
            del self._entries[key]
        self.misses += 1
        return None

    def keep(self, key: Key, entry: Entry) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)
