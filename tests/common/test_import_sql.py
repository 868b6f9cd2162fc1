"""A plain CSV file staged by PostgreSQL's own parser (services/common/import_sql.py) gives exactly
what Python's reader and validator give: the same rows, numbers, values, defaults and errors.

Each file is staged both ways on a real connection and the `staged` tables, totals and errors
are compared, then checked against hand-written expectations; files the SQL path must not take
(quotes, ragged rows, a blank row amid the data) are shown to go back to Python untouched."""

from __future__ import annotations

import time
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common import import_sql
from services.common.import_model import ImportContext
from services.common.import_rows import Validator
from services.common.import_stage import copy_staged, create_staged
from services.common.imports import _stage_in_python
from services.rotation.imports import STAFF
from services.training.imports import TRAINING_HOURS

HEADER = "工号,姓名,任职学校代码,岗位,任教学段,学科,骨干级别,现岗位起始日期,退休日期,备注"
STAFF_ROWS = [
    "T001,王芳,11010501,教师,小学,语文,区级,2015-09-01,,",                  # 1 labels, ISO date
    "T002,刘洋,11011901,principal,junior,,,2018/9/1,2035年7月31日,调入",     # 2 office dates (model)
    "T003,陈静,1101-05_x,保安,小学,数学,无,2016-09-01,,",                     # 3 bad role
    "\u3000T004\xa0, 赵 磊 ,11010502,teacher,primary,数学,none,2016-09-01,,",  # 4 white space at the edges
    "T005,孙丽,11010503,副校长,初中,英语,市级,2016-02-30,,",                 # 5 impossible date
    "T001,王芳二,11010501,教师,小学,语文,无,2015-09-01,,",                   # 6 duplicate of row 1
    "T006,周杰,1101.0503,teacher,primary,,,2016-09-01,,",                    # 7 bad school code
    "T007,吴敏,11010503,teacher,primary,,,0999-01-01,,",                     # 8 a year before 1000
    "T008," + "名" * 201 + ",11010503,teacher,primary,,,2016-09-01,,",       # 9 name too long
    "T009,   ,11010503,teacher,primary,,,2016-09-01,,",                      # 10 blank required name
    "T003,陈静,11010501,教师,小学,数学,无,2016-09-01,,",                     # 11 first valid T003
    "T003,陈静,11010501,教师,小学,数学,无,2016-09-01,,",                     # 12 duplicate of row 11
]
STAFF_COLUMNS = ", ".join(STAFF.columns)


async def _stage(db_engine, spec, body: bytes, way: str) -> tuple[int, list[tuple], list[tuple]]:
    async with db_engine.connect() as connection:
        session = AsyncSession(bind=connection, expire_on_commit=False)
        await create_staged(session, spec)
        validator = Validator(spec, fast=True)
        if way == "sql":
            plan = import_sql.plan(spec, body, "text/csv")
            assert plan is not None
            total, _, errors = await import_sql.stage(session, spec, validator, plan)
        else:
            errors = []

            async def nothing() -> None:
                return None
            total, _ = await _stage_in_python(session, spec, validator, body, "text/csv",
                                              ImportContext(actor="t", districts=None), errors, nothing)
        rows = [tuple(r) for r in (await session.execute(text(
            f"SELECT row_no, {', '.join(spec.columns)} FROM staged ORDER BY row_no"))).all()]
        await session.rollback()
    return total, rows, sorted((e.row, e.field or "", e.message) for e in errors)


async def _both_ways(db_engine, spec, body: bytes) -> tuple[int, list[tuple], list[tuple]]:
    in_sql = await _stage(db_engine, spec, body, "sql")
    in_python = await _stage(db_engine, spec, body, "python")
    assert in_sql == in_python
    return in_sql


def _file(rows: list[str], *, header: str = HEADER, end: str = "\n") -> str:
    return end.join([header, *rows]) + end


