"""The gateway's verifier checks a token in full once a minute at most, never accepts what the full
check would refuse, and never remembers a refusal (services/common/verified_tokens.py)."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest

from gateway.app import create_app
from services.common.auth import KeyVerifier, mint_token
from services.common.verified_tokens import VerifiedTokens
from tests.conftest import TEST_SECRET, asgi


class Counting:
    """The real HS256 verifier, counting full checks and `prepare` steps."""

    def __init__(self) -> None:
        self.inner = KeyVerifier(TEST_SECRET, "HS256")
        self.verified = 0
        self.prepared = 0

    def verify(self, token: str) -> dict:
        self.verified += 1
        return self.inner.verify(token)

    async def prepare(self, token: str) -> None:
        self.prepared += 1


def token_for(sub: str, ttl: int = 3600) -> str:
    return mint_token(TEST_SECRET, sub=sub, role="viewer", ttl_seconds=ttl)


async def test_a_token_is_checked_in_full_once_then_again_after_a_minute():
    now = [time.time()]
    counting = Counting()
    verified = VerifiedTokens(counting, clock=lambda: now[0])
    token = token_for("u1")
    await verified.prepare(token)
    for _ in range(3):
        assert verified.verify(token)["sub"] == "u1"
        await verified.prepare(token)
    assert (counting.verified, counting.prepared) == (1, 1)
    now[0] += 61
    await verified.prepare(token)
    assert verified.verify(token)["sub"] == "u1"
    assert (counting.verified, counting.prepared) == (2, 2)


def test_near_its_expiry_a_token_goes_back_to_the_full_check():
    now = [time.time()]
    counting = Counting()
    verified = VerifiedTokens(counting, clock=lambda: now[0])
    token = token_for("u1", ttl=30)
    verified.verify(token)
    now[0] += 31  # past exp by this clock: the full check (with its own clock and leeway) decides
    assert verified.verify(token)["sub"] == "u1"
    assert counting.verified == 2


def test_a_refused_token_is_never_remembered_and_the_cache_is_bounded():
    counting = Counting()
    verified = VerifiedTokens(counting, size=2)
    forged = mint_token("another-secret-0123456789abcdef0123456789", sub="u0", role="city_admin")
    expired = token_for("u0", ttl=-120)  # past the 60 s leeway
    for _ in range(2):
        with pytest.raises(jwt.InvalidSignatureError):
            verified.verify(forged)
        with pytest.raises(jwt.ExpiredSignatureError):
            verified.verify(expired)
    assert counting.verified == 4
    good = [token_for(f"u{n}") for n in range(3)]
    for token in good:
        verified.verify(token)
    verified.verify(good[2])  # still held
    assert counting.verified == 7
    verified.verify(good[0])  # the least recently used went first
    assert counting.verified == 8


async def five_then_one(app, url: str, good: str, other: str) -> httpx.Response:
    """Five GETs with `good` (each answered 200), then the answer to one with `other`."""
    async with httpx.AsyncClient(transport=asgi(app), headers={"Accept-Language": "en"}) as client:
        for _ in range(5):
            assert (await client.get(url, headers={"Authorization": f"Bearer {good}"})).status_code == 200
        return await client.get(url, headers={"Authorization": f"Bearer {other}"})


async def test_the_gateway_verifies_each_token_once_for_many_requests(settings, token):
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"items": [], "next_cursor": None}))
    app = create_app(settings, transports={"partnership": transport, "rotation": transport, "training": transport})
    async with app.router.lifespan_context(app):
        remembered: VerifiedTokens = app.state.verifier.inner  # inside the revoked-client check
        counting = Counting()
        remembered.inner = counting
        forged = mint_token("another-secret-0123456789abcdef0123456789", sub="x", role="city_admin")
        refused = await five_then_one(app, "http://gateway/api/v1/schools", token(), forged)
    assert refused.status_code == 401
    assert refused.json()["type"] == "urn:spp:problem:invalid-token"
    # Five requests, each verified twice (the app-wide prepare step and the route): one full check.
    # The forged token: checked in full both times, remembered neither time.
    assert counting.verified == 3


async def test_a_service_verifies_each_token_once_for_many_requests(rotation_app, clean_db, token):
    """Each service checks the token again (defence in depth), with the same memory of it."""
    remembered: VerifiedTokens = rotation_app.state.verifier
    counting = Counting()
    remembered.inner = counting
    expired = mint_token(TEST_SECRET, sub="x", role="city_admin", ttl_seconds=-120)
    refused = await five_then_one(rotation_app, "http://rotation/v1/staff", token(), expired)
    assert refused.status_code == 401
    assert refused.json()["type"] == "urn:spp:problem:expired-token"
    assert counting.verified == 2  # the good token once, the expired one (never remembered) once
