"""The change feed: a transactional outbox per service schema, read without gaps or repeats.

Every create, update, state change and delete writes a row into `<schema>.changes` in the same
transaction as the change itself, stamped with the writing transaction's id (`xid8`). A reader
only returns rows whose transaction id is below the oldest transaction still running
(`pg_snapshot_xmin(pg_current_snapshot())`): those transactions have all finished, so no row can
later appear below that line. Rows are ordered by (xid, seq) and the cursor is the last pair
returned, so a consumer that resumes from its saved cursor misses nothing and sees nothing twice,
even when transactions commit in another order than they began. The order is the `xid8` column's
own (numeric) order: ordered as text, 999 sorts after 1000 and a page boundary there skips or
repeats changes.

An import that creates many records writes one row per thousand of them instead (`record_created`:
their ids in file order, no state), and the reader gives each record as its own `create` with the
state it has when read; the cursor then also says how many of that row's records were read.

Each row also carries who wrote it (`actor`, the token's `sub`) and the request that did
(`request_id`), from the request's context variables (services/common/context.py). Every change
written here is audited in the same statement batch (services/common/audit.py): pass the record's
state as it was before the write (`before`) so the audit event holds the changed fields.

Each service's migration creates its `changes` table with the same columns (see
migrations/partnership/versions/0002_changes.py).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.audit import record_writes
from services.common.context import actor_var, request_id_var
from services.common.paging import InvalidCursor


class Change(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "cursor": "Nzg5MToxNw", "seq": 17, "entity": "school", "key": "11010501", "op": "update",
        "state": {"code": "11010501", "name": "北京市朝阳区实验小学", "district_code": "110105", "stage": "primary",
                  "locality": "urban", "primary_enrollment": 1285, "junior_enrollment": 0, "senior_enrollment": 0},
        "changed_at": "2024-09-02T10:30:00+08:00", "actor": "zhang.wei@chaoyang",
        "request_id": "6f1c2a9e8b7d4c3f9a0e1b2c3d4e5f60"}]})

    cursor: str = Field(description="Resume after this change by passing it as `after`")
    seq: int = Field(description="The feed entry's number. The records one import created share their entries "
                     "(a thousand records to an entry), so resume by `cursor`, never by `seq`")
    entity: str = Field(examples=["school"])
    key: str = Field(description="The natural key (school code, staff_no, id)")
    op: str = Field(description="create, update, state or delete")
    state: dict[str, Any] | None = Field(description="The resource as it is after the change; null on delete. "
                                         "For a record an import created, the resource as it is when you read "
                                         "the feed: never older than the change, and a later change of it "
                                         "follows in the feed")
    changed_at: datetime
    actor: str | None = Field(description="Who made the change: the `sub` of the caller's token "
                              "(`service:<name>` for a service's own work)", examples=["zhang.wei@chaoyang"])
    request_id: str | None = Field(description="The request that made the change (its `X-Request-ID`, yours "
                                   "if you sent one); quote it when asking about a change",
                                   examples=["6f1c2a9e8b7d4c3f9a0e1b2c3d4e5f60"])


class ChangePage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "service": "partnership",
        "items": [{"cursor": "Nzg5MToxNw", "seq": 17, "entity": "school", "key": "11010501", "op": "update",
                   "state": {"code": "11010501", "name": "北京市朝阳区实验小学", "district_code": "110105",
                             "stage": "primary", "locality": "urban", "primary_enrollment": 1285,
                             "junior_enrollment": 0, "senior_enrollment": 0},
                   "changed_at": "2024-09-02T10:30:00+08:00", "actor": "zhang.wei@chaoyang",
                   "request_id": "6f1c2a9e8b7d4c3f9a0e1b2c3d4e5f60"}],
        "next_cursor": "Nzg5MToxNw"}]})

    service: str
    items: list[Change]
    next_cursor: str = Field(description="Save it and pass it as `after` next time (unchanged when empty)")


async def record_change(session: AsyncSession, schema: str, *, entity: str, key: str, op: str,
                        state: dict[str, Any] | None, before: dict[str, Any] | None = None) -> None:
    await record_changes(session, schema, entity=entity, changes=[(key, op, state)], before=[before])


async def record_changes(session: AsyncSession, schema: str, *, entity: str,
                         changes: list[tuple[str, str, dict[str, Any] | None]],
                         before: Sequence[dict[str, Any] | None] | None = None) -> None:
    """Several changes of one kind in one round trip (executemany), in the caller's order, and
    their audit events; `before` (in the same order) is each record's state before the change."""
    if not changes:
        return
    previous = before if before is not None else [None] * len(changes)
    await record_writes(session, schema, entity=entity,
                        writes=[(key, op, was, state) for (key, op, state), was in zip(changes, previous, strict=True)])
    actor, request_id = actor_var.get(), request_id_var.get()
    await session.execute(
        text(f"INSERT INTO {schema}.changes (entity, key, op, state, actor, request_id) "
             "VALUES (:entity, :key, :op, CAST(:state AS jsonb), :actor, :request_id)"),
        [{"entity": entity, "key": key, "op": op,
          "state": None if state is None else json.dumps(state, ensure_ascii=False, default=str),
          "actor": actor, "request_id": request_id}
         for key, op, state in changes],
    )


