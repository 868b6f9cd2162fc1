"""One OpenAPI document for the public API: the gateway's own views plus every service's paths.

Each service documents its own endpoints; the gateway fetches those documents, rewrites `/v1/…`
to the public `/api/v1/…`, drops internal and health paths, and merges the components. A service
that is down is left out of the document until it answers (and is named in `x-spp-missing`).
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from services.common.errors import UpstreamUnavailable
from services.common.upstream import Upstream

router = APIRouter(include_in_schema=False)
PUBLIC_PREFIX = "/api/v1"


def _public_paths(document: dict[str, Any]) -> dict[str, Any]:
    paths = {}
    for path, item in document.get("paths", {}).items():
        if not path.startswith("/v1/") or path.startswith("/v1/internal"):
            continue
        paths[PUBLIC_PREFIX + path[len("/v1"):]] = item
    return paths


def merge(own: dict[str, Any], services: dict[str, dict[str, Any]]) -> dict[str, Any]:
    merged = copy.deepcopy(own)
    merged["paths"] = {p: v for p, v in merged.get("paths", {}).items() if p.startswith(PUBLIC_PREFIX)}
    schemas = merged.setdefault("components", {}).setdefault("schemas", {})
    tags = {t["name"]: t for t in merged.get("tags", [])}
    for document in services.values():
        merged["paths"].update(_public_paths(document))
        for schema_name, schema in document.get("components", {}).get("schemas", {}).items():
            schemas.setdefault(schema_name, schema)
        for tag in document.get("tags", []):
            tags.setdefault(tag["name"], tag)
    merged["tags"] = list(tags.values())
    merged["components"]["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                   "description": "Claims: sub, role, districts, schools, exp (design.md §5)"},
        # Registered integration clients get their bearer token here (gateway/oauth.py).
        "clientCredentials": {"type": "oauth2", "flows": {"clientCredentials": {
            "tokenUrl": f"{PUBLIC_PREFIX}/oauth/token", "scopes": {}}}}}
    merged["security"] = [{"bearer": []}, {"clientCredentials": []}]
    return merged


async def _fetch(upstream: Upstream) -> dict[str, Any] | None:
    try:
        return await upstream.get_json("/openapi.json")
    except UpstreamUnavailable:
        return None


@router.get("/api/v1/openapi.json")
async def openapi_document(request: Request) -> JSONResponse:
    app: FastAPI = request.app
    cache: dict[str, dict[str, Any]] = app.state.openapi_cache
    missing = [name for name in app.state.upstreams if name not in cache]
    if missing:
        documents = await asyncio.gather(*(_fetch(app.state.upstreams[name]) for name in missing))
        for name, document in zip(missing, documents):
            if document is not None:
                cache[name] = document
    document = merge(app.openapi(), {name: cache[name] for name in app.state.upstreams if name in cache})
    absent = [name for name in app.state.upstreams if name not in cache]
    if absent:
        document["x-spp-missing"] = absent
    return JSONResponse(document)

