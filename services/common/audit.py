"""The audit trail: who changed what, when and in which request, written in the write's own transaction.

Every change-feed write (services/common/outbox.py) also writes one row per change into
`<schema>.audit_events`: the actor (the token's `sub` and `role`), the entity, key and operation,
the changed fields before and after (bookkeeping fields such as `version` left out), the district
codes the change concerns (so a district administrator can be shown their own), and the request
id. A failed write rolls its events back with everything else, so it leaves none.

A bulk import writes ONE event (operation `import`: counts, file name, size and SHA-256, the
districts its rows touch), not one per row: a row's own change stays in the change feed, which
carries actor and request id, and a second row per imported record would double the cost of a
250,000-row import (docs/api.md, "Audit trail").

Events are never updated or deleted: no route does it, and a trigger refuses it
(migrations/audit_events.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.context import actor_var, request_id_var, role_var

# Fields every record carries that change on every write; they say nothing about what changed.
BOOKKEEPING = frozenset({"version", "updated_at", "created_at"})
# Fields of a record's state that name a district; the event concerns each of them.
DISTRICT_FIELDS = ("district_code", "home_district_code", "from_district_code", "to_district_code")

State = dict[str, Any]
Write = tuple[str, str, State | None, State | None]  # key, op, before, after

# (schema, entity) -> SELECT of more district codes of a record whose state (`:state`, jsonb) names
# none itself (a pairing names its schools, a session its studio).
_RESOLVERS: dict[tuple[str, str], str] = {}


def register_districts(schema: str, entity: str, sql: str) -> None:
    """`sql` selects district codes for the record whose state is bound as `:state` (jsonb)."""
    _RESOLVERS[(schema, entity)] = sql


def diff(before: State | None, after: State | None) -> tuple[State | None, State | None]:
    """The changed fields only, before and after; a create has no before, a delete no after."""
    if before is None or after is None:
        whole = after if before is None else before
        part = None if whole is None else {k: v for k, v in whole.items() if k not in BOOKKEEPING}
        return (None, part) if before is None else (part, None)
    keys = [k for k in {**before, **after} if k not in BOOKKEEPING and before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}


def districts_of(entity: str, *states: State | None) -> list[str]:
    found: set[str] = set()
    for state in states:
        if state is None:
            continue
        if entity == "district" and isinstance(state.get("code"), str):
            found.add(state["code"])
        found.update(v for f in DISTRICT_FIELDS if isinstance(v := state.get(f), str))
    return sorted(found)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str)


def _insert_sql(schema: str, resolver: str | None) -> str:
    extra = f"ARRAY({resolver})" if resolver else "CAST(ARRAY[] AS text[])"
    return (f"INSERT INTO {schema}.audit_events (actor, actor_role, entity, key, operation, before, after, "
            "details, districts, request_id) "
            "VALUES (:actor, :role, :entity, :key, :op, CAST(:before AS jsonb), CAST(:after AS jsonb), "
            "CAST(:details AS jsonb), "
            f"ARRAY(SELECT DISTINCT d FROM unnest(CAST(:districts AS text[]) || {extra}) AS d "
            "WHERE d IS NOT NULL ORDER BY d), :request_id)")


async def record_writes(session: AsyncSession, schema: str, *, entity: str, writes: Sequence[Write]) -> None:
    """One event per write, in one round trip, by the request's actor and request id."""
    if not writes:
        return
    actor, role, request_id = actor_var.get(), role_var.get(), request_id_var.get()
    resolver = _RESOLVERS.get((schema, entity))
    rows = []
    for key, op, before, after in writes:
        changed_before, changed_after = diff(before, after)
        row = {"actor": actor, "role": role, "entity": entity, "key": key, "op": op,
               "before": _json(changed_before), "after": _json(changed_after), "details": None,
               "districts": districts_of(entity, before, after), "request_id": request_id}
        if resolver is not None:
            row["state"] = _json(after if after is not None else before)
        rows.append(row)
    await session.execute(text(_insert_sql(schema, resolver)), rows)


async def record_event(session: AsyncSession, schema: str, *, entity: str, key: str, op: str,
                       before: State | None = None, after: State | None = None,
                       details: State | None = None, districts: Sequence[str] = (), actor: str | None = None,
                       role: str | None = None, request_id: str | None = None) -> None:
    """One event with explicit parts (an import, the gateway's own writes); who and which request
    default to the current request's."""
    changed_before, changed_after = diff(before, after)
    await session.execute(text(_insert_sql(schema, None)), {
        "actor": actor if actor is not None else actor_var.get(),
        "role": role if role is not None else role_var.get(), "entity": entity, "key": key, "op": op,
        "before": _json(changed_before), "after": _json(changed_after), "details": _json(details),
        "districts": sorted({*districts, *districts_of(entity, before, after)}),
        "request_id": request_id if request_id is not None else request_id_var.get()})


