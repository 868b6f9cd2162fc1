"""Stage a plain CSV file by letting PostgreSQL parse it: the file goes into COPY as it is, and
the fast path's checks and conversions run as one SQL statement over its cells.

Parsing and validating 150,000 rows in Python costs about 1.7 s of the worker's CPU; PostgreSQL's
COPY parses the same file in about 0.15 s and the converters' SQL twins (services/common/
fast_rows.py) check it in about half a second. The result is the one Python gives:

- only files both parsers read the same way take this path: text (CSV, UTF-8 or GB18030 with or
  without a BOM, comma or tab), no quote character, no NUL, no `\\.` line, no two header columns
  naming one field; anything else, and any file COPY refuses (a row with more or fewer cells than
  the header, stray carriage returns), is read by Python as before;
- cells are stripped as `str.strip` strips them (every character Unicode calls white space), and
  rows whose cells are all blank are skipped and not numbered, as `iter_rows` does;
- a row with any cell the SQL twin is unsure of goes through the model in Python
  (`Validator.slow`), so every error is worded by the model, exactly as before;
- a key seen in an earlier valid row is the same "duplicate of row N in this file" error.
"""

from __future__ import annotations

import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.exc import DBAPIError
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.fast_rows import literal
from services.common.import_messages import written_columns
from services.common.import_model import ImportSpec, RowError
from services.common.import_rows import BOMS, Validator, decode, sniff_delimiter
from services.common.import_stage import copy_staged, ordered_id_of_line, raw_connection
from services.common.xlsx_rows import is_xlsx

# What str.strip() strips: every code point Python calls white space.
WHITE_SPACE = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())


@dataclass(frozen=True)
class CsvPlan:
    """A file PostgreSQL can parse as Python would: its UTF-8 bytes and what the header says."""

    data: bytes                 # UTF-8, no BOM, the header line included, no blank lines at the end
    delimiter: str
    header: list[str]           # as written
    names: list[str]            # per file column: the field it feeds (alias applied) or the header itself
    strip: bool                 # some cell starts or ends with white space


def plan(spec: ImportSpec, body: bytes, content_type: str) -> CsvPlan | None:
    """How to stage `body` in SQL, or None when Python must read it."""
    if spec.fast is None or (spec.fast_row is not None and spec.fast_row_sql is None):
        return None
    if "json" in content_type or is_xlsx(content_type, body):
        return None
    if not all(hasattr(spec.fast.get(c), "sql") for c in spec.columns):
        return None
    try:
        text, utf8 = _decoded(body)
    except Exception:  # noqa: BLE001 - an undecodable file: Python's reader words the error
        return None
    # On the UTF-8 bytes (a byte search, where the text of a Chinese file is two bytes a
    # character), and without copying the text: 0.07 s of a 22 MB file's planning.
    if b'"' in utf8 or b"\x00" in utf8 or b"\\." in utf8 or not text or text.isspace():
        return None
    end = text.find("\n")
    header_line = text if end < 0 else text[:end]
    delimiter = sniff_delimiter(header_line)
    header = header_line.removesuffix("\r").split(delimiter)
    names = [spec.aliases.get(h.strip(), h.strip()) for h in header]
    if len(set(names)) != len(names):
        return None
    # Blank lines at the end (COPY reads an empty line as a row of too few cells; Python skips it).
    utf8 = utf8.rstrip(b"\r\n")
    return CsvPlan(data=utf8, delimiter=delimiter, header=header, names=names, strip=_edge_space(text, delimiter))


_SPACE = re.compile(r"[^\S\n]+")  # white space other than the line feed (a carriage return included)


def _edge_space(text: str, delimiter: str) -> bool:
    """Whether some cell starts or ends with white space (then every cell is stripped in SQL).
    A file without any white space but line feeds (the usual one) is told by a search per
    character (in C); otherwise one pass over the runs of white space. A carriage return
    ending a line is the line's end, not the cell's."""
    if not any(c in text for c in WHITE_SPACE if c != "\n"):
        return False
    for run in _SPACE.finditer(text):
        start, end = run.span()
        if start == 0 or text[start - 1] in ("\n", delimiter):
            return True
        if end == len(text) or text[end] == delimiter:
            return True
        if text[end] == "\n" and run.group() != "\r":
            return True
    return False


