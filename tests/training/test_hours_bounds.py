"""Hours have sane bounds (issue 9, "Trust"): a studio session lasts 0 < hours ≤ 24, one external
credit is 0 < hours ≤ 1000. Refused with a 422 naming the field, and held by PostgreSQL too, so a
single typo can no longer put someone over the 360-hour bar."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tests.conftest import fetch
from tests.training import factories as f

PROBLEM = "application/problem+json"


def _assert_hours_refused(response, field: str = "body.hours") -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == "urn:spp:problem:validation"
    assert [e["field"] for e in body["errors"]] == [field]


class TestSessionHours:
    async def test_a_thousand_hour_session_cannot_meet_the_bar(self, training, world, db_engine):
        studio = await f.studio(training, host_staff_id=world.host["id"])
        haidian_teacher = world.staff[3]["id"]  # of another district than the Yanqing studio
        await f.member(training, studio["id"], haidian_teacher)
        body = {"kind": "lecture", "title": "讲座", "starts_at": "2024-10-12T09:00:00+08:00"}
        for hours in ("1000", 1000, "24.01", "0", "-1"):
            response = await training.post(f"/v1/studios/{studio['id']}/sessions", json={**body, "hours": hours})
            _assert_hours_refused(response)
        assert await fetch(db_engine, "select count(*) as n from training.sessions") == [{"n": 0}]

        session = await training.post(f"/v1/studios/{studio['id']}/sessions", json={**body, "hours": 24})
        assert session.status_code == 201, session.text
        await f.attend(training, session.json()["id"], [haidian_teacher])
        summary = (await training.get("/v1/training-hours/summary",
                                      params={"staff_id": haidian_teacher, "as_of": "2025-03-01"})).json()
        assert (summary["total_hours"], summary["met"]) == (24, False)
        assert await fetch(db_engine, "select hours from training.sessions") == [{"hours": Decimal("24.00")}]

    async def test_a_session_cannot_be_changed_past_a_day(self, training, world, db_engine):
        studio = await f.studio(training, host_staff_id=world.host["id"])
        session = await f.session(training, studio["id"], hours="3")
        response = await training.patch(f"/v1/sessions/{session['id']}", json={"hours": "25"})
        _assert_hours_refused(response)
        assert await fetch(db_engine, "select hours, version from training.sessions") == [
            {"hours": Decimal("3.00"), "version": 1}]


class TestCreditHours:
    async def test_one_credit_is_at_most_a_thousand_hours(self, training, world, db_engine):
        staff_id = world.staff[0]["id"]
        body = {"staff_id": staff_id, "earned_on": "2024-05-20", "source": "municipal_platform"}
        for hours in ("1000.01", 5000, "9999.99"):
            response = await training.post("/v1/training-hours", json={**body, "hours": hours, "reference": "R1"})
            _assert_hours_refused(response)
        assert await fetch(db_engine, "select count(*) as n from training.training_hours") == [{"n": 0}]

        # A provincial system may send a whole course's total in one credit: up to 1000 is fine.
        ok = await training.post("/v1/training-hours", json={**body, "hours": 1000, "reference": "R2"})
        assert ok.status_code == 201, ok.text
        assert await fetch(db_engine, "select hours from training.training_hours") == [{"hours": Decimal("1000.00")}]

    async def test_import_refuses_an_oversized_credit(self, training, world, db_engine):
        staff_id = world.staff[0]["id"]
        csv = ("staff_id,hours,earned_on,source,reference\n"
               f"{staff_id},1200,2024-05-20,municipal_platform,R1\n"
               f"{staff_id},8,2024-05-21,municipal_platform,R2\n")
        response = await training.post("/v1/imports/training-hours", content=csv.encode(),
                                       headers={"content-type": "text/csv"})
        assert response.status_code == 422, response.text
        body = response.json()
        assert [(e["row"], e["field"], e["message"]) for e in body["errors"]] == [
            (1, "hours", "hours must be at most 1000")]
        assert await fetch(db_engine, "select count(*) as n from training.training_hours") == [{"n": 0}]


class TestDatabaseHoldsTheHourBounds:
    @pytest.mark.parametrize(("sql", "constraint"), [
        ("insert into training.sessions (id, studio_id, kind, title, starts_at, hours) "
         "values (gen_random_uuid(), :studio, 'lecture', '讲座', now(), 24.5)",
         "ck_sessions_hours_at_most_24"),
        ("insert into training.training_hours (id, staff_id, hours, earned_on, source, reference) "
         "values (gen_random_uuid(), :staff, 1000.5, current_date, 'municipal_platform', 'R1')",
         "ck_training_hours_at_most_1000"),
    ])
    async def test_check_constraint(self, training, world, db_engine, sql, constraint):
        studio = await f.studio(training, host_staff_id=world.host["id"])
        with pytest.raises(IntegrityError) as raised:
            async with db_engine.begin() as conn:
                await conn.execute(text(sql), {"studio": uuid.UUID(studio["id"]),
                                               "staff": uuid.UUID(world.staff[0]["id"])})
        assert constraint in str(raised.value)
