"""OpenTelemetry traces across gateway → service → PostgreSQL (issue 12 item 3).

Two modes, chosen once per process from the standard `OTEL_*` variables:

- **Exporting**: `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, or
  `OTEL_TRACES_EXPORTER=otlp`. The SDK records a server span per request, a client span per call
  to another service and a span per SQL statement (opentelemetry-instrumentation-sqlalchemy), and
  sends them in batches over OTLP/HTTP (protobuf). The exporter, batch processor and sampler read
  their own standard variables; `OTEL_SERVICE_NAME` defaults to the process name.
- **Propagating only** (the default, or `OTEL_SDK_DISABLED=true`, `OTEL_TRACES_EXPORTER=none`): no SDK
  is installed. An incoming W3C `traceparent` is parsed and kept as the current (non-recording)
  span, so the caller's trace id still reaches the log lines and the next hop; a request without
  one costs a scan of its header names. The gateway hop is benchmarked (benchmarks/hop.py).

Propagation is W3C Trace Context (`traceparent`, `tracestate`) only: the propagator is used
directly rather than through `opentelemetry.propagate`, which would load entry points at import.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, MutableMapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_log = logging.getLogger("spp.tracing")
_PROPAGATOR = TraceContextTextMapPropagator()
_TRACEPARENT = b"traceparent"
_UNTRACED_ROUTES = ("/metrics", "/livez", "/readyz")


class _State:
    """The process's choice: `tracer` is None while only propagating."""

    configured: str | None = None
    tracer: trace.Tracer | None = None
    provider: Any = None


_state = _State()


def exporter_wanted(environ: MutableMapping[str, str] | None = None) -> bool:
    """Whether the standard variables ask for OTLP export (anything else: propagate only)."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = {name.strip().lower() for name in env.get("OTEL_TRACES_EXPORTER", "").split(",") if name.strip()}
    if exporters:
        if exporters - {"otlp", "none"}:
            _log.warning("only the otlp traces exporter is supported", extra={"exporters": sorted(exporters)})
        return "otlp" in exporters
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure_tracing(process: str) -> bool:
    """Install the SDK and the OTLP exporter when asked to, once per process (the first app made
    in a process names it). Returns whether spans are recorded and exported."""
    if _state.configured is not None:
        return _state.tracer is not None
    _state.configured = process
    if not exporter_wanted():
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    if protocol and protocol != "http/protobuf":
        _log.warning("traces are sent over OTLP http/protobuf", extra={"requested": protocol})
    service = os.environ.get("OTEL_SERVICE_NAME") or process
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _state.provider = provider
    _state.tracer = provider.get_tracer("spp")
    return True


def recording() -> bool:
    return _state.tracer is not None


def flush(timeout_millis: int = 2000) -> None:
    """Send what is batched (at a process's orderly stop; the SDK also flushes at exit)."""
    if _state.provider is not None:
        _state.provider.force_flush(timeout_millis)


def instrument_engine(engine: Any) -> None:
    """A span per SQL statement on this engine (an `AsyncEngine`), when exporting.

    The instrumentor's per-engine tracer is used directly: `SQLAlchemyInstrumentor().instrument()`
    is a process-wide singleton that instruments only the first engine it is handed, and spp makes
    an engine per app (several per process in tests, one per database in the worker)."""
    if _state.tracer is None:
        return
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.metrics import get_meter

    counter = get_meter("opentelemetry.instrumentation.sqlalchemy").create_up_down_counter(
        "db.client.connections.usage", unit="connections")
    EngineTracer(_state.provider.get_tracer("opentelemetry.instrumentation.sqlalchemy"),
                 getattr(engine, "sync_engine", engine), counter)


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) in hex of the current span, for the log lines; None outside a trace."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return format(span_context.trace_id, "032x"), format(span_context.span_id, "016x")


def inject(headers: dict[str, str]) -> None:
    """Add `traceparent` (and `tracestate`) for the current span to an outgoing call's headers."""
    _PROPAGATOR.inject(headers)


def current_traceparent() -> str | None:
    """The current span as a `traceparent` value (stored with a deferred job); None outside a trace."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def extract(traceparent: str | None, tracestate: str | None = None) -> otel_context.Context | None:
    """The context a stored or received `traceparent` names; None when there is none."""
    if not traceparent:
        return None
    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    return _PROPAGATOR.extract(carrier)


_NO_SPAN = nullcontext()


def client_span(name: str, *, upstream: str, method: str, headers: dict[str, str]) -> AbstractContextManager[Any]:
    """A client span around a call to another service (when exporting), and the propagation
    headers for it in either mode. Gives the span, or None while only propagating (then nothing
    but the header is added: the gateway hop is benchmarked)."""
    if _state.tracer is None:
        _PROPAGATOR.inject(headers)
        return _NO_SPAN
    return _client_span(_state.tracer, name, upstream=upstream, method=method, headers=headers)


@contextmanager
def _client_span(tracer: trace.Tracer, name: str, *, upstream: str, method: str,
                 headers: dict[str, str]) -> Iterator[Any]:
    with tracer.start_as_current_span(
            name, kind=SpanKind.CLIENT,
            attributes={"http.request.method": method, "peer.service": upstream}) as span:
        _PROPAGATOR.inject(headers)
        yield span


@contextmanager
def job_span(name: str, *, traceparent: str | None, attributes: dict[str, Any]) -> Iterator[None]:
    """A job continues the trace of the request that deferred it (its stored `traceparent`)."""
    parent = extract(traceparent)
    if _state.tracer is None:
        token = otel_context.attach(parent) if parent is not None else None
        try:
            yield
        finally:
            if token is not None:
                otel_context.detach(token)
        return
    with _state.tracer.start_as_current_span(name, context=parent, kind=SpanKind.CONSUMER, attributes=attributes):
        yield


def set_response_status(span: Any, status: int) -> None:
    if span is not None:
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))


class TracingMiddleware:
    """Continues the caller's trace for the request (and, when exporting, records its server span,
    named by route template). Sits outside the request-context middleware, so the access log line
    carries the trace id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        parent = None
        for name, _value in scope.get("headers") or ():
            if name == _TRACEPARENT:
                parent = _extract_headers(scope["headers"])
                break
        tracer = _state.tracer
        if tracer is None or scope.get("path") in _UNTRACED_ROUTES:
            if parent is None:
                await self.app(scope, receive, send)
                return
            token = otel_context.attach(parent)
            try:
                await self.app(scope, receive, send)
            finally:
                otel_context.detach(token)
            return
        await self._traced(tracer, parent, scope, receive, send)

    async def _traced(self, tracer: trace.Tracer, parent: otel_context.Context | None, scope: Scope,
                      receive: Receive, send: Send) -> None:
        from services.common.middleware import route_template

        method = scope.get("method", "")
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with tracer.start_as_current_span(method, context=parent, kind=SpanKind.SERVER, attributes={
                "http.request.method": method, "url.path": scope.get("path", "")}) as span:
            try:
                await self.app(scope, receive, send_status)
            finally:
                route = route_template(scope)
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                set_response_status(span, status)


def _extract_headers(headers: list[tuple[bytes, bytes]]) -> otel_context.Context | None:
    carrier = {name.decode("latin-1"): value.decode("latin-1") for name, value in headers
               if name in (b"traceparent", b"tracestate")}
    extracted = _PROPAGATOR.extract(carrier)
    return extracted if trace.get_current_span(extracted).get_span_context().is_valid else None
