"""Forwarding of public resource paths to the owning service.

The token is verified here before anything is forwarded (and again by the service; the gateway's
verifier remembers what it accepted, services/common/verified_tokens.py). Status, body, query string and the
headers a client acts on (Location, ETag, Retry-After, …) pass through unchanged, as bytes; a
service that cannot be reached answers 503 problem+json within the upstream timeout, never a hang.
`Idempotency-Key` is only forwarded: the owning service records it in the write's own transaction
(services/common/idempotency.py), so a retry after a failure here still gets the committed answer.
A bulk upload (`POST /imports/{kind}`) is streamed to its service as it arrives, never held whole
here, under its own deadline (`SPP_UPLOAD_TIMEOUT`) and outside the circuit breaker's count.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Request, Response

from gateway.exports import export_format, export_list, is_exportable
from gateway.paths import upstream_path
from gateway.routes import PER_SERVICE_PREFIXES, owner_of, route_label
from services.common.auth import authenticate
from services.common.context import actor_var, request_id_var
from services.common.errors import NotFound, Unprocessable, UpstreamUnavailable, problem_responses
from services.common.upstream import Upstream

FORWARDED_REQUEST_HEADERS = ("authorization", "content-type", "accept", "if-match", "if-none-match",
                             "idempotency-key", "x-request-id", "accept-language", "content-disposition")
RETURNED_RESPONSE_HEADERS = ("content-type", "location", "etag", "retry-after", "www-authenticate",
                             "content-disposition", "cache-control", "last-modified", "idempotent-replayed")

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
router = APIRouter()


@router.api_route("/api/v1/{path:path}", methods=list(METHODS),
                  include_in_schema=False, responses=problem_responses(404, 503))
async def proxy(path: str, request: Request) -> Response:
    """The route the router picks when no view's path matches and for methods a view path does
    not answer; most proxied requests skip routing altogether (gateway/fast_path.py)."""
    return await forward(request, path)


async def forward(request: Request, path: str) -> Response:
    """`/api/v1/<path>` answered by the service that owns it."""
    request.scope["spp.route"] = route_label(request.method, path)  # the metrics' and the span's label
    service = owner_of(path, request.query_params.get("service"))
    if service is None:
        if path.strip("/") in PER_SERVICE_PREFIXES:
            raise Unprocessable("name the service: ?service=partnership|rotation|training",
                                slug="validation", extra={"errors": [
                                    {"field": "query.service", "message": "required", "type": "missing"}]})
        raise NotFound(f"no resource at /api/v1/{path}", slug="not-found")
    # Who: for the access log line (services/common/middleware.py).
    actor_var.set(authenticate(request.headers.get("authorization"), request.app.state.verifier).sub)
    upstream: Upstream = request.app.state.upstreams[service]
    if request.method == "POST" and path.startswith("imports/"):
        return await _upload(request, upstream)
    return await _forward(request, upstream, path, await request.body())


async def _upload(request: Request, upstream: Upstream) -> Response:
    """A file of up to `max_import_bytes` passes through chunk by chunk; the body size limit
    (services/common/middleware.py) counts the chunks as they are read and answers 413 itself."""
    headers = _forwarded_headers(request)
    if "content-length" in request.headers:
        headers["content-length"] = request.headers["content-length"]
    body = _Body(request)
    try:
        response = await upstream.upload(upstream_path(request), body,
                                         params=request.query_params.multi_items(), headers=headers,
                                         timeout=request.app.state.settings.upload_timeout)
    except UpstreamUnavailable:
        # The upload failed because reading the caller's body did (too large: 413; the caller went
        # away): that is the answer, not the upstream. The pool may have wrapped it on the way.
        if body.error is not None:
            raise body.error from None
        raise
    return _returned(response)


class _Body:
    """The caller's body as it arrives, remembering why it stopped if it did not end."""

    def __init__(self, request: Request) -> None:
        self._request = request
        self.error: Exception | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._request.stream():
                if chunk:  # an empty chunk would end a chunked body early
                    yield chunk
        except Exception as exc:
            self.error = exc
            raise


def _forwarded_headers(request: Request) -> dict[str, str]:
    headers = {name: request.headers[name] for name in FORWARDED_REQUEST_HEADERS if name in request.headers}
    headers["x-request-id"] = request_id_var.get() or headers.get("x-request-id", "")
    return headers


def _returned(response: httpx.Response) -> Response:
    returned = {name: response.headers[name] for name in RETURNED_RESPONSE_HEADERS if name in response.headers}
    return Response(content=response.content, status_code=response.status_code, headers=returned)


async def _forward(request: Request, upstream: Upstream, path: str, body: bytes) -> Response:
    headers = _forwarded_headers(request)
    target = upstream_path(request)
    if request.method == "GET" and is_exportable(path):
        fmt = export_format(request)
        if fmt is not None:
            return await export_list(request, upstream, path, headers, fmt, target=target)
    response = await upstream.send(request.method, upstream.origin + target + _query(request, path),
                                   content=body, headers=headers)
    return _returned(response)


def _query(request: Request, path: str) -> str:
    """The caller's query string as it came (`?service=` names the owner of `/changes`, and goes
    no further). Appended to an absolute URL, so httpx parses the URL once instead of merging a
    path and parameters into its base URL: that merge cost a tenth of the gateway's CPU a call."""
    if path == "changes":
        kept = [(k, v) for k, v in request.query_params.multi_items() if k != "service"]
        return "?" + urlencode(kept) if kept else ""
    raw: bytes = request.scope.get("query_string", b"")
    return "?" + raw.decode("latin-1") if raw else ""