@pytest.mark.parametrize("encode", [
    pytest.param(lambda s: s.encode("utf-8"), id="utf-8"),
    pytest.param(lambda s: b"\xef\xbb\xbf" + s.encode("utf-8"), id="utf-8 with BOM"),
    pytest.param(lambda s: s.encode("gb18030"), id="gb18030"),
    pytest.param(lambda s: s.replace("\n", "\r\n").encode("utf-8"), id="crlf"),
    pytest.param(lambda s: s.replace(",", "\t").encode("utf-8"), id="tab-separated"),
    pytest.param(lambda s: (s + ",,,,,,,,,\n , ,,,,,,,,\u3000\n\n").encode("utf-8"), id="blank rows at the end"),
])
async def test_staff_rows_stage_in_sql_as_in_python(db_engine, encode):
    total, rows, errors = await _both_ways(db_engine, STAFF, encode(_file(STAFF_ROWS)))
    assert total == 12
    assert [r[:2] for r in rows] == [(1, "T001"), (2, "T002"), (4, "T004"), (8, "T007"), (11, "T003")]
    assert rows[0][1:] == ("T001", "王芳", "11010501", "teacher", "primary", "语文", "district",
                           date(2015, 9, 1), None)
    assert rows[1][3:] == ("11011901", "principal", "junior", None, "none", date(2018, 9, 1),
                           date(2035, 7, 31))
    assert rows[2][1:3] == ("T004", "赵 磊")
    assert [(row, field) for row, field, _ in errors] == [
        (3, "role"), (5, "in_post_since"), (6, "staff_no"), (7, "home_school_code"), (9, "name"), (10, "name"),
        (12, "staff_no")]
    assert errors[2][2] == "duplicate of row 1 in this file"
    assert errors[6][2] == "duplicate of row 11 in this file"


async def test_training_hours_stage_in_sql_as_in_python(db_engine):
    staff_id = "3f2b8c1e-6d4a-4c2e-9b7f-1a2b3c4d5e6f"
    body = _file([
        f"{staff_id},,8,2024-05-01,市级,R-1",
        f"{staff_id.upper()},T001,8.5,2024-05-02,市级,R-2",
        ",T002,08.50,2024-05-03,区级,R-3",
        ",,2,2024-05-04,区级,R-4",              # neither staff_id nor staff_no
        f"{staff_id},,1000,2024-05-05,区级,R-5",
        f"{staff_id},,1000.01,2024-05-06,区级,R-6",
        f"{staff_id},,0,2024-05-07,区级,R-7",
        f"{staff_id},,1e2,2024-05-08,区级,R-8",  # the model decides
        f"{staff_id},,2,2024-05-09,studio_session,R-9",
        f"{staff_id}x,,2,2024-05-10,区级,R-10",
        f"{staff_id},,2,2024-05-10,区级,R-1",   # a key already in row 1 of another source: fine
        f"{staff_id},,2,2024-05-11,市级,R-1",   # duplicate of row 1
    ], header="staff_id,staff_no,hours,earned_on,source,reference")
    total, rows, errors = await _both_ways(db_engine, TRAINING_HOURS, body.encode())
    assert total == 12
    assert [(r[0], r[3]) for r in rows] == [(1, Decimal("8.00")),
                                            (2, Decimal("8.50")),
                                            (3, Decimal("8.50")),
                                            (5, Decimal("1000.00")),
                                            (8, Decimal("100.00")),
                                            (11, Decimal("2.00"))]
    assert [(row, field) for row, field, _ in errors] == [
        (4, ""), (6, "hours"), (7, "hours"), (9, "source"), (10, "staff_id"), (12, "source")]


async def test_a_file_without_an_optional_column_takes_its_default(db_engine):
    body = "staff_no,name,home_school_code,role,section,in_post_since\nT001,王芳,11010501,teacher,primary,2015-09-01\n"
    total, rows, errors = await _both_ways(db_engine, STAFF, body.encode())
    assert (total, errors) == (1, [])
    assert rows[0][6:] == (None, "none", date(2015, 9, 1), None)


@pytest.mark.parametrize("body", [
    pytest.param(_file(['T001,王芳,11010501,教师,小学,"语文",区级,2015-09-01,,']), id="a quote"),
    pytest.param(_file(["T001,王芳,11010501,教师,小学,语文,区级,2015-09-01,,", "\\."]), id="a backslash-dot line"),
    pytest.param("工号,姓名,工号\nT001,王芳,T002\n", id="two columns naming one field"),
])
def test_files_both_parsers_would_not_read_alike_are_left_to_python(body):
    assert import_sql.plan(STAFF, body.encode(), "text/csv") is None


