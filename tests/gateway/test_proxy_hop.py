"""The gateway hop does as little as it can (issue 10 item 6): bodies and the query string pass
through as bytes, never parsed or re-serialised, and a token's signature is checked once while its expiry is checked on
every request."""

from __future__ import annotations

import asyncio
import time

import httpx
import jwt
import pytest

from gateway.app import create_app
from gateway.proxy import VerifiedTokens
from services.common.auth import KeyVerifier, mint_token
from services.common.settings import Settings
from tests.conftest import TEST_SECRET, asgi

# Valid JSON that no serialiser writes this way: spaces, a trailing zero, an escaped character,
# a duplicated key, a number too big for a double, a newline at the end.
ODD_RESPONSE = b'{ "items" :[ {"code":"S1" , "ratio":1.50,"name":"\\u5b9e\\u9a8c","n":1,"n":2} ],\n' \
               b'  "next_cursor" : null , "big": 123456789012345678901234567890 }\n'
ODD_REQUEST = b'{"code" : "110105",  "name":"\\u671d\\u9633\\u533a" , "extra": 1.0e0}'


@pytest.fixture
def settings_() -> Settings:
    return Settings(env="test", jwt_secret=TEST_SECRET, upstream_timeout=2.0)


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
                                     headers={"Authorization": f"Bearer {token()}"}) as client:
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


class Counting:
    def __init__(self) -> None:
        self.inner = KeyVerifier(TEST_SECRET, "HS256")
        self.calls = 0

    def verify(self, token: str) -> dict:
        self.calls += 1
        return self.inner.verify(token)


def test_a_signature_is_checked_once_and_expiry_on_every_use():
    now = [time.time()]
    counting = Counting()
    verified = VerifiedTokens(counting, clock=lambda: now[0])
    token = mint_token(TEST_SECRET, sub="u1", role="viewer", ttl_seconds=60)
    for _ in range(3):
        assert verified.verify(token)["sub"] == "u1"
    assert counting.calls == 1
    now[0] += 61  # past exp, though the real clock is not
    with pytest.raises(jwt.ExpiredSignatureError):
        verified.verify(token)
    # Not remembered as valid: the next use goes back to the full check.
    assert verified.verify(token)["sub"] == "u1"
    assert counting.calls == 2


def test_a_bad_token_is_never_remembered_and_the_cache_is_bounded():
    counting = Counting()
    verified = VerifiedTokens(counting, size=2)
    good = [mint_token(TEST_SECRET, sub=f"u{n}", role="viewer", ttl_seconds=60) for n in range(3)]
    forged = mint_token("another-secret-0123456789abcdef0123456789", sub="u0", role="city_admin")
    for _ in range(2):
        with pytest.raises(jwt.InvalidSignatureError):
            verified.verify(forged)
    assert counting.calls == 2
    for token in good:
        verified.verify(token)
    verified.verify(good[2])  # still held
    assert counting.calls == 5
    verified.verify(good[0])  # the least recently used went first
    assert counting.calls == 6


async def test_an_expired_token_is_refused_after_it_was_accepted(settings_):
    transport = httpx.MockTransport(Recorder())
    app = create_app(settings_, transports={"partnership": transport, "rotation": transport, "training": transport})
    token = mint_token(TEST_SECRET, sub="u1", role="viewer", ttl_seconds=1)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=asgi(app), base_url="http://gateway",
                                     headers={"Authorization": f"Bearer {token}"}) as client:
            assert (await client.get("/api/v1/schools")).status_code == 200
            await asyncio.sleep(max(0.0, jwt.decode(token, options={"verify_signature": False})["exp"]
                                    - time.time()) + 0.05)
            expired = await client.get("/api/v1/schools")
    assert expired.status_code == 401
    assert expired.json()["type"] == "urn:spp:problem:expired-token"
