"""One OpenAPI document for the public API: the gateway's own views plus every service's paths.

Each service documents its own endpoints; the gateway fetches those documents, rewrites `/v1/…`
to the public `/api/v1/…`, drops internal and health paths, and merges the components. A service
that is down is left out of the document until it answers (and is named in `x-spp-missing`).

Then `describe` makes the merge one a client generator can use: the chosen operationIds and the
descriptions of `gateway/openapi_catalog.py`, and what the gateway adds to every operation, said
once here rather than on ~70 routes: the headers (X-Request-ID, Accept-Language, If-None-Match,
ETag, Location, Retry-After), the 413/429/503 answers, the spreadsheet `format` of exportable lists
and the `service` parameter of `/changes`, which the gateway routes on.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from gateway.exports import XLSX, is_exportable
from gateway.openapi_catalog import COMMON_PROBLEMS, OPERATIONS, TAGS, Operation
from gateway.routes import SERVICES
from services.common.errors import PROBLEM_JSON, UpstreamUnavailable
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
                   "description": "Claims: sub, role, districts, schools, exp; `districts` is empty for "
                                  "city-wide roles"},
        # Registered integration clients get their bearer token here (gateway/oauth.py).
        "clientCredentials": {"type": "oauth2", "flows": {"clientCredentials": {
            "tokenUrl": f"{PUBLIC_PREFIX}/oauth/token", "scopes": {}}}}}
    merged["security"] = [{"bearer": []}, {"clientCredentials": []}]
    return describe(merged)


METHODS = ("get", "put", "post", "delete", "patch")

REQUEST_HEADERS: dict[str, dict[str, Any]] = {
    "XRequestId": {"name": "X-Request-ID", "in": "header", "required": False, "schema": {
        "type": "string", "maxLength": 128}, "example": "c0ffee00-1234-4cde-8f00-000000000001",
        "description": "Your id for this request (printable ASCII, up to 128 characters kept); answered back, "
                       "logged and stored with every change it makes. One is assigned when absent."},
    "AcceptLanguage": {"name": "Accept-Language", "in": "header", "required": False,
                       "schema": {"type": "string"}, "example": "zh-CN",
                       "description": "The language of problem texts (`title`, `detail`, `errors[].message`) and of "
                                      "import report messages: Chinese for `zh*`, English for `en`, q-values "
                                      "honoured; Chinese when absent, `*` or only other languages. Problem `type`s "
                                      "never change (docs/problems.md). Forwarded to the services; printable ASCII, "
                                      "else 400."},
    "IfNoneMatch": {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"},
                    "example": '"v3"', "description": "An ETag you hold: 304 with no body while it is current."},
}

RESPONSE_HEADERS: dict[str, dict[str, Any]] = {
    "XRequestId": {"description": "The request's id: yours, or the one assigned", "schema": {"type": "string"}},
    "ETag": {"description": "The resource's version; send it back in If-Match to change the resource and in "
                            "If-None-Match to re-read it cheaply", "schema": {"type": "string"}, "example": '"v3"'},
    "Location": {"description": "Where the created resource (201) or the accepted job (202) can be read",
                 "schema": {"type": "string", "format": "uri-reference"}},
    "RetryAfter": {"description": "Seconds to wait before retrying", "schema": {"type": "integer", "minimum": 0},
                   "example": 1},
}

PROBLEM_CONTENT = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
EXTRA_RESPONSES: dict[str, dict[str, Any]] = {
    "413": {"description": "The body is larger than the deployment allows (`urn:spp:problem:body-too-large`)",
            "content": PROBLEM_CONTENT},
    "429": {"description": "Over the caller's request budget, when the deployment sets one "
                           "(`urn:spp:problem:rate-limited`); retry after Retry-After", "content": PROBLEM_CONTENT},
    "503": {"description": "A service or the database this request needs is unavailable; retry after Retry-After",
            "content": PROBLEM_CONTENT},
}
SPREADSHEETS = {"text/csv": {"schema": {"type": "string"}}, XLSX: {"schema": {"type": "string", "format": "binary"}}}
FORMAT_PARAMETER = {"name": "format", "in": "query", "required": False,
                    "schema": {"type": "string", "enum": ["csv", "xlsx"]},
                    "description": "Answer the whole list (up to 100 000 rows, no paging) as a spreadsheet with "
                                   "Chinese headers: `csv` (UTF-8 with BOM) or `xlsx`. An `Accept` of text/csv or "
                                   "the XLSX media type does the same."}
SERVICE_PARAMETER = {"name": "service", "in": "query", "required": True,
                     "schema": {"type": "string", "enum": list(SERVICES)},
                     "description": "The service whose change feed to read"}


def _header_ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def _render(entry: Operation, detail: str | None) -> str:
    """The catalog's text, the route's own description when it has one (a view's exact rules), the
    roles and the problem types."""
    problems = [f"- {status} `urn:spp:problem:{slug}`" for status, slug in entry.problems]
    common = [f"- {status} `urn:spp:problem:{slug}`: {why}" for status, slug, why in COMMON_PROBLEMS]
    parts = [entry.text, detail.strip()] if detail else [entry.text]
    return "\n\n".join([*parts, f"**Who may call:** {entry.roles}",
                         "**Problems** (RFC 9457 problem details, `type` below; `title` and `detail` follow "
                         "`Accept-Language`):\n" + "\n".join(problems + common)])


def _add_parameter(operation: dict[str, Any], parameter: dict[str, Any]) -> None:
    parameters = operation.setdefault("parameters", [])
    name = parameter.get("name") or parameter["$ref"].rsplit("/", 1)[1]
    names = {p.get("name", "").lower() for p in parameters} | {p.get("$ref", "").rsplit("/", 1)[-1].lower()
                                                              for p in parameters}
    if name.lower() not in names and REQUEST_HEADERS.get(name, {}).get("name", name).lower() not in names:
        parameters.append(parameter)


def _describe_operation(path: str, method: str, operation: dict[str, Any]) -> None:
    entry = OPERATIONS.get(f"{method.upper()} {path}")
    if entry is not None:
        operation.update(operationId=entry.operation_id, summary=entry.summary,
                         description=_render(entry, operation.get("description")))
    responses = operation.setdefault("responses", {})
    header_names = {p.get("name") for p in operation.get("parameters", [])}
    single = "304" in responses or "If-Match" in header_names
    _add_parameter(operation, {"$ref": "#/components/parameters/XRequestId"})
    _add_parameter(operation, {"$ref": "#/components/parameters/AcceptLanguage"})
    if method == "get" and "304" in responses:
        _add_parameter(operation, {"$ref": "#/components/parameters/IfNoneMatch"})
    local = path.removeprefix(PUBLIC_PREFIX)
    # A view that renders its own spreadsheet (the overview); an import template documents its own.
    exports = "format" in header_names and not local.endswith("/template")
    if method == "get" and (exports or is_exportable(local)):
        operation["parameters"] = [p for p in operation.get("parameters", []) if p.get("name") != "format"]
        _add_parameter(operation, FORMAT_PARAMETER)
        responses["200"].setdefault("content", {}).update(copy.deepcopy(SPREADSHEETS))
    if local == "/changes":
        _add_parameter(operation, SERVICE_PARAMETER)
    if "requestBody" in operation:
        responses.setdefault("413", EXTRA_RESPONSES["413"])
    responses.setdefault("429", EXTRA_RESPONSES["429"])
    responses.setdefault("503", EXTRA_RESPONSES["503"])
    for status, response in responses.items():
        content = response.get("content", {})
        if content.get(PROBLEM_JSON) == {} and "schema" in content.get("application/json", {}):
            # FastAPI files a problem's model under application/json; the answer is problem+json.
            content[PROBLEM_JSON] = content.pop("application/json")
        headers = response.setdefault("headers", {})
        headers.setdefault("X-Request-ID", _header_ref("XRequestId"))
        if single and (status.startswith("2") or status == "304"):
            headers.setdefault("ETag", _header_ref("ETag"))
        if status in ("201", "202"):
            headers.setdefault("Location", _header_ref("Location"))
        if status in ("429", "503"):
            headers.setdefault("Retry-After", _header_ref("RetryAfter"))


def describe(document: dict[str, Any]) -> dict[str, Any]:
    """Names, descriptions, headers and the gateway's own answers on every public operation."""
    components = document.setdefault("components", {})
    components.setdefault("parameters", {}).update(copy.deepcopy(REQUEST_HEADERS))
    components.setdefault("headers", {}).update(copy.deepcopy(RESPONSE_HEADERS))
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                _describe_operation(path, method, item[method])
    used = {tag for item in document.get("paths", {}).values() for method in METHODS
            for tag in item.get(method, {}).get("tags", [])}
    known = {t["name"]: t for t in document.get("tags", [])}
    document["tags"] = [{**known.get(name, {}), "name": name, "description": TAGS.get(name, known.get(name, {})
                                                                                        .get("description", ""))}
                        for name in sorted(used | set(known), key=lambda n: (n not in TAGS, list(TAGS).index(n)
                                                                              if n in TAGS else 0, n))]
    return document


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

