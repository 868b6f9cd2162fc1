"""The gateway hop does as little as it can (issue 10 item 6): bodies and the query string pass
through as bytes, never parsed or re-serialised."""

from __future__ import annotations

import httpx
import pytest

from gateway.app import create_app
from services.common.settings import Settings
from tests.conftest import asgi

# Valid JSON that no serialiser writes this way: spaces, a trailing zero, an escaped character,
# a duplicated key, a number too big for a double, a newline at the end.
ODD_RESPONSE = b'{ "items" :[ {"code":"S1" , "ratio":1.50,"name":"\\u5b9e\\u9a8c","n":1,"n":2} ],\n' \
               b'  "next_cursor" : null , "big": 123456789012345678901234567890 }\n'
ODD_REQUEST = b'{"code" : "110105",  "name":"\\u671d\\u9633\\u533a" , "extra": 1.0e0}'


@pytest.fixture
def settings_(settings) -> Settings:
    return settings.model_copy(update={"upstream_timeout": 2.0})


class Recorder:
    """An upstream that answers `ODD_RESPONSE` and keeps what it was sent."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(201 if request.method == "POST" else 200, content=ODD_RESPONSE,
                              headers={"content-type": "application/json", "etag": '"v1"'})


async def test_bodies_and_the_query_pass_through_byte_identical(settings_, token):
    upstream = Recorder()
    transport = httpx.MockTransport(upstream)
    app = create_app(settings_, transports={"partnership": transport, "rotation": transport, "training": transport})
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=asgi(app), base_url="http://gateway",
                                     headers={"Authorization": f"Bearer {token()}", "Accept-Language": "en"}) as client:
            read = await client.get("/api/v1/schools?limit=1&q=a+b&name=%E4%B8%AD&flag&flag=")
            written = await client.post("/api/v1/districts", content=ODD_REQUEST,
                                        headers={"content-type": "application/json"})
    assert (read.status_code, read.content) == (200, ODD_RESPONSE)
    assert (written.status_code, written.content) == (201, ODD_RESPONSE)
    assert read.headers["content-type"] == "application/json"
    assert read.headers["content-length"] == str(len(ODD_RESPONSE))
    assert read.headers["etag"] == '"v1"'
    get, post = upstream.requests
    assert (get.method, get.url.path, get.content) == ("GET", "/v1/schools", b"")
    assert get.url.query == b"limit=1&q=a+b&name=%E4%B8%AD&flag&flag="  # as sent, not re-encoded
    assert (post.method, post.url.path, post.content) == ("POST", "/v1/districts", ODD_REQUEST)


async def test_a_proxied_request_skips_the_router_and_a_view_path_goes_through_it(settings_, token):
    """gateway/fast_path.py: a proxied GET is answered without routing (no route or endpoint in its
    scope), with the public operation as its label; a view's path is routed even for a method the
    view does not answer, where the router's catch-all proxy route answers as it always did."""
    from gateway import proxy

    upstream = Recorder()
    transport = httpx.MockTransport(upstream)
    app = create_app(settings_, transports={"partnership": transport, "rotation": transport, "training": transport})
    scopes: list[dict] = []

    async def capturing(scope, receive, send):
        scopes.append(scope)
        await app(scope, receive, send)

    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=asgi(capturing), base_url="http://gateway",
                                     headers={"Authorization": f"Bearer {token()}", "Accept-Language": "en"}) as client:
            read = await client.get("/api/v1/schools/S1")
            refused = await client.get("/api/v1/schools/S1", headers={"Authorization": "Bearer not-a-token"})
            routed = await client.post("/api/v1/city/overview")
    assert (read.status_code, read.content) == (200, ODD_RESPONSE)
    assert "endpoint" not in scopes[0] and "route" not in scopes[0]
    assert scopes[0]["spp.route"] == "/api/v1/schools/{code}"
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert {k: v for k, v in refused.json().items() if k != "request_id"} == {
        "type": "urn:spp:problem:invalid-token", "title": "Authentication required", "status": 401,
        "detail": "the token is not valid: Not enough segments"}
    assert "endpoint" not in scopes[1] and scopes[1]["spp.route"] == "/api/v1/schools/{code}"
    assert routed.status_code == 404
    assert {k: v for k, v in routed.json().items() if k != "request_id"} == {
        "type": "urn:spp:problem:not-found", "title": "Not found", "status": 404,
        "detail": "no resource at /api/v1/city/overview"}
    assert scopes[2]["endpoint"] is proxy.proxy
    assert [r.url.path for r in upstream.requests] == ["/v1/schools/S1"]  # nothing else reached a service


def test_the_fast_path_leaves_every_other_route_to_the_router(settings_):
    """Every path a view, the OpenAPI document, OAuth, health or the docs answer is matched by one
    of the patterns the fast path defers on; a proxied path by none."""
    from gateway.fast_path import other_routes

    patterns = other_routes(create_app(settings_).router.routes)
    for path in ("/api/v1/districts/110105/overview", "/api/v1/districts/110105/balance",
                 "/api/v1/districts/110105/balance/what-if", "/api/v1/city/overview", "/api/v1/staff/x/profile",
                 "/api/v1/schools/S1/profile", "/api/v1/audit-events", "/api/v1/openapi.json",
                 "/api/v1/integration-clients", "/api/v1/integration-clients/c1", "/api/v1/oauth/token",
                 "/livez", "/readyz", "/metrics", "/docs"):
        assert any(p.match(path) for p in patterns), path
    for path in ("/api/v1/schools/S1", "/api/v1/staff/x", "/api/v1/districts/110105/rotation-proposals",
                 "/api/v1/imports/staff", "/api/v1/changes"):
        assert not any(p.match(path) for p in patterns), path
