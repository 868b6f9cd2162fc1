"""Cursor pagination: `limit` (1..500, default 50) and an opaque keyset `cursor`.

A cursor comes back from the client, so it is untrusted input: its length is bounded before it is
decoded (nothing this API issues comes near the bound: a key is at most a timestamp and a UUID, or
a code of 64 characters), and anything that is not a flat list of scalars of the right length is
`invalid-cursor` (422), never a RecursionError or a conversion error surfacing as a 500.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Generic, TypeVar
from uuid import UUID

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import Select, tuple_
from sqlalchemy.sql import sqltypes
from sqlalchemy.types import TypeDecorator

from services.common.errors import DomainError

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class InvalidCursor(DomainError):
    status, slug, title = 422, "invalid-cursor", "Invalid cursor"


# Longest cursor accepted, in characters. The longest one issued is a 64-character code of 3-byte
# UTF-8 characters, about 270 characters once base64-encoded.
MAX_CURSOR_LENGTH = 512


class PageParams(BaseModel):
    limit: int = 50
    cursor: str | None = None


async def page_params(
    limit: Annotated[int, Query(ge=1, le=500, description="Items per page (max 500)")] = 50,
    cursor: Annotated[str | None, Query(description="Opaque cursor from `next_cursor` "
                                              f"(at most {MAX_CURSOR_LENGTH} characters)")] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=cursor)


PageDep = Annotated[PageParams, Depends(page_params)]


def _plain(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, (UUID, Decimal)):
        return str(value)
    return value


def encode_cursor(values: Sequence[Any]) -> str:
    raw = json.dumps([_plain(v) for v in values], separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, converters: Sequence[Callable[[Any], Any]]) -> list[Any]:
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError("cursor too long")
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(values, list) or len(values) != len(converters):
            raise ValueError("cursor shape")
        if not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in values):
            raise ValueError("cursor values are not scalars")
        return [conv(v) for conv, v in zip(converters, values)]
    except (ValueError, TypeError, InvalidOperation, RecursionError) as exc:
        raise InvalidCursor("the cursor is not one this API issued", extra={
            "errors": [{"field": "query.cursor", "message": "invalid cursor", "type": "value_error"}]
        }) from exc


def _converter(column: Any) -> Callable[[Any], Any]:
    """How to turn a cursor's JSON value back into the column's Python type."""
    sql_type = column.type
    if isinstance(sql_type, TypeDecorator):
        sql_type = sql_type.impl_instance
    if isinstance(sql_type, sqltypes.Uuid):
        return UUID
    if isinstance(sql_type, sqltypes.DateTime):
        return datetime.fromisoformat
    if isinstance(sql_type, sqltypes.Date):
        return date.fromisoformat
    if isinstance(sql_type, sqltypes.Integer):
        return int
    if isinstance(sql_type, sqltypes.Numeric):
        return Decimal
    return str


def keyset(stmt: Select, columns: Sequence[Any], page: PageParams) -> Select:
    """Order by the key columns, continue after the cursor, fetch one extra row to see if more."""
    if page.cursor:
        values = decode_cursor(page.cursor, [_converter(c) for c in columns])
        stmt = stmt.where(tuple_(*columns) > tuple_(*values))
    return stmt.order_by(*columns).limit(page.limit + 1)


def page_of(rows: Sequence[T], page: PageParams, key: Callable[[T], Sequence[Any]]) -> Page[T]:
    items = list(rows[: page.limit])
    more = len(rows) > page.limit
    return Page(items=items, next_cursor=encode_cursor(key(items[-1])) if more and items else None)
