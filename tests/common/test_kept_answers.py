"""Kept answers sent before routing (services/common/kept_answers.py): the same bytes the route sent,
only to callers the route would answer, never for a query the route refused, and the route answers
whenever the lookup cannot be made. (What makes a kept answer stale: tests/common/test_answer_cache.py.)"""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from services.common.kept_answers import keeps_answer, marked_paths
from tests.feed import synced
from tests.rotation import factories as f

PATH = "/v1/internal/balance-totals"
CHAOYANG = {"as_of": "2024-12-01", "district_code": "110105"}


@pytest.fixture
async def world(partnership, rotation, db_engine):
    """朝阳区 (two primary schools, 1,800 pupils, one municipal backbone) and 延庆区."""
    await f.chaoyang_with_schools(partnership)
    await synced(db_engine, staff=False)
    await f.staff(rotation, name="甲", staff_no="A", backbone_level="municipal")


def headers_of(answer: httpx.Response) -> list[tuple[str, str]]:
    return [(name, value) for name, value in answer.headers.multi_items() if name != "x-request-id"]


async def test_a_kept_answer_is_the_routes_answer_byte_for_byte(world, rotation, rotation_app):
    cache = rotation_app.state.answer_cache
    first = await rotation.get(PATH, params=CHAOYANG, headers={"X-Request-ID": "first-call"})
    kept = await rotation.get(PATH, params=CHAOYANG, headers={"X-Request-ID": "second-call"})
    assert (first.status_code, kept.status_code) == (200, 200)
    assert (cache.hits, cache.misses) == (1, 1)
    assert kept.content == first.content
    assert headers_of(kept) == headers_of(first)
    assert kept.headers.get_list("x-request-id") == ["second-call"]  # its own, once
    [district] = kept.json()["districts"]
    assert (district["district_code"], district["sections"]["primary"]["enrollment"]) == ("110105", 1800)
    # Another query string is another answer: 延庆区 has no primary backbone.
    other = await rotation.get(PATH, params={**CHAOYANG, "district_code": "110119"})
    assert other.status_code == 200 and other.json()["districts"][0]["district_code"] == "110119"
    assert (cache.hits, cache.misses) == (1, 2)
    # The metrics and the access log name the route the same way, kept or not.
    registry = rotation_app.state.metrics.registry
    assert registry.get_sample_value("spp_http_requests_total", {
        "process": "rotation", "method": "GET", "route": PATH, "status": "200"}) == 3.0


async def test_callers_the_route_refuses_are_refused_by_the_route_with_an_answer_kept(world, rotation, rotation_app,
                                                                                   token):
    cache = rotation_app.state.answer_cache
    assert (await rotation.get(PATH, params=CHAOYANG)).status_code == 200  # kept for city-wide callers
    for headers, status, problem in (
        ({"Authorization": f"Bearer {token('district_admin', districts=('110119',))}"}, 403, "district-scope"),
        ({"Authorization": f"Bearer {token('viewer', districts=('110119',))}"}, 403, "district-scope"),
        ({"Authorization": f"Bearer {token(ttl=-120)}"}, 401, "expired-token"),
        ({"Authorization": "Bearer 不是令牌".encode()}, 401, "invalid-token"),
        ({"Authorization": ""}, 401, "missing-token"),
    ):
        answer = await rotation.get(PATH, params=CHAOYANG, headers=headers)
        assert (answer.status_code, answer.json()["type"]) == (status, f"urn:spp:problem:{problem}"), headers
    # Figures for every district need a city-wide role: the same query without a district, refused.
    mine = {"Authorization": f"Bearer {token('district_admin', districts=('110105',))}"}
    assert (await rotation.get(PATH, params={"as_of": "2024-12-01"}, headers=mine)).status_code == 403
    assert (cache.hits, cache.misses) == (0, 1)  # no refused caller was looked up
    # The district's own administrator is answered from the kept answer.
    assert (await rotation.get(PATH, params=CHAOYANG, headers=mine)).status_code == 200
    assert (cache.hits, cache.misses) == (1, 1)


async def test_a_query_the_route_refused_is_never_kept(world, rotation, rotation_app):
    cache = rotation_app.state.answer_cache
    for _ in range(2):
        refused = await rotation.get(PATH, params={"as_of": "2024-13-01", "district_code": "110105"})
        assert (refused.status_code, refused.json()["type"]) == (422, "urn:spp:problem:validation")
    assert [key for key in cache._entries if key[0] == PATH] == []
    assert (cache.hits, cache.misses) == (0, 2)


