"""Hours are JSON numbers in every answer (issue 9; api.md: "Hours are JSON numbers everywhere"),
exact in the database (numeric) and in the figures: 120.5 + 242 is `362.5`, 0.1 + 0.2 is `0.3`.

The assertions read the raw JSON text, so a quoted `"362.5"` cannot pass as a number."""

from __future__ import annotations

import io
import re
from decimal import Decimal

from openpyxl import load_workbook

from tests.conftest import fetch
from tests.training import factories as f

AS_OF = "2025-03-01"


def _has(text: str, field: str, number: str) -> bool:
    """`"field":number` in JSON text, the number unquoted and not followed by more digits."""
    return re.search(rf'"{field}":\s*{re.escape(number)}(?![0-9.])', text) is not None


async def _credit(training, staff_id: str, hours, earned_on: str, reference: str):
    response = await training.post("/v1/training-hours", json={
        "staff_id": staff_id, "hours": hours, "earned_on": earned_on, "source": "municipal_platform",
        "reference": reference})
    assert response.status_code == 201, response.text
    return response


class TestTrainingAnswers:
    async def test_summary_and_credits_are_numbers(self, training, world, db_engine):
        teacher = world.staff[0]["id"]
        first = await _credit(training, teacher, 120.5, "2024-05-20", "R-1")   # a JSON number in
        await _credit(training, teacher, "242", "2024-06-01", "R-2")          # a decimal string in
        assert _has(first.text, "hours", "120.5") and first.json()["hours"] == 120.5

        summary = await training.get("/v1/training-hours/summary", params={"staff_id": teacher, "as_of": AS_OF})
        assert summary.status_code == 200
        assert _has(summary.text, "total_hours", "362.5")
        assert _has(summary.text, "threshold", "360")
        assert _has(summary.text, "municipal_platform", "362.5")
        assert (summary.json()["total_hours"], summary.json()["met"]) == (362.5, True)

        listed = await training.get("/v1/training-hours", params={"staff_id": teacher})
        assert [c["hours"] for c in listed.json()["items"]] == [120.5, 242]
        assert _has(listed.text, "hours", "242")
        assert await fetch(db_engine, "select hours, pg_typeof(hours)::text as type from training.training_hours "
                                      "order by earned_on") == [
            {"hours": Decimal("120.50"), "type": "numeric"}, {"hours": Decimal("242.00"), "type": "numeric"}]

    async def test_tenths_add_up_exactly(self, training, world, db_engine):
        teacher = world.staff[1]["id"]
        await _credit(training, teacher, 0.1, "2024-05-20", "T-1")
        await _credit(training, teacher, 0.2, "2024-05-21", "T-2")
        summary = await training.get("/v1/training-hours/summary", params={"staff_id": teacher, "as_of": AS_OF})
        assert _has(summary.text, "total_hours", "0.3")
        assert summary.json()["total_hours"] == 0.3
        stored = await fetch(db_engine, "select sum(hours) as total from training.training_hours "
                                        "where staff_id = cast(:s as uuid)", s=teacher)
        assert stored == [{"total": Decimal("0.30")}]
        assert stored[0]["total"] == Decimal("0.3")

    async def test_sessions_attendance_and_studio_stats_are_numbers(self, training, world):
        studio = await f.studio(training, host_staff_id=world.host["id"])
        attendee = world.staff[2]["id"]
        await f.member(training, studio["id"], attendee)
        session = await training.post(f"/v1/studios/{studio['id']}/sessions", json={
            "kind": "lecture", "title": "讲座", "starts_at": "2024-10-12T09:00:00+08:00", "hours": 2.5})
        assert session.status_code == 201 and _has(session.text, "hours", "2.5")
        attendance = await training.put(f"/v1/sessions/{session.json()['id']}/attendance",
                                        json={"staff_ids": [attendee]})
        assert _has(attendance.text, "hours", "2.5") and _has(attendance.text, "credited_hours", "2.5")
        stats = await training.get("/v1/internal/studio-stats", params={"academic_year": 2024,
                                                                        "district_code": "110119"})
        assert stats.status_code == 200
        assert _has(stats.text, "hours", "2.5")
        assert stats.json()["districts"] == [{"district_code": "110119", "studios": 1, "sessions": 1, "hours": 2.5}]

    async def test_openapi_says_number(self, training):
        schemas = (await training.get("/openapi.json")).json()["components"]["schemas"]
        assert schemas["TrainingSummary"]["properties"]["total_hours"]["type"] == "number"
        assert schemas["TrainingSummary"]["properties"]["by_source"]["additionalProperties"]["type"] == "number"
        assert schemas["DistrictStudioStats"]["properties"]["hours"]["type"] == "number"
        hours_out = [schemas[name]["properties"]["hours"] for name in ("SessionRead", "TrainingHoursRead")]
        assert hours_out == [{"type": "number", "title": "Hours"}] * 2


class TestGatewayAnswers:
    async def test_profile_overview_and_export_carry_numbers(self, gateway, training, world):
        teacher = world.staff[0]["id"]
        await _credit(training, teacher, 120.5, "2024-05-20", "R-1")
        await _credit(training, teacher, 242, "2024-06-01", "R-2")
        studio = await f.studio(training, host_staff_id=world.host["id"])
        await f.member(training, studio["id"], teacher)
        session = await f.session(training, studio["id"], hours="1.5")
        await f.attend(training, session["id"], [teacher])

        profile = await gateway.get(f"/api/v1/staff/{teacher}/profile", params={"as_of": AS_OF})
        assert profile.status_code == 200, profile.text
        assert profile.json()["training_hours"] == {
            "window_years": 5, "window_start": "2020-03-01", "total_hours": 364,
            "by_source": {"municipal_platform": 362.5, "studio_session": 1.5}, "threshold": 360, "met": True}
        assert _has(profile.text, "total_hours", "364") and _has(profile.text, "municipal_platform", "362.5")

        params = {"academic_year": 2024, "as_of": AS_OF}
        overview = await gateway.get("/api/v1/districts/110119/overview", params=params)
        assert overview.status_code == 200, overview.text
        assert overview.json()["training"]["hours"] == 1.5 and _has(overview.text, "hours", "1.5")

        exported = await gateway.get("/api/v1/districts/110119/overview", params={**params, "format": "xlsx"})
        assert exported.status_code == 200
        sheet = load_workbook(io.BytesIO(exported.content)).active
        hours = [row[2] for row in sheet.iter_rows(values_only=True) if row[1] == "研修学时"]
        assert hours == [1.5]  # a number cell Excel can sum, not the text "1.5"

        schemas = (await gateway.get("/api/v1/openapi.json")).json()["components"]["schemas"]
        assert schemas["TrainingBlock"]["properties"]["hours"]["type"] == "number"
        assert schemas["TrainingHoursOut"]["properties"]["total_hours"]["type"] == "number"
