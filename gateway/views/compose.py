"""What the district and city views share, in three modules: the period (`period.py`), the
concurrent calls (`calls.py`) and the blocks built from the services' figures (`blocks.py`).

This module only re-exports them, for the views that still import `compose`.
"""

from __future__ import annotations

from gateway.views.blocks import (
    balance_summary,
    balance_summary_from_totals,
    district_sections,
    partnership_block,
    rotation_block,
    section_balance,
    training_block,
)
from gateway.views.calls import Settled, all_of, settle
from gateway.views.period import Period, resolve_period
from services.common.calendar import today

__all__ = [
    "Period", "Settled", "all_of", "balance_summary", "balance_summary_from_totals", "district_sections",
    "partnership_block", "resolve_period", "rotation_block", "section_balance", "settle", "today",
    "training_block",
]
