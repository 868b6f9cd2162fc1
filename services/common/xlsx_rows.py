"""Rows of an uploaded XLSX workbook, as the import engine reads CSV rows (services/common/imports.py).

Offices fill imports in Excel, so a sheet is read the way the office sees it: the first sheet; the
header is the first row naming a known column (a title row above it is skipped); blank rows are
skipped; each row keeps the number Excel shows beside it, and the report names rows by it.
Cells come out exactly as a CSV cell would: stripped text or None, a date as 2024-03-05, a number
as its decimal text (an integer-valued 12.0, a staff number or a code typed as a number, as "12").
So the fast path and the row models treat both files alike.

The workbook is parsed by calamine (Rust): the unzip and XML parse happen in `open_rows`, which
is CPU-bound and runs in a thread; the rows are then converted lazily, one at a time.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from services.common.errors import Unprocessable
from services.common.import_messages import written_columns

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ZIP_MAGIC = b"PK\x03\x04"
HEADER_SEARCH_ROWS = 10  # non-blank rows looked at for the header before taking the first one
BAD_FILE = "the file is not a readable XLSX workbook"


def is_xlsx(content_type: str, body: bytes | bytearray) -> bool:
    """Declared as XLSX, or a ZIP archive sent as anything else (application/octet-stream, or an
    office tool's guess): no CSV or JSON file begins with the ZIP signature."""
    return XLSX in content_type or bytes(body[:4]) == ZIP_MAGIC


def cell_text(value: Any) -> str | None:
    """One cell as the text a CSV export of it would hold (None for an empty cell)."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        # Excel keeps 15 significant digits; the binary float may carry noise past them (2.2999999999999998).
        return format(Decimal(format(value, ".15g")), "f")
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat(sep=" ")
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    return str(value).strip() or None


class SheetRows:
    """The data rows of the first sheet, one dict (field name -> text or None) each, with
    `numbers`: the Excel row number of each row yielded so far, in order."""

    def __init__(self, body: bytes | bytearray, aliases: dict[str, str],
                 written: dict[str, str] | None = None) -> None:
        import python_calamine

        try:
            workbook = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(body))
            sheet = workbook.get_sheet_by_index(0)
            # Rows from the sheet's first row (index 0 is Excel's row 1), columns from its first used one.
            self._rows = iter(sheet.iter_rows())
        except Exception as exc:  # calamine's errors (not a workbook, a broken ZIP or XML, a password)
            raise Unprocessable(BAD_FILE, slug="bad-file") from exc
        self.numbers: list[int] = []
        self._aliases = aliases
        self._written = {} if written is None else written
        self._names = self._header()

    def _next(self) -> tuple[int, list[Any]] | None:
        try:
            values = next(self._rows)
        except StopIteration:
            return None
        except Exception as exc:  # a cell calamine cannot convert, found as it is reached
            raise Unprocessable(BAD_FILE, slug="bad-file") from exc
        self._row += 1
        return self._row, values

    def _header(self) -> list[str | None]:
        """The first of the leading non-blank rows that names a known column, else the first."""
        self._row = 0
        self._held: list[tuple[int, list[Any]]] = []
        known = set(self._aliases) | set(self._aliases.values())
        candidates: list[tuple[int, list[Any]]] = []
        while len(candidates) < HEADER_SEARCH_ROWS and (row := self._next()) is not None:
            if any(cell_text(v) is not None for v in row[1]):
                candidates.append(row)
        if not candidates:
            raise Unprocessable("the XLSX file's first sheet is empty", slug="bad-file")
        at = next((i for i, (_, values) in enumerate(candidates)
                   if any(cell_text(v) in known for v in values)), 0)
        self._held = candidates[at + 1:]
        names = [cell_text(v) for v in candidates[at][1]]
        written_columns([n for n in names if n is not None], self._aliases, self._written)
        return [self._aliases.get(n, n) if n is not None else None for n in names]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        while True:
            row = self._held.pop(0) if self._held else self._next()
            if row is None:
                raise StopIteration
            number, values = row
            cells = [cell_text(v) for v in values]
            if any(c is not None for c in cells):  # blank rows, at the end or between, are skipped
                self.numbers.append(number)
                return {name: cell for name, cell in zip(self._names, cells) if name is not None}


def open_rows(body: bytes | bytearray, aliases: dict[str, str], written: dict[str, str] | None = None) -> SheetRows:
    """Parse the workbook (CPU-bound: call it in a thread from async code) and read its header;
    `written` receives field name -> the header as the sheet wrote it, for row messages."""
    return SheetRows(body, aliases, written)


_ROW_TAG = re.compile(rb"<(?:[A-Za-z0-9_]+:)?row[\s>/]")
_FIRST_SHEET = re.compile(rb"<(?:[A-Za-z0-9_]+:)?sheet\b[^>]*?\br:id=\"([^\"]+)\"")


def count_rows(body: bytes | bytearray) -> int:
    """Rows in the first sheet, header included, by counting its `<row>` elements while the sheet's
    XML is decompressed piece by piece: far cheaper than parsing it, and enough to choose between
    an inline import and a job. 0 for anything that is not a readable workbook (the parse then
    answers 422)."""
    try:
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            part = _first_sheet_part(archive)
            count, tail = 0, b""
            with archive.open(part) as stream:
                while piece := stream.read(1 << 20):
                    # The last bytes are searched again with the next piece (a tag may be split
                    # there); the tags wholly inside them are counted then, not now.
                    chunk = tail + piece
                    tail = chunk[-16:]
                    count += len(_ROW_TAG.findall(chunk)) - len(_ROW_TAG.findall(tail))
            return count + len(_ROW_TAG.findall(tail))
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, ValueError, zipfile.LargeZipFile):
        return 0


def _first_sheet_part(archive: zipfile.ZipFile) -> str:
    """The first sheet's part name, through the workbook and its relationships."""
    workbook = archive.read("xl/workbook.xml")
    match = _FIRST_SHEET.search(workbook)
    if match is None:
        raise KeyError("no sheet")
    rels = archive.read("xl/_rels/workbook.xml.rels").decode("utf-8", "replace")
    rid = re.escape(match[1].decode())
    target = re.search(rf"<Relationship\b[^>]*\bId=\"{rid}\"[^>]*\bTarget=\"([^\"]+)\"", rels) or re.search(
        rf"<Relationship\b[^>]*\bTarget=\"([^\"]+)\"[^>]*\bId=\"{rid}\"", rels)
    if target is None:
        raise KeyError(rid)
    path = target[1]
    return path.lstrip("/") if path.startswith("/") else "xl/" + path
