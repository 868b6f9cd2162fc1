"""Routes every service offers government systems the same way: its change feed and the reports
of its bulk imports (docs/integration.md). Each service adds its own `POST /v1/imports/<kind>`."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.common.auth import CurrentUser
from services.common.db import SessionDep
from services.common.errors import Forbidden, problem_responses
from services.common.idempotency import IdempotentRoute
from services.common.import_api import get_import
from services.common.imports import ImportReport
from services.common.outbox import ChangePage, read_changes


def change_feed_router(schema: str) -> APIRouter:
    router = APIRouter(prefix="/v1/changes", tags=["changes"], route_class=IdempotentRoute)

    @router.get("", response_model=ChangePage, responses=problem_responses(403),
                summary=f"The {schema} change feed: resume from your saved cursor; nothing missed or repeated")
    async def change_feed(session: SessionDep, actor: CurrentUser,
                          after: Annotated[str | None, Query(description="`next_cursor` of your last read")] = None,
                          limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> ChangePage:
        if not actor.city_wide:
            raise Forbidden("the change feed is for city-wide readers and integrators", slug="role")
        return await read_changes(session, schema, schema, after=after, limit=limit)

    return router


def import_router(schema: str) -> APIRouter:
    """`/v1/imports` with the report route; the service declares its own POST per kind on it."""
    router = APIRouter(prefix="/v1/imports", tags=["imports"], route_class=IdempotentRoute)

    @router.get("/{import_id}", response_model=ImportReport, responses=problem_responses(403, 404),
                summary="An import's progress and per-row report")
    async def get_import_report(import_id: str, session: SessionDep, actor: CurrentUser) -> ImportReport:
        return await get_import(session, actor, schema, import_id)

    return router


def import_body(csv_example: str) -> dict[str, Any]:
    """OpenAPI request body of an import: a CSV file or a JSON list of rows.

    The JSON example is the CSV example's rows (same headers; an empty cell is left out, as the
    document drops nulls), so the two examples can never say different things."""
    rows = [{key: value for key, value in row.items() if value} for row in csv.DictReader(io.StringIO(csv_example))]
    return {"requestBody": {"required": True, "content": {
        "text/csv": {"schema": {"type": "string"}, "example": csv_example},
        "application/json": {"schema": {"type": "array", "items": {"type": "object"}}, "example": rows}}}}


IMPORT_RESPONSES = {202: {"model": ImportReport, "description": "A large file: running as a job"}}
