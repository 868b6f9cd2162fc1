"""Parse and validate an import's rows: decode the file (BOM, UTF-8, GB18030), read CSV or JSON,
validate each row (a plain-Python fast path, else the model) and find duplicate keys in the file."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Sequence
from enum import Enum
from typing import Any

from pydantic import ValidationError

from services.common import xlsx_rows
from services.common.errors import Unprocessable
from services.common.import_messages import row_messages, written_columns
from services.common.import_model import ImportSpec, RowError

# Byte-order marks, longest first. Excel's "Unicode text" is UTF-16 (LE) with a BOM; GB18030 has
# its own BOM (the encoding of U+FEFF), which some Chinese office tools write.
BOMS = ((b"\x84\x31\x95\x33", "gb18030"), (b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"),
        (b"\xfe\xff", "utf-16-be"))
NUL_MESSAGE = "contains a NUL character (\\x00), which cannot be stored"


def decode(body: bytes) -> str:
    """A BOM decides; without one, UTF-8 first, then GB18030 (a superset of GBK/GB2312)."""
    for bom, encoding in BOMS:
        if body.startswith(bom):
            try:
                return body[len(bom):].decode(encoding)
            except UnicodeDecodeError as exc:
                raise Unprocessable(f"the file starts with a {encoding} byte-order mark but is not {encoding} "
                                    "text", slug="bad-encoding") from exc
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return body.decode("gb18030")
        except UnicodeDecodeError as exc:
            raise Unprocessable("the file is neither UTF-8 nor GB18030 text", slug="bad-encoding") from exc


def sniff_delimiter(text: str) -> str:
    """Tab or comma, by the header line: Excel's "Unicode text" export is tab-separated."""
    header = text.split("\n", 1)[0]
    return "\t" if header.count("\t") > header.count(",") else ","


def iter_rows(body: bytes, content_type: str, aliases: dict[str, str],
              written: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
    """The file's data rows, one dict each (field name -> value), read lazily for CSV.

    Problems with the file as a whole (encoding, JSON syntax or shape, an empty CSV) raise a 422
    before the first row is yielded; a CSV broken further down raises when it is reached (XLSX:
    services/common/xlsx_rows.py).
    `written` receives field name -> the header as the file wrote it, for row messages."""
    written = {} if written is None else written
    if xlsx_rows.is_xlsx(content_type, body):
        return xlsx_rows.open_rows(body, aliases, written)
    if "json" in content_type:
        try:
            data = json.loads(decode(body))
        except json.JSONDecodeError as exc:
            raise Unprocessable(f"the JSON body is not valid: {exc.msg}", slug="bad-file") from exc
        except RecursionError:  # e.g. 100,000 nested arrays: a file built to exhaust the parser
            raise Unprocessable("the JSON body is nested too deeply", slug="bad-file") from None
        rows = data.get("rows") if isinstance(data, dict) else data
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise Unprocessable("a JSON import is a list of objects (or {\"rows\": [...]})", slug="bad-file")
        for r in rows:
            written_columns(r, aliases, written)
        return iter([{aliases.get(str(k).strip(), str(k).strip()): v for k, v in r.items()} for r in rows])
    content = decode(body)
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=sniff_delimiter(content))
    try:
        header = next(reader)
    except StopIteration:
        raise Unprocessable("the CSV file is empty", slug="bad-file") from None
    except csv.Error as exc:
        raise Unprocessable(f"the CSV file cannot be read at line {reader.line_num}: {exc}", slug="bad-file") from exc
    written_columns(header, aliases, written)
    return _csv_rows(reader, [aliases.get(h.strip(), h.strip()) for h in header])


def _csv_rows(reader: Any, names: list[str]) -> Iterator[dict[str, Any]]:
    try:
        for values in reader:
            if not any(v.strip() for v in values):
                continue  # blank lines that spreadsheets leave at the end
            yield {name: (value.strip() or None) for name, value in zip(names, values)}
    except csv.Error as exc:
        raise Unprocessable(f"the CSV file cannot be read at line {reader.line_num}: {exc}",
                            slug="bad-file") from exc


def parse_rows(body: bytes, content_type: str, aliases: dict[str, str]) -> list[dict[str, Any]]:
    return list(iter_rows(body, content_type, aliases))


