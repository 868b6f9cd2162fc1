"""RS256 deployments: callers' tokens are verified with a public key, and the services sign their own
reference checks with the matching private key (SPP_JWT_PUBLIC_KEY / SPP_JWT_PRIVATE_KEY)."""

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from services.common.auth import mint_with
from services.partnership.app import create_app as partnership_app
from services.rotation.app import create_app as rotation_app
from tests.conftest import TEST_SECRET, asgi, fetch


@pytest.fixture(scope="module")
def rsa_keys() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


async def test_rs256_end_to_end_with_service_reference_checks(settings, rsa_keys, db_engine):
    private, public = rsa_keys
    rs = settings.model_copy(update={"jwt_public_key": public, "jwt_private_key": private, "jwt_algorithm": "RS256"})
    partnership = partnership_app(rs)
    async with partnership.router.lifespan_context(partnership):
        rotation = rotation_app(rs, transports={"partnership": asgi(partnership)})
        async with rotation.router.lifespan_context(rotation):
            token = mint_with(rs, sub="rs-admin", role="city_admin")
            assert jwt.get_unverified_header(token)["alg"] == "RS256"
            headers = {"Authorization": f"Bearer {token}"}
            async with (httpx.AsyncClient(transport=asgi(partnership), base_url="http://p", headers=headers) as p,
                        httpx.AsyncClient(transport=asgi(rotation), base_url="http://r", headers=headers) as r):
                assert (await p.post("/v1/districts", json={"code": "110105", "name": "朝阳区"})).status_code == 201
                assert (await p.post("/v1/schools", json={
                    "code": "S1", "name": "某校", "district_code": "110105", "stage": "primary",
                    "locality": "urban"})).status_code == 201
                # rotation checks the school at partnership with its own RS256-signed token
                created = await r.post("/v1/staff", json={
                    "staff_no": "RS1", "name": "张伟", "home_school_code": "S1", "role": "teacher",
                    "section": "primary", "backbone_level": "none", "in_post_since": "2015-09-01"})
                assert created.status_code == 201, created.text
                hs = jwt.encode({"sub": "x", "role": "city_admin", "exp": 9999999999}, TEST_SECRET, algorithm="HS256")
                refused = await p.get("/v1/schools", headers={"Authorization": f"Bearer {hs}", "Accept-Language": "en"})
                assert refused.status_code == 401
    assert await fetch(db_engine, "select staff_no, home_district_code from rotation.staff") == [
        {"staff_no": "RS1", "home_district_code": "110105"}]


async def test_a_service_without_a_private_key_refuses_to_start(settings, rsa_keys):
    _, public = rsa_keys
    rs = settings.model_copy(update={"jwt_public_key": public, "jwt_algorithm": "RS256"})
    app = rotation_app(rs)
    with pytest.raises(RuntimeError, match="SPP_JWT_PRIVATE_KEY"):
        async with app.router.lifespan_context(app):
            pass