def _decoded(body: bytes) -> tuple[str, bytes]:
    """The text as `decode` reads it, and its UTF-8 bytes without a BOM (the body itself when it
    is UTF-8 already, so a UTF-8 file is decoded once and never copied)."""
    for bom, encoding in BOMS:
        if body.startswith(bom):
            text = decode(body)
            return text, (memoryview(body)[len(bom):].tobytes() if encoding == "utf-8" else text.encode("utf-8"))
    data = bytes(body)  # a job's file arrives as a bytearray
    try:
        return data.decode("utf-8"), data
    except UnicodeDecodeError:
        text = decode(body)  # GB18030, or the error `decode` words
        return text, text.encode("utf-8")


SLOW_BATCH = 5000  # rows read back for the model at a time


class Unparsed(Exception):
    """COPY refused the file: Python reads it instead."""


async def stage(session: AsyncSession, spec: ImportSpec, validator: Validator, csv: CsvPlan) -> tuple[int, int,
                                                                                                  list[RowError]]:
    """Stage the file's valid rows into `staged`: (data rows, rows staged, errors).

    Raises `Unparsed`, with nothing staged, when COPY refuses the file."""
    written_columns(csv.header, spec.aliases, validator.written)
    columns = [f"c{i}" for i in range(len(csv.names))]
    try:
        async with session.begin_nested():
            raw = await raw_connection(session)  # inside: the savepoint is taken on first use
            await raw.execute("CREATE TEMP TABLE raw_file (line integer GENERATED ALWAYS AS IDENTITY, "
                              + ", ".join(f"{c} text" for c in columns) + ") ON COMMIT DROP")
            await raw.copy_to_table("raw_file", source=_chunks(csv.data), columns=columns, format="csv", header=True,
                                    delimiter=csv.delimiter)
    except (DBAPIError, asyncpg.PostgresError) as exc:
        raise Unparsed(str(exc)) from exc
    cells = [f"nullif(btrim({c}, $1), '')" if csv.strip else c for c in columns]
    args = [WHITE_SPACE] if csv.strip else []
    trimmed = f"SELECT line, {', '.join(f'{cell} AS t{i}' for i, cell in enumerate(cells))} FROM raw_file"
    blank = " AND ".join(f"t{i} IS NULL" for i in range(len(cells)))
    # Rows whose cells are all blank are skipped and not numbered (iter_rows). At the end of the
    # file (where spreadsheets leave them) they change no row's number; amid the data they would.
    counts = await raw.fetchrow(
        f"SELECT count(*) FILTER (WHERE NOT ({blank})) AS total, max(line) FILTER (WHERE NOT ({blank})) AS last, "
        f"min(line) FILTER (WHERE {blank}) AS first_blank FROM ({trimmed}) AS cells", *args)
    total, last = counts["total"], counts["last"] or 0
    if counts["first_blank"] is not None and counts["first_blank"] < last:
        await _drop(raw)
        raise Unparsed("a blank row amid the data")
    staged = int((await raw.execute(_convert_sql(spec, csv, trimmed, last), *args)).rsplit(" ", 1)[1])
    errors: list[RowError] = []
    if staged < total:
        staged += await _the_rest_through_the_model(session, spec, validator, csv, raw, trimmed, last, args, errors)
    await _drop(raw)
    duplicates = await _duplicates(raw, spec)
    errors += [RowError(row=row, field=spec.key[0], message=f"duplicate of row {first} in this file")
               for row, first in duplicates]
    return total, staged - len(duplicates), errors


async def _the_rest_through_the_model(session: AsyncSession, spec: ImportSpec, validator: Validator, csv: CsvPlan,
                                      raw: Any, trimmed: str, last: int, args: list[str],
                                      errors: list[RowError]) -> int:
    """The rows the SQL twins were unsure of, through the row model: (rows staged). Skipped when
    every row was staged in SQL (the scan for the others costs 0.1 s per 250,000 rows)."""
    staged = 0
    # The rows left for the model: one scan, read a batch at a time (a file of bad rows is not
    # held whole), each batch's valid rows staged before the next is read.
    slow = raw.cursor(f"SELECT * FROM ({trimmed}) AS cells WHERE line <= {last} "
                      "AND NOT EXISTS (SELECT 1 FROM staged s WHERE s.row_no = cells.line) ORDER BY line",
                      *args, prefetch=SLOW_BATCH)
    batch: list[Any] = []
    async for row in slow:
        batch.append(row)
        if len(batch) == SLOW_BATCH:
            staged += await _through_the_model(session, spec, validator, csv, batch, errors)
            batch = []
    staged += await _through_the_model(session, spec, validator, csv, batch, errors)
    return staged


