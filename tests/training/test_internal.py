"""Figures for the gateway (docs/internal-api.md → Training), computed by SQL aggregates."""

from __future__ import annotations

import uuid

from tests.conftest import fetch
from tests.feed import synced
from tests.training import factories as f


class TestCompletion:
    async def test_district_and_city_completion_equal_the_hand_worked_case(self, training, rotation, world, auth,
                                                                          db_engine):
        """design.md §4.5 on D = 2025-06-30, window 2020-06-30 < earned_on ≤ 2025-06-30, bar 360:

        延庆 110119 (home school 11011901)          海淀 110108 (home school 11010801)
          staff0  300 on 2021-01-01                  host    no credits                  ✗
                 + 60 on 2025-06-30 (= D, counts) ✓  staff3  360 on 2020-07-01 (first day in) ✓
          staff1  359.5 on 2024-01-01            ✗   staff4  500 on 2025-07-01 (after D)   ✗
          staff2  400 on 2020-06-30 (= D − 5 y,      staff5  400 on 2023-03-01, but retired:
                  excluded) + 10 on 2020-07-01   ✗           not active staff at all
        延庆: 3 active staff, 1 completed; 海淀: 3 active (host, staff3, staff4), 1 completed.
        """
        s = [member["id"] for member in world.staff]
        for staff_id, hours, earned_on in [
                (s[0], "300", "2021-01-01"), (s[0], "60", "2025-06-30"), (s[1], "359.5", "2024-01-01"),
                (s[2], "400", "2020-06-30"), (s[2], "10", "2020-07-01"), (s[3], "360", "2020-07-01"),
                (s[4], "500", "2025-07-01"), (s[5], "400", "2023-03-01")]:
            await f.credit(training, staff_id, hours=hours, earned_on=earned_on)
        retired = await rotation.patch(f"/v1/staff/{s[5]}", json={"status": "retired"})
        assert retired.status_code == 200
        await synced(db_engine, schools=False)

        head = {"as_of": "2025-06-30", "threshold": 360, "window_years": 5, "window_start": "2020-06-30"}
        one = await training.get("/v1/internal/training-completion",
                                 params={"as_of": "2025-06-30", "district_code": "110119"})
        assert one.status_code == 200
        assert one.json() == {**head, "districts": [{"district_code": "110119", "staff": 3, "completed": 1}]}
        city = await training.get("/v1/internal/training-completion", params={"as_of": "2025-06-30"})
        assert city.json() == {**head, "districts": [{"district_code": "110108", "staff": 3, "completed": 1},
                                                     {"district_code": "110119", "staff": 3, "completed": 1}]}
        # A day later (window 2020-07-01 < earned_on ≤ 2025-07-01) staff4's 500 hours count, and
        # staff3's 360 on 2020-07-01 fall out (now the exclusive lower bound): 海淀 still 1 of 3.
        later = await training.get("/v1/internal/training-completion", params={"as_of": "2025-07-01"})
        assert later.json()["districts"] == [{"district_code": "110108", "staff": 3, "completed": 1},
                                             {"district_code": "110119", "staff": 3, "completed": 1}]
        nobody = await training.get("/v1/internal/training-completion",
                                    params={"as_of": "2025-06-30", "district_code": "110105"})
        assert nobody.json()["districts"] == [{"district_code": "110105", "staff": 0, "completed": 0}]

        scoped = auth("district_admin", districts=("110119",))
        assert (await training.get("/v1/internal/training-completion", params={"as_of": "2025-06-30",
                                   "district_code": "110119"}, headers=scoped)).status_code == 200
        for params in ({"as_of": "2025-06-30"}, {"as_of": "2025-06-30", "district_code": "110108"}):
            refused = await training.get("/v1/internal/training-completion", params=params, headers=scoped)
            assert refused.status_code == 403
        # The id-list endpoints are gone: nobody ships staff ids to training any more.
        assert (await training.get("/v1/internal/completed-staff", params={"as_of": "2025-06-30"})).status_code == 404
        assert (await training.post("/v1/internal/training-completion",
                                    json={"as_of": "2025-06-30", "staff_ids": s})).status_code == 405

    async def test_threshold_and_window_are_configurable(self, settings, rotation_app, token, world, training):
        import httpx

        from services.training.app import create_app
        from services.training.config import TrainingRules
        from tests.conftest import asgi

        teacher = world.staff[0]["id"]
        await f.credit(training, teacher, hours="100", earned_on="2023-01-01", reference="R-1")
        app = create_app(settings, transports={"rotation": asgi(rotation_app)},
                         rules=TrainingRules(hours_threshold="90", window_years=3))
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=asgi(app), base_url="http://training",
                                         headers={"Authorization": f"Bearer {token()}", "Accept-Language": "en"}) as client:
                summary = (await client.get("/v1/training-hours/summary",
                                            params={"staff_id": teacher, "as_of": "2025-12-31"})).json()
                assert (summary["threshold"], summary["window_start"], summary["met"]) == (90, "2022-12-31", True)
                later = (await client.get("/v1/internal/training-completion", params={
                    "as_of": "2026-01-01", "district_code": "110119"})).json()
                assert (later["window_years"], later["window_start"]) == (3, "2023-01-01")
                assert later["districts"] == [{"district_code": "110119", "staff": 3, "completed": 0}]

    async def test_python_window_matches_postgresql(self, db_engine):
        from datetime import date

        from services.training.config import window_start

        for as_of in (date(2028, 2, 29), date(2025, 6, 30), date(2024, 3, 1)):
            rows = await fetch(db_engine, "select (cast(:d as date) - interval '5 years')::date as start", d=as_of)
            assert rows == [{"start": window_start(as_of, 5)}]


