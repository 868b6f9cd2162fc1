"""The garbage collector of a served process: what start-up built is frozen out of its collections.

An app holds ~140,000 long-lived objects once it has started (routes, models, the OpenAPI catalog,
the libraries'), and CPython's full collection walks all of them. Objects of requests in flight
survive the young collections, so under load a full collection came every second or so: 50–100 ms
with the event loop stopped, the p99 of a GET through the gateway (benchmarks/hop.py), and 7% of
the gateway's CPU in `gc_collect_main` (py-spy --native). `gc.freeze()` after start-up moves what
exists then to a generation no collection visits, so a full collection walks only what requests
left behind; nothing frozen is ever garbage a collection would have freed, since start-up state
lives as long as the process. `spp serve` does this for every process (not the tests, which make
and drop many apps in one interpreter). The young generation's threshold is raised from 700
allocations as well: a request allocates a few hundred objects, so 700 meant a collection every
other request.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.types import ASGIApp

YOUNG_THRESHOLD = 10_000


def settle(app: Any) -> ASGIApp:
    """`app` with its start-up followed by a full collection and `gc.freeze()`."""
    started = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(served: Any) -> AsyncIterator[Any]:
        async with started(served) as state:
            gc.collect()
            gc.freeze()
            _, older, oldest = gc.get_threshold()
            gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
            yield state

    app.router.lifespan_context = lifespan
    return app