async def record_import(session: AsyncSession, schema: str, *, kind: str, import_id: str, actor: str | None,
                        role: str | None, request_id: str | None, counts: State, body: bytes | bytearray,
                        file_name: str | None, content_type: str | None,
                        district_columns: Sequence[str] = ()) -> None:
    """The one event of a bulk import, in its merge's transaction; its districts are those of the
    rows it merged (the temporary table `staged` of services/common/imports.py)."""
    districts: list[str] = []
    if district_columns:
        # Grouped, so hashed (unnesting an array per row and sorting 150,000 rows took 0.11 s).
        each = " UNION ALL ".join(f"SELECT {column} AS d FROM staged" for column in district_columns)
        districts = list((await session.execute(text(
            f"SELECT d FROM ({each}) AS districts WHERE d IS NOT NULL GROUP BY d ORDER BY d"))).scalars())
    # hashlib releases the GIL on large buffers: a 20 MB file hashes off the event loop.
    digest = await asyncio.to_thread(lambda: hashlib.sha256(body).hexdigest())
    details = {**counts, "file": {"name": file_name, "size": len(body), "sha256": digest,
                                  "content_type": content_type}}
    await record_event(session, schema, entity=kind, key=import_id, op="import", details=details,
                       districts=districts, actor=actor, role=role, request_id=request_id)


# Reading ----------------------------------------------------------------------------------------

class AuditEvent(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "service": "partnership", "seq": 42, "occurred_at": "2024-09-02T10:30:00.123456+08:00",
        "actor": "zhang.wei@chaoyang", "actor_role": "district_admin", "entity": "school", "key": "11010501",
        "operation": "update", "before": {"primary_enrollment": 1200}, "after": {"primary_enrollment": 1285},
        "details": None, "districts": ["110105"], "request_id": "6f1c2a9e8b7d4c3f9a0e1b2c3d4e5f60"}]})

    service: str = Field(description="The service that recorded the event (the owner of the record)")
    seq: int = Field(description="The event's number within its service")
    occurred_at: datetime = Field(description="When the writing transaction ran")
    actor: str | None = Field(description="The `sub` of the caller's token")
    actor_role: str | None = Field(description="The caller's role when it wrote")
    entity: str = Field(description="What kind of record (`school`, `staff`, …; for an import, its kind)")
    key: str = Field(description="The record's key (school code, staff_no, id; for an import, its id)")
    operation: str = Field(description="create, update, state, delete or import")
    before: dict[str, Any] | None = Field(description="The changed fields as they were (null on create)")
    after: dict[str, Any] | None = Field(description="The changed fields as they became (null on delete)")
    details: dict[str, Any] | None = Field(
        default=None, description="For an import: its counts and file (name, size, sha256)")
    districts: list[str] = Field(description="District codes the change concerns")
    request_id: str | None = Field(description="The request that made the change (its `X-Request-ID`)")


class AuditEventPage(BaseModel):
    service: str
    items: list[AuditEvent]


async def read_events(session: AsyncSession, schema: str, *, service: str, limit: int,
                      districts: frozenset[str] | None, actor: str | None = None, entity: str | None = None,
                      key: str | None = None, since: datetime | None = None, until: datetime | None = None,
                      before_at: datetime | None = None, before_seq: int | None = None) -> AuditEventPage:
    """Events newest first, (occurred_at, seq) below (`before_at`, `before_seq`) when given;
    `districts` None is every event, else those concerning one of them."""
    where, params = [], {"limit": limit}
    for column, value in (("actor", actor), ("entity", entity), ("key", key)):
        if value is not None:
            where.append(f"{column} = :{column}")
            params[column] = value
    if since is not None:
        where.append("occurred_at >= :since")
        params["since"] = since
    if until is not None:
        where.append("occurred_at < :until")
        params["until"] = until
    if before_at is not None:
        where.append("(occurred_at, seq) < (:before_at, :before_seq)")
        params.update(before_at=before_at, before_seq=before_seq if before_seq is not None else 2**63 - 1)
    if districts is not None:
        where.append("districts && CAST(:districts AS text[])")
        params["districts"] = sorted(districts)
    rows = (await session.execute(text(
        "SELECT seq, occurred_at, actor, actor_role, entity, key, operation, before, after, details, districts, "
        f"request_id FROM {schema}.audit_events {'WHERE ' + ' AND '.join(where) if where else ''} "
        "ORDER BY occurred_at DESC, seq DESC LIMIT :limit"), params)).mappings().all()
    return AuditEventPage(service=service, items=[AuditEvent(service=service, **row) for row in rows])