class TestStudioStats:
    async def test_per_district_for_the_academic_year(self, training, world, auth):
        yanqing = await f.studio(training, host_staff_id=world.host["id"], district_code="110119")
        await f.studio(training, host_staff_id=world.host["id"], district_code="110119", name="名班主任工作室",
                       kind="famous_head_teacher")
        haidian = await f.studio(training, host_staff_id=world.host["id"], district_code="110108",
                                 name="海淀区名校长工作室", kind="famous_principal")
        for member in world.staff[:3]:
            await f.member(training, yanqing["id"], member["id"])
        await f.member(training, haidian["id"], world.staff[3]["id"])
        # Academic year 2024: 1 Sept 2024 – 31 Aug 2025 (dates in China Standard Time).
        first = await f.session(training, yanqing["id"], hours="3.5", starts_at="2024-09-01T08:00:00+08:00")
        last = await f.session(training, yanqing["id"], hours="2", starts_at="2025-08-31T15:00:00Z")  # 23:00 CST
        next_year = await f.session(training, yanqing["id"], hours="4", starts_at="2025-08-31T16:00:00Z")  # 1 Sept
        await f.session(training, yanqing["id"], hours="1.5", starts_at="2024-10-01T09:00:00+08:00")  # nobody came
        await f.attend(training, first["id"], [s["id"] for s in world.staff[:3]])     # 3 × 3.5 = 10.5
        await f.attend(training, last["id"], [world.staff[0]["id"]])                  # 1 × 2 = 2
        await f.attend(training, next_year["id"], [world.staff[0]["id"]])             # next year
        h = await f.session(training, haidian["id"], hours="0.5", starts_at="2025-03-01T09:00:00+08:00")
        await f.attend(training, h["id"], [world.staff[3]["id"]])

        response = await training.get("/v1/internal/studio-stats", params={"academic_year": 2024})
        assert response.status_code == 200
        assert response.json()["districts"] == [
            {"district_code": "110108", "studios": 1, "sessions": 1, "hours": 0.5},
            {"district_code": "110119", "studios": 2, "sessions": 3, "hours": 12.5},
        ]
        one = await training.get("/v1/internal/studio-stats", params={"academic_year": 2025, "district_code": "110119"},
                                 headers=auth("district_admin", districts=("110119",)))
        assert one.json()["districts"] == [{"district_code": "110119", "studios": 2, "sessions": 1, "hours": 4}]
        none = await training.get("/v1/internal/studio-stats", params={"academic_year": 2024, "district_code": "110105"})
        assert none.json()["districts"] == [{"district_code": "110105", "studios": 0, "sessions": 0, "hours": 0}]
        scoped = auth("viewer", districts=("110119",))
        assert (await training.get("/v1/internal/studio-stats", params={"academic_year": 2024},
                                   headers=scoped)).status_code == 403
        assert (await training.get("/v1/internal/studio-stats", params={"academic_year": 2024,
                                   "district_code": "110108"}, headers=scoped)).status_code == 403


