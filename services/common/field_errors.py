"""Pydantic's validation errors as sentences a person can act on, in Chinese or English.

Pydantic says "Field required" or "Input should be 'urban', 'township' or 'rural'" without naming
the field; a request body's error and an import row's error should say which field (for an import,
the column as the file wrote it: 城乡类别, not locality) and what it must be. One key per error
type (services/common/message_catalog.py, keys `v.*`); an unknown type keeps pydantic's own text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.common.messages import render

_BY_TYPE: dict[str, str] = {
    "missing": "v.missing", "extra_forbidden": "v.extra",
    "string_type": "v.string", "string_too_short": "v.too-short", "string_too_long": "v.too-long",
    "too_short": "v.list-too-short", "too_long": "v.list-too-long", "string_pattern_mismatch": "v.pattern",
    "int_parsing": "v.integer", "int_type": "v.integer", "int_from_float": "v.integer",
    "float_parsing": "v.number", "float_type": "v.number", "decimal_parsing": "v.number", "decimal_type": "v.number",
    "finite_number": "v.number",
    "decimal_max_places": "v.decimal-places", "decimal_max_digits": "v.decimal-digits",
    "decimal_whole_digits": "v.decimal-digits",
    "greater_than": "v.gt", "greater_than_equal": "v.ge", "less_than": "v.lt", "less_than_equal": "v.le",
    "multiple_of": "v.multiple-of", "bool_parsing": "v.bool", "bool_type": "v.bool",
    "date_parsing": "v.date", "date_type": "v.date", "date_from_datetime_parsing": "v.date",
    "date_from_datetime_inexact": "v.date",
    "datetime_parsing": "v.datetime", "datetime_type": "v.datetime", "datetime_from_date_parsing": "v.datetime",
    "timezone_aware": "v.datetime",
    "uuid_parsing": "v.uuid", "uuid_type": "v.uuid", "uuid_version": "v.uuid",
    "enum": "v.choice", "literal_error": "v.choice",
    "list_type": "v.list", "model_type": "v.object", "dict_type": "v.object", "model_attributes_type": "v.object",
    "json_invalid": "v.json",
}


def field_label(loc: tuple[Any, ...], *, request: bool) -> str:
    """`("body", "staff_ids", 0)` -> `staff_ids.0`: the part of the location a caller wrote."""
    parts = [str(p) for p in loc]
    if request and parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts)


def field_message(error: Mapping[str, Any], field: str, language: str | None = None) -> str:
    """One pydantic error (`ValidationError.errors()` item) as a sentence naming `field`."""
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind in ("value_error", "assertion_error"):
        reason = str(ctx.get("error", "")) or error.get("msg", "")
        return render("v.field-rule" if field else "v.rule", language, field=field, reason=reason)
    key = _BY_TYPE.get(kind)
    if key is None:
        return render("v.other", language, field=field or "body", reason=error.get("msg", ""))
    params = {name: ctx.get(name, "") for name in ("min_length", "max_length", "pattern", "gt", "ge", "lt",
                                                    "le", "multiple_of", "expected", "decimal_places",
                                                    "max_digits")}
    return render(key, language, field=field or "body", **params)