@pytest.mark.parametrize("body", [
    pytest.param(_file(["T001,王芳,11010501,教师,小学,语文,区级,2015-09-01,,,多余",
                        "T002,刘洋,11011901,教师,初中,,,2018-09-01"]), id="ragged rows"),
    pytest.param(_file(["T001,王芳,11010501,教师,小学,语文,区级,2015-09-01,,", ",,,,,,,,,",
                        "T002,刘洋,11011901,教师,初中,,,2018-09-01,,"]), id="a blank row amid the data"),
])
async def test_files_copy_reads_otherwise_go_back_to_python_with_nothing_staged(db_engine, body):
    async with db_engine.connect() as connection:
        session = AsyncSession(bind=connection, expire_on_commit=False)
        await create_staged(session, STAFF)
        plan = import_sql.plan(STAFF, body.encode(), "text/csv")
        assert plan is not None
        with pytest.raises(import_sql.Unparsed):
            await import_sql.stage(session, STAFF, Validator(STAFF, fast=True), plan)
        assert (await session.execute(text("SELECT count(*) FROM staged"))).scalar_one() == 0
        assert (await session.execute(text("SELECT to_regclass('pg_temp.raw_file')"))).scalar_one() is None
        await session.rollback()
    total, rows, errors = await _stage(db_engine, STAFF, body.encode(), "python")
    assert (total, [r[:2] for r in rows], errors) == (2, [(1, "T001"), (2, "T002")], [])


OFFICE_DATES = ["2015/9/1", "2015.9.1", "2015年9月1日", "2015年9月1", "20150901", "2015-9-1", "2015/09/01"]


async def test_office_dates_stage_in_sql_as_in_python(db_engine):
    """Excel in a Chinese locale writes dates as 2015/9/1: the SQL twin rewrites the office forms
    itself (the whole file stays in SQL); spellings it does not know go through the model."""
    rows = [f"T{i:03d},王芳,11010501,教师,小学,语文,区级,{d},," for i, d in enumerate(
        [*OFFICE_DATES, "2015/2/30", "２０１５/9/1", "2015 /9/1", "15/9/1"])]
    total, staged, errors = await _both_ways(db_engine, STAFF, _file(rows).encode())
    assert total == 11
    # Row 10 (a space before the slash) is the model's to accept; 8 is no date; 9 and 11 are
    # forms the model refuses too.
    assert [(r[0], r[8]) for r in staged] == [(row, date(2015, 9, 1)) for row in (1, 2, 3, 4, 5, 6, 7, 10)]
    assert [row for row, _, _ in errors] == [8, 9, 11]


async def test_the_date_twin_is_sure_of_every_office_form(db_engine):
    twin = STAFF.fast["in_post_since"].sql("v")  # type: ignore[index,union-attr]
    async with db_engine.connect() as connection:
        for value in OFFICE_DATES:
            stored = (await connection.execute(text(f"SELECT {twin} FROM (SELECT CAST(:v AS text) AS v) AS cell"),
                                               {"v": value})).scalar_one()
            assert stored == date(2015, 9, 1), value
        for value in ("2015/2/30", "２０１５/9/1", "2015 /9/1", "0000/1/1", "2015/9/1/1"):
            assert (await connection.execute(text(f"SELECT {twin} FROM (SELECT CAST(:v AS text) AS v) AS cell"),
                                             {"v": value})).scalar_one() is None, value


HOURS_CELLS = ["1", "24", "1000", "1000.00", "1000.01", "1001", "12345", "0", "0.0", "0.01", "4.5", "4.55", "4.555",
               ".5", "5.", "1.2.3", "-1", "+1", "1e3", "１２", "٣", "1,5", " 1", "1 ", "00012", "0012.5", "", "."]


async def test_the_decimal_twin_is_sure_exactly_where_python_is(db_engine):
    """The hours twin (shape without a regular expression) against the Python converter, cell by
    cell: the same number where Python is sure, NULL (left to the model) where it is not."""
    from services.common.fast_rows import Unsure

    convert = TRAINING_HOURS.fast["hours"]  # type: ignore[index]
    twin = convert.sql("v")  # type: ignore[attr-defined]
    async with db_engine.connect() as connection:
        for value in HOURS_CELLS:
            try:
                expected = convert(value)
            except Unsure:
                expected = None
            stored = (await connection.execute(text(f"SELECT {twin} FROM (SELECT CAST(:v AS text) AS v) AS cell"),
                                               {"v": value})).scalar_one()
            assert stored == expected, value


