"""Tokens for integrators and apps (issue 11 item 7): the client registry, RFC 6749 §4.4 client
credentials, scope of a client's token, and deletion that stops its tokens at the gateway."""

from __future__ import annotations

import base64
from urllib.parse import quote_plus

import httpx
import jwt
import pytest

from gateway.app import create_app
from gateway.clients_registry import secret_matches
from tests.conftest import TEST_SECRET, asgi, fetch
from tests.partnership import factories as f

PROBLEM = "application/problem+json"
CHAOYANG, YANQING = "110105", "110119"
TOKEN_PATH = "/api/v1/oauth/token"
BASIC_CHALLENGE = 'Basic realm="spp", charset="UTF-8"'


@pytest.fixture
async def city(partnership) -> None:
    await f.district(partnership, CHAOYANG, "朝阳区")
    await f.district(partnership, YANQING, "延庆区")
    await f.school(partnership, "S1", district_code=CHAOYANG)
    await f.school(partnership, "S2", district_code=CHAOYANG)
    await f.school(partnership, "Y1", district_code=YANQING)


async def register(gateway: httpx.AsyncClient, *, name: str = "朝阳区教师管理系统", role: str = "integrator",
                   districts: list[str] | None = None) -> dict:
    response = await gateway.post("/api/v1/integration-clients", json={
        "name": name, "role": role, "districts": [CHAOYANG] if districts is None else districts})
    assert response.status_code == 201, response.text
    return response.json()


def basic(client_id: str, secret: str) -> str:
    """RFC 6749 §2.3.1: form-urlencode each, join with ':', then HTTP Basic."""
    return "Basic " + base64.b64encode(f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()).decode()


async def token_by_basic(gateway: httpx.AsyncClient, client: dict) -> httpx.Response:
    return await gateway.post(TOKEN_PATH, data={"grant_type": "client_credentials"},
                              headers={"Authorization": basic(client["client_id"], client["client_secret"])})


async def token_by_post(gateway: httpx.AsyncClient, client: dict) -> httpx.Response:
    return await gateway.post(TOKEN_PATH, headers={"Authorization": ""}, data={
        "grant_type": "client_credentials", "client_id": client["client_id"],
        "client_secret": client["client_secret"]})


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert (body["status"], body["error"], body["type"]) == (status, error, f"urn:spp:problem:oauth-{error.replace('_', '-')}")
    assert body["error_description"] == body["detail"]
    if status == 401:
        assert response.headers["www-authenticate"] == BASIC_CHALLENGE


async def test_register_token_use_delete(gateway, partnership, city, db_engine):
    client = await register(gateway)
    assert set(client) == {"client_id", "name", "role", "districts", "created_at", "created_by", "revoked_at",
                           "revoked_by", "client_secret"}
    assert (client["name"], client["role"], client["districts"], client["created_by"], client["revoked_at"]) == (
        "朝阳区教师管理系统", "integrator", [CHAOYANG], "tester", None)
    secret = client["client_secret"]
    assert len(secret) == 43

    # Stored hashed: scrypt with its parameters and salt, never the secret itself.
    [row] = await fetch(db_engine, "select * from gateway.integration_clients")
    assert str(row["id"]) == client["client_id"]
    assert (row["name"], row["role"], row["districts"], row["created_by"], row["revoked_at"], row["revoked_by"]) == (
        "朝阳区教师管理系统", "integrator", [CHAOYANG], "tester", None, None)
    assert row["secret_hash"].startswith("scrypt$16384$8$1$")
    assert secret not in row["secret_hash"]
    assert secret_matches(secret, row["secret_hash"]) and not secret_matches(secret + "x", row["secret_hash"])

    by_basic = await token_by_basic(gateway, client)
    by_post = await token_by_post(gateway, client)
    for response in (by_basic, by_post):
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["pragma"] == "no-cache"
        body = response.json()
        assert set(body) == {"access_token", "token_type", "expires_in"}
        assert (body["token_type"], body["expires_in"]) == ("Bearer", 900)
        claims = jwt.decode(body["access_token"], TEST_SECRET, algorithms=["HS256"])
        assert (claims["sub"], claims["cid"], claims["role"], claims["districts"], claims["schools"]) == (
            f"client:{client['client_id']}", client["client_id"], "integrator", [CHAOYANG], [])
        assert claims["exp"] - claims["iat"] == 900
    access = by_basic.json()["access_token"]
    assert jwt.decode(by_post.json()["access_token"], options={"verify_signature": False})["jti"] != \
        jwt.decode(access, options={"verify_signature": False})["jti"]

    # The token holds the client's scope: its district only, and an integrator writes nothing.
    schools = await gateway.get("/api/v1/schools", headers=bearer(access))
    assert schools.status_code == 200
    assert [s["code"] for s in schools.json()["items"]] == ["S1", "S2"]
    assert (await gateway.get("/api/v1/schools/S1", headers=bearer(access))).status_code == 200
    other = await gateway.get("/api/v1/schools/Y1", headers=bearer(access))
    assert (other.status_code, other.json()["type"]) == (403, "urn:spp:problem:district-scope")
    write = await gateway.post("/api/v1/districts", json={"code": "110108", "name": "海淀区"}, headers=bearer(access))
    assert write.status_code == 403
    refused = await gateway.get("/api/v1/integration-clients", headers=bearer(access))
    assert refused.status_code == 403

    deleted = await gateway.delete(f"/api/v1/integration-clients/{client['client_id']}")
    assert deleted.status_code == 200
    [row] = await fetch(db_engine, "select revoked_at, revoked_by from gateway.integration_clients")
    assert row["revoked_by"] == "tester" and row["revoked_at"] is not None
    assert deleted.json() == {**{k: v for k, v in client.items() if k != "client_secret"},
                              "revoked_at": row["revoked_at"].isoformat().replace("+00:00", "Z"), "revoked_by": "tester"}

    # Its tokens stop working through the gateway at once, for the proxy and the views alike.
    after = await gateway.get("/api/v1/schools", headers=bearer(access))
    assert after.status_code == 401
    assert after.headers["content-type"] == PROBLEM
    assert after.json()["type"] == "urn:spp:problem:revoked-client"
    assert after.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    view = await gateway.get(f"/api/v1/districts/{CHAOYANG}/overview", headers=bearer(access))
    assert (view.status_code, view.json()["type"]) == (401, "urn:spp:problem:revoked-client")
    assert_oauth_error(await token_by_basic(gateway, client), 401, "invalid_client")
    assert (await gateway.get("/api/v1/integration-clients")).json() == {"items": [], "next_cursor": None}
    again = await gateway.delete(f"/api/v1/integration-clients/{client['client_id']}")
    assert again.status_code == 404

    # Documented limit: a service reached directly holds no registry and accepts the token until
    # it expires (15 minutes). The gateway is the public entry.
    direct = await partnership.get("/v1/schools", headers=bearer(access))
    assert direct.status_code == 200


