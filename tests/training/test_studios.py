"""Studios through HTTP: creation with the host checked against rotation, scope, reads, closing."""

from __future__ import annotations

import uuid

import httpx
import pytest

from services.training.app import create_app
from tests.conftest import fetch
from tests.training import factories as f


class TestCreateStudio:
    async def test_created_with_location_and_stored(self, training, world, db_engine):
        response = await training.post("/v1/studios", json={
            "name": "李华名师工作室", "kind": "famous_teacher", "host_staff_id": world.host["id"],
            "subject": "语文", "district_code": "110119", "start_date": "2024-09-01", "end_date": "2027-08-31",
            "capacity": 12})
        assert response.status_code == 201, response.text
        body = response.json()
        assert response.headers["location"] == f"/api/v1/studios/{body['id']}"
        assert response.headers["etag"] == '"v1"'
        assert body["name"] == "李华名师工作室" and body["status"] == "active" and body["capacity"] == 12
        rows = await fetch(db_engine, "select name, kind, host_staff_id::text as host, district_code, start_date::text"
                                      " as s, end_date::text as e, capacity, status from training.studios")
        assert rows == [{"name": "李华名师工作室", "kind": "famous_teacher", "host": world.host["id"],
                         "district_code": "110119", "s": "2024-09-01", "e": "2027-08-31", "capacity": 12,
                         "status": "active"}]

    async def test_defaults_to_a_three_year_cycle_and_ten_places(self, training, world):
        body = await f.studio(training, host_staff_id=world.host["id"], end_date=None)
        assert (body["start_date"], body["end_date"], body["capacity"]) == ("2024-09-01", "2027-08-31", 10)

    async def test_unknown_host_is_422_and_nothing_stored(self, training, world, db_engine):
        response = await training.post("/v1/studios", json={
            "name": "名班主任工作室", "kind": "famous_head_teacher", "host_staff_id": str(uuid.uuid4()),
            "subject": "班主任", "district_code": "110119", "start_date": "2024-09-01"})
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "urn:spp:problem:unknown-staff"
        assert response.json()["errors"][0]["field"] == "body.host_staff_id"
        assert await fetch(db_engine, "select id from training.studios") == []

    @pytest.mark.parametrize("code", ["11011", "1101190", "abcdef", "010119"])
    async def test_district_code_must_be_six_digits(self, training, world, code, db_engine):
        response = await training.post("/v1/studios", json={
            "name": "工作室", "kind": "famous_teacher", "host_staff_id": world.host["id"], "subject": "语文",
            "district_code": code, "start_date": "2024-09-01"})
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "body.district_code"
        assert await fetch(db_engine, "select id from training.studios") == []

    @pytest.mark.parametrize("payload, field", [
        ({"kind": "famous_cook"}, "body.kind"),
        ({"capacity": 0}, "body.capacity"),
        ({"end_date": "2024-08-31"}, "body"),
        ({"name": "  "}, "body.name"),
    ])
    async def test_invalid_body_is_422(self, training, world, payload, field):
        body = {"name": "工作室", "kind": "famous_teacher", "host_staff_id": world.host["id"], "subject": "语文",
                "district_code": "110119", "start_date": "2024-09-01", **payload}
        response = await training.post("/v1/studios", json=body)
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == field

    @pytest.mark.parametrize("role, districts", [
        ("viewer", ()), ("integrator", ()), ("school_admin", ("110119",)), ("district_admin", ("110108",)),
    ])
    async def test_only_admins_of_the_studio_district_write(self, training, world, auth, role, districts, db_engine):
        response = await training.post("/v1/studios", headers=auth(role, districts=districts), json={
            "name": "工作室", "kind": "famous_teacher", "host_staff_id": world.host["id"], "subject": "语文",
            "district_code": "110119", "start_date": "2024-09-01"})
        assert response.status_code == 403
        assert await fetch(db_engine, "select id from training.studios") == []

    async def test_district_admin_of_the_studio_district_writes(self, training, world, auth):
        # The host teaches in Haidian; the studio operates in Yanqing, whose admin opens it.
        body = await f.studio(training, host_staff_id=world.host["id"], district_code="110119",
                              headers=auth("district_admin", districts=("110119",)))
        assert body["district_code"] == "110119"

    async def test_without_a_token_is_401(self, training, world):
        response = await training.post("/v1/studios", headers={"Authorization": ""}, json={})
        assert response.status_code == 401


@pytest.fixture
async def training_rotation_down(settings, token):
    """The training app with rotation unreachable (every connection refused)."""
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    app = create_app(settings, transports={"rotation": httpx.MockTransport(refuse)})
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://training",
                                     headers={"Authorization": f"Bearer {token()}", "Accept-Language": "en"}) as client:
            yield client


