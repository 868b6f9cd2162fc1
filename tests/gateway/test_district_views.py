"""The district overview, balance and what-if on the hand-worked 朝阳区 of tests/gateway/conftest.py.

Every figure below is worked by hand from that table (design.md §4), on as_of 2025-03-01 for the
academic year 2024.
"""

from __future__ import annotations

import uuid

from tests.conftest import fetch
from tests.gateway.conftest import AS_OF

PROBLEM = "application/problem+json"
KINDS = ("teacher_training", "lesson_delivery", "joint_research", "student_exchange", "cadre_shadowing",
         "resource_sharing", "other")


def by_kind(**totals: tuple[int, int, int]) -> dict:
    zero = (0, 0, 0)
    return {kind: dict(zip(("activities", "teacher_participations", "student_participations"), totals.get(kind, zero)))
            for kind in KINDS}


# §4.1: township+rural S3, S5; S3 is the partner of the active P1 (P2 is only proposed) → 1/2.
# Active pairings with a Chaoyang school on either side: P1, P3 (P3 partners 延庆's Y1).
# §4.2: activities dated in 2024-09-01..2025-08-31: P1 10-15 (5 teachers, 40 students), P1 03-20
# (12, 0), P3 11-05 (2, 60); P1's 2025-09-10 activity is in the next year.
PARTNERSHIP = {
    "township_rural_schools": 2, "covered_schools": 1, "coverage_rate": 0.5, "active_pairings": 2,
    "activities": 3, "teacher_participations": 19, "student_participations": 100,
    "by_kind": by_kind(lesson_delivery=(1, 5, 40), joint_research=(1, 12, 0), student_exchange=(1, 2, 60)),
}
# §4.3: eligible on 2024-09-01: T1, T3, T5, T6 (cadre), T7 — not T2 (in post 2020), T4 (retires
# 2027-01-31 ≤ 2024-09-01 + 5 y), T8 (retired) → 5. Rotated in the year: T1 (R1 active), T5 (R2
# active), T3 (R3 approved) — not R4 (planned), R5 (withdrawn), R6 (started 2023) → 3; 3/5 = 0.6,
# under the district's own 0.65 target. §4.4: backbone among them T1, T5 → 2/3 = 0.6667.
ROTATION = {
    "eligible": 5, "rotated": 3, "rotation_rate": 0.6, "backbone_rotated": 2, "backbone_share": 0.6667,
    "target_rate": 0.65, "target_backbone_share": 0.2, "meets_target_rate": False,
    "meets_target_backbone_share": True,
}
# §4.5: active staff T1–T7 (T8 retired) = 7. Hours with 2020-03-01 < earned_on ≤ 2025-03-01:
# T1 360 ✓, T2 200 + 160 (on as_of) ✓, T3 350 + 3 (session) ✗, T4 400 on 2020-03-01 ✗, T5 400 ✓,
# T6 0, T7 3 → 3/7 = 0.4286. Studios of Chaoyang: A and C (B works in 延庆); sessions in the year:
# A's 2024-10-12 (A's 2025-09-15 is next year) → 1, hours 3 × 2 attendees = 6.
TRAINING = {"staff": 7, "completed": 3, "completion_rate": 0.4286, "studios": 2, "sessions": 1, "hours": 6}
# §4.6 on 2025-03-01: active county-level-and-above backbone teachers where they work —
# T1 at S3 (R1 full time, active), T2 at S1, 周杰 (延庆) at S2 (RY full time), T4 at S4 (junior);
# T5 works at 延庆's Y1, T6 is a principal, T7 school-level, T8 retired.
# primary: S1 1/400 → X=1/4, S2 1/200 → 1/2, S3 1/200 → 1/2, S5 0/100 → 0 (S4 has no pupils).
#   P = 900, X̄ = 100·3/900 = 1/3;
#   S² = (400·(1/4−1/3)² + 200·(1/6)² + 200·(1/6)² + 100·(1/3)²)/900 = (25/9 + 50/9 + 50/9 + 100/9)/900
#      = 1/36, S = 1/6, CV = (1/6)/(1/3) = 0.5 exactly: at the primary bar; all four below 1.
# junior: S3 0/300 → 0, S4 1/600 → 1/6. P = 900, X̄ = 1/9; S² = (300/81 + 600/324)/900 = 1/162,
#   CV² = (1/162)/(1/81) = 1/2, CV = 0.7071068 (> 0.45); both below 1.
PRIMARY = {"school_count": 4, "enrollment": 900, "backbone": 3, "mean": 0.333333, "cv": 0.5, "target_cv": 0.5,
           "meets_target_cv": True, "schools_below_one": 4}
