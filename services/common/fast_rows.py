"""Plain-Python converters for an import spec's fast path (services/common/import_rows.py `FastPath`).

Each takes a CSV cell as the engine hands it (stripped, never blank) and returns exactly the
value the row model and the spec's `prepare` would stage, or raises (any exception) when the
cell is not in a plain canonical form; that row then goes through the model, which accepts what
it accepts and words the errors. So a converter may refuse more than the model, never accept
more or convert differently. Cells are already stripped the way the models' `strip_whitespace`
would (str.strip removes every character Unicode calls white space), so lengths compare as the
models' do: in code points.

Each converter also says the same in SQL (`sql`), for a CSV file PostgreSQL parses itself
(services/common/import_sql.py): an expression of the (stripped, not blank) cell that is the
staged value, or NULL where the Python converter would raise. It may refuse more than the Python
one (that row then goes through the model), never accept more or convert differently.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from services.common.vocabulary import office_date

Convert = Callable[[str], Any]

_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
# services/common/vocabulary.py's office forms, narrowed to ASCII digits and no spaces.
_OFFICE_SQL = "^([0-9]{4})[-/.年]([0-9]{1,2})[-/.月]([0-9]{1,2})日?$"
_COMPACT_SQL = "^([0-9]{4})([0-9]{2})([0-9]{2})$"
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class Unsure(ValueError):
    """The fast path does not decide this cell; the model does."""


def literal(value: str) -> str:
    """A string as an SQL literal (the converters' own constants, never a file's text)."""
    return "'" + value.replace("'", "''") + "'"


class Text:
    """A string of 1..max_length code points (and matching `pattern` whole, when given)."""

    def __init__(self, max_length: int, *, pattern: str | None = None, refuse: Iterable[str] = ()) -> None:
        self.max_length, self.pattern, self.refused = max_length, pattern, frozenset(refuse)
        self.whole = re.compile(pattern).fullmatch if pattern else None

    def __call__(self, value: str) -> str:
        if len(value) > self.max_length or value in self.refused or (
                self.whole is not None and self.whole(value) is None):
            raise Unsure(value)
        return value

    def sql(self, cell: str) -> str:
        # char_length counts code points, as len() does; the patterns used are anchored ASCII
        # classes, which PostgreSQL's regular expressions read the same way.
        rules = [f"char_length({cell}) <= {self.max_length}"]
        if self.pattern is not None:
            rules.append(f"{cell} ~ {literal('^(?:' + self.pattern.removeprefix('^').removesuffix('$') + ')$')}")
        rules += [f"{cell} <> {literal(value)}" for value in sorted(self.refused)]
        return f"CASE WHEN {' AND '.join(rules)} THEN {cell} END"


def text(max_length: int, *, pattern: str | None = None, refuse: Iterable[str] = ()) -> Text:
    return Text(max_length, pattern=pattern, refuse=refuse)


class Choice:
    """An enum's value (as plain text), or a label the model's before-validator maps to one."""

    def __init__(self, values: Iterable[str], labels: Mapping[str, str] | None = None) -> None:
        allowed = {str(getattr(v, "value", v)) for v in values}
        self.table = {**{v: v for v in allowed}, **{k: v for k, v in (labels or {}).items() if v in allowed}}

    def __call__(self, value: str) -> str:
        return self.table[value]

    def sql(self, cell: str) -> str:
        whens = " ".join(f"WHEN {literal(k)} THEN {literal(v)}" for k, v in sorted(self.table.items()))
        return f"CASE {cell} {whens} END"


def choice(values: Iterable[str], labels: Mapping[str, str] | None = None) -> Choice:
    return Choice(values, labels)


class IsoDate:
    """A date as YYYY-MM-DD in ASCII digits, or as the model's own before-validator `rewrite`
    turns it into one (office forms such as 2015/9/1 or 2015年9月1日; a rewrite leaves the ISO
    form as it is, so it runs only for other forms); an impossible date raises."""

    def __init__(self, rewrite: Callable[[Any], Any] | None = None) -> None:
        self.rewrite = rewrite

    def __call__(self, value: str) -> date:
        match = _ISO_DATE.fullmatch(value)
        if match is None and self.rewrite is not None:
            match = _ISO_DATE.fullmatch(self.rewrite(value))
        if match is None:
            raise Unsure(value)
        return date(int(match[1]), int(match[2]), int(match[3]))

    def sql(self, cell: str) -> str:
        # Ten characters, the two hyphens in their places and digits elsewhere (cheaper than a
        # regular expression), then a date PostgreSQL can store; year 0000 is no date to either.
        iso = (f"length({cell}) = 10 AND substr({cell}, 5, 1) = '-' AND substr({cell}, 8, 1) = '-' "
               f"AND translate({cell}, '0123456789', '') = '--' AND pg_input_is_valid({cell}, 'date')")
        if self.rewrite is not office_date:
            return f"CASE WHEN {iso} THEN CAST({cell} AS date) END"
        # The office forms `office_date` rewrites (2015/9/1, 2015.9.1, 2015年9月1日, 20150901) in
        # ASCII digits without inner spaces (other spellings go through the model), only for the
        # cells that are not ISO already: Excel in a Chinese locale writes every date as 2015/9/1.
        parts = f"coalesce(regexp_match({cell}, {literal(_OFFICE_SQL)}), regexp_match({cell}, {literal(_COMPACT_SQL)}))"
        rewritten = "m[1] || '-' || lpad(m[2], 2, '0') || '-' || lpad(m[3], 2, '0')"
        return (f"CASE WHEN {iso} THEN CAST({cell} AS date) ELSE ("
                f"SELECT CASE WHEN pg_input_is_valid(d, 'date') THEN CAST(d AS date) END "
                f"FROM (SELECT {rewritten} AS d FROM (SELECT {parts} AS m) AS matched) AS office) END")


def iso_date(rewrite: Callable[[Any], Any] | None = None) -> IsoDate:
    return IsoDate(rewrite)


class CanonicalUuid:
    """A UUID in its 8-4-4-4-12 hexadecimal form, staged as the text itself: COPY stores it as
    the same uuid the model's `UUID` would (asyncpg parses it in C, about ten times faster than
    `uuid.UUID`)."""

    def __call__(self, value: str) -> str:
        if _UUID.fullmatch(value) is None:
            raise Unsure(value)
        return value

    def sql(self, cell: str) -> str:
        # 36 characters with the hyphens in their places, which PostgreSQL reads as a uuid (so the
        # rest is hexadecimal): the canonical form only, at a fifth of a regular expression's cost.
        hyphens = " AND ".join(f"substr({cell}, {i}, 1) = '-'" for i in (9, 14, 19, 24))
        return (f"CASE WHEN length({cell}) = 36 AND {hyphens} AND pg_input_is_valid({cell}, 'uuid') "
                f"THEN CAST({cell} AS uuid) END")


canonical_uuid = CanonicalUuid()


class PlainDecimal:
    """A plain decimal (digits, at most `places` after the point) with above < value <= at_most."""

    def __init__(self, *, integer_digits: int, places: int, above: Decimal, at_most: Decimal) -> None:
        self.shape = rf"[0-9]{{1,{integer_digits}}}(\.[0-9]{{1,{places}}})?"
        self.plain = re.compile(self.shape).fullmatch
        self.integer_digits, self.places = integer_digits, places
        self.above, self.at_most = above, at_most

    def __call__(self, value: str) -> Decimal:
        if self.plain(value) is None:
            raise Unsure(value)
        number = Decimal(value)
        if not self.above < number <= self.at_most:
            raise Unsure(value)
        return number

    def sql(self, cell: str) -> str:
        # The shape without a regular expression (a third of this twin's cost): nothing but ASCII
        # digits and at most one point, with the digits on each side of it counted.
        point = f"strpos({cell}, '.')"
        shape = (f"CASE translate({cell}, '0123456789', '') "
                 f"WHEN '' THEN length({cell}) BETWEEN 1 AND {self.integer_digits} "
                 f"WHEN '.' THEN {point} BETWEEN 2 AND {self.integer_digits + 1} "
                 f"AND length({cell}) - {point} BETWEEN 1 AND {self.places} ELSE false END")
        number = f"CAST({cell} AS numeric)"
        return f"CASE WHEN {shape} AND {number} > {self.above} AND {number} <= {self.at_most} THEN {number} END"


def decimal(*, integer_digits: int, places: int, above: Decimal, at_most: Decimal) -> PlainDecimal:
    return PlainDecimal(integer_digits=integer_digits, places=places, above=above, at_most=at_most)
