"""A request's id (X-Request-ID) follows it on every call one service makes to another, so the logs
and feed rows of the services it reached can be matched to it."""

from __future__ import annotations

import httpx

from services.training.app import create_app
from tests.conftest import asgi, fetch
from tests.training import factories as f


class Recorder(httpx.AsyncBaseTransport):
    """Passes calls on to the real service and remembers the headers each one carried."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.calls: list[tuple[str, str | None]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls.append((request.url.path, request.headers.get("x-request-id")))
        return await self.inner.handle_async_request(request)


async def test_training_forwards_the_request_id_to_rotation_on_a_directory_miss(settings, partnership, rotation,
                                                                               rotation_app, token, db_engine):
    await f.district(partnership)
    await f.school(partnership, "11010801")
    member = await f.staff(rotation, school_code="11010801")
    recorder = Recorder(asgi(rotation_app))
    # No feed consumer: the directory stays empty, so the staff check asks rotation.
    app = create_app(settings.model_copy(update={"feed_consumers": False}), transports={"rotation": recorder})
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=asgi(app), base_url="http://training",
                                     headers={"Authorization": f"Bearer {token()}"}) as client:
            created = await client.post("/v1/training-hours", headers={"X-Request-ID": "trace-7"}, json={
                "staff_id": member["id"], "hours": "8", "earned_on": "2024-05-01", "source": "市级平台",
                "reference": "RID-1"})
            assert created.status_code == 201, created.text
            assert created.headers["x-request-id"] == "trace-7"
            assert recorder.calls == [(f"/v1/staff/{member['id']}", "trace-7")]
    assert await fetch(db_engine, "select entity, request_id from training.changes") == [
        {"entity": "training_credit", "request_id": "trace-7"}]


async def test_rotation_forwards_the_request_id_to_partnership_on_a_school_directory_miss(
        settings, partnership_app, partnership, token):
    from services.rotation.app import create_app as rotation_app

    await f.district(partnership)
    await f.school(partnership, "11010801")
    recorder = Recorder(asgi(partnership_app))
    app = rotation_app(settings.model_copy(update={"feed_consumers": False}), transports={"partnership": recorder})
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=asgi(app), base_url="http://rotation",
                                     headers={"Authorization": f"Bearer {token()}"}) as client:
            created = await client.post("/v1/staff", headers={"X-Request-ID": "trace-8"}, json={
                "staff_no": "RID0001", "name": "王芳", "home_school_code": "11010801", "role": "teacher",
                "section": "primary", "subject": "语文", "backbone_level": "none", "in_post_since": "2015-09-01"})
            assert created.status_code == 201, created.text
    assert recorder.calls == [("/v1/schools/11010801", "trace-8")]
