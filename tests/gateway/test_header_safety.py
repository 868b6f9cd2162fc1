"""No 500 on bad header values: a non-ASCII value of a header the platform reads or forwards is a
400 problem from every process, and the request id echoed in `X-Request-ID` is always usable.

HTTP carries header values as bytes; httpx refuses non-ASCII ones, so the requests are handed to
the apps as ASGI scopes (tests/raw.py), and written to a real gateway over a socket in the e2e test.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import fetch
from tests.raw import asgi_request

PROBLEM = b"application/problem+json"
UTF8 = "请求-甲".encode()
LATIN1 = "café".encode("latin-1")
HEADERS = {b"x-request-id": "X-Request-ID", b"accept-language": "Accept-Language", b"if-match": "If-Match",
           b"if-none-match": "If-None-Match", b"idempotency-key": "Idempotency-Key", b"accept": "Accept",
           b"content-type": "Content-Type"}


def assert_refused(response, label: str, *, request_id: bytes | None = None) -> None:
    """400 problem+json naming the header, whose request id is the one in the response header."""
    assert (response.status, response.headers["content-type"]) == (400, PROBLEM)
    echoed = response.headers["x-request-id"]
    if request_id is None:
        assert re.fullmatch(rb"[0-9a-f]{32}", echoed), echoed  # a fresh id, not the unusable one
    else:
        assert echoed == request_id
    # No usable Accept-Language was sent: the problem is in Chinese, the default.
    assert response.json() == {"type": "urn:spp:problem:invalid-header", "title": "请求无效", "status": 400,
                               "detail": f"{label} 请求头只能包含可打印的 ASCII 字符",
                               "request_id": echoed.decode()}


class TestThroughTheGateway:
    @pytest.mark.parametrize("value", [UTF8, LATIN1, b"ok\x01"], ids=["utf8", "latin1", "control"])
    @pytest.mark.parametrize("name", list(HEADERS))
    async def test_each_header_on_a_forwarded_read(self, gateway_app, token, name, value):
        bearer = (b"authorization", f"Bearer {token()}".encode())
        request_id = None if name == b"x-request-id" else b"hdr-1"
        extra = [] if request_id is None else [(b"x-request-id", request_id)]
        response = await asgi_request(gateway_app, "GET", b"/api/v1/schools",
                                      headers=[bearer, *extra, (name, value)])
        assert_refused(response, HEADERS[name], request_id=request_id)

    @pytest.mark.parametrize("name", [b"idempotency-key", b"x-request-id", b"accept-language", b"if-match"])
    async def test_a_write_is_refused_before_anything_is_stored(self, gateway_app, token, db_engine, name):
        response = await asgi_request(gateway_app, "POST", b"/api/v1/districts", headers=[
            (b"authorization", f"Bearer {token()}".encode()), (b"content-type", b"application/json"),
            (b"idempotency-key", b"key-1"), (name, UTF8)],
            body='{"code": "110105", "name": "朝阳区"}'.encode())
        assert_refused(response, HEADERS[name])
        assert await fetch(db_engine, "select code from partnership.districts") == []
        assert await fetch(db_engine, "select key from partnership.idempotency_keys") == []

    async def test_a_composed_view(self, gateway_app, token):
        response = await asgi_request(gateway_app, "GET", b"/api/v1/districts/110105/overview", headers=[
            (b"authorization", f"Bearer {token()}".encode()), (b"accept-language", UTF8)])
        assert_refused(response, "Accept-Language")

    async def test_ascii_values_still_pass(self, gateway_app, token):
        response = await asgi_request(gateway_app, "GET", b"/api/v1/schools", headers=[
            (b"authorization", f"Bearer {token()}".encode()), (b"x-request-id", b"  abc-123 "),
            (b"accept-language", b"en;q=0.8, zh-CN"), (b"if-none-match", b'W/"v1"')])
        assert response.status == 200
        assert response.headers["x-request-id"] == b"abc-123"
        assert response.json() == {"items": [], "next_cursor": None}


class TestEachService:
    async def test_a_service_reached_directly(self, partnership_app, rotation_app, training_app, token):
        for app, path in ((partnership_app, b"/v1/schools"), (rotation_app, b"/v1/staff"),
                          (training_app, b"/v1/studios")):
            for name, label in HEADERS.items():
                response = await asgi_request(app, "GET", path, headers=[
                    (b"authorization", f"Bearer {token()}".encode()), (name, UTF8)])
                assert_refused(response, label)
