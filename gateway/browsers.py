"""What web front ends need from the gateway: CORS, gzip and HEAD (issue 11).

- CORS for the origins in `SPP_CORS_ORIGINS` (off when empty), with the headers this API reads
  (`If-Match`, `Idempotency-Key` …) allowed and the ones a client acts on (`ETag`, `Location` …)
  exposed; a preflight is answered here, before authentication (browsers send it without a token).
- gzip when the client accepts it and the answer is over 1 KB; already-compressed answers (XLSX is a
  zip) are left alone, a 304 has no body to compress, and streamed answers are compressed chunk by chunk.
- HEAD on every GET: FastAPI's `APIRoute` (the proxy's `api_route`, the views) answers only the
  methods it names. HEAD is run as the GET and its body dropped, so the headers (ETag,
  Content-Length, Content-Encoding …) are exactly the GET's.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.exports import XLSX
from services.common.errors import problem_response
from services.common.messages import negotiate, use_language
from services.common.settings import Settings

ALLOWED_HEADERS = ("Authorization", "If-Match", "If-None-Match", "Idempotency-Key", "Content-Type",
                   "Accept-Language", "X-Request-Id")
EXPOSED_HEADERS = ("ETag", "Location", "X-Request-Id", "Retry-After", "Idempotent-Replayed",
                   "Content-Disposition")
ALLOWED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
GZIP_MINIMUM_BYTES = 1024


class ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, except that a disallowed origin gets no CORS header at all (Starlette
    still exposes headers to it), and a refused preflight is an RFC 9457 problem like every other
    error of this API."""

    async def send(self, message: Message, send: Send, request_headers: Headers) -> None:
        origin = request_headers.get("origin")
        if message["type"] == "http.response.start" and origin is not None and not self.is_allowed_origin(origin):
            message.setdefault("headers", [])
            MutableHeaders(scope=message).add_vary_header("Origin")
            await send(message)
            return
        await super().send(message, send, request_headers)

    def preflight_response(self, request_headers) -> Response:  # type: ignore[no-untyped-def]
        response = super().preflight_response(request_headers)
        if response.status_code == 200:
            return response
        detail = response.body.decode("utf-8", "replace")  # "Disallowed CORS origin, headers"
        # Answered before the request middleware has read Accept-Language: read it here.
        with use_language(negotiate(request_headers.get("accept-language"))):
            return problem_response(400, title="CORS preflight refused", slug="cors-refused", detail=detail,
                                    headers={"Vary": "Origin"})


class HeadAsGetMiddleware:
    """Answers HEAD with the GET's status and headers and no body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": b""})
                return
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


def install_browser_support(app: FastAPI, settings: Settings) -> None:
    """Outermost first: CORS (so refusals, 429s and errors carry its headers too), then HEAD (so it
    sees the compressed GET), then gzip."""
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MINIMUM_BYTES,
                       exclude_content_types=(*DEFAULT_EXCLUDED_CONTENT_TYPES, XLSX))
    app.add_middleware(HeadAsGetMiddleware)
    origins = settings.cors_origin_list
    if origins:
        app.add_middleware(ProblemCORSMiddleware, allow_origins=origins, allow_methods=ALLOWED_METHODS,
                           allow_headers=ALLOWED_HEADERS, expose_headers=EXPOSED_HEADERS)
