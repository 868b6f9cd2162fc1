"""The training rules' two numbers (design.md §4.5), configurable without touching the kernel.

`SPP_TRAINING_HOURS_THRESHOLD` (default 360: the national continuing-education bar) and
`SPP_TRAINING_WINDOW_YEARS` (default 5: the bar holds in each 5-year cycle). They live here rather
than in `services.common.settings` because only this service reads them.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# The ledger source reserved for credits the service derives from studio attendance.
STUDIO_SESSION_SOURCE = "studio_session"


class TrainingRules(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SPP_TRAINING_", extra="ignore")

    hours_threshold: Decimal = Field(default=Decimal("360"), gt=0)
    window_years: int = Field(default=5, ge=1, le=50)


def window_start(as_of: date, years: int) -> date:
    """The exclusive lower bound of the window `as_of − years < earned_on ≤ as_of`.

    A 29 February `as_of` maps to 28 February, as PostgreSQL's `date - interval 'N years'` does.
    A window reaching before year 1 starts at the earliest date there is.
    """
    if as_of.year - years < 1:
        return date.min
    try:
        return as_of.replace(year=as_of.year - years)
    except ValueError:  # 29 February into a common year
        return as_of.replace(year=as_of.year - years, day=28)