async def test_rows_for_the_model_are_read_back_a_batch_at_a_time(db_engine, monkeypatch):
    whole = await _stage(db_engine, STAFF, _file(STAFF_ROWS).encode(), "sql")
    monkeypatch.setattr(import_sql, "SLOW_BATCH", 2)
    assert await _stage(db_engine, STAFF, _file(STAFF_ROWS).encode(), "sql") == whole
    assert len(whole[2]) == 7


async def test_a_file_the_sql_twins_are_sure_of_never_looks_for_rows_left_to_the_model(db_engine, monkeypatch):
    sure = [row for number, row in enumerate(STAFF_ROWS, 1) if number in (1, 11)]

    async def refused(*args, **kwargs):
        raise AssertionError("every row was staged in SQL: nothing is left for the model")

    monkeypatch.setattr(import_sql, "_the_rest_through_the_model", refused)
    total, rows, errors = await _stage(db_engine, STAFF, _file(sure).encode(), "sql")
    assert (total, [row[:2] for row in rows], errors) == (2, [(1, "T001"), (2, "T003")], [])


async def test_new_rows_ids_begin_with_the_imports_start(db_engine):
    """Ids staged for new rows in SQL share their first 48 bits (the import's start in
    milliseconds) and 30 bits drawn for the import, and carry their line: UUIDv7 with the RFC 9562
    variant. Rows the model stages draw 74 random bits each (version 4)."""
    before = int(time.time() * 1000)
    async with db_engine.connect() as connection:
        session = AsyncSession(bind=connection, expire_on_commit=False)
        await create_staged(session, STAFF)
        plan = import_sql.plan(STAFF, _file(STAFF_ROWS[:2]).encode(), "text/csv")
        assert plan is not None
        await import_sql.stage(session, STAFF, Validator(STAFF, fast=True), plan)
        await copy_staged(session, STAFF, [(3, "M3", "王芳", "11010501", "teacher", "primary", None, "none",
                                            date(2015, 9, 1), None)])
        ids = [row[0] for row in (await session.execute(text("SELECT id FROM staged ORDER BY row_no"))).all()]
        after = int(time.time() * 1000)
        await session.rollback()
    assert len(set(ids)) == 3
    assert all(before <= i.int >> 80 <= after for i in ids)
    assert [(i.version, i.variant) for i in ids] == [(7, "specified in RFC 4122")] * 2 + [(4, "specified in RFC 4122")]
    # The line ends each id, and its low 12 bits are in the first 8 bytes too, which are all that
    # btree_gist compares (the rotations' exclusion index on staff_id degenerated without them).
    assert [ids[0].int & 0xFFFFFFFF, ids[1].int & 0xFFFFFFFF] == [1, 2]
    assert [(i.int >> 64) & 0xFFF for i in ids[:2]] == [1, 2]
    assert ids[0].bytes[:8] != ids[1].bytes[:8]
    assert (ids[0].int >> 32) & 0xFFFFFFFF == (ids[1].int >> 32) & 0xFFFFFFFF  # variant and the 30 drawn bits