async def test_another_gateway_replica_refuses_a_deleted_clients_token(gateway, settings, partnership_app,
                                                                       rotation_app, training_app, city):
    client = await register(gateway)
    access = (await token_by_post(gateway, client)).json()["access_token"]
    replica = create_app(settings, transports={"partnership": asgi(partnership_app), "rotation": asgi(rotation_app),
                                               "training": asgi(training_app)})
    async with replica.router.lifespan_context(replica):
        async with httpx.AsyncClient(transport=asgi(replica), base_url="http://replica") as other:
            assert (await other.get("/api/v1/schools", headers=bearer(access))).status_code == 200
            assert (await gateway.delete(f"/api/v1/integration-clients/{client['client_id']}")).status_code == 200
            replica.state.client_status._cache.clear()  # its TTL (SPP_CLIENT_CACHE_SECONDS) has passed
            refused = await other.get("/api/v1/schools", headers=bearer(access))
            assert (refused.status_code, refused.json()["type"]) == (401, "urn:spp:problem:revoked-client")


async def test_a_viewer_client_reads_city_wide_and_writes_nothing(gateway, city, db_engine):
    client = await register(gateway, name="统计系统", role="viewer", districts=[])
    access = (await token_by_basic(gateway, client)).json()["access_token"]
    schools = await gateway.get("/api/v1/schools", headers=bearer(access))
    assert [s["code"] for s in schools.json()["items"]] == ["S1", "S2", "Y1"]
    refused = await gateway.post("/api/v1/schools", headers=bearer(access), json={
        "code": "S9", "name": "某校", "district_code": CHAOYANG, "stage": "primary", "locality": "urban"})
    assert refused.status_code == 403
    assert await fetch(db_engine, "select count(*) as n from partnership.schools where code = 'S9'") == [{"n": 0}]


async def test_wrong_secret_and_malformed_token_requests(gateway, city):
    client = await register(gateway)
    good = {"grant_type": "client_credentials", "client_id": client["client_id"],
            "client_secret": client["client_secret"]}
    no_auth = {"Authorization": ""}

    wrong = await gateway.post(TOKEN_PATH, data={"grant_type": "client_credentials"},
                               headers={"Authorization": basic(client["client_id"], "not-the-secret")})
    assert_oauth_error(wrong, 401, "invalid_client")
    assert wrong.json()["error_description"] == "client authentication failed"
    wrong_post = await gateway.post(TOKEN_PATH, data={**good, "client_secret": "x"}, headers=no_auth)
    assert_oauth_error(wrong_post, 401, "invalid_client")
    for unknown_id in ("00000000-0000-4000-8000-000000000000", "not-a-uuid"):
        response = await gateway.post(TOKEN_PATH, data={**good, "client_id": unknown_id}, headers=no_auth)
        assert_oauth_error(response, 401, "invalid_client")
    assert_oauth_error(await gateway.post(TOKEN_PATH, data={"grant_type": "client_credentials"}, headers=no_auth),
                       401, "invalid_client")
    assert_oauth_error(await gateway.post(TOKEN_PATH, data={"grant_type": "client_credentials"},
                                          headers={"Authorization": "Basic !!!"}), 401, "invalid_client")

    assert_oauth_error(await gateway.post(TOKEN_PATH, data={k: v for k, v in good.items() if k != "grant_type"},
                                          headers=no_auth), 400, "invalid_request")
    assert_oauth_error(await gateway.post(TOKEN_PATH, json=good, headers=no_auth), 400, "invalid_request")
    repeated = await gateway.post(TOKEN_PATH, content="grant_type=client_credentials&grant_type=password",
                                  headers={"Content-Type": "application/x-www-form-urlencoded",
                                           "Authorization": basic(client["client_id"], client["client_secret"])})
    assert_oauth_error(repeated, 400, "invalid_request")
    both = await gateway.post(TOKEN_PATH, data=good,
                              headers={"Authorization": basic(client["client_id"], client["client_secret"])})
    assert_oauth_error(both, 400, "invalid_request")
    unsupported = await gateway.post(TOKEN_PATH, data={**good, "grant_type": "password"}, headers=no_auth)
    assert_oauth_error(unsupported, 400, "unsupported_grant_type")