@dataclass(frozen=True)
class CreatedRecords:
    """How the feed gives a record that an import created in bulk (`record_created`): its table
    and the `key` and `state` of a row `t` of it, as SQL expressions."""

    table: str    # e.g. rotation.staff; its primary key is `id`
    key: str      # e.g. t.staff_no
    state: str    # e.g. to_jsonb(t)


# Records an entry for bulk creates stands for (the table's check allows 1 to 1,000).
BATCH = 1000


async def record_created(session: AsyncSession, schema: str, *, entity: str, created_sql: str,
                         params: dict[str, Any]) -> None:
    """Feed entries for the records an import just created: one per `BATCH` of them, holding their
    ids in the order of `created_sql` (SELECT id, row_no …), instead of a row with its state each.

    Writing 150,000 feed rows with their states cost more than writing the records themselves;
    these entries cost a twentieth of that. The feed's reader gives each id as its own `create`.
    The actor and request come from `params` (the import's, which runs in a job)."""
    await session.execute(text(f"""
        INSERT INTO {schema}.changes (entity, op, ids, actor, request_id)
        SELECT CAST(:entity AS text), 'create', array_agg(created.id ORDER BY created.row_no),
               CAST(:actor AS text), CAST(:request_id AS text)
        FROM ({created_sql}) AS created
        GROUP BY (created.row_no - 1) / {BATCH}
        ORDER BY (created.row_no - 1) / {BATCH}"""), {**params, "entity": entity})


Position = tuple[int, int, int]


def _encode(xid: int, seq: int, done: int = 0) -> str:
    """A place in the feed: after entry (xid, seq), or after `done` of the records it stands for."""
    raw = f"{xid}:{seq}" if not done else f"{xid}:{seq}:{done}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str | None) -> Position:
    if not cursor:
        return (0, 0, 0)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        parts = [int(part) for part in raw.split(":")]
        if len(parts) == 2:
            parts.append(0)
        xid, seq, done = parts
        if min(parts) < 0 or done > BATCH:
            raise ValueError(raw)
        return xid, seq, done
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidCursor("the change cursor is not one this API issued", extra={
            "errors": [{"field": "query.after", "message": "invalid cursor", "type": "value_error"}]}) from exc


