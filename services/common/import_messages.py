"""Import row messages that name the column as the file wrote it, in the reader's language.

A file may head a column `城乡类别` or `locality`; both reach the model as `locality`. The row
message names what the file wrote, so an office can find the column. Messages are written in
English (services/common/messages.py recognises them) and translated when the report is read:
reports are stored, and a job's report is read later by someone else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from services.common.field_errors import field_message


def written_columns(headers: Iterable[Any], aliases: Mapping[str, str], into: dict[str, str]) -> None:
    """Record field name -> header as written, the first one written for each field."""
    for header in headers:
        written = str(header).strip()
        into.setdefault(aliases.get(written, written), written)


def row_messages(exc: ValidationError, written: Mapping[str, str]) -> list[tuple[str | None, str]]:
    """(field, English message) per error of one row; the message names the column as written."""
    out: list[tuple[str | None, str]] = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or None
        column = written.get(field, field) if field else ""
        out.append((field, field_message(err, column or "", "en")))
    return out