async def test_the_route_answers_when_the_lookup_fails(world, rotation, rotation_app, monkeypatch):
    cache = rotation_app.state.answer_cache
    expected = (await rotation.get(PATH, params=CHAOYANG)).content

    async def unreachable(key, *, fresh=False):
        raise OSError("connection refused")

    monkeypatch.setattr(cache, "lookup", unreachable)
    answer = await rotation.get(PATH, params=CHAOYANG)
    assert (answer.status_code, answer.content) == (200, expected)


async def test_no_cache_computes_afresh_and_keeps_that_answer(world, rotation, rotation_app):
    cache = rotation_app.state.answer_cache
    first = await rotation.get(PATH, params=CHAOYANG)
    fresh = await rotation.get(PATH, params=CHAOYANG, headers={"Cache-Control": "no-cache"})
    again = await rotation.get(PATH, params=CHAOYANG)
    assert first.content == fresh.content == again.content
    assert (cache.hits, cache.misses) == (1, 2)


def test_only_get_routes_without_path_parameters_can_be_marked():
    router = APIRouter(prefix="/v1/internal")

    @router.get("/figures")
    @keeps_answer
    async def figures() -> dict:
        return {}

    @router.get("/figures/{code}")
    async def one(code: str) -> dict:
        return {}

    app = FastAPI()
    app.include_router(router)
    assert list(marked_paths(app.router.routes)) == ["/v1/internal/figures"]

    @router.get("/school/{code}")
    @keeps_answer
    async def school(code: str) -> dict:
        return {}

    with pytest.raises(RuntimeError, match="without path parameters"):
        list(marked_paths(FastAPI(routes=router.routes).router.routes))


async def test_every_service_keeps_its_figure_answers(partnership_app, rotation_app, training_app):
    kept = {app.state.process: sorted(marked_paths(app.router.routes))
            for app in (partnership_app, rotation_app, training_app)}
    assert kept == {
        "partnership": ["/v1/internal/partnership-stats", "/v1/internal/schools"],
        "rotation": ["/v1/internal/backbone-placement", "/v1/internal/balance-totals", "/v1/internal/rotation-stats"],
        "training": ["/v1/internal/studio-stats", "/v1/internal/training-completion"],
    }


async def test_kept_answers_are_bounded_by_their_weight_and_their_number(db_engine):
    from services.common.answer_cache import AnswerCache, Stamp

    cache = AnswerCache("rotation", db_engine, size=3, max_bytes=100)
    stamp = Stamp(snapshot="1:1:", cursors=())
    for key in "abc":
        cache.keep(key, stamp, key * 40, weight=40)
    assert (list(cache._entries), cache.kept_bytes) == (["b", "c"], 80)  # 120 > 100: the oldest went
    cache.keep("b", stamp, "b", weight=1)  # kept again, lighter, and now the most recent
    assert (list(cache._entries), cache.kept_bytes) == (["c", "b"], 41)
    cache.keep("d", stamp, "d", weight=1)
    cache.keep("e", stamp, "e", weight=1)
    assert (list(cache._entries), cache.kept_bytes) == (["b", "d", "e"], 3)  # at most three
    cache.keep("huge", stamp, "x" * 500, weight=500)  # heavier than the bound: kept alone
    assert (list(cache._entries), cache.kept_bytes) == (["huge"], 500)


async def test_calls_for_an_answer_being_computed_wait_for_it(world, rotation, rotation_app, monkeypatch):
    """Five calls at once for an answer nobody kept: the route computes it once (slowly here), the
    other four wait and are answered from it; the same figures for all."""
    import asyncio

    from services.rotation.service import figures

    cache = rotation_app.state.answer_cache
    computed = []
    real = figures.stats.balance_totals

    async def slow(*args, **kwargs):
        computed.append(1)
        await asyncio.sleep(0.3)
        return await real(*args, **kwargs)

    monkeypatch.setattr(figures.stats, "balance_totals", slow)
    answers = await asyncio.gather(*(rotation.get(PATH, params=CHAOYANG) for _ in range(5)))
    assert [a.status_code for a in answers] == [200] * 5
    assert len({a.content for a in answers}) == 1
    assert len(computed) == 1
    assert cache.hits == 4  # each waiter's second look
    # With Cache-Control: no-cache every call computes its own answer, as asked.
    fresh = await asyncio.gather(*(rotation.get(PATH, params=CHAOYANG, headers={"Cache-Control": "no-cache"})
                                   for _ in range(3)))
    assert [a.status_code for a in fresh] == [200] * 3 and len(computed) == 4