class FastPath:
    """Validation of the common row in plain Python, about ten times cheaper than the model.

    Each converter accepts only the canonical forms whose staged value is certain (a date as
    2024-03-05 or a form `office_date` rewrites to it, a label or an enum value, text within its
    length) and raises on anything else; a row with a value it refuses, a blank required column,
    a NUL, or one `fast_row` refuses goes through the model instead, so every error message is the
    model's own. Columns the file does not carry take the model field's default."""

    def __init__(self, spec: ImportSpec) -> None:
        self.row_check = spec.fast_row
        self.plan: list[tuple[str, Callable[[str], Any], bool, Any]] = []
        converters = spec.fast or {}
        for name in spec.columns:
            info = spec.model.model_fields[name]
            default = None if info.is_required() else info.get_default(call_default_factory=True)
            self.plan.append((name, converters[name], info.is_required(),
                              default.value if isinstance(default, Enum) else default))

    def __call__(self, raw: dict[str, Any]) -> tuple | None:
        values = []
        try:
            for name, convert, required, default in self.plan:
                value = raw.get(name)
                if value is None:
                    if required:
                        return None
                    values.append(default)
                elif "\x00" in value:
                    return None
                else:
                    values.append(convert(value))
        except Exception:  # noqa: BLE001 - anything the fast path is unsure of goes to the model
            return None
        row = tuple(values)
        return row if self.row_check is None or self.row_check(row) else None


class Validator:
    """Model validation per row (or the spec's fast path first, for CSV cells), and duplicates
    of the natural key across the whole file. Valid rows come out as tuples in `columns` order."""

    def __init__(self, spec: ImportSpec, *, fast: bool = False) -> None:
        self.spec = spec
        self.first_seen: dict[tuple, int] = {}
        self.fast = FastPath(spec) if fast and spec.fast is not None else None
        self.key_at = [list(spec.columns).index(k) for k in spec.key]
        self.written: dict[str, str] = {}  # field -> the header as the file wrote it (iter_rows fills it)

    def slow(self, raw: dict[str, Any], number: int, errors: list[RowError]) -> tuple | None:
        spec = self.spec
        cleaned = {k: v for k, v in raw.items() if v is not None}
        # PostgreSQL text cannot hold NUL: a row error here, not a failed COPY (500) later.
        nul = [k for k, v in cleaned.items() if isinstance(v, str) and "\x00" in v]
        if nul:
            errors.extend(RowError(row=number, field=k.replace("\x00", "\\x00"), message=NUL_MESSAGE)
                          for k in nul)
            return None
        try:
            record = spec.model.model_validate(cleaned)
        except ValidationError as exc:
            errors.extend(RowError(row=number, field=field, message=message)
                          for field, message in row_messages(exc, self.written))
            return None
        values = spec.prepare(record) if spec.prepare else record.model_dump(mode="python")
        return tuple(values.get(c) for c in spec.columns)

    def batch(self, rows: list[dict[str, Any]], first: int | Sequence[int]) -> tuple[list[tuple], list[RowError]]:
        """Rows numbered from `first` (or by the numbers given, a spreadsheet's own): the valid ones
        as (number, *staged values), and the errors."""
        valid: list[tuple] = []
        errors: list[RowError] = []
        fast, seen_at, key_at, key_field = self.fast, self.first_seen.setdefault, self.key_at, self.spec.key[0]
        for number, raw in (enumerate(rows, start=first) if isinstance(first, int) else zip(first, rows)):
            values = fast(raw) if fast is not None else None
            if values is None:
                values = self.slow(raw, number, errors)
                if values is None:
                    continue
            key = tuple(values[i] for i in key_at)
            seen = seen_at(key, number)
            if seen != number:
                errors.append(RowError(row=number, field=key_field, message=f"duplicate of row {seen} in this file"))
                continue
            valid.append((number, *values))
        return valid, errors


def _batches(rows: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def count_data_rows(body: bytes, content_type: str) -> int:
    """A cheap estimate of the rows in a file, to decide between answering now and a job."""
    if xlsx_rows.is_xlsx(content_type, body):
        return max(0, xlsx_rows.count_rows(body) - 1)
    if "json" in content_type:
        return body.count(b"{")
    return max(0, body.count(b"\n") - 1)
