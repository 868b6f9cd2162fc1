"""Training test data: two districts (a Haidian host school, Yanqing township schools), a host
teacher and a pool of staff members, all made through the partnership and rotation APIs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import asgi
from tests.training import factories as f


@dataclass
class World:
    host: dict            # special-grade teacher of a Haidian school, hosts studios
    staff: list[dict]     # six teachers: three from Yanqing, three from Haidian (cross-district)


@pytest.fixture
async def world(partnership, rotation) -> World:
    await f.district(partnership, *f.HAIDIAN)
    await f.district(partnership, *f.YANQING)
    await f.school(partnership, "11010801", district_code=f.HAIDIAN[0], name="北京市海淀区中关村第一小学")
    await f.school(partnership, "11011901", district_code=f.YANQING[0], name="延庆区永宁镇中心小学",
                   locality="township")
    host = await f.staff(rotation, school_code="11010801", name="李华", backbone_level="special_grade")
    names = ["王芳", "张伟", "刘洋", "陈静", "杨帆", "赵敏"]
    staff = [await f.staff(rotation, school_code="11011901" if i < 3 else "11010801", name=name)
             for i, name in enumerate(names)]
    return World(host=host, staff=staff)


class Gate(httpx.AsyncBaseTransport):
    """Holds rotation's answers until `parties` requests are waiting, then releases them together,
    so racing requests leave the staff check at the same moment and really overlap in the database
    (in-process requests otherwise tend to finish one by one and a missing lock would go unseen)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.barrier: asyncio.Barrier | None = None

    def arm(self, parties: int) -> None:
        self.barrier = asyncio.Barrier(parties)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if self.barrier is not None:
            await asyncio.wait_for(self.barrier.wait(), timeout=10)
        return response


@dataclass
class Gated:
    client: httpx.AsyncClient
    gate: Gate


@pytest.fixture
async def gated(settings, rotation_app, token) -> AsyncIterator[Gated]:
    """A training client whose rotation calls pass through a `Gate`. Its staff directory is left
    empty (no feed consumer), so every staff check misses and asks rotation through the gate."""
    from services.training.app import create_app

    gate = Gate(asgi(rotation_app))
    app = create_app(settings.model_copy(update={"feed_consumers": False}), transports={"rotation": gate})
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=asgi(app), base_url="http://training", timeout=30,
                                     headers={"Authorization": f"Bearer {token()}", "Accept-Language": "en"}) as client:
            yield Gated(client=client, gate=gate)