async def test_basic_credentials_are_form_urldecoded(gateway, city):
    client = await register(gateway)
    # Every character percent-encoded, as RFC 6749 §2.3.1 allows: still the same id and secret.
    encoded = ":".join("".join(f"%{b:02X}" for b in part.encode())
                       for part in (client["client_id"], client["client_secret"]))
    response = await gateway.post(TOKEN_PATH, data={"grant_type": "client_credentials"},
                                  headers={"Authorization": "Basic " + base64.b64encode(encoded.encode()).decode()})
    assert response.status_code == 200, response.text


async def test_registry_rules_and_paging(gateway, auth, city, db_engine):
    district_admin = auth("district_admin", districts=(CHAOYANG,))
    refused = await gateway.post("/api/v1/integration-clients", headers=district_admin,
                                 json={"name": "x", "role": "integrator", "districts": [CHAOYANG]})
    assert (refused.status_code, refused.json()["type"]) == (403, "urn:spp:problem:role")
    assert (await gateway.get("/api/v1/integration-clients", headers=district_admin)).status_code == 403
    bad_role = await gateway.post("/api/v1/integration-clients", json={"name": "x", "role": "city_admin"})
    assert (bad_role.status_code, bad_role.json()["errors"][0]["field"]) == (422, "body.role")
    unknown = await gateway.post("/api/v1/integration-clients",
                                 json={"name": "x", "role": "viewer", "districts": [CHAOYANG, "119999"]})
    assert unknown.status_code == 422
    assert unknown.json()["type"] == "urn:spp:problem:unknown-reference"
    assert unknown.json()["errors"] == [{"field": "body.districts", "message": "unknown district 119999",
                                         "type": "unknown"}]
    assert await fetch(db_engine, "select count(*) as n from gateway.integration_clients") == [{"n": 0}]

    made = [await register(gateway, name=f"系统{i}") for i in range(3)]
    first = await gateway.get("/api/v1/integration-clients", params={"limit": 2})
    assert first.status_code == 200
    page = first.json()
    assert [c["name"] for c in page["items"]] == ["系统0", "系统1"]
    assert all(set(c) == {"client_id", "name", "role", "districts", "created_at", "created_by", "revoked_at", "revoked_by"} for c in page["items"])
    rest = (await gateway.get("/api/v1/integration-clients", params={"limit": 2, "cursor": page["next_cursor"]})).json()
    assert ([c["name"] for c in rest["items"]], rest["next_cursor"]) == (["系统2"], None)
    one = await gateway.get(f"/api/v1/integration-clients/{made[1]['client_id']}")
    assert one.status_code == 200
    assert one.json() == {k: v for k, v in made[1].items() if k != "client_secret"}
    missing = await gateway.delete("/api/v1/integration-clients/00000000-0000-4000-8000-000000000000")
    assert (missing.status_code, missing.headers["content-type"]) == (404, PROBLEM)


async def test_gateway_is_ready_when_its_database_answers(gateway):
    ready = await gateway.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok"


async def test_openapi_documents_the_token_endpoint(gateway):
    document = (await gateway.get("/api/v1/openapi.json")).json()
    assert document["components"]["securitySchemes"]["clientCredentials"] == {
        "type": "oauth2", "flows": {"clientCredentials": {"tokenUrl": "/api/v1/oauth/token", "scopes": {}}}}
    operation = document["paths"][TOKEN_PATH]["post"]
    assert operation["security"] == []
    assert list(operation["requestBody"]["content"]) == ["application/x-www-form-urlencoded"]
    # 413 (body limit), 429 (rate limit) and 503 are the gateway's own answers on every operation.
    assert set(operation["responses"]) == {"200", "400", "401", "413", "429", "503"}
    assert set(document["paths"]["/api/v1/integration-clients/{client_id}"]) == {"get", "delete"}