class TestRotationDown:
    async def test_creating_a_studio_is_503_and_stores_nothing(self, training_rotation_down, db_engine):
        response = await training_rotation_down.post("/v1/studios", json={
            "name": "李华名师工作室", "kind": "famous_teacher", "host_staff_id": str(uuid.uuid4()),
            "subject": "语文", "district_code": "110119", "start_date": "2024-09-01"})
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["type"] == "urn:spp:problem:upstream-unavailable"
        assert problem["upstream"] == "rotation"
        assert "Traceback" not in response.text
        assert await fetch(db_engine, "select id from training.studios") == []

    async def test_external_credit_is_503_and_stores_nothing(self, training_rotation_down, db_engine):
        response = await training_rotation_down.post("/v1/training-hours", json={
            "staff_id": str(uuid.uuid4()), "hours": "8", "earned_on": "2024-05-01", "source": "municipal_platform",
            "reference": "PX-1"})
        assert response.status_code == 503
        assert await fetch(db_engine, "select id from training.training_hours") == []


class TestReadStudios:
    async def test_get_and_list_with_filters(self, training, world, auth):
        yanqing = await f.studio(training, host_staff_id=world.host["id"], district_code="110119")
        haidian = await f.studio(training, host_staff_id=world.host["id"], district_code="110108",
                                 name="海淀区特级教师工作站", kind="special_grade_station", start_date="2025-09-01",
                                 end_date="2028-08-31")
        got = await training.get(f"/v1/studios/{yanqing['id']}")
        assert got.status_code == 200 and got.json()["name"] == "李华名师工作室"
        listed = await training.get("/v1/studios")
        assert [s["id"] for s in listed.json()["items"]] == [yanqing["id"], haidian["id"]]
        by_district = await training.get("/v1/studios", params={"district_code": "110108"})
        assert [s["id"] for s in by_district.json()["items"]] == [haidian["id"]]
        by_kind = await training.get("/v1/studios", params={"kind": "famous_teacher"})
        assert [s["id"] for s in by_kind.json()["items"]] == [yanqing["id"]]
        paged = await training.get("/v1/studios", params={"limit": 1})
        assert paged.json()["next_cursor"]
        rest = await training.get("/v1/studios", params={"limit": 1, "cursor": paged.json()["next_cursor"]})
        assert [s["id"] for s in rest.json()["items"]] == [haidian["id"]]
        # A district reader sees only studios of their districts.
        scoped = auth("viewer", districts=("110108",))
        assert [s["id"] for s in (await training.get("/v1/studios", headers=scoped)).json()["items"]] == [
            haidian["id"]]
        assert (await training.get(f"/v1/studios/{yanqing['id']}", headers=scoped)).status_code == 403

    async def test_unknown_studio_is_404(self, training):
        response = await training.get(f"/v1/studios/{uuid.uuid4()}")
        assert response.status_code == 404
        assert response.json()["type"] == "urn:spp:problem:studio-not-found"


class TestCloseStudio:
    async def test_close_then_refuse_members_and_sessions(self, training, world, db_engine, auth):
        studio = await f.studio(training, host_staff_id=world.host["id"])
        viewer = await training.post(f"/v1/studios/{studio['id']}/close", headers=auth("viewer"))
        assert viewer.status_code == 403
        closed = await training.post(f"/v1/studios/{studio['id']}/close")
        assert closed.status_code == 200
        assert closed.json()["status"] == "closed" and closed.json()["version"] == 2
        rows = await fetch(db_engine, "select status, closed_at is not null as closed from training.studios")
        assert rows == [{"status": "closed", "closed": True}]
        again = await training.post(f"/v1/studios/{studio['id']}/close")
        assert again.status_code == 409 and again.json()["type"] == "urn:spp:problem:illegal-transition"
        join = await training.post(f"/v1/studios/{studio['id']}/members",
                                   json={"staff_id": world.staff[0]["id"], "joined_on": "2024-09-01"})
        assert join.status_code == 409 and join.json()["type"] == "urn:spp:problem:studio-closed"
        session = await training.post(f"/v1/studios/{studio['id']}/sessions", json={
            "kind": "lecture", "title": "讲座", "starts_at": "2024-10-01T09:00:00+08:00", "hours": "2"})
        assert session.status_code == 409 and session.json()["type"] == "urn:spp:problem:studio-closed"
        assert await fetch(db_engine, "select id from training.memberships") == []
        assert await fetch(db_engine, "select id from training.sessions") == []

    async def test_close_unknown_studio_is_404(self, training):
        assert (await training.post(f"/v1/studios/{uuid.uuid4()}/close")).status_code == 404
