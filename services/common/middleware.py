"""Pure ASGI middleware: request ids, access logs, Prometheus metrics and the body size limit.

Pure ASGI rather than BaseHTTPMiddleware: it costs less per request and does not buffer bodies.
Every metric name is listed in docs/operations.md.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.context import actor_var, fresh_var, request_id_var, role_var
from services.common.errors import PROBLEM_JSON
from services.common.messages import language_of_scope, language_var, translate, translate_title
from services.common.paths import has_dot_segment

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
        self.answers = Counter("spp_answer_cache_lookups_total", "Figure answers served from the kept answers (hit) "
                               "or computed (miss); services/common/answer_cache.py", ["process", "result"],
                               registry=self.registry)
        # The process itself (CPU, memory, open files, start time; the interpreter's GC and version),
        # as prometheus_client's default registry has them; ours is per app.
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=self.registry)
        # Read at each scrape (`sample`): states that change without an event in this process.
        self.circuit = Gauge("spp_upstream_circuit_state", "1 for the state each upstream's circuit breaker is in "
                             "(closed, half_open, open), 0 for the others",
                             ["process", "upstream", "state"], registry=self.registry)
        self.pool_size = Gauge("spp_db_pool_size", "Connections the database pool keeps (SPP_DB_POOL_SIZE; "
                               "up to SPP_DB_MAX_OVERFLOW more when busy)", ["process", "pool"], registry=self.registry)
        self.pool_in_use = Gauge("spp_db_pool_in_use", "Database connections checked out of the pool now",
                                 ["process", "pool"], registry=self.registry)
        self.pool_open = Gauge("spp_db_pool_open", "Database connections the pool holds open now (idle and in use)",
                               ["process", "pool"], registry=self.registry)
        self.jobs = Gauge("spp_job_queue_jobs", "Jobs in the queue by queue and status (todo: waiting, doing: "
                          "running)", ["process", "queue", "status"], registry=self.registry)
        self.job_age = Gauge("spp_job_queue_oldest_age_seconds", "Age of the oldest job by queue and status, since "
                             "it was deferred (0 when there is none)", ["process", "queue", "status"],
                             registry=self.registry)
        self.process = process
        self._samplers: dict[str, Callable[[], Awaitable[None] | None]] = {}

    def add_sampler(self, key: str, sampler: Callable[[], Awaitable[None] | None]) -> None:
        """A function that sets gauges just before a scrape (sync, or async for a query); a second
        one under the same key (the app started again) replaces the first."""
        self._samplers[key] = sampler

    def watch_breakers(self, upstreams: Mapping[str, Any]) -> None:
        def sample() -> None:
            for name, upstream in upstreams.items():
                current = upstream.breaker.state
                for state in ("closed", "half_open", "open"):
                    self.circuit.labels(self.process, name, state).set(1 if state == current else 0)
        self.add_sampler("breakers", sample)

    def watch_pool(self, name: str, engine: Any) -> None:
        """Pool gauges of an `AsyncEngine` (its QueuePool's own counters, no query)."""
        def sample() -> None:
            pool = engine.sync_engine.pool
            self.pool_size.labels(self.process, name).set(pool.size())
            self.pool_in_use.labels(self.process, name).set(pool.checkedout())
            self.pool_open.labels(self.process, name).set(pool.checkedin() + pool.checkedout())
        self.add_sampler(f"pool:{name}", sample)

    async def sample(self, timeout: float = 2.0) -> None:
        """Run every sampler; one that fails or is slow (a database down) leaves its old values and
        never fails the scrape."""
        for sampler in list(self._samplers.values()):
            try:
                result = sampler()
                if inspect.isawaitable(result):
                    async with asyncio.timeout(timeout):
                        await result
            except Exception as exc:
                _log.warning("metrics sampler failed", extra={"error": f"{type(exc).__name__}: {exc}"})


_log = logging.getLogger("spp.metrics")


def route_template(scope: Scope) -> str:
    """The label of a request: the route's template (`/v1/schools/{code}`), never the raw path (one
    series per school would explode the metric). The gateway's catch-all proxy route names the
    public operation it forwards to (`spp.route`, gateway/proxy.py)."""
    label = scope.get("spp.route")
    if label is not None:
        return label
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
        headers = scope.get("headers") or []
        incoming = dict(headers).get(b"x-request-id", b"")
        # Echoed in a response header and forwarded upstream: only a printable ASCII id is kept.
        request_id = (incoming.decode("ascii").strip()[:128] if _PRINTABLE.fullmatch(incoming) else "") \
            or uuid.uuid4().hex
        # Set for this request and restored after it: an app called in process (httpx ASGITransport)
        # runs in its caller's context and must not leave its request id or actor behind there.
        # Not restored when an exception escapes: the outermost 500 handler still quotes the id.
        request_token = request_id_var.set(request_id)
        actor_token = actor_var.set(None)
        language_token = language_var.set(language_of_scope(scope))  # problems speak the caller's language
        role_token = role_var.set(None)
        fresh_token = fresh_var.set(_asks_fresh(headers))
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        escaped = True
        try:
            refusal = _path_refusal(scope) or _header_refusal(headers)
            if refusal is not None:
                await _send_problem(send_with_id, *refusal)
            else:
                await self.app(scope, receive, send_with_id)
            escaped = False
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(scope)
            method = scope.get("method", "")
            if route not in ("/metrics", "/livez", "/readyz"):
                self.metrics.requests.labels(self.metrics.process, method, route, str(status)).inc()
                self.metrics.latency.labels(self.metrics.process, method, route).observe(elapsed)
                # `sub`: who called (set when the request authenticated; null when it did not).
                _access.info("request", extra={"method": method, "path": scope.get("path"),
                                               "status": status, "ms": round(elapsed * 1000, 2),
                                               "sub": actor_var.get()})
            if not escaped:
                language_var.reset(language_token)
                role_var.reset(role_token)
                fresh_var.reset(fresh_token)
                actor_var.reset(actor_token)
                request_id_var.reset(request_token)


def _asks_fresh(headers: list[tuple[bytes, bytes]]) -> bool:
    """`Cache-Control: no-cache` (or the older `Pragma: no-cache`): answer from the data, not a kept answer."""
    return any(name in (b"cache-control", b"pragma") and b"no-cache" in value.lower() for name, value in headers)


def _path_refusal(scope: Scope) -> tuple[int, str, str] | None:
    """PostgreSQL text cannot hold a NUL character: no resource is named by one (404), and no
    filter can match one (422). A `.`/`..` segment names nothing either: it walks to another
    path (services/common/paths.py). Refused here, before routing or any query is built."""
    path = scope.get("path", "")
    raw_path = scope.get("raw_path") or path.encode("utf-8", "replace")
    if b"%00" in raw_path.lower() or "\x00" in path:
        return 404, "not-found", "no resource has a NUL character in its name"
    if has_dot_segment(raw_path) or has_dot_segment(path.encode("utf-8", "replace")):
        return 404, "not-found", "a path with '.' or '..' segments names no resource"
    if b"%00" in scope.get("query_string", b"").lower():
        return 422, "validation", "query parameters cannot contain a NUL character"
    return None


# Header values the platform reads or forwards. HTTP carries them as bytes; an ETag, a language
# tag, a media type, an idempotency key or a request id is ASCII, and httpx refuses to forward
# anything else, so such a value is refused with 400 here instead of failing halfway (issue 9).
CHECKED_HEADERS = {b"x-request-id": "X-Request-ID", b"accept-language": "Accept-Language",
                   b"if-match": "If-Match", b"if-none-match": "If-None-Match",
                   b"idempotency-key": "Idempotency-Key", b"accept": "Accept", b"content-type": "Content-Type"}
_PRINTABLE = re.compile(rb"[\t\x20-\x7e]*")


def _header_refusal(headers: list[tuple[bytes, bytes]]) -> tuple[int, str, str] | None:
    for name, value in headers:
        label = CHECKED_HEADERS.get(name.lower())
        if label is not None and not _PRINTABLE.fullmatch(value):
            return 400, "invalid-header", f"the {label} header must be printable ASCII"
    return None


async def _send_problem(send: Send, status: int, slug: str, detail: str) -> None:
    title = "Not found" if status == 404 else "Invalid request"
    body = json.dumps({"type": f"urn:spp:problem:{slug}", "title": translate_title(title), "status": status,
                       "detail": translate(detail), "request_id": request_id_var.get()}, ensure_ascii=False).encode()
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
            "type": "urn:spp:problem:body-too-large", "title": translate_title("Request body too large"),
            "status": 413, "detail": translate(f"the body exceeds {limit} bytes"), "request_id": request_id_var.get(),
        }, ensure_ascii=False).encode()
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
