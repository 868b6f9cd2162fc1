"""Plain-Python converters for an import spec's fast path (services/common/import_rows.py `FastPath`).

Each takes a CSV cell as the engine hands it (stripped, never blank) and returns exactly the
value the row model and the spec's `prepare` would stage, or raises (any exception) when the
cell is not in a plain canonical form; that row then goes through the model, which accepts what
it accepts and words the errors. So a converter may refuse more than the model, never accept
more or convert differently. Cells are already stripped the way the models' `strip_whitespace`
would (str.strip removes every character Unicode calls white space), so lengths compare as the
models' do: in code points.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

Convert = Callable[[str], Any]

_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class Unsure(ValueError):
    """The fast path does not decide this cell; the model does."""


def text(max_length: int, *, pattern: str | None = None, refuse: Iterable[str] = ()) -> Convert:
    """A string of 1..max_length code points (and matching `pattern` whole, when given)."""
    whole = re.compile(pattern).fullmatch if pattern else None
    refused = frozenset(refuse)

    def convert(value: str) -> str:
        if len(value) > max_length or value in refused or (whole is not None and whole(value) is None):
            raise Unsure(value)
        return value
    return convert


def choice(values: Iterable[str], labels: Mapping[str, str] | None = None) -> Convert:
    """An enum's value (as plain text), or a label the model's before-validator maps to one."""
    allowed = {str(getattr(v, "value", v)) for v in values}
    table = {**{v: v for v in allowed}, **{k: v for k, v in (labels or {}).items() if v in allowed}}

    def convert(value: str) -> str:
        return table[value]
    return convert


def iso_date(rewrite: Callable[[Any], Any] | None = None) -> Convert:
    """A date as YYYY-MM-DD in ASCII digits, or as the model's own before-validator `rewrite`
    turns it into one (office forms such as 2015/9/1 or 2015年9月1日; a rewrite leaves the ISO
    form as it is, so it runs only for other forms); an impossible date raises."""
    def convert(value: str) -> date:
        match = _ISO_DATE.fullmatch(value)
        if match is None and rewrite is not None:
            match = _ISO_DATE.fullmatch(rewrite(value))
        if match is None:
            raise Unsure(value)
        return date(int(match[1]), int(match[2]), int(match[3]))
    return convert


def canonical_uuid(value: str) -> str:
    """A UUID in its 8-4-4-4-12 hexadecimal form, staged as the text itself: COPY stores it as
    the same uuid the model's `UUID` would (asyncpg parses it in C, about ten times faster than
    `uuid.UUID`)."""
    if _UUID.fullmatch(value) is None:
        raise Unsure(value)
    return value


def decimal(*, integer_digits: int, places: int, above: Decimal, at_most: Decimal) -> Convert:
    """A plain decimal (digits, at most `places` after the point) with above < value <= at_most."""
    plain = re.compile(rf"[0-9]{{1,{integer_digits}}}(\.[0-9]{{1,{places}}})?").fullmatch

    def convert(value: str) -> Decimal:
        if plain(value) is None:
            raise Unsure(value)
        number = Decimal(value)
        if not above < number <= at_most:
            raise Unsure(value)
        return number
    return convert
