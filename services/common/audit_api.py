"""`GET /v1/internal/audit-events`: a service's audit trail, for the gateway's `/api/v1/audit-events`.

Scoped like every internal route (docs/internal-api.md): being internal is no permission. City-wide
roles (city administrators, city-wide viewers and integrators) read every event; a district
administrator (or a viewer or integrator registered for districts) the events concerning their
districts; school administrators get 403: the trail names people across schools. Events are never
changed: the router has no other method.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from services.common.audit import AuditEventPage, read_events
from services.common.auth import CurrentUser, Principal, Role
from services.common.db import SessionDep
from services.common.errors import Forbidden, problem_responses

AUDIT_READERS = frozenset({Role.city_admin, Role.district_admin, Role.viewer, Role.integrator})
MAX_LIMIT = 1001  # the gateway asks for one more than its own largest page


def audit_scope(actor: Principal, district_code: str | None) -> frozenset[str] | None:
    """The districts whose events the caller may read (None: all), or 403."""
    if actor.role not in AUDIT_READERS:
        raise Forbidden(f"role {actor.role} may not read the audit trail", slug="role")
    if district_code is not None:
        actor.require_read_in(district_code)
        return frozenset({district_code})
    return actor.readable_districts()


def audit_router(schema: str) -> APIRouter:
    router = APIRouter(prefix="/v1/internal", tags=["internal"])

    @router.get("/audit-events", response_model=AuditEventPage, responses=problem_responses(403),
                summary=f"The {schema} audit trail, newest first")
    async def audit_events(
        session: SessionDep, actor: CurrentUser,
        who: Annotated[str | None, Query(alias="actor", description="The writer's `sub`")] = None,
        entity: Annotated[str | None, Query()] = None,
        key: Annotated[str | None, Query()] = None,
        since: Annotated[datetime | None, Query(description="Events at or after this time")] = None,
        until: Annotated[datetime | None, Query(description="Events before this time")] = None,
        district_code: Annotated[str | None, Query(pattern=r"^[0-9]{6}$")] = None,
        before_at: Annotated[datetime | None, Query(description="Only events below (before_at, before_seq)")] = None,
        before_seq: Annotated[int | None, Query(ge=0)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    ) -> AuditEventPage:
        districts = audit_scope(actor, district_code)
        return await read_events(session, schema, service=schema, limit=limit, districts=districts, actor=who,
                                 entity=entity, key=key, since=since, until=until, before_at=before_at,
                                 before_seq=before_seq)

    return router
