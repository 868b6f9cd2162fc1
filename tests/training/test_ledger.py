"""The training-hours ledger: idempotent external credits and the 5-year summary (design.md §4.5),
checked against a ledger worked out by hand."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest

from services.training.config import window_start
from tests.conftest import fetch
from tests.training import factories as f


def _credit_body(staff_id, **overrides):
    return {"staff_id": staff_id, "hours": "8", "earned_on": "2024-05-20", "source": "municipal_platform",
            "reference": "BJ-JXJY-2024-000317", **overrides}


class TestExternalCredits:
    async def test_first_receipt_201_replay_200_difference_409(self, training, world, db_engine):
        staff_id = world.staff[0]["id"]
        first = await training.post("/v1/training-hours", json=_credit_body(staff_id, hours="7.5"))
        assert first.status_code == 201, first.text
        body = first.json()
        assert first.headers["location"] == f"/api/v1/training-hours/{body['id']}"
        assert (body["hours"], body["source"], body["session_id"]) == (7.5, "municipal_platform", None)

        replay = await training.post("/v1/training-hours", json=_credit_body(staff_id, hours="7.50"))
        assert replay.status_code == 200
        assert replay.json() == body

        other_hours = await training.post("/v1/training-hours", json=_credit_body(staff_id, hours="8"))
        assert other_hours.status_code == 409
        assert other_hours.json()["type"] == "urn:spp:problem:credit-mismatch"
        assert other_hours.json()["differs"] == ["hours"]
        other_staff = await training.post("/v1/training-hours", json=_credit_body(world.staff[1]["id"], hours="7.5"))
        assert other_staff.status_code == 409 and other_staff.json()["differs"] == ["staff_id"]

        rows = await fetch(db_engine, "select staff_id::text as staff_id, hours, earned_on::text as earned_on, "
                                      "source, reference from training.training_hours")
        assert rows == [{"staff_id": staff_id, "hours": Decimal("7.50"), "earned_on": "2024-05-20",
                         "source": "municipal_platform", "reference": "BJ-JXJY-2024-000317"}]
        assert (await training.get(f"/v1/training-hours/{body['id']}")).json() == body

    async def test_same_reference_from_another_source_is_another_credit(self, training, world, db_engine):
        staff_id = world.staff[0]["id"]
        assert (await training.post("/v1/training-hours", json=_credit_body(staff_id))).status_code == 201
        other = await training.post("/v1/training-hours", json=_credit_body(staff_id, source="district_platform"))
        assert other.status_code == 201
        assert await fetch(db_engine, "select count(*) as n from training.training_hours") == [{"n": 2}]

    async def test_concurrent_identical_posts_are_one_credit(self, gated, world, db_engine):
        gated.gate.arm(5)  # all five pass the staff check together and race on the unique key
        body = _credit_body(world.staff[0]["id"], hours="12.5")
        responses = await asyncio.gather(*(gated.client.post("/v1/training-hours", json=body) for _ in range(5)))
        assert sorted(r.status_code for r in responses) == [200, 200, 200, 200, 201]
        assert len({r.json()["id"] for r in responses}) == 1
        assert await fetch(db_engine, "select hours from training.training_hours") == [{"hours": Decimal("12.50")}]

    async def test_concurrent_posts_that_differ_conflict(self, gated, world, db_engine):
        gated.gate.arm(2)
        staff_id = world.staff[0]["id"]
        responses = await asyncio.gather(
            gated.client.post("/v1/training-hours", json=_credit_body(staff_id, hours="4")),
            gated.client.post("/v1/training-hours", json=_credit_body(staff_id, hours="6")))
        assert sorted(r.status_code for r in responses) == [201, 409]
        assert len(await fetch(db_engine, "select id from training.training_hours")) == 1

    @pytest.mark.parametrize("overrides, slug_or_field", [
        ({"source": "studio_session"}, "reserved-source"),
        ({"hours": "0"}, "body.hours"),
        ({"hours": "0.125"}, "body.hours"),
        ({"reference": ""}, "body.reference"),
        ({"earned_on": "2024-02-30"}, "body.earned_on"),
    ])
    async def test_invalid_credit_is_422(self, training, world, overrides, slug_or_field, db_engine):
        response = await training.post("/v1/training-hours", json=_credit_body(world.staff[0]["id"], **overrides))
        assert response.status_code == 422
        problem = response.json()
        assert slug_or_field in (problem["type"].rsplit(":", 1)[-1], problem["errors"][0]["field"])
        assert await fetch(db_engine, "select id from training.training_hours") == []

    async def test_unknown_staff_is_422(self, training, world, db_engine):
        response = await training.post("/v1/training-hours", json=_credit_body(str(uuid.uuid4())))
        assert response.status_code == 422 and response.json()["type"] == "urn:spp:problem:unknown-staff"
        assert await fetch(db_engine, "select id from training.training_hours") == []

    async def test_who_may_record(self, training, world, auth, db_engine):
        yanqing_teacher = world.staff[0]["id"]  # home school in 延庆区 110119
        for headers in (auth("viewer"), auth("school_admin", districts=("110119",), schools=("11011901",)),
                        auth("district_admin", districts=("110108",))):
            response = await training.post("/v1/training-hours", json=_credit_body(yanqing_teacher), headers=headers)
            assert response.status_code == 403
        assert await fetch(db_engine, "select id from training.training_hours") == []
        admin = await training.post("/v1/training-hours", json=_credit_body(yanqing_teacher, reference="A-1"),
                                    headers=auth("district_admin", districts=("110119",)))
        assert admin.status_code == 201
        # Integrators bring credits in through the bulk import only (design.md §5: they write nothing else).
        imported = await training.post("/v1/training-hours", json=_credit_body(yanqing_teacher, reference="I-1"),
                                       headers=auth("integrator"))
        assert imported.status_code == 403
        assert [r["reference"] for r in await fetch(db_engine, "select reference from training.training_hours")
                ] == ["A-1"]


class TestLedgerReads:
    async def test_list_is_paginated_and_scoped(self, training, world, auth):
        staff_id = world.staff[0]["id"]
        for day in ("2024-01-10", "2024-02-10", "2024-03-10"):
            await f.credit(training, staff_id, hours="2", earned_on=day)
        await f.credit(training, world.staff[1]["id"], hours="2", earned_on="2024-01-10")
        first = await training.get("/v1/training-hours", params={"staff_id": staff_id, "limit": 2})
        assert [c["earned_on"] for c in first.json()["items"]] == ["2024-01-10", "2024-02-10"]
        rest = await training.get("/v1/training-hours",
                                  params={"staff_id": staff_id, "limit": 2, "cursor": first.json()["next_cursor"]})
        assert [c["earned_on"] for c in rest.json()["items"]] == ["2024-03-10"]
        assert rest.json()["next_cursor"] is None
        everyone = await training.get("/v1/training-hours", headers=auth("viewer"))
        assert len(everyone.json()["items"]) == 4
        district_viewer = auth("viewer", districts=("110119",))
        assert (await training.get("/v1/training-hours", headers=district_viewer)).status_code == 403
        mine = await training.get("/v1/training-hours", params={"staff_id": staff_id}, headers=district_viewer)
        assert mine.status_code == 200 and len(mine.json()["items"]) == 3
        haidian_viewer = auth("viewer", districts=("110108",))
        assert (await training.get("/v1/training-hours", params={"staff_id": staff_id},
                                   headers=haidian_viewer)).status_code == 403
        summary = await training.get("/v1/training-hours/summary",
                                     params={"staff_id": staff_id, "as_of": "2024-12-31"}, headers=haidian_viewer)
        assert summary.status_code == 403
        assert (await training.get(f"/v1/training-hours/{uuid.uuid4()}")).status_code == 404
        assert (await training.get("/v1/training-hours/summary", params={"as_of": "2024-12-31"})).status_code == 422


class TestHandWorkedLedger:
    """One teacher's ledger, worked out by hand. Window for as_of 2025-06-30: 2020-06-30 < earned_on ≤ 2025-06-30.

    | earned_on  | source              | hours  | in window to 2025-06-30 | to 2025-07-01 |
    |------------|---------------------|--------|-------------------------|---------------|
    | 2020-06-30 | municipal_platform  | 100    | no (lower edge, open)   | no            |
    | 2020-07-01 | municipal_platform  | 120.5  | yes (first day in)      | no (edge)     |
    | 2023-03-15 | national_platform   | 80     | yes                     | yes           |
    | 2023-03-15 | national_platform   | 80     | replay: same credit     |               |
    | 2024-10-12 | studio_session      | 3.5→4.5| yes (hours changed)     | yes           |
    | 2024-11-20 | studio_session      | 2.5    | removed from attendance |               |
    | 2025-06-30 | district_training   | 40.5   | yes (upper edge, closed)| yes           |
    | 2025-07-01 | municipal_platform  | 50     | no (after as_of)        | yes           |
    totals: 2025-06-30 → 120.5 + 80 + 4.5 + 40.5 = 245.5; 2025-07-01 → 80 + 4.5 + 40.5 + 50 = 175
    then + 114.5 on 2024-01-02 → 360 exactly (met) to 2025-06-30, 289.5 to 2025-07-01.
    """

    async def _summary(self, training, staff_id, as_of):
        response = await training.get("/v1/training-hours/summary", params={"staff_id": staff_id, "as_of": as_of})
        assert response.status_code == 200, response.text
        return response.json()

    async def test_window_edges_replays_attendance_and_hours(self, training, world, db_engine):
        teacher = world.staff[0]["id"]
        await f.credit(training, teacher, hours="100", earned_on="2020-06-30", reference="M-1")
        await f.credit(training, teacher, hours="120.5", earned_on="2020-07-01", reference="M-2")
        await f.credit(training, teacher, hours="80", earned_on="2023-03-15", source="national_platform",
                       reference="N-1")
        replay = await training.post("/v1/training-hours", json={
            "staff_id": teacher, "hours": 80, "earned_on": "2023-03-15", "source": "national_platform",
            "reference": "N-1"})
        assert replay.status_code == 200
        await f.credit(training, teacher, hours="40.5", earned_on="2025-06-30", source="district_training",
                       reference="D-1")
        await f.credit(training, teacher, hours="50", earned_on="2025-07-01", reference="M-3")

        studio = await f.studio(training, host_staff_id=world.host["id"])
        await f.member(training, studio["id"], teacher)
        await f.member(training, studio["id"], world.staff[1]["id"])
        seminar = await f.session(training, studio["id"], hours="3.5", starts_at="2024-10-12T09:00:00+08:00")
        shadowing = await f.session(training, studio["id"], hours="2.5", starts_at="2024-11-20T09:00:00+08:00",
                                    kind="shadow_training", title="影子培训")
        await f.attend(training, seminar["id"], [teacher, world.staff[1]["id"]])
        await f.attend(training, shadowing["id"], [teacher])
        await f.attend(training, shadowing["id"], [world.staff[1]["id"]])  # attendance replaced
        patched = await training.patch(f"/v1/sessions/{seminar['id']}", json={"hours": "4.5"})
        assert patched.status_code == 200

        summary = await self._summary(training, teacher, "2025-06-30")
        assert summary == {
            "staff_id": teacher, "as_of": "2025-06-30", "window_years": 5, "window_start": "2020-06-30",
            "total_hours": 245.5,
            "by_source": {"district_training": 40.5, "municipal_platform": 120.5, "national_platform": 80,
                          "studio_session": 4.5},
            "threshold": 360, "met": False}
        later = await self._summary(training, teacher, "2025-07-01")
        assert (later["total_hours"], later["window_start"]) == (175, "2020-07-01")

        await f.credit(training, teacher, hours="114.5", earned_on="2024-01-02", reference="M-4")
        reached = await self._summary(training, teacher, "2025-06-30")
        assert (reached["total_hours"], reached["met"]) == (360, True)
        assert (await self._summary(training, teacher, "2025-07-01"))["total_hours"] == 289.5
        # The other member: 4.5 (seminar) + 2.5 (shadowing, after the replacement).
        other = await self._summary(training, world.staff[1]["id"], "2025-06-30")
        assert other["total_hours"] == 7 and other["by_source"] == {"studio_session": 7}
        # The ledger holds exactly the rows the table above lists (one per credit, none duplicated).
        stored = await fetch(db_engine, "select source, count(*) as n, sum(hours) as hours from "
                                        "training.training_hours where staff_id = :s group by source order by source",
                             s=uuid.UUID(teacher))
        assert stored == [
            {"source": "district_training", "n": 1, "hours": Decimal("40.50")},
            {"source": "municipal_platform", "n": 4, "hours": Decimal("385.00")},
            {"source": "national_platform", "n": 1, "hours": Decimal("80.00")},
            {"source": "studio_session", "n": 1, "hours": Decimal("4.50")},
        ]

    async def test_empty_ledger(self, training, world):
        summary = await self._summary(training, world.staff[0]["id"], "2025-06-30")
        assert (summary["total_hours"], summary["by_source"], summary["met"]) == (0, {}, False)

    async def test_leap_day_window(self, training, world):
        # as_of 29 Feb 2028 - 5 years = 28 Feb 2023 (as PostgreSQL computes it); that day is outside.
        assert str(window_start(__import__("datetime").date(2028, 2, 29), 5)) == "2023-02-28"
        teacher = world.staff[0]["id"]
        await f.credit(training, teacher, hours="10", earned_on="2023-02-28", reference="L-1")
        await f.credit(training, teacher, hours="0.5", earned_on="2023-03-01", reference="L-2")
        await f.credit(training, teacher, hours="1.5", earned_on="2028-02-29", reference="L-3")
        summary = await self._summary(training, teacher, "2028-02-29")
        assert (summary["window_start"], summary["total_hours"]) == ("2023-02-28", 2)