class TestStaffMemberships:
    async def test_hosted_and_joined_studios(self, training, world):
        studio = await f.studio(training, host_staff_id=world.host["id"])
        other = await f.studio(training, host_staff_id=world.staff[5]["id"], name="赵敏名师工作室",
                               district_code="110108", start_date="2025-09-01", end_date="2028-08-31")
        await f.member(training, studio["id"], world.staff[0]["id"], joined_on="2024-09-10")
        await training.post(f"/v1/studios/{studio['id']}/members/{world.staff[0]['id']}/leave",
                            json={"left_on": "2025-06-30"})
        await f.member(training, other["id"], world.staff[0]["id"], joined_on="2025-09-01")

        member = await training.get(f"/v1/internal/staff/{world.staff[0]['id']}/memberships")
        assert member.status_code == 200
        assert [(i["studio_name"], i["role"], i["joined_on"], i["left_on"]) for i in member.json()["items"]] == [
            ("李华名师工作室", "member", "2024-09-10", "2025-06-30"),
            ("赵敏名师工作室", "member", "2025-09-01", None)]
        host = await training.get(f"/v1/internal/staff/{world.host['id']}/memberships")
        assert host.json()["items"] == [{
            "studio_id": studio["id"], "studio_name": "李华名师工作室", "kind": "famous_teacher",
            "district_code": "110119", "studio_status": "active", "joined_on": "2024-09-01", "left_on": None,
            "role": "host"}]
        nobody = await training.get(f"/v1/internal/staff/{uuid.uuid4()}/memberships")
        assert nobody.json() == {"items": []}


class TestCompletionPlan:
    async def test_the_district_query_reads_the_indexes(self, db_engine):
        """At a realistic shape (30 districts × 100 active staff, 10 credits each) the district's
        completion is an index scan of the directory's active-district index and, per staff member,
        an index-only scan of ix_training_hours_staff_window: never a pass over the whole ledger."""
        from datetime import date
        from decimal import Decimal

        from sqlalchemy import text

        from services.training.stats import _DISTRICT_COMPLETION

        async with db_engine.begin() as conn:
            await conn.execute(text("""
                INSERT INTO training.staff_directory (id, staff_no, home_school_code, home_district_code, status,
                                                      version)
                SELECT gen_random_uuid(), 'P' || n, 'S' || (n % 300), (110100 + n % 30)::text,
                       CASE WHEN n % 17 = 0 THEN 'retired' ELSE 'active' END, 1
                FROM generate_series(1, 3000) AS n"""))
            await conn.execute(text("""
                INSERT INTO training.training_hours (id, staff_id, hours, earned_on, source, reference)
                SELECT gen_random_uuid(), d.id, 40, DATE '2018-01-01' + k * 180, 'plan', d.staff_no || '-' || k
                FROM training.staff_directory d, generate_series(1, 10) AS k"""))
        async with db_engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE training.staff_directory"))
            await conn.execute(text("VACUUM ANALYZE training.training_hours"))
            plan = "\n".join((await conn.execute(text("EXPLAIN " + _DISTRICT_COMPLETION.text), {
                "after": date(2020, 6, 30), "as_of": date(2025, 6, 30), "threshold": Decimal(360),
                "district_code": "110105"}
            )).scalars())
        assert "Index Only Scan using ix_training_hours_staff_window on training_hours" in plan, plan
        assert "ix_staff_directory_active_district" in plan, plan
        assert "Seq Scan" not in plan, plan
