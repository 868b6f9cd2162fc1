"""Every `/v1/internal/*` endpoint of the three services checks the caller's scope like a public
one (issue 9, item 3): a district admin of 延庆 asking each of them directly about 朝阳 is refused,
while city-wide roles, the services' own token and the district's own readers still get answers.
"""

from __future__ import annotations

import uuid

import pytest

from services.common.app import ServiceToken
from tests.gateway.conftest import AS_OF, CHAOYANG, YANQING

PROBLEM = "application/problem+json"
OUTSIDE = "outside your districts"
EVERY = "figures for every district need a city-wide role"
PERIOD = {"as_of": AS_OF, "from": "2024-09-01", "to": "2025-08-31"}


def scope_problem(detail: str) -> dict:
    return {"type": "urn:spp:problem:district-scope", "title": "Not allowed", "status": 403, "detail": detail,
            "request_id": "scope-1"}


def calls(world) -> list[tuple[str, str, str, dict, str]]:
    """(service, method, path, query or JSON body, detail of the refusal to a 延庆 admin)."""
    s = world.staff
    chaoyang = {"district_code": CHAOYANG[0]}
    return [
        ("partnership", "GET", "/v1/internal/partnership-stats", {**PERIOD, **chaoyang}, OUTSIDE),
        ("partnership", "GET", "/v1/internal/partnership-stats", PERIOD, EVERY),
        ("partnership", "GET", "/v1/internal/schools", chaoyang, OUTSIDE),
        ("partnership", "GET", "/v1/internal/schools", {}, EVERY),
        ("rotation", "GET", "/v1/internal/rotation-stats", {"academic_year": 2024, **chaoyang}, OUTSIDE),
        ("rotation", "GET", "/v1/internal/rotation-stats", {"academic_year": 2024}, EVERY),
        ("rotation", "GET", "/v1/internal/backbone-placement", {"as_of": AS_OF, **chaoyang}, OUTSIDE),
        ("rotation", "GET", "/v1/internal/backbone-placement", {"as_of": AS_OF}, EVERY),
        ("rotation", "GET", "/v1/internal/school-staff", {"school_code": "S1", "as_of": AS_OF}, OUTSIDE),
        ("rotation", "POST", "/v1/internal/backbone-what-if",
         {"as_of": AS_OF, **chaoyang, "moves": [{"staff_id": s["T1"]["id"], "to_school_code": "S5"}]}, OUTSIDE),
        ("rotation", "GET", f"/v1/internal/staff/{s['T1']['id']}/workplace", {"as_of": AS_OF}, OUTSIDE),
        ("training", "GET", "/v1/internal/training-completion", {"as_of": AS_OF, **chaoyang}, OUTSIDE),
        ("training", "GET", "/v1/internal/training-completion", {"as_of": AS_OF}, EVERY),
        ("training", "GET", "/v1/internal/studio-stats", {"academic_year": 2024, **chaoyang}, OUTSIDE),
        ("training", "GET", "/v1/internal/studio-stats", {"academic_year": 2024}, EVERY),
        ("training", "GET", f"/v1/internal/staff/{s['T3']['id']}/memberships", {},
         "the staff member is outside your districts"),
        ("training", "GET", f"/v1/internal/staff/{s['T1']['id']}/memberships", {},
         "the staff member is outside your districts"),
    ]


async def send(client, method: str, path: str, data: dict, headers: dict):
    if method == "POST":
        return await client.post(path, json=data, headers=headers)
    return await client.get(path, params=data, headers=headers)


@pytest.fixture
def services(partnership, rotation, training) -> dict:
    return {"partnership": partnership, "rotation": rotation, "training": training}


class TestAnotherDistrictsAdmin:
    @pytest.mark.parametrize("role", ["district_admin", "school_admin", "viewer"])
    async def test_every_internal_endpoint_refuses(self, services, chaoyang, auth, role):
        headers = {**auth(role, districts=(YANQING[0],)), "X-Request-ID": "scope-1"}
        for service, method, path, data, detail in calls(chaoyang):
            response = await send(services[service], method, path, data, headers)
            assert (response.status_code, response.headers["content-type"]) == (403, PROBLEM), (path, data)
            assert response.json() == scope_problem(detail), (path, data)

    async def test_unknown_staff_memberships_are_404(self, training, chaoyang, auth):
        response = await training.get(f"/v1/internal/staff/{uuid.uuid4()}/memberships",
                                      headers=auth("district_admin", districts=(YANQING[0],)))
        assert response.status_code == 404
        assert response.json()["type"] == "urn:spp:problem:staff-not-found"


class TestAllowedCallers:
    async def test_own_district(self, training, chaoyang, auth):
        headers = auth("district_admin", districts=(YANQING[0],))
        s, studios = chaoyang.staff, chaoyang.studios
        members = await training.get(f"/v1/internal/staff/{s['Y1T']['id']}/memberships", headers=headers)
        assert members.status_code == 200
        assert [(m["studio_id"], m["role"]) for m in members.json()["items"]] == [(studios["B"]["id"], "member")]
        completion = await training.get("/v1/internal/training-completion", headers=headers,
                                        params={"as_of": AS_OF, "district_code": YANQING[0]})
        assert completion.status_code == 200
        # 延庆's one active staff member, Y1T, has 360 h on 2024-01-01: inside the window.
        assert completion.json()["districts"] == [{"district_code": YANQING[0], "staff": 1, "completed": 1}]


    @pytest.mark.parametrize("who", ["city_admin", "viewer", "integrator", "service"])
    async def test_city_wide_callers_and_the_service_token(self, services, chaoyang, token, settings, who):
        bearer = ServiceToken(settings, "gateway")() if who == "service" else token(who)
        headers = {"Authorization": f"Bearer {bearer}"}
        for service, method, path, data, _ in calls(chaoyang):
            response = await send(services[service], method, path, data, headers)
            assert response.status_code == 200, (who, path, data, response.text)
        completion = await services["training"].get("/v1/internal/training-completion", headers=headers,
                                                    params={"as_of": AS_OF, "district_code": CHAOYANG[0]})
        assert completion.json()["districts"] == [{"district_code": CHAOYANG[0], "staff": 7, "completed": 3}]

    async def test_the_gateways_views_for_a_district_admin(self, gateway, chaoyang, auth):
        # The gateway forwards the caller's token: the district's own admin still sees the training
        # figures (training-completion names the district) and the staff profile's memberships.
        headers = auth("district_admin", districts=(CHAOYANG[0],))
        overview = await gateway.get(f"/api/v1/districts/{CHAOYANG[0]}/overview", headers=headers,
                                     params={"as_of": AS_OF, "academic_year": 2024})
        assert overview.status_code == 200
        assert (overview.json()["training"]["staff"], overview.json()["training"]["completed"]) == (7, 3)
        assert overview.json()["degraded"] == []
        profile = await gateway.get(f"/api/v1/staff/{chaoyang.staff['T3']['id']}/profile", headers=headers,
                                    params={"as_of": AS_OF})
        assert profile.status_code == 200
        assert [(m["studio_id"], m["role"]) for m in profile.json()["memberships"]] == [
            (chaoyang.studios["A"]["id"], "member")]
        assert profile.json()["degraded"] == []
