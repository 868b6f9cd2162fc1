"""The shared kernel's own rules: problem rendering, settings, cursors, breaker, tokens, persistence."""

import subprocess
import sys

import httpx
import jwt
import pytest
from fastapi import APIRouter
from pydantic import ValidationError

from services.common.app import create_service_app
from services.common.embedded import EmbeddedPostgres
from services.common.paging import InvalidCursor, decode_cursor, encode_cursor
from services.common.settings import Settings
from services.common.upstream import CircuitBreaker
from tests.conftest import TEST_SECRET


async def test_unexpected_failure_is_500_problem_with_request_id_and_no_trace(settings, token):
    router = APIRouter()

    @router.get("/boom")
    async def boom() -> dict:
        raise RuntimeError("secret internals: password=hunter2")

    app = create_service_app(process="probe", settings=settings, routers=[router], title="probe",
                             description="", uses_database=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        response = await client.get("/boom", headers={"x-request-id": "req-123", "Accept-Language": "en"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body == {"type": "urn:spp:problem:internal", "title": "Internal error", "status": 500,
                    "detail": "The request failed unexpectedly; quote the request id when reporting it.",
                    "request_id": "req-123"}
    assert "hunter2" not in response.text and "Traceback" not in response.text


def test_production_refuses_the_development_secret():
    with pytest.raises(ValidationError):
        Settings(env="production")
    with pytest.raises(ValidationError):
        Settings(env="production", jwt_secret="short")
    assert Settings(env="production", jwt_secret="x" * 32).jwt_secret == "x" * 32


def test_settings_from_environment(monkeypatch):
    monkeypatch.setenv("SPP_GATEWAY_PORT", "9000")
    monkeypatch.setenv("SPP_ROTATION_URL", "http://rotation:8002")
    settings = Settings()
    assert settings.gateway_port == 9000
    assert settings.url_of("rotation") == "http://rotation:8002"
    assert settings.url_of("training") == "http://127.0.0.1:8003"


def test_cursor_round_trip_and_tamper():
    from datetime import date
    from uuid import UUID

    uid = UUID("12345678-1234-5678-1234-567812345678")
    cursor = encode_cursor([date(2024, 9, 1), uid, "朝阳"])
    assert decode_cursor(cursor, [date.fromisoformat, UUID, str]) == [date(2024, 9, 1), uid, "朝阳"]
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, [date.fromisoformat, UUID])
    with pytest.raises(InvalidCursor):
        decode_cursor("bm90IGpzb24", [str])


def test_circuit_breaker_opens_and_half_opens():
    now = [0.0]
    breaker = CircuitBreaker(failures=3, cooldown=5.0, clock=lambda: now[0])
    for _ in range(2):
        breaker.record_failure()
    assert breaker.state == "closed"
    breaker.record_failure()
    assert (breaker.state, breaker.allow()) == ("open", False)
    now[0] = 5.0
    assert (breaker.state, breaker.allow()) == ("half_open", True)
    breaker.record_failure()  # the trial failed: open again for another cool-down
    assert breaker.state == "open"
    now[0] = 10.0
    breaker.record_success()
    assert breaker.state == "closed"


def test_spp_token_mints_scoped_claims():
    result = subprocess.run(
        [sys.executable, "-m", "services.common.cli", "token", "--role", "district_admin",
         "--district", "110105", "--district", "110119", "--sub", "王老师"],
        capture_output=True, text=True, env={"SPP_JWT_SECRET": TEST_SECRET, "PATH": ""}, check=True)
    claims = jwt.decode(result.stdout.strip(), TEST_SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["role"], claims["districts"], claims["schools"]) == (
        "王老师", "district_admin", ["110105", "110119"], [])
    bad = subprocess.run([sys.executable, "-m", "services.common.cli", "token", "--role", "root"],
                         capture_output=True, text=True)
    assert bad.returncode == 2


def test_embedded_data_survives_a_restart(spp_data_dir):
    first = EmbeddedPostgres(spp_data_dir, database="keep")
    first.start()
    first._server.psql("\\c keep\ncreate table kept (name text); insert into kept values ('海淀区');")
    first_pid = first._server.get_pid()
    first.stop()
    second = EmbeddedPostgres(spp_data_dir, database="keep")
    second.start()
    try:
        assert second._server.get_pid() != first_pid  # a new server process over the same data
        assert "海淀区" in second._server.psql("\\c keep\nselect name from kept;")
    finally:
        second.stop()


async def test_a_retried_call_counts_once_against_the_breaker():
    # A GET is tried twice; both attempts failing is one failed call. Two calls leave the circuit
    # closed (threshold 3), so a service back a moment later is asked again at once.
    import httpx

    from services.common.errors import UpstreamUnavailable
    from services.common.upstream import CircuitBreaker, Upstream

    attempts: list[str] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        attempts.append(request.url.path)
        raise httpx.ConnectError("refused", request=request)

    upstream = Upstream("training", "http://training", timeout=1.0, breaker=CircuitBreaker(3, 5.0),
                        transport=httpx.MockTransport(refuse))
    try:
        for _ in range(2):
            with pytest.raises(UpstreamUnavailable):
                await upstream.get_json("/v1/internal/studio-stats")
        assert len(attempts) == 4
        assert upstream.breaker.state == "closed"
        with pytest.raises(UpstreamUnavailable):
            await upstream.get_json("/v1/internal/studio-stats")
        assert upstream.breaker.state == "open"
    finally:
        await upstream.aclose()


async def test_a_prompt_503_does_not_open_the_circuit_but_a_500_does():
    # A service whose database is down answers 503 at once: the gateway must ask it again as soon as
    # the database is back, not wait out a cooldown. Failures (500s) still open the circuit.
    import httpx

    from services.common.upstream import CircuitBreaker, Upstream

    statuses = iter([503] * 5 + [500] * 3)
    upstream = Upstream("partnership", "http://partnership", timeout=1.0, breaker=CircuitBreaker(3, 5.0),
                        transport=httpx.MockTransport(lambda request: httpx.Response(next(statuses))))
    try:
        assert [(await upstream.send("GET", "/v1/districts")).status_code for _ in range(5)] == [503] * 5
        assert upstream.breaker.state == "closed"
        assert [(await upstream.send("GET", "/v1/districts")).status_code for _ in range(3)] == [500] * 3
        assert upstream.breaker.state == "open"
    finally:
        await upstream.aclose()


async def test_call_json_raises_only_the_refusals_asked_for_as_the_callers_problem():
    # One way to call a service (Upstream.call_json): a refusal the caller asked to keep (the
    # gateway: 401/403, and the what-if's 422) is the caller's problem, whole; any other non-2xx
    # answer means the service cannot be relied on (503 naming it).
    import json as jsonlib

    import httpx

    from services.common.errors import Forbidden, Unprocessable, UpstreamUnavailable
    from services.common.upstream import Upstream

    errors = [{"field": "body.moves.0.staff_id", "message": "staff member x does not exist",
               "type": "unknown_reference"}]
    answers = {
        "/refused": (403, {"type": "urn:spp:problem:district-scope", "title": "Not allowed", "status": 403,
                           "detail": "figures for every district need a city-wide role"}),
        "/invalid": (422, {"type": "urn:spp:problem:unknown-reference", "title": "Invalid moves", "status": 422,
                           "detail": "body.moves.0.staff_id: staff member x does not exist",
                           "request_id": "upstream-1", "errors": errors}),
        "/broken": (500, {"title": "Internal error", "status": 500}),
    }

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/echo":
            return httpx.Response(200, json={"method": request.method, "body": jsonlib.loads(request.content)})
        status, body = answers[request.url.path]
        return httpx.Response(status, json=body)

    upstream = Upstream("rotation", "http://rotation", timeout=1.0, transport=httpx.MockTransport(answer))
    try:
        assert await upstream.call_json("POST", "/echo", json={"a": 1}) == {"method": "POST", "body": {"a": 1}}
        with pytest.raises(UpstreamUnavailable) as unavailable:
            await upstream.call_json("POST", "/invalid", json={})
        assert (unavailable.value.detail, unavailable.value.extra) == (
            "the rotation service is unavailable (answered 422)", {"upstream": "rotation"})
        with pytest.raises(Unprocessable) as invalid:
            await upstream.call_json("POST", "/invalid", json={}, refusals=(401, 403, 422))
        assert (invalid.value.status, invalid.value.slug, invalid.value.title, invalid.value.detail,
                invalid.value.extra) == (422, "unknown-reference", "Invalid moves",
                                         "body.moves.0.staff_id: staff member x does not exist", {"errors": errors})
        with pytest.raises(Forbidden) as refused:
            await upstream.call_json("GET", "/refused", refusals=(403,))
        assert (refused.value.status, refused.value.slug, refused.value.detail) == (
            403, "district-scope", "figures for every district need a city-wide role")
        with pytest.raises(UpstreamUnavailable) as broken:
            await upstream.call_json("GET", "/broken", refusals=(401, 403, 422))
        assert broken.value.detail == "the rotation service is unavailable (answered 500)"
    finally:
        await upstream.aclose()
