"""Traces across real processes: the caller's `traceparent` reaches the service's log lines through
the gateway (no exporter configured), and with `OTEL_EXPORTER_OTLP_ENDPOINT` set the gateway's,
the service's and a database span arrive at an OTLP/HTTP receiver under one trace id."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from services.common.settings import Settings
from services.common.supervisor import ProcessGroup, process_env
from tests.conftest import TEST_SECRET
from tests.e2e.conftest import free_port

pytestmark = pytest.mark.e2e

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN}-01"


def _group(database_url: str, log_dir, **extra_env: str) -> ProcessGroup:
    settings = Settings(env="test", database_url=database_url, jwt_secret=TEST_SECRET,
                        gateway_port=free_port(), partnership_port=free_port(),
                        rotation_port=free_port(), training_port=free_port(), worker_port=free_port())
    env = {**process_env(settings, database_url), "SPP_UPSTREAM_TIMEOUT": "2", **extra_env}
    return ProcessGroup(settings, env, names=("partnership", "gateway"), log_dir=log_dir)


def _run(group: ProcessGroup) -> None:
    group.start_all()
    group.wait_ready(timeout=60)


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def test_a_traceparent_sent_to_the_gateway_reaches_the_services_log_line(database_url, tmp_path, token):
    group = _group(database_url, tmp_path / "logs")
    try:
        _run(group)
        response = httpx.get(f"{group.url('gateway')}/api/v1/districts", timeout=10,
                             headers={"Authorization": f"Bearer {token()}", "traceparent": TRACEPARENT,
                                      "X-Request-ID": "trace-e2e-1"})
        assert response.status_code == 200, response.text
    finally:
        group.stop_all()
    served = [line for line in _lines(tmp_path / "logs" / "partnership.log")
              if line.get("logger") == "spp.access" and line.get("path") == "/v1/districts"]
    # No exporter: nothing new is recorded, the caller's trace and span pass through unchanged.
    assert [(line["request_id"], line["trace_id"], line["span_id"], line["status"]) for line in served] == [
        ("trace-e2e-1", TRACE_ID, CALLER_SPAN, 200)]
    proxied = [line for line in _lines(tmp_path / "logs" / "gateway.log")
               if line.get("logger") == "spp.access" and line.get("path") == "/api/v1/districts"]
    assert [(line["trace_id"], line["span_id"]) for line in proxied] == [(TRACE_ID, CALLER_SPAN)]


class _Receiver(BaseHTTPRequestHandler):
    """A tiny OTLP/HTTP collector: keeps every span it is sent."""

    spans: list[tuple[str, str, object]] = []  # (service.name, scope name, span)

    def do_POST(self) -> None:  # noqa: N802 (the handler's API)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            service = next(a.value.string_value for a in resource_spans.resource.attributes
                           if a.key == "service.name")
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append((service, scope_spans.scope.name, span))
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args) -> None:
        return None


def test_spans_of_the_gateway_the_service_and_a_query_arrive_over_otlp_with_one_trace_id(
        database_url, tmp_path, token):
    _Receiver.spans = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    group = _group(database_url, tmp_path / "logs",
                   OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{server.server_port}",
                   OTEL_BSP_SCHEDULE_DELAY="100")
    try:
        _run(group)
        response = httpx.get(f"{group.url('gateway')}/api/v1/districts/110105", timeout=10,
                             headers={"Authorization": f"Bearer {token()}", "traceparent": TRACEPARENT})
        assert response.status_code == 404, response.text
        deadline = time.monotonic() + 15
        wanted = {("gateway", "SERVER"), ("gateway", "CLIENT"), ("partnership", "SERVER"), ("partnership", "DB")}

        def seen() -> dict[tuple[str, str], list]:
            found: dict[tuple[str, str], list] = {}
            for service, scope, span in list(_Receiver.spans):
                if span.trace_id.hex() != TRACE_ID:
                    continue
                kind = "DB" if scope == "opentelemetry.instrumentation.sqlalchemy" else \
                    {2: "SERVER", 3: "CLIENT"}.get(span.kind, "OTHER")
                found.setdefault((service, kind), []).append(span)
            return found

        while not wanted <= set(seen()) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        group.stop_all()
        server.shutdown()
    found = seen()
    assert wanted <= set(found), sorted(found)
    [gateway_server] = found[("gateway", "SERVER")]
    [gateway_client] = found[("gateway", "CLIENT")]
    [service_server] = found[("partnership", "SERVER")]
    assert (gateway_server.name, gateway_server.parent_span_id.hex()) == (
        "GET /api/v1/districts/{code}", CALLER_SPAN)
    assert (gateway_client.name, gateway_client.parent_span_id) == ("GET partnership", gateway_server.span_id)
    assert (service_server.name, service_server.parent_span_id) == ("GET /v1/districts/{code}",
                                                                    gateway_client.span_id)
    # The service's queries are children of its request's span.
    assert {span.parent_span_id for span in found[("partnership", "DB")]} == {service_server.span_id}
    assert all(span.trace_id.hex() == TRACE_ID for spans in found.values() for span in spans)
