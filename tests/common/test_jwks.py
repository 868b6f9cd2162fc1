"""Tokens issued elsewhere (issue 11 item 7): verified with the keys of a JWKS URL, fetched
asynchronously and cached, with `aud`/`iss` checks, 60 s leeway and a maximum lifetime."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from gateway.app import create_app as gateway_app
from services.common.auth import mint_with
from services.partnership.app import create_app as partnership_app
from tests.conftest import TEST_SECRET, asgi, fetch

ISSUER = "https://idp.example.gov.cn/realms/jiaoyu"
AUDIENCE = "spp-api"
PROBLEM = "application/problem+json"


class JWKSServer:
    """A loopback HTTP server answering one JWKS document, counting how often it is fetched."""

    def __init__(self) -> None:
        self.document: dict = {"keys": []}
        self.hits = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        self.hits += 1
        body = json.dumps(self.document).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    async def __aenter__(self) -> JWKSServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/realms/jiaoyu/certs"
        return self

    async def __aexit__(self, *exc) -> None:
        self._server.close()
        await self._server.wait_closed()


def rsa_key(kid: str) -> tuple[rsa.RSAPrivateKey, dict]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "use": "sig", "alg": "RS256"}
    return key, jwk


@pytest.fixture(scope="module")
def keys() -> dict[str, tuple[rsa.RSAPrivateKey, dict]]:
    return {"k1": rsa_key("k1"), "k2": rsa_key("k2")}


def idp_token(key: rsa.RSAPrivateKey, kid: str, *, aud: str = AUDIENCE, iss: str = ISSUER, lifetime: int = 600,
              role: str = "city_admin", sub: str = "idp:zhang.wei") -> str:
    now = int(time.time())
    return jwt.encode({"sub": sub, "role": role, "districts": [], "iss": iss, "aud": aud, "iat": now,
                       "exp": now + lifetime}, key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture
async def jwks_server(keys):
    async with JWKSServer() as server:
        server.document = {"keys": [keys["k1"][1]]}
        yield server


@pytest.fixture
async def platform(settings, jwks_server):
    """Partnership and a gateway, both verifying tokens with the JWKS (defence in depth)."""
    configured = settings.model_copy(update={"jwt_jwks_url": jwks_server.url, "jwt_audience": AUDIENCE,
                                             "jwt_issuer": ISSUER, "jwt_max_lifetime_seconds": 3600})
    partnership = partnership_app(configured)
    async with partnership.router.lifespan_context(partnership):
        dead = httpx.MockTransport(lambda request: httpx.Response(503))
        gateway = gateway_app(configured, transports={"partnership": asgi(partnership), "rotation": dead,
                                                      "training": dead})
        async with gateway.router.lifespan_context(gateway):
            async with httpx.AsyncClient(transport=asgi(gateway), base_url="http://gateway") as client:
                client.app = gateway  # type: ignore[attr-defined]
                client.settings = configured  # type: ignore[attr-defined]
                client.partnership = partnership  # type: ignore[attr-defined]
                yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept-Language": "en"}


async def test_tokens_signed_by_the_providers_key_are_accepted_and_the_keys_cached(platform, jwks_server, keys,
                                                                                  db_engine):
    token = idp_token(keys["k1"][0], "k1")
    created = await platform.post("/api/v1/districts", json={"code": "110105", "name": "朝阳区"},
                                  headers=bearer(token))
    assert created.status_code == 201, created.text
    for _ in range(5):
        assert (await platform.get("/api/v1/districts/110105", headers=bearer(token))).status_code == 200
    # One fetch by the gateway and one by the service, whatever the number of requests.
    assert jwks_server.hits == 2
    assert await fetch(db_engine, "select code, name from partnership.districts") == [
        {"code": "110105", "name": "朝阳区"}]
    # Tokens this deployment mints itself (services' reference checks, `spp token`) still verify,
    # and carry the configured iss/aud.
    own = mint_with(platform.settings, sub="developer", role="city_admin")
    assert jwt.decode(own, options={"verify_signature": False})["iss"] == ISSUER
    assert (await platform.get("/api/v1/districts/110105", headers=bearer(own))).status_code == 200


@pytest.mark.parametrize("change, detail", [
    ({"aud": "another-api"}, "the token is not valid: Audience doesn't match"),
    ({"iss": "https://evil.example.com"}, "the token is not valid: Invalid issuer"),
    ({"lifetime": 3601}, "the token is not valid: the token lives longer than 3600 s"),
])
async def test_wrong_audience_issuer_or_lifetime_is_401(platform, keys, change, detail):
    response = await platform.get("/api/v1/districts", headers=bearer(idp_token(keys["k1"][0], "k1", **change)))
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "urn:spp:problem:invalid-token"
    assert response.json()["detail"] == detail
    # The service, reached directly, refuses it as well.
    async with httpx.AsyncClient(transport=asgi(platform.partnership), base_url="http://p") as service:
        direct = await service.get("/v1/districts", headers=bearer(idp_token(keys["k1"][0], "k1", **change)))
    assert direct.status_code == 401


async def test_expiry_has_60_seconds_of_leeway(platform, keys):
    now = int(time.time())
    for exp, status in ((now - 30, 200), (now - 90, 401)):
        token = jwt.encode({"sub": "x", "role": "viewer", "iss": ISSUER, "aud": AUDIENCE, "iat": now - 600, "exp": exp},
                           keys["k1"][0], algorithm="RS256", headers={"kid": "k1"})
        assert (await platform.get("/api/v1/districts", headers=bearer(token))).status_code == status


async def test_unknown_keys_and_forged_tokens_are_refused(platform, jwks_server, keys):
    stranger = idp_token(rsa_key("k1")[0], "k1")  # right kid, another key
    assert (await platform.get("/api/v1/districts", headers=bearer(stranger))).status_code == 401
    # HS256 with the shared secret but naming a JWKS key: checked with that key's own algorithm.
    confused = jwt.encode({"sub": "x", "role": "city_admin", "iss": ISSUER, "aud": AUDIENCE, "iat": int(time.time()),
                           "exp": int(time.time()) + 60}, TEST_SECRET, algorithm="HS256", headers={"kid": "k1"})
    assert (await platform.get("/api/v1/districts", headers=bearer(confused))).status_code == 401
    rotated = idp_token(keys["k2"][0], "k2")
    refused = await platform.get("/api/v1/districts", headers=bearer(rotated))
    assert refused.status_code == 401
    assert refused.json()["detail"] == "the token is not valid: no signing key 'k2' in the identity provider's JWKS"

    # The provider rotates its keys: an unknown kid makes the gateway fetch again (at most once per
    # min_refresh_seconds, so made-up kids cannot make it fetch on every request).
    jwks_server.document = {"keys": [keys["k1"][1], keys["k2"][1]]}
    hits = jwks_server.hits
    assert (await platform.get("/api/v1/districts", headers=bearer(rotated))).status_code == 401
    assert jwks_server.hits == hits  # within the 30 s since the last fetch
    for app in (platform.app, platform.partnership):
        verifier = app.state.verifier
        while not hasattr(verifier, "keys"):  # the gateway's wrappers (revoked clients, services/common/verified_tokens.py)
            verifier = verifier.inner
        verifier.keys.min_refresh_seconds = 0
    assert (await platform.get("/api/v1/districts", headers=bearer(rotated))).status_code == 200
    assert jwks_server.hits == hits + 2


async def test_an_unreachable_jwks_is_503_for_its_tokens_only(settings, keys):
    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    configured = settings.model_copy(update={"jwt_jwks_url": f"http://127.0.0.1:{port}/certs"})
    app = partnership_app(configured)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=asgi(app), base_url="http://p") as client:
            response = await client.get("/v1/districts", headers=bearer(idp_token(keys["k1"][0], "k1")))
            assert response.status_code == 503
            assert response.json()["type"] == "urn:spp:problem:jwks-unavailable"
            local = mint_with(configured, sub=f"dev-{uuid.uuid4().hex[:6]}", role="viewer")
            assert (await client.get("/v1/districts", headers=bearer(local))).status_code == 200
