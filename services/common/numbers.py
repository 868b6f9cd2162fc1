"""Exact quantities that travel as JSON numbers (issue 9): hours are `362.5`, never `"362.5"`.

Hours are `numeric` in PostgreSQL and `Decimal` in Python, so sums stay exact (0.1 + 0.2 is 0.3).
Pydantic v2 writes a `Decimal` as a JSON string by default; `Hours` writes it as a JSON number
instead: an integer when whole (`360`), else the shortest float that reads back as the same
decimal (`362.5`, `0.3`). That float is exact in its digits for any value of at most 15
significant digits, and hours (two decimals, sums far below 10¹³) never come near that. Input
accepts a JSON number or a decimal string. The OpenAPI schema of an answer says `number`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import PlainSerializer, WithJsonSchema


def json_number(value: Decimal) -> int | float:
    """`Decimal('360.00')` -> 360, `Decimal('362.50')` -> 362.5, `Decimal('0.30')` -> 0.3."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)


Hours = Annotated[
    Decimal,
    PlainSerializer(json_number, return_type=int | float, when_used="json"),
    WithJsonSchema({"type": "number"}, mode="serialization"),
]
