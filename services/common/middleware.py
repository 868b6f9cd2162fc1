"""Pure ASGI middleware: request ids, access logs, Prometheus metrics and the body size limit.

Pure ASGI rather than BaseHTTPMiddleware: it costs less per request and does not buffer bodies.
"""

from __future__ import annotations

import json
import logging
import time
import uuid

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.context import request_id_var
from services.common.errors import PROBLEM_JSON

_access = logging.getLogger("spp.access")


class Metrics:
    """Per-app registry, so several apps in one test process do not collide."""

    def __init__(self, process: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("spp_http_requests_total", "HTTP requests",
                                ["process", "method", "route", "status"], registry=self.registry)
        self.latency = Histogram("spp_http_request_seconds", "HTTP request latency",
                                 ["process", "method", "route"], registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        self.upstream = Counter("spp_upstream_requests_total", "Calls to upstream services",
                                ["process", "upstream", "outcome"], registry=self.registry)
        # Local read models (services/common/feed_consumer.py): how far behind the producer they are.
        self.feed_lag = Gauge("spp_feed_lag_seconds", "Age of the oldest change of the producer's feed not yet "
                              "applied (0 when caught up; time since the last catch-up when it cannot be read)",
                              ["process", "consumer", "producer"], registry=self.registry)
        self.feed_applied = Counter("spp_feed_changes_applied_total", "Feed changes applied to a local read model",
                                    ["process", "consumer"], registry=self.registry)
        self.feed_errors = Counter("spp_feed_errors_total", "Failed feed passes (producer down, database error)",
                                   ["process", "consumer"], registry=self.registry)
        self.process = process


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class RequestContextMiddleware:
    """Assigns a request id (or keeps the caller's), logs one JSON line, records metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")[:128]
        request_id = incoming or uuid.uuid4().hex
        request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            refusal = _nul_refusal(scope)
            if refusal is not None:
                await _send_problem(send_with_id, *refusal)
            else:
                await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            method = scope.get("method", "")
            if route not in ("/metrics", "/livez", "/readyz"):
                self.metrics.requests.labels(self.metrics.process, method, route, str(status)).inc()
                self.metrics.latency.labels(self.metrics.process, method, route).observe(elapsed)
                _access.info("request", extra={"method": method, "path": scope.get("path"),
                                               "status": status, "ms": round(elapsed * 1000, 2)})


def _nul_refusal(scope: Scope) -> tuple[int, str, str] | None:
    """PostgreSQL text cannot hold a NUL character: no resource is named by one (404), and no
    filter can match one (422). Refused here, before any query is built."""
    if b"%00" in scope.get("raw_path", b"").lower() or "\x00" in scope.get("path", ""):
        return 404, "not-found", "no resource has a NUL character in its name"
    if b"%00" in scope.get("query_string", b"").lower():
        return 422, "validation", "query parameters cannot contain a NUL character"
    return None


async def _send_problem(send: Send, status: int, slug: str, detail: str) -> None:
    body = json.dumps({"type": f"urn:spp:problem:{slug}", "title": "Not found" if status == 404 else
                       "Invalid request", "status": status, "detail": detail,
                       "request_id": request_id_var.get()}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class BodySizeLimitMiddleware:
    """Refuses bodies above the limit with 413, by declared length or by counting the stream."""

    def __init__(self, app: ASGIApp, max_bytes: int, import_max_bytes: int | None = None) -> None:
        self.app = app
        self.default_max = max_bytes
        self.import_max = import_max_bytes or max_bytes

    async def _reject(self, send: Send, limit: int) -> None:
        body = json.dumps({
            "type": "urn:spp:problem:body-too-large", "title": "Request body too large", "status": 413,
            "detail": f"the body exceeds {limit} bytes", "request_id": request_id_var.get(),
        }).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", PROBLEM_JSON.encode()),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Bulk imports carry whole files; every other body is a single resource.
        limit = self.import_max if "/imports" in scope.get("path", "") else self.default_max
        for name, value in scope.get("headers") or []:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await self._reject(send, limit)
                    return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(send, limit)


class _TooLarge(Exception):
    pass
