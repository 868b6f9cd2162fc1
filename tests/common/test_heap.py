"""A served process freezes what start-up built out of the garbage collector (services/common/heap.py)."""

from __future__ import annotations

import gc

from fastapi import FastAPI

from services.common import heap


async def test_start_up_state_is_frozen_and_young_collections_are_rarer():
    app = heap.settle(FastAPI())
    threshold = gc.get_threshold()
    gc.unfreeze()
    try:
        assert gc.get_freeze_count() == 0
        async with app.router.lifespan_context(app):
            assert gc.get_freeze_count() > 0
            assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, *threshold[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
