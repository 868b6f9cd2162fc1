"""The eligibility rule of design.md §4.3, evaluated by PostgreSQL, at every boundary.

Rows are written straight into rotation.staff (the rule needs no other service) and the SQL the
service uses for whole districts is asked who is eligible on a date E.
"""

from __future__ import annotations

import itertools
from datetime import date

import pytest
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.rotation.repository import eligible_staff_ids

_ids = itertools.count(1)
E = date(2024, 9, 1)


async def _staff(db_engine, *, in_post_since: date, role: str = "teacher", retirement_date: date | None = None,
                 status: str = "active", district: str = "110105") -> str:
    n = next(_ids)
    staff_id = f"00000000-0000-0000-0000-{n:012d}"
    async with db_engine.begin() as conn:
        await conn.execute(text(
            "insert into rotation.staff (id, staff_no, name, home_school_code, home_district_code, role, section, "
            "in_post_since, retirement_date, status) values (:id, :no, '张伟', '11010501', :district, :role, "
            "'primary', :since, :retire, :status)"),
            {"id": staff_id, "no": f"U{n}", "district": district, "role": role, "since": in_post_since,
             "retire": retirement_date, "status": status})
    return staff_id


async def _eligible(db_engine, as_of: date = E, district: str | None = "110105") -> set[str]:
    async with AsyncSession(db_engine) as session:
        return {str(i) for i in await eligible_staff_ids(session, as_of=as_of, district_code=district)}


async def _policy(db_engine, **values) -> None:
    row = {"min_years_teacher": 6, "min_years_cadre": 6, "retirement_exempt_years": 5, **values}
    async with db_engine.begin() as conn:
        await conn.execute(text(
            "insert into rotation.rotation_policies (district_code, min_years_teacher, min_years_cadre, "
            "retirement_exempt_years, target_rate, target_backbone_share, updated_by) values ('110105', :t, :c, "
            ":r, 0.10, 0.20, 'test')"),
            {"t": row["min_years_teacher"], "c": row["min_years_cadre"], "r": row["retirement_exempt_years"]})


class TestServedYears:
    async def test_exactly_min_years_is_eligible(self, db_engine):
        exact = await _staff(db_engine, in_post_since=date(2018, 9, 1))  # 2018-09-01 + 6 y = E
        assert await _eligible(db_engine) == {exact}

    async def test_one_day_short_is_not(self, db_engine):
        await _staff(db_engine, in_post_since=date(2018, 9, 2))
        assert await _eligible(db_engine) == set()

    async def test_long_served_is_eligible(self, db_engine):
        veteran = await _staff(db_engine, in_post_since=date(1999, 3, 15))
        assert await _eligible(db_engine) == {veteran}

    @pytest.mark.parametrize("as_of, expected", [
        (date(2026, 2, 27), False),
        # PostgreSQL: 2020-02-29 + 6 years = 2026-02-28 (the missing day is clamped to the month's end).
        (date(2026, 2, 28), True),
        (date(2026, 3, 1), True),
    ])
    async def test_leap_day_follows_postgresql(self, db_engine, as_of, expected):
        leap = await _staff(db_engine, in_post_since=date(2020, 2, 29))
        assert (leap in await _eligible(db_engine, as_of)) is expected

    async def test_leap_day_to_leap_year(self, db_engine):
        # 2020-02-29 + 4 years = 2024-02-29, which exists: not eligible on the 28th.
        await _policy(db_engine, min_years_teacher=4)
        leap = await _staff(db_engine, in_post_since=date(2020, 2, 29))
        assert leap not in await _eligible(db_engine, date(2024, 2, 28))
        assert leap in await _eligible(db_engine, date(2024, 2, 29))


class TestRetirementExemption:
    async def test_retirement_exactly_at_the_limit_is_exempt(self, db_engine):
        await _staff(db_engine, in_post_since=date(2010, 9, 1), retirement_date=date(2029, 9, 1))  # = E + 5 y
        assert await _eligible(db_engine) == set()

    async def test_one_day_after_the_limit_is_eligible(self, db_engine):
        later = await _staff(db_engine, in_post_since=date(2010, 9, 1), retirement_date=date(2029, 9, 2))
        assert await _eligible(db_engine) == {later}

    async def test_already_past_retirement_date_is_exempt(self, db_engine):
        await _staff(db_engine, in_post_since=date(2000, 9, 1), retirement_date=date(2024, 1, 31))
        assert await _eligible(db_engine) == set()

    async def test_policy_exemption_years(self, db_engine):
        await _policy(db_engine, retirement_exempt_years=3)
        # Retiring 2029-09-01 is more than 3 years after E (2027-09-01): no longer exempt.
        member = await _staff(db_engine, in_post_since=date(2010, 9, 1), retirement_date=date(2029, 9, 1))
        boundary = await _staff(db_engine, in_post_since=date(2010, 9, 1), retirement_date=date(2027, 9, 1))
        assert await _eligible(db_engine) == {member}
        assert boundary not in await _eligible(db_engine)


class TestTeacherAndCadre:
    async def test_each_role_uses_its_own_min_years(self, db_engine):
        await _policy(db_engine, min_years_teacher=6, min_years_cadre=3)
        teacher = await _staff(db_engine, in_post_since=date(2021, 9, 1))
        principal = await _staff(db_engine, in_post_since=date(2021, 9, 1), role="principal")
        vice = await _staff(db_engine, in_post_since=date(2021, 9, 2), role="vice_principal")
        manager = await _staff(db_engine, in_post_since=date(2021, 9, 1), role="middle_manager")
        assert await _eligible(db_engine) == {principal, manager}
        assert teacher and vice

    async def test_defaults_without_policy_are_six_years_for_both(self, db_engine):
        teacher = await _staff(db_engine, in_post_since=date(2018, 9, 1))
        principal = await _staff(db_engine, in_post_since=date(2018, 9, 1), role="principal")
        await _staff(db_engine, in_post_since=date(2018, 9, 2), role="principal")
        assert await _eligible(db_engine) == {teacher, principal}

    async def test_policy_of_another_district_does_not_apply(self, db_engine):
        await _policy(db_engine, min_years_teacher=1)
        yanqing = await _staff(db_engine, in_post_since=date(2020, 9, 1), district="110119")
        assert yanqing not in await _eligible(db_engine, district=None)


class TestInactiveStaff:
    @pytest.mark.parametrize("status", ["retired", "left"])
    async def test_inactive_staff_are_never_eligible(self, db_engine, status):
        await _staff(db_engine, in_post_since=date(2000, 9, 1), status=status)
        assert await _eligible(db_engine) == set()

    async def test_whole_district_in_one_query(self, db_engine):
        a = await _staff(db_engine, in_post_since=date(2018, 9, 1))
        b = await _staff(db_engine, in_post_since=date(2018, 9, 1), district="110119")
        await _staff(db_engine, in_post_since=date(2018, 9, 1), status="left")
        assert await _eligible(db_engine) == {a}
        assert await _eligible(db_engine, district=None) == {a, b}
