"""Every dependency of every route is a coroutine (or an async generator).

FastAPI runs a plain `def` dependency in the thread pool: a thread hop per request, for what is
usually an attribute read. On a kept figure answer that hop was 7% of a service's CPU (py-spy,
docs/benchmarks.md), so none is allowed, in any process.
"""

from __future__ import annotations

import inspect

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from gateway.app import create_app as gateway_app
from services.partnership.app import create_app as partnership_app
from services.rotation.app import create_app as rotation_app
from services.training.app import create_app as training_app


def sync_dependencies(dependant: Dependant, seen: set[object]) -> list[str]:
    found = []
    for sub in dependant.dependencies:
        call = sub.call
        if call is not None and call not in seen:
            seen.add(call)
            if not (inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call)
                    or inspect.iscoroutinefunction(call.__call__)):
                found.append(f"{getattr(call, '__module__', '?')}.{getattr(call, '__qualname__', call)}")
        found += sync_dependencies(sub, seen)
    return found


def api_routes(routes: list) -> list[APIRoute]:
    """The app's routes, through included routers (FastAPI keeps an include as one route)."""
    found = []
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            found += api_routes(included.routes)
        elif isinstance(route, APIRoute):
            found.append(route)
    return found


@pytest.mark.parametrize("create_app", [partnership_app, rotation_app, training_app, gateway_app])
def test_no_route_runs_a_dependency_in_the_thread_pool(create_app, settings):
    app = create_app(settings)
    routes = api_routes(app.routes)
    assert len(routes) > 10
    seen: set[object] = set()
    found = [name for route in routes for name in sync_dependencies(route.dependant, seen)]
    assert found == []


def test_the_check_finds_a_plain_def_dependency(settings):
    from fastapi import Depends, FastAPI

    def plain() -> int:
        return 1

    app = FastAPI()

    @app.get("/x")
    async def x(value: int = Depends(plain)) -> int:
        return value

    route = next(route for route in app.routes if isinstance(route, APIRoute))
    assert sync_dependencies(route.dependant, set()) == [f"{__name__}.test_the_check_finds_a_plain_def_dependency.<locals>.plain"]
