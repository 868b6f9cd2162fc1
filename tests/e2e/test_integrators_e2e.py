"""Through real processes (uvicorn): HEAD, gzip, offline docs and a client-credentials token."""

import base64

import httpx
import pytest

pytestmark = pytest.mark.e2e


async def test_head_gzip_docs_and_client_token_over_real_http(platform, token):
    gateway = platform.url("gateway")
    admin = {"Authorization": f"Bearer {token()}"}
    async with httpx.AsyncClient(base_url=gateway, timeout=10) as client:
        assert (await client.post("/api/v1/districts", json={"code": "110119", "name": "延庆区"},
                                  headers=admin)).status_code == 201
        for i in range(15):
            assert (await client.post("/api/v1/schools", headers=admin, json={
                "code": f"YQ{i:02d}", "name": f"北京市延庆区第{i}小学", "district_code": "110119",
                "stage": "primary", "locality": "rural"})).status_code == 201

        got = await client.get("/api/v1/schools", headers={**admin, "Accept-Encoding": "gzip"})
        head = await client.head("/api/v1/schools", headers={**admin, "Accept-Encoding": "gzip"})
        assert (got.status_code, head.status_code, head.content) == (200, 200, b"")
        assert got.headers["content-encoding"] == head.headers["content-encoding"] == "gzip"
        assert got.headers["content-length"] == head.headers["content-length"]
        assert len(got.json()["items"]) == 15
        single = await client.head("/api/v1/schools/YQ00", headers=admin)
        assert (single.status_code, single.headers["etag"], single.content) == (200, '"v1"', b"")

        docs = await client.get("/docs")
        assert docs.status_code == 200 and "https://" not in docs.text
        script = await client.get("/docs-assets/swagger-ui-bundle.js")
        assert (script.status_code, script.headers["content-type"]) == (200, "text/javascript; charset=utf-8")

        registered = await client.post("/api/v1/integration-clients", headers=admin,
                                       json={"name": "延庆区统计系统", "role": "viewer", "districts": ["110119"]})
        assert registered.status_code == 201
        body = registered.json()
        basic = base64.b64encode(f"{body['client_id']}:{body['client_secret']}".encode()).decode()
        issued = await client.post("/api/v1/oauth/token", data={"grant_type": "client_credentials"},
                                   headers={"Authorization": f"Basic {basic}"})
        assert issued.status_code == 200
        access = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        assert (await client.get("/api/v1/schools/YQ03", headers=access)).status_code == 200
        assert (await client.delete(f"/api/v1/integration-clients/{body['client_id']}",
                                    headers=admin)).status_code == 200
        assert (await client.get("/api/v1/schools/YQ03", headers=access)).status_code == 401