async def _through_the_model(session: AsyncSession, spec: ImportSpec, validator: Validator, csv: CsvPlan,
                             rows: list[Any], errors: list[RowError]) -> int:
    """Validate rows (line, *cells) with the row model, stage the valid ones: how many were."""
    valid = []
    for row in rows:
        values = validator.slow(dict(zip(csv.names, row[1:])), row[0], errors)
        if values is not None:
            valid.append((row[0], *values))
    if valid:
        await copy_staged(session, spec, valid)
    return len(valid)


async def _drop(raw: asyncpg.Connection) -> None:
    await raw.execute("DROP TABLE raw_file")


async def _chunks(data: bytes, size: int = 1 << 20) -> AsyncIterator[memoryview]:
    view = memoryview(data)
    for start in range(0, len(view), size):
        yield view[start:start + size]


def _convert_sql(spec: ImportSpec, csv: CsvPlan, trimmed: str, last: int) -> str:
    """INSERT into `staged` the rows every converter is sure of, numbered by their line (the
    header excluded); a row with a cell one is unsure of is left for the model."""
    assert spec.fast is not None
    position = {name: i for i, name in enumerate(csv.names)}
    values, checks = [], []
    for name in spec.columns:
        info = spec.model.model_fields[name]
        required = info.is_required()
        default = None if required else info.get_default(call_default_factory=True)
        default = getattr(default, "value", default)
        if name not in position:
            values.append(f"{_default_sql(default)} AS v_{name}")
            if required:
                checks.append("false")
            continue
        cell = f"t{position[name]}"
        values.append(f"CASE WHEN {cell} IS NULL THEN {_default_sql(default)} "
                      f"ELSE {spec.fast[name].sql(cell)} END AS v_{name}")  # type: ignore[attr-defined]
        checks.append(f"v_{name} IS NOT NULL" if required else f"({cell} IS NULL OR v_{name} IS NOT NULL)")
    if spec.fast_row_sql:
        checks.append(f"({spec.fast_row_sql.format(**{c: f'v_{c}' for c in spec.columns})})")
    # OFFSET 0 keeps each level a level of its own: every cell is stripped once and every value
    # converted once, not again wherever the level above names it. The ids of rows the merge may
    # insert are numbered by line here (the column's default draws random bits for each row).
    ids = ("id, ", f"{ordered_id_of_line('line')}, ") if spec.insert_sql is not None else ("", "")
    joined = list(spec.staged_sql.items())
    return f"""
        INSERT INTO staged ({ids[0]}row_no, {", ".join([*spec.columns, *(c for c, _ in joined)])})
        SELECT {ids[1]}line, {", ".join([
            *(f"CAST(v_{c} AS {spec.column_types.get(c, 'text')})" for c in spec.columns),
            *(f"CAST({sql} AS {spec.extra_columns[c]})" for c, sql in joined)])}
        FROM (SELECT line, {", ".join(f"t{i}" for i in range(len(csv.names)))}, {", ".join(values)}
              FROM ({trimmed} OFFSET 0) AS cells
              WHERE line <= {last} OFFSET 0) AS converted {spec.staged_join or ""}
        WHERE {" AND ".join(checks) or "true"}"""


def _default_sql(default: object) -> str:
    if default is None:
        return "NULL"
    if isinstance(default, str):
        return literal(default)
    raise TypeError(f"no SQL literal for the default {default!r}")


async def _duplicates(raw: asyncpg.Connection, spec: ImportSpec) -> list[tuple[int, int]]:
    """Rows whose key an earlier staged row has: (row, the first row), removed from `staged`."""
    key = ", ".join(spec.key)
    rows = await raw.fetch(f"""
        WITH repeated AS (SELECT {key}, min(row_no) AS first FROM staged GROUP BY {key} HAVING count(*) > 1),
        gone AS (DELETE FROM staged s USING repeated r
                 WHERE ({", ".join(f"s.{k}" for k in spec.key)}) = ({", ".join(f"r.{k}" for k in spec.key)})
                   AND s.row_no <> r.first
                 RETURNING s.row_no, r.first)
        SELECT row_no, first FROM gone ORDER BY row_no""")
    return [(r["row_no"], r["first"]) for r in rows]
