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
from collections.abc import Sequence
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
    seq: int
    entity: str = Field(examples=["school"])
    key: str = Field(description="The natural key (school code, staff_no, id)")
    op: str = Field(description="create, update, state or delete")
    state: dict[str, Any] | None = Field(description="The resource as it is after the change; null on delete")
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


def _encode(xid: int, seq: int) -> str:
    return base64.urlsafe_b64encode(f"{xid}:{seq}".encode()).decode().rstrip("=")


def _decode(cursor: str | None) -> tuple[int, int]:
    if not cursor:
        return (0, 0)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        xid, seq = (int(part) for part in raw.split(":"))
        return xid, seq
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidCursor("the change cursor is not one this API issued", extra={
            "errors": [{"field": "query.after", "message": "invalid cursor", "type": "value_error"}]}) from exc


async def read_changes(session: AsyncSession, schema: str, service: str, *, after: str | None,
                       limit: int) -> ChangePage:
    xid, seq = _decode(after)
    # Qualified names throughout: a bare `xid` in ORDER BY would name the text output column.
    rows = (await session.execute(text(f"""
        SELECT changes.seq, changes.xid::text AS xid_text, changes.entity, changes.key, changes.op,
               changes.state, changes.changed_at, changes.actor, changes.request_id
        FROM {schema}.changes
        WHERE changes.xid < pg_snapshot_xmin(pg_current_snapshot())
          AND (changes.xid, changes.seq) > (CAST(:xid AS text)::xid8, :seq)
        ORDER BY changes.xid, changes.seq
        LIMIT :limit"""), {"xid": str(xid), "seq": seq, "limit": limit})).mappings().all()
    items = [Change(cursor=_encode(int(r["xid_text"]), r["seq"]), seq=r["seq"], entity=r["entity"], key=r["key"],
                    op=r["op"], state=r["state"], changed_at=r["changed_at"], actor=r["actor"],
                    request_id=r["request_id"]) for r in rows]
    return ChangePage(service=service, items=items, next_cursor=items[-1].cursor if items else _encode(xid, seq))
