"""The city overview (bounded upstream calls), the staff and school profiles, and who may see what."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import asgi
from tests.feed import synced
from tests.gateway import factories as f
from tests.gateway.conftest import AS_OF, refuse
from tests.gateway.test_district_views import JUNIOR, PARTNERSHIP, PRIMARY, ROTATION, TRAINING, by_kind

PROBLEM = "application/problem+json"


def upstream_calls(app) -> float:
    """Calls the gateway made to its upstreams (spp_upstream_requests_total, every outcome)."""
    return sum(sample.value for metric in app.state.metrics.registry.collect()
               if metric.name == "spp_upstream_requests"
               for sample in metric.samples if sample.name == "spp_upstream_requests_total")


class TestCityOverview:
    async def test_rows_of_the_hand_worked_city(self, gateway, chaoyang):
        response = await gateway.get("/api/v1/city/overview", params={"as_of": AS_OF, "academic_year": 2024})
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["academic_year"], body["as_of"], body["degraded"]) == (2024, AS_OF, [])
        chaoyang_row, yanqing_row = body["districts"]
        assert chaoyang_row == {"code": "110105", "name": "朝阳区", "partnership": PARTNERSHIP, "rotation": ROTATION,
                                "training": TRAINING, "balance": {"primary": PRIMARY, "junior": JUNIOR}}
        # 延庆: Y1 (rural) is the partner of the active P3 → 1/1; P3's student exchange.
        # 周杰 eligible and rotated (RY), municipal backbone → 1/1, 1/1 with the default targets.
        # 周杰 completed (360 h); studio B: one session of 1.5 h, one attendee.
        # Balance: 周杰 works at Chaoyang's S2; Chaoyang's 陈静 (R2) works at Y1 in the junior section:
        # primary Y1 0/300 → mean 0, cv null; junior Y1 1/200 → X = 0.5 = X̄, cv 0.
        assert yanqing_row == {
            "code": "110119", "name": "延庆区",
            "partnership": {"township_rural_schools": 1, "covered_schools": 1, "coverage_rate": 1.0,
                            "active_pairings": 1, "activities": 1, "teacher_participations": 2,
                            "student_participations": 60, "by_kind": by_kind(student_exchange=(1, 2, 60))},
            "rotation": {"eligible": 1, "rotated": 1, "rotation_rate": 1.0, "backbone_rotated": 1,
                         "backbone_share": 1.0, "target_rate": 0.1, "target_backbone_share": 0.2,
                         "meets_target_rate": True, "meets_target_backbone_share": True},
            "training": {"staff": 1, "completed": 1, "completion_rate": 1.0, "studios": 1, "sessions": 1,
                         "hours": 1.5},
            "balance": {
                "primary": {"school_count": 1, "enrollment": 300, "backbone": 0, "mean": 0.0, "cv": None,
                            "target_cv": 0.5, "meets_target_cv": None, "schools_below_one": 1},
                "junior": {"school_count": 1, "enrollment": 200, "backbone": 1, "mean": 0.5, "cv": 0.0,
                           "target_cv": 0.45, "meets_target_cv": True, "schools_below_one": 1}},
        }

    async def test_sixteen_districts_cost_no_more_calls_than_one(self, gateway, gateway_app, partnership, rotation,
                                                                 db_engine):
        async def add_district(n: int) -> None:
            code = f"1101{n:02d}"
            await f.district(partnership, code, f"测试区{n:02d}")
            await f.school(partnership, f"X{n:02d}", district_code=code, locality="rural", primary=100 + n)
            await f.staff(rotation, school_code=f"X{n:02d}", name=f"教师{n:02d}", backbone_level="district")

        await add_district(1)
        await synced(db_engine)  # rotation sums the balance over its school directory
        before = upstream_calls(gateway_app)
        one = await gateway.get("/api/v1/city/overview", params={"as_of": AS_OF})
        calls_for_one = upstream_calls(gateway_app) - before
        assert one.status_code == 200 and len(one.json()["districts"]) == 1

        for n in range(2, 17):
            await add_district(n)
        await synced(db_engine)
        before = upstream_calls(gateway_app)
        sixteen = await gateway.get("/api/v1/city/overview", params={"as_of": AS_OF})
        calls_for_sixteen = upstream_calls(gateway_app) - before
        assert sixteen.status_code == 200
        rows = sixteen.json()["districts"]
        assert len(rows) == 16
        assert rows[15]["balance"]["primary"]["mean"] == pytest.approx(100 / 116, abs=1e-6)
        assert calls_for_one == calls_for_sixteen == 5

    async def test_training_down(self, gateway_with, chaoyang):
        async with gateway_with(training=httpx.MockTransport(refuse)) as client:
            response = await client.get("/api/v1/city/overview", params={"as_of": AS_OF})
        assert response.status_code == 200
        body = response.json()
        assert body["degraded"] == ["training"]
        assert [row["training"] for row in body["districts"]] == [None, None]
        assert body["districts"][0]["rotation"] == ROTATION

    @pytest.mark.parametrize("role, districts", [("district_admin", ("110105",)), ("viewer", ("110105",)),
                                                 ("school_admin", ("110105",))])
    async def test_needs_a_city_wide_role(self, gateway, auth, chaoyang, role, districts):
        response = await gateway.get("/api/v1/city/overview", headers=auth(role, districts=districts))
        assert response.status_code == 403
        assert response.headers["content-type"] == PROBLEM

    @pytest.mark.parametrize("role", ["viewer", "integrator"])
    async def test_city_wide_readers(self, gateway, auth, chaoyang, role):
        response = await gateway.get("/api/v1/city/overview", params={"as_of": AS_OF}, headers=auth(role))
        assert response.status_code == 200
        assert response.json()["districts"][0]["training"] == TRAINING


class TestDistrictScope:
    VIEWS = ("/api/v1/districts/110105/overview", "/api/v1/districts/110105/balance")

    async def test_another_districts_admin_is_refused(self, gateway, auth, chaoyang):
        headers = auth("district_admin", districts=("110119",))
        for path in self.VIEWS:
            response = await gateway.get(path, params={"as_of": AS_OF}, headers=headers)
            assert response.status_code == 403, path
            assert response.headers["content-type"] == PROBLEM
        what_if = await gateway.post("/api/v1/districts/110105/balance/what-if", headers=headers,
                                     json={"as_of": AS_OF, "moves": []})
        assert what_if.status_code == 403

    @pytest.mark.parametrize("role", ["district_admin", "viewer"])
    async def test_own_district_in_full(self, gateway, auth, chaoyang, role):
        # A district reader may not list every completed staff member (city-wide only); the view
        # asks about the district's own staff instead, so the figures are the same.
        headers = auth(role, districts=("110105",))
        response = await gateway.get(self.VIEWS[0], params={"as_of": AS_OF, "academic_year": 2024}, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["degraded"] == []
        assert (body["partnership"], body["rotation"], body["training"]) == (PARTNERSHIP, ROTATION, TRAINING)
        balance = await gateway.get(self.VIEWS[1], params={"as_of": AS_OF}, headers=headers)
        assert balance.status_code == 200
        assert balance.json()["primary"]["cv"] == 0.5

    async def test_profiles_outside_the_district(self, gateway, auth, chaoyang):
        headers = auth("district_admin", districts=("110119",))
        staff = await gateway.get(f"/api/v1/staff/{chaoyang.staff['T1']['id']}/profile", headers=headers)
        assert staff.status_code == 403
        school = await gateway.get("/api/v1/schools/S1/profile", headers=headers)
        assert school.status_code == 403
        own = await gateway.get("/api/v1/schools/Y1/profile", params={"as_of": AS_OF}, headers=headers)
        assert own.status_code == 200

    async def test_forwards_the_callers_token(self, gateway_with, rotation_app, chaoyang, token):
        seen: list[str | None] = []
        inner = asgi(rotation_app)

        async def record(request: httpx.Request) -> httpx.Response:
            seen.append(request.headers.get("authorization"))
            return await inner.handle_async_request(request)

        caller = token("district_admin", ("110105",))
        async with gateway_with(rotation=httpx.MockTransport(record)) as client:
            response = await client.get(self.VIEWS[0], params={"as_of": AS_OF},
                                        headers={"Authorization": f"Bearer {caller}", "Accept-Language": "en"})
        assert response.status_code == 200
        assert response.json()["rotation"] == ROTATION
        assert seen and set(seen) == {f"Bearer {caller}"}

    async def test_no_token(self, gateway, chaoyang):
        response = await gateway.get(self.VIEWS[0], headers={"Authorization": ""})
        assert response.status_code == 401


class TestStaffProfile:
    async def test_profile(self, gateway, chaoyang):
        s, r, studios = chaoyang.staff, chaoyang.rotations, chaoyang.studios
        response = await gateway.get(f"/api/v1/staff/{s['T3']['id']}/profile", params={"as_of": AS_OF})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["staff"]["name"] == "李娜" and body["staff"]["home_school_code"] == "S2"
        assert body["working_at"] == "S2"  # R3 is part-time: 李娜 still works at her home school
        assert [(x["id"], x["to_school_code"], x["mode"], x["status"], x["current"]) for x in body["rotations"]] == [
            (r["R3"]["id"], "S5", "part_time", "approved", False)]
        assert [(m["studio_id"], m["studio_name"], m["role"], m["current"]) for m in body["memberships"]] == [
            (studios["A"]["id"], "张伟名师工作室", "member", True)]
        assert body["training_hours"] == {"window_years": 5, "window_start": "2020-03-01", "total_hours": 353,
                                          "by_source": {"municipal_platform": 350, "studio_session": 3},
                                          "threshold": 360, "met": False}
        assert body["degraded"] == []

    async def test_working_at_the_receiving_school(self, gateway, chaoyang):
        response = await gateway.get(f"/api/v1/staff/{chaoyang.staff['T1']['id']}/profile", params={"as_of": AS_OF})
        body = response.json()
        assert body["working_at"] == "S3"
        assert [x["current"] for x in body["rotations"]] == [True]
        assert [(m["role"], m["studio_name"]) for m in body["memberships"]] == [("host", "张伟名师工作室")]
        assert body["training_hours"]["met"] is True

    async def test_unknown_staff_is_404(self, gateway, chaoyang):
        response = await gateway.get(f"/api/v1/staff/{uuid.uuid4()}/profile")
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM

    async def test_training_down(self, gateway_with, chaoyang):
        async with gateway_with(training=httpx.MockTransport(refuse)) as client:
            response = await client.get(f"/api/v1/staff/{chaoyang.staff['T1']['id']}/profile",
                                        params={"as_of": AS_OF})
        assert response.status_code == 200
        body = response.json()
        assert (body["memberships"], body["training_hours"], body["degraded"]) == (None, None, ["training"])
        assert len(body["rotations"]) == 1

    async def test_rotation_down_is_503(self, gateway_with, chaoyang):
        async with gateway_with(rotation=httpx.MockTransport(refuse)) as client:
            response = await client.get(f"/api/v1/staff/{chaoyang.staff['T1']['id']}/profile")
        assert response.status_code == 503
        assert response.json()["upstream"] == "rotation"


class TestSchoolProfile:
    async def test_profile(self, gateway, chaoyang):
        r, p = chaoyang.rotations, chaoyang.pairings
        response = await gateway.get("/api/v1/schools/S3/profile", params={"as_of": AS_OF})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["school"] == {"code": "S3", "name": "北京市朝阳区黑庄户学校", "district_code": "110105",
                                  "stage": "nine_year", "locality": "township", "primary_enrollment": 200,
                                  "junior_enrollment": 300, "senior_enrollment": 0}
        assert [(x["id"], x["role"], x["active"]) for x in body["pairings"]] == [(p["P1"]["id"], "partner", True)]
        # In: R6 (刘洋, 2023–24, completed) and R1 (张伟, now); out: R4 (杨帆, planned).
        assert [(x["id"], x["status"], x["current"]) for x in body["rotations_in"]] == [
            (r["R6"]["id"], "completed", False), (r["R1"]["id"], "active", True)]
        assert [(x["id"], x["status"]) for x in body["rotations_out"]] == [(r["R4"]["id"], "planned")]
        # Home staff: 赵敏, 杨帆; backbone working here on as_of: 张伟 (primary, R1).
        assert body["staff"]["staff"] == 2
        assert body["staff"]["backbone_by_section"]["primary"] == 1
        assert body["staff"]["backbone_by_section"]["junior"] == 0
        assert body["degraded"] == []

    async def test_unknown_school_is_404(self, gateway, chaoyang):
        response = await gateway.get("/api/v1/schools/NOPE/profile")
        assert response.status_code == 404

    async def test_rotation_down(self, gateway_with, chaoyang):
        async with gateway_with(rotation=httpx.MockTransport(refuse)) as client:
            response = await client.get("/api/v1/schools/S1/profile", params={"as_of": AS_OF})
        assert response.status_code == 200
        body = response.json()
        assert body["degraded"] == ["rotation"]
        assert (body["rotations_in"], body["rotations_out"], body["staff"]) == (None, None, None)
        assert [x["role"] for x in body["pairings"]] == ["lead"]


async def test_views_are_in_the_openapi_document(gateway):
    document = (await gateway.get("/api/v1/openapi.json")).json()
    for path in ("/api/v1/districts/{code}/overview", "/api/v1/districts/{code}/balance",
                 "/api/v1/districts/{code}/balance/what-if", "/api/v1/city/overview",
                 "/api/v1/staff/{staff_id}/profile", "/api/v1/schools/{code}/profile"):
        assert path in document["paths"], path
    schemas = document["components"]["schemas"]
    assert schemas["DistrictOverview"]["examples"]
    assert "rounded half up" in document["paths"]["/api/v1/districts/{code}/overview"]["get"]["description"]
