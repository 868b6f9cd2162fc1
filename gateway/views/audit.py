"""`GET /api/v1/audit-events`: who changed what, across the three services and the gateway.

Each service keeps its own audit trail (services/common/audit.py) and serves it newest first on
`/v1/internal/audit-events`, checking the caller's scope itself (the caller's token is
forwarded); the gateway's own events (integration clients) are read from its database. The pages
are merged here in one total order, (occurred_at, service, seq) descending, and the cursor is the
last event's position in it: each source is asked only for what lies below that position, so the
pages have no duplicates and no gaps, across services and equal timestamps alike. A service that
cannot be asked makes the answer 503 rather than a silently partial trail.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field, ValidationError

from gateway.clients import PartnershipClient, RotationClient, ServiceClient, TrainingClient
from gateway.exports import MAX_ROWS, XLSX, export_format, render_csv, render_xlsx
from services.common.audit import AuditEvent, read_events
from services.common.audit_api import audit_scope
from services.common.auth import CurrentUser
from services.common.db import SessionDep
from services.common.errors import UpstreamUnavailable, problem_responses
from services.common.paging import InvalidCursor

router = APIRouter(prefix="/api/v1", tags=["audit"])

SOURCES = ("partnership", "rotation", "training", "gateway")
CLIENTS: dict[str, type[ServiceClient]] = {"partnership": PartnershipClient, "rotation": RotationClient,
                                           "training": TrainingClient}
MAX_SEQ = 2**63 - 1
EXPORT_PAGE = 500

COLUMNS = {"occurred_at": "时间", "service": "服务", "actor": "操作人", "actor_role": "角色", "entity": "对象类型",
           "key": "对象标识", "operation": "操作", "before": "修改前", "after": "修改后", "districts": "涉及区县",
           "request_id": "请求编号", "details": "详情"}


class AuditEventList(BaseModel):
    items: list[AuditEvent]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` for the next (older) page")


Position = tuple[datetime, str, int]


def _order(event: AuditEvent) -> Position:
    return (event.occurred_at, event.service, event.seq)


def encode_cursor(event: AuditEvent) -> str:
    raw = json.dumps([event.occurred_at.isoformat(), event.service, event.seq]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Position | None:
    if not cursor:
        return None
    try:
        at, service, seq = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        position = (datetime.fromisoformat(at), str(service), int(seq))
        if position[0].tzinfo is None or service not in SOURCES:
            raise ValueError(service)
        return position
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursor("the cursor is not one this API issued", extra={
            "errors": [{"field": "query.cursor", "message": "invalid cursor", "type": "value_error"}]}) from exc


def _below(source: str, position: Position | None) -> tuple[datetime | None, int | None]:
    """What of `source` lies after `position` in the merged order, as (before_at, before_seq)."""
    if position is None:
        return None, None
    at, service, seq = position
    if source == service:
        return at, seq
    # At the same instant a later-named service comes first: its events at `at` are all shown.
    return at, (0 if source > service else MAX_SEQ)


async def merged_page(request: Request, session: Any, principal: Any, *, filters: dict[str, Any],
                      sources: tuple[str, ...], position: Position | None, limit: int) -> AuditEventList:
    districts = audit_scope(principal, None)

    async def from_source(source: str) -> list[AuditEvent]:
        before_at, before_seq = _below(source, position)
        if source == "gateway":
            page = await read_events(session, "gateway", service="gateway", limit=limit + 1, districts=districts,
                                     before_at=before_at, before_seq=before_seq, **filters)
            return page.items
        client = CLIENTS[source].of(request)
        params = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in
                  {**filters, "before_at": before_at, "before_seq": before_seq, "limit": limit + 1}.items()
                  if v is not None}
        items = await client.audit_events(params)
        try:
            return [AuditEvent.model_validate({**item, "service": source}) for item in items]
        except ValidationError:
            raise UpstreamUnavailable(f"the {source} service is unavailable (answered an unexpected audit event)",
                                      slug="upstream-unavailable", extra={"upstream": source}) from None

    # The gateway's own events read on the request's session (never shared across tasks) first.
    local = await from_source("gateway") if "gateway" in sources else []
    remote = await asyncio.gather(*(from_source(s) for s in sources if s != "gateway"))
    events = sorted([*local, *(e for part in remote for e in part)], key=_order, reverse=True)
    page = events[:limit]
    return AuditEventList(items=page, next_cursor=encode_cursor(page[-1]) if len(events) > limit else None)


def _row(event: AuditEvent) -> list[Any]:
    def text(value: Any) -> str:
        return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)

    return [event.occurred_at.isoformat(), event.service, event.actor or "", event.actor_role or "", event.entity,
            event.key, event.operation, text(event.before), text(event.after), ",".join(event.districts),
            event.request_id or "", text(event.details)]


DESCRIPTION = """
Who changed what: every write of the platform (who: `actor` = the token's `sub`, and `actor_role`;
what: `entity`, `key`, `operation` and the changed fields `before` and `after`; when:
`occurred_at`; the `request_id`; the `districts` it concerns), newest first, across the services.
A bulk import is one event (`operation` `import`, `entity` the import kind, `key` the import id)
whose `details` hold its counts and file (name, size, sha256); its rows' own changes are in the
change feed (`GET /changes`), which carries actor and request id.

Filters: `actor`, `entity`, `key`, `since` (inclusive), `until` (exclusive), `service`. Paging by
`cursor` is exact across services. `format=csv` or `xlsx` exports the whole filtered trail (up to
100,000 events). Events are never changed or deleted.
"""


@router.get("/audit-events", response_model=AuditEventList,
            responses={**problem_responses(403, 503),
                       200: {"content": {"text/csv": {}, XLSX: {}},
                             "description": "The events (JSON, or a CSV/XLSX sheet)"}},
            summary="Read the audit trail", description=DESCRIPTION)
async def list_audit_events(
    request: Request, session: SessionDep, principal: CurrentUser,
    actor: Annotated[str | None, Query(description="The writer's `sub`")] = None,
    entity: Annotated[str | None, Query(description="school, staff, rotation, …; an import's kind")] = None,
    key: Annotated[str | None, Query(description="The record's key (code, staff_no, id)")] = None,
    since: Annotated[datetime | None, Query(description="Events at or after this time")] = None,
    until: Annotated[datetime | None, Query(description="Events before this time")] = None,
    service: Annotated[Literal["partnership", "rotation", "training", "gateway"] | None, Query()] = None,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    format: Annotated[str | None, Query(description="csv or xlsx for a spreadsheet")] = None,
):
    audit_scope(principal, None)  # school administrators: 403 before any call
    fmt = export_format(request)
    filters = {"actor": actor, "entity": entity, "key": key, "since": since, "until": until}
    sources = (service,) if service else SOURCES
    position = decode_cursor(cursor)
    if fmt is None:
        return await merged_page(request, session, principal, filters=filters, sources=sources,
                                 position=position, limit=limit)
    events: list[AuditEvent] = []
    while len(events) < MAX_ROWS:
        page = await merged_page(request, session, principal, filters=filters, sources=sources,
                                 position=position, limit=EXPORT_PAGE)
        events.extend(page.items)
        if page.next_cursor is None:
            break
        position = _order(page.items[-1])
    header, body = list(COLUMNS.values()), [_row(e) for e in events[:MAX_ROWS]]
    if fmt == "csv":
        content, media = await asyncio.to_thread(render_csv, header, body), "text/csv; charset=utf-8"
    else:
        content, media = await asyncio.to_thread(render_xlsx, header, body, "audit-events"), XLSX
    return Response(content, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="audit-events.{fmt}"'})