async def read_changes(session: AsyncSession, schema: str, service: str, *, after: str | None, limit: int,
                       created: Mapping[str, CreatedRecords] | None = None) -> ChangePage:
    """Up to `limit` changes after the cursor, in (xid, seq) order; an entry for bulk creates gives
    its records one by one (`created` says how, per entity), each with a cursor of its own.

    A page is short only at the end of what can be read: records created in bulk and deleted since
    are skipped (their `delete` follows), and the page goes on past them."""
    xid, seq, done = _decode(after)
    items: list[Change] = []
    while len(items) < limit:
        # Qualified names throughout: a bare `xid` in ORDER BY would name the text output column.
        rows = (await session.execute(text(f"""
            SELECT changes.seq, changes.xid::text AS xid_text, changes.entity, changes.key, changes.op,
                   changes.state, changes.changed_at, changes.actor, changes.request_id,
                   cardinality(changes.ids) AS batch
            FROM {schema}.changes
            WHERE changes.xid < pg_snapshot_xmin(pg_current_snapshot())
              AND (changes.xid, changes.seq) {'>=' if done else '>'} (CAST(:xid AS text)::xid8, :seq)
            ORDER BY changes.xid, changes.seq
            LIMIT :limit"""), {"xid": str(xid), "seq": seq, "limit": limit - len(items)})).mappings().all()
        if not rows:
            break
        # The page's places first (a record of an entry counts whether or not it is still there),
        # then every entry's records at once.
        places: list[tuple[Mapping[str, Any], int, tuple[int, int] | None]] = []
        room = limit - len(items)
        for row in rows:
            if not room:
                break
            row_xid = int(row["xid_text"])
            start = done if (row_xid, row["seq"]) == (xid, seq) else 0
            if row["batch"] is None:
                if not start:
                    places.append((row, row_xid, None))
                    room -= 1
                xid, seq, done = row_xid, row["seq"], 0
                continue
            end = min(row["batch"], start + room)
            places.append((row, row_xid, (start, end)))
            room -= end - start
            xid, seq, done = row_xid, row["seq"], (0 if end == row["batch"] else end)
            if done:  # the entry's records left to read come before the next entry's
                break
        records = await _created(session, schema, created, [(row, part) for row, _, part in places if part])
        for row, row_xid, part in places:
            if part is None:
                items.append(_change(row, row_xid, 0, row["key"], row["state"]))
                continue
            items.extend(_change(row, row_xid, 0 if place == row["batch"] else place, key, state)
                         for place, key, state in records.get(row["seq"], ()))
    return ChangePage(service=service, items=items, next_cursor=_encode(xid, seq, done))


def _change(row: Mapping[str, Any], xid: int, done: int, key: str, state: dict[str, Any] | None) -> Change:
    return Change(cursor=_encode(xid, row["seq"], done), seq=row["seq"], entity=row["entity"], key=key,
                  op=row["op"], state=state, changed_at=row["changed_at"], actor=row["actor"],
                  request_id=row["request_id"])


async def _created(session: AsyncSession, schema: str, created: Mapping[str, CreatedRecords] | None,
                   parts: list[tuple[Mapping[str, Any], tuple[int, int]]],
                   ) -> dict[int, list[tuple[int, str, dict[str, Any]]]]:
    """Records `start + 1` … `end` of each bulk-create entry, as they are now, by entry (`seq`):
    (their place, key, state). One statement per entity, however many entries a page touches (a
    feed of many small imports has an entry each)."""
    by_entity: dict[str, list[tuple[Mapping[str, Any], tuple[int, int]]]] = {}
    for row, part in parts:
        by_entity.setdefault(row["entity"], []).append((row, part))
    records: dict[int, list[tuple[int, str, dict[str, Any]]]] = {}
    for entity, entries in by_entity.items():
        how = (created or {}).get(entity)
        if how is None:
            raise LookupError(f"{schema}.changes entry {entries[0][0]['seq']} stands for {entity} records, "
                              "which this feed has no way to give")
        found = await session.execute(text(f"""
            SELECT w.seq, w.first + u.ord AS place, {how.key} AS key, {how.state} AS state
            FROM unnest(CAST(:seqs AS bigint[]), CAST(:firsts AS integer[]), CAST(:lasts AS integer[]))
                AS w(seq, first, last)
            JOIN {schema}.changes AS c ON c.seq = w.seq
            CROSS JOIN LATERAL unnest(c.ids[w.first + 1:w.last]) WITH ORDINALITY AS u(id, ord)
            JOIN {how.table} AS t ON t.id = u.id
            ORDER BY w.seq, u.ord"""), {"seqs": [row["seq"] for row, _ in entries],
                                         "firsts": [start for _, (start, _) in entries],
                                         "lasts": [end for _, (_, end) in entries]})
        for entry, place, key, state in found.all():
            records.setdefault(entry, []).append((int(place), key, state))
    return records
