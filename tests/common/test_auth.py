"""Authentication and district scoping, design.md §5: every failure is problem+json."""

import jwt

from tests.conftest import TEST_SECRET, fetch

PROBLEM = "application/problem+json"
SCHOOL = {"code": "S1", "name": "某校", "district_code": "110105", "stage": "primary", "locality": "urban"}


async def _district(partnership):
    assert (await partnership.post("/v1/districts", json={"code": "110105", "name": "朝阳区"})).status_code == 201


async def test_no_token_401(partnership):
    response = await partnership.get("/v1/schools", headers={"Authorization": ""})
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["type"] == "urn:spp:problem:missing-token"


async def test_bad_signature_401(partnership, token):
    forged = jwt.encode(jwt.decode(token(), options={"verify_signature": False}), "another-secret-0123456789abcdef-0123",
                        algorithm="HS256")
    response = await partnership.get("/v1/schools", headers={"Authorization": f"Bearer {forged}", "Accept-Language": "en"})
    assert response.status_code == 401
    assert response.json()["type"] == "urn:spp:problem:invalid-token"


async def test_expired_401(partnership, token):
    # 60 s of clock leeway (services/common/auth.py LEEWAY_SECONDS): 61 s past exp is expired.
    response = await partnership.get("/v1/schools", headers={"Authorization": f"Bearer {token(ttl=-61)}"})
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "urn:spp:problem:expired-token"


async def test_expired_within_the_leeway_is_accepted(partnership, token):
    response = await partnership.get("/v1/schools", headers={"Authorization": f"Bearer {token(ttl=-30)}"})
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


async def test_unknown_role_401(partnership):
    bad = jwt.encode({"sub": "x", "role": "superuser", "exp": 9999999999}, TEST_SECRET, algorithm="HS256")
    assert (await partnership.get("/v1/schools", headers={"Authorization": f"Bearer {bad}", "Accept-Language": "en"})).status_code == 401


async def test_viewer_and_integrator_cannot_write(partnership, auth, db_engine):
    await _district(partnership)
    for role in ("viewer", "integrator"):
        response = await partnership.post("/v1/schools", json=SCHOOL, headers=auth(role))
        assert response.status_code == 403
        assert response.headers["content-type"] == PROBLEM
    assert await fetch(db_engine, "select count(*) as n from partnership.schools") == [{"n": 0}]


async def test_district_admin_in_another_district_403(partnership, auth, db_engine):
    await _district(partnership)
    response = await partnership.post("/v1/schools", json=SCHOOL, headers=auth("district_admin", districts=("110119",)))
    assert response.status_code == 403
    assert response.json()["type"] == "urn:spp:problem:district-scope"
    assert await fetch(db_engine, "select count(*) as n from partnership.schools") == [{"n": 0}]


async def test_unknown_route_and_method_are_problems(partnership):
    missing = await partnership.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM
    wrong = await partnership.delete("/v1/schools")
    assert wrong.status_code == 405
    assert wrong.headers["content-type"] == PROBLEM


async def test_oversized_body_413(partnership):
    response = await partnership.post("/v1/schools", content=b"{" + b" " * (1024 * 1024 + 10) + b"}",
                                      headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["title"] == "Request body too large"


async def test_malformed_json_is_422_problem(partnership):
    response = await partnership.post("/v1/schools", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM


async def test_nul_character_and_out_of_range_values_are_422_not_500(partnership, db_engine):
    response = await partnership.post("/v1/districts", json={"code": "110105", "name": "朝\u0000阳"})
    assert response.status_code == 422
    assert response.json()["type"] == "urn:spp:problem:invalid-value"
    assert await fetch(db_engine, "select count(*) as n from partnership.districts") == [{"n": 0}]


async def test_nul_in_path_is_404_and_in_query_422(partnership):
    path = await partnership.get("/v1/schools/a%00b")
    assert (path.status_code, path.headers["content-type"]) == (404, PROBLEM)
    query = await partnership.get("/v1/schools", params={"district_code": "\x00"})
    assert query.status_code == 422