async def test_a_file_of_twenty_megabytes_numbers_its_rows_past_999_and_9999(db_engine):
    """280,000 staff rows with Chinese names and labels (about 20 MB) staged in SQL: the errors name
    rows 999, 1,000, 9,999, 10,000 and the last exactly, a duplicate is found thousands of rows
    after its first, and every other row is staged under its own number."""
    count = 280_000
    rows = [f"B{i:07d},张伟{i},1101050{i % 10},教师,小学,数学,区级,2015-09-01,," for i in range(1, count + 1)]
    for bad in (999, 1000, 9999, 10_000, count):
        rows[bad - 1] = rows[bad - 1].replace("教师", "保安")
    rows[150_000 - 1] = rows[12_345 - 1]  # row 150,000 repeats row 12,345's staff_no
    body = _file(rows).encode()
    assert len(body) > 20_000_000
    async with db_engine.connect() as connection:
        session = AsyncSession(bind=connection, expire_on_commit=False)
        await create_staged(session, STAFF)
        plan = import_sql.plan(STAFF, body, "text/csv")
        assert plan is not None
        total, staged, errors = await import_sql.stage(session, STAFF, Validator(STAFF, fast=True), plan)
        stored = (await session.execute(text(
            "SELECT count(*), min(row_no), max(row_no), sum(row_no) FROM staged"))).one()
        row = (await session.execute(text(
            "SELECT staff_no, name, role FROM staged WHERE row_no = 123456"))).one()
        await session.rollback()
    assert (total, staged) == (count, count - 6)
    assert [(e.row, e.field, e.message) for e in sorted(errors, key=lambda e: e.row)] == [
        (999, "role", "岗位 must be one of 'teacher', 'principal', 'vice_principal' or 'middle_manager'"),
        (1000, "role", "岗位 must be one of 'teacher', 'principal', 'vice_principal' or 'middle_manager'"),
        (9999, "role", "岗位 must be one of 'teacher', 'principal', 'vice_principal' or 'middle_manager'"),
        (10_000, "role", "岗位 must be one of 'teacher', 'principal', 'vice_principal' or 'middle_manager'"),
        (150_000, "staff_no", "duplicate of row 12345 in this file"),
        (count, "role", "岗位 must be one of 'teacher', 'principal', 'vice_principal' or 'middle_manager'")]
    assert tuple(stored) == (count - 6, 1, count - 1, count * (count + 1) // 2 - (999 + 1000 + 9999 + 10_000 + 150_000 + count))
    assert tuple(row) == ("B0123456", "张伟123456", "teacher")


@pytest.mark.parametrize("rows, in_thread", [(2, False), (30_000, True)])
async def test_a_large_file_is_planned_off_the_event_loop(db_engine, monkeypatch, rows, in_thread):
    """Planning a file of more than 1 MiB (decoding it, looking at its cells' edges) runs in a
    thread, so a worker's event loop keeps answering; a small one is planned at once."""
    import dataclasses
    import threading

    from services.common import imports
    from services.common.imports import ImportMode, run_import

    where = []
    real = import_sql.plan

    def plan(*args):
        where.append(threading.current_thread() is threading.main_thread())
        return real(*args)

    monkeypatch.setattr(import_sql, "plan", plan)
    body = _file([f"B{i:07d},张伟{i},11010501,教师,小学,数学,区级,2015-09-01," for i in range(rows)]).encode()
    assert (len(body) > imports.PLAN_IN_THREAD) == in_thread
    async with db_engine.connect() as connection:
        session = AsyncSession(bind=connection, expire_on_commit=False)
        # Without the resolve step (it asks partnership about schools): planning is what is watched.
        spec = dataclasses.replace(STAFF, resolve=None)
        report = await run_import(session, spec, body=body, content_type="text/csv", mode=ImportMode.all_or_nothing,
                                  dry_run=True, context=ImportContext(actor="tester", districts=None))
        await session.rollback()
    assert where == [not in_thread]
    assert report.total_rows == rows


async def test_staging_in_sql_fills_what_the_spec_joins_and_leaves_the_rest_to_resolve(db_engine):
    """Staff staged in SQL take their home district from rotation's school directory in the same
    statement (`staged_join`/`staged_sql`); a school the directory does not hold is left NULL for
    the resolve step (as is every row the model stages, which `copy_staged` writes)."""
    async with db_engine.connect() as connection:
        session = AsyncSession(bind=connection, expire_on_commit=False)
        await session.execute(text("INSERT INTO rotation.school_directory (code, name, district_code) "
                                   "VALUES ('11010501', '北京市朝阳区实验小学', '110105')"))
        await create_staged(session, STAFF)
        rows = ["B1,甲,11010501,教师,小学,数学,无,2015-09-01,,", "B2,乙,11011902,教师,小学,数学,无,2015-09-01,,",
                "B3,丙,11010501,教师,小学,数学,无,2015年9月1日,,"]
        plan = import_sql.plan(STAFF, _file(rows).encode(), "text/csv")
        assert plan is not None
        total, staged, errors = await import_sql.stage(session, STAFF, Validator(STAFF, fast=True), plan)
        got = (await session.execute(text("SELECT row_no, home_district_code FROM staged ORDER BY row_no"))).all()
        await session.rollback()
    assert (total, staged, errors) == (3, 3, [])
    assert [tuple(row) for row in got] == [(1, "110105"), (2, None), (3, "110105")]
