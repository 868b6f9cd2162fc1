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