JUNIOR = {"school_count": 2, "enrollment": 900, "backbone": 1, "mean": 0.111111, "cv": 0.707107, "target_cv": 0.45,
          "meets_target_cv": False, "schools_below_one": 2}


async def test_overview_of_the_hand_worked_district(gateway, chaoyang):
    response = await gateway.get("/api/v1/districts/110105/overview", params={"as_of": AS_OF, "academic_year": 2024})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "district": {"code": "110105", "name": "朝阳区"}, "academic_year": 2024,
        "period_from": "2024-09-01", "period_to": "2025-08-31", "as_of": AS_OF,
        "partnership": PARTNERSHIP, "rotation": ROTATION, "training": TRAINING,
        "balance": {"primary": PRIMARY, "junior": JUNIOR}, "degraded": [],
    }


async def test_overview_defaults_the_academic_year_to_the_one_containing_as_of(gateway, chaoyang):
    response = await gateway.get("/api/v1/districts/110105/overview", params={"as_of": AS_OF})
    body = response.json()
    assert (body["academic_year"], body["period_from"], body["period_to"]) == (2024, "2024-09-01", "2025-08-31")
    assert body["rotation"] == ROTATION
    autumn = await gateway.get("/api/v1/districts/110105/overview", params={"as_of": "2025-09-01"})
    assert autumn.json()["academic_year"] == 2025
    assert autumn.json()["partnership"]["activities"] == 1  # P1's 2025-09-10 teacher training


async def test_unknown_district_is_404(gateway, chaoyang):
    response = await gateway.get("/api/v1/districts/110199/overview", params={"as_of": AS_OF})
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    balance = await gateway.get("/api/v1/districts/110199/balance", params={"as_of": AS_OF})
    assert balance.status_code == 404


async def test_district_balance(gateway, chaoyang):
    response = await gateway.get("/api/v1/districts/110105/balance", params={"as_of": AS_OF})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "district": {"code": "110105", "name": "朝阳区"}, "as_of": AS_OF,
        "primary": {**PRIMARY, "schools": [
            {"code": "S1", "name": "北京市朝阳区实验小学", "enrollment": 400, "backbone": 1, "per_100": 0.25},
            {"code": "S2", "name": "北京市朝阳区劲松小学", "enrollment": 200, "backbone": 1, "per_100": 0.5},
            {"code": "S3", "name": "北京市朝阳区黑庄户学校", "enrollment": 200, "backbone": 1, "per_100": 0.5},
            {"code": "S5", "name": "北京市朝阳区金盏小学", "enrollment": 100, "backbone": 0, "per_100": 0.0}]},
        "junior": {**JUNIOR, "schools": [
            {"code": "S3", "name": "北京市朝阳区黑庄户学校", "enrollment": 300, "backbone": 0, "per_100": 0.0},
            {"code": "S4", "name": "北京市朝阳区第八十中学", "enrollment": 600, "backbone": 1, "per_100": 0.166667}]},
    }
    # After R1 ends (2025-08-31) T1 works at S1 again and 周杰 is back in 延庆.
    later = await gateway.get("/api/v1/districts/110105/balance", params={"as_of": "2025-09-01"})
    primary = {s["code"]: s["backbone"] for s in later.json()["primary"]["schools"]}
    assert primary == {"S1": 2, "S2": 0, "S3": 0, "S5": 0}


async def _stored(db_engine) -> dict:
    return {
        "staff": await fetch(db_engine, "select id, home_school_code, status, version from rotation.staff order by id"),
        "rotations": await fetch(db_engine, "select id, to_school_code, status, version from rotation.rotations "
                                            "order by id"),
        "schools": await fetch(db_engine, "select code, primary_enrollment, junior_enrollment from "
                                          "partnership.schools order by code"),
    }


