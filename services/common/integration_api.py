"""Routes every service offers government systems the same way: its change feed, the reports of its
bulk imports and their templates (docs/integration.md). Each service adds its own
`POST /v1/imports/<kind>`."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response

from services.common import import_template
from services.common.auth import CurrentUser
from services.common.db import SessionDep
from services.common.errors import Forbidden, NotFound, problem_responses
from services.common.idempotency import IdempotentRoute
from services.common.import_api import get_import
from services.common.imports import ImportReport
from services.common.outbox import ChangePage, CreatedRecords, read_changes


def change_feed_router(schema: str) -> APIRouter:
    router = APIRouter(prefix="/v1/changes", tags=["changes"], route_class=IdempotentRoute)

    @router.get("", response_model=ChangePage, responses=problem_responses(403),
                summary=f"The {schema} change feed: resume from your saved cursor; nothing missed or repeated")
    async def change_feed(session: SessionDep, actor: CurrentUser,
                          after: Annotated[str | None, Query(description="`next_cursor` of your last read")] = None,
                          limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> ChangePage:
        if not actor.city_wide:
            raise Forbidden("the change feed is for city-wide readers and integrators", slug="role")
        return await read_changes(session, schema, schema, after=after, limit=limit, created=created_records(schema))

    return router


def created_records(schema: str) -> dict[str, CreatedRecords]:
    """How this service's feed gives the records its imports create in bulk, per entity."""
    from services.common.jobs import specs_of

    return {spec.entity: spec.created for spec in specs_of(schema).values() if spec.created is not None}


def import_router(schema: str) -> APIRouter:
    """`/v1/imports` with the report route; the service declares its own POST per kind on it."""
    router = APIRouter(prefix="/v1/imports", tags=["imports"], route_class=IdempotentRoute)

    @router.get("/{import_id}", response_model=ImportReport, responses=problem_responses(403, 404),
                summary="An import's progress and per-row report")
    async def get_import_report(import_id: str, session: SessionDep, actor: CurrentUser) -> ImportReport:
        return await get_import(session, actor, schema, import_id)

    @router.get("/{kind}/template", response_class=Response, responses={
        200: {"description": "The template: XLSX (sheets: the kind's name, 说明) or CSV (UTF-8 with BOM)",
              "content": {import_template.XLSX: {"schema": {"type": "string", "format": "binary"},
                                                 "example": "(a workbook: sheets 教职工 and 说明)"},
                          "text/csv": {"schema": {"type": "string"},
                                       "example": "\ufeff工号,姓名,任职学校代码\r\nT20180001,张伟,11010501\r\n"}}},
        **problem_responses(404)},
        summary="A file to fill for an import: Chinese headers, an example row and instructions")
    async def get_import_template(
            kind: Annotated[str, Path(description="schools, staff, rotations or training-hours",
                                      examples=["staff"])],
            actor: CurrentUser,
            fmt: Annotated[Literal["xlsx", "csv"], Query(alias="format", description="xlsx (default) or csv")]
            = "xlsx") -> Response:
        from services.common.jobs import specs_of

        spec = specs_of(schema).get(kind)
        if spec is None or spec.template is None:
            raise NotFound(f"no import kind {kind}", slug="not-found")
        content = await asyncio.to_thread(import_template.render, spec, fmt)
        return Response(content, media_type=import_template.media_type(fmt),
                        headers={"Content-Disposition": import_template.disposition(spec, fmt)})

    return router


def import_body(csv_example: str) -> dict[str, Any]:
    """OpenAPI request body of an import: a CSV file or a JSON list of rows.

    The JSON example is the CSV example's rows (same headers; an empty cell is left out, as the
    document drops nulls), so the two examples can never say different things."""
    rows = [{key: value for key, value in row.items() if value} for row in csv.DictReader(io.StringIO(csv_example))]
    return {"requestBody": {"required": True, "content": {
        # An XLSX workbook, found by its ZIP signature (its own media type is accepted too; client
        # generators know the generic binary type only).
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"},
                                     "example": "(an XLSX workbook laid out as GET /imports/{kind}/template)"},
        "text/csv": {"schema": {"type": "string"}, "example": csv_example},
        "application/json": {"schema": {"type": "array", "items": {"type": "object"}}, "example": rows}}}}


IMPORT_RESPONSES = {202: {"model": ImportReport, "description": "A large file: running as a job"}}