async def test_what_if(gateway, chaoyang, db_engine):
    s = chaoyang.staff
    stored = await _stored(db_engine)
    assert len(stored["staff"]) == 9 and len(stored["rotations"]) == 7
    response = await gateway.post("/api/v1/districts/110105/balance/what-if", json={"as_of": AS_OF, "moves": [
        {"staff_id": s["T2"]["id"], "to_school_code": "S5"},   # district backbone, at S1 → S5
        {"staff_id": s["T1"]["id"], "to_school_code": "S5"},   # municipal backbone, at S3 (R1) → S5
        {"staff_id": s["T6"]["id"], "to_school_code": "S2"},   # a principal: does not count
    ]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["before"] == (await gateway.get("/api/v1/districts/110105/balance", params={"as_of": AS_OF})).json()
    # after, primary: S1 0/400, S2 1/200 → 1/2, S3 0/200, S5 2/100 → 2. P = 900, X̄ = 1/3 (same teachers);
    # S² = (400·(1/3)² + 200·(1/2−1/3)² + 200·(1/3)² + 100·(2−1/3)²)/900
    #    = (400/9 + 50/9 + 200/9 + 2500/9)/900 = 350/900 = 7/18;  CV² = (7/18)/(1/9) = 7/2,
    # CV = √3.5 = 1.8708287; S1, S2, S3 below 1. Junior unchanged.
    assert body["after"] == {
        "district": {"code": "110105", "name": "朝阳区"}, "as_of": AS_OF,
        "primary": {"school_count": 4, "enrollment": 900, "backbone": 3, "mean": 0.333333, "cv": 1.870829,
                    "target_cv": 0.5, "meets_target_cv": False, "schools_below_one": 3, "schools": [
                        {"code": "S1", "name": "北京市朝阳区实验小学", "enrollment": 400, "backbone": 0, "per_100": 0.0},
                        {"code": "S2", "name": "北京市朝阳区劲松小学", "enrollment": 200, "backbone": 1, "per_100": 0.5},
                        {"code": "S3", "name": "北京市朝阳区黑庄户学校", "enrollment": 200, "backbone": 0, "per_100": 0.0},
                        {"code": "S5", "name": "北京市朝阳区金盏小学", "enrollment": 100, "backbone": 2, "per_100": 2.0}]},
        "junior": body["before"]["junior"],
    }
    assert body["moves"] == [
        {"staff_id": s["T2"]["id"], "name": "王芳", "section": "primary", "from_school_code": "S1",
         "to_school_code": "S5", "counts_as_backbone": True},
        {"staff_id": s["T1"]["id"], "name": "张伟", "section": "primary", "from_school_code": "S3",
         "to_school_code": "S5", "counts_as_backbone": True},
        {"staff_id": s["T6"]["id"], "name": "赵敏", "section": "primary", "from_school_code": "S3",
         "to_school_code": "S2", "counts_as_backbone": False},
    ]
    assert await _stored(db_engine) == stored


async def test_what_if_moving_a_teacher_out_of_the_district(gateway, chaoyang):
    # T4 (special grade, junior, S4) to 延庆's Y1: S4 loses its only junior backbone teacher.
    response = await gateway.post("/api/v1/districts/110105/balance/what-if", json={"as_of": AS_OF, "moves": [
        {"staff_id": chaoyang.staff["T4"]["id"], "to_school_code": "Y1"}]})
    assert response.status_code == 200, response.text
    junior = response.json()["after"]["junior"]
    assert (junior["backbone"], junior["mean"], junior["cv"], junior["schools_below_one"]) == (0, 0.0, None, 2)


async def test_what_if_rejects_unknown_staff_and_schools(gateway, chaoyang, db_engine):
    stored = await _stored(db_engine)
    unknown = str(uuid.uuid4())
    response = await gateway.post("/api/v1/districts/110105/balance/what-if", json={"as_of": AS_OF, "moves": [
        {"staff_id": chaoyang.staff["T1"]["id"], "to_school_code": "NOPE"},
        {"staff_id": unknown, "to_school_code": "S2"},
    ]})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert [(e["field"], e["type"]) for e in response.json()["errors"]] == [
        ("body.moves.0.to_school_code", "unknown_reference"), ("body.moves.1.staff_id", "unknown_reference")]

    malformed = await gateway.post("/api/v1/districts/110105/balance/what-if", json={"as_of": AS_OF, "moves": [
        {"staff_id": "not-a-uuid", "to_school_code": "S2"}]})
    assert malformed.status_code == 422
    assert [e["field"] for e in malformed.json()["errors"]] == ["body.moves.0.staff_id"]

    twice = await gateway.post("/api/v1/districts/110105/balance/what-if", json={"as_of": AS_OF, "moves": [
        {"staff_id": chaoyang.staff["T1"]["id"], "to_school_code": "S2"},
        {"staff_id": chaoyang.staff["T1"]["id"], "to_school_code": "S5"}]})
    assert twice.status_code == 422
    assert [e["field"] for e in twice.json()["errors"]] == ["body.moves.1.staff_id"]
    assert await _stored(db_engine) == stored
