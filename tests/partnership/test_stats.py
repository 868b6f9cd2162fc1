"""Pairing coverage (§4.1) and activity totals (§4.2) for a hand-worked district."""

from tests.partnership import factories as f

AS_OF = "2025-03-01"
YEAR = {"from": "2024-09-01", "to": "2025-08-31"}  # academic year 2024


async def _hand_worked(p):
    """朝阳区 110105: urban U1, U2; township T1, T2; rural R1, R2, R3 (5 township+rural schools).
    延庆区 110119: rural Y1. 东城区 110101: no schools at all."""
    await f.district(p)
    await f.district(p, *f.YANQING)
    await f.district(p, "110101", "东城区")
    for code, locality in [("U1", "urban"), ("U2", "urban"), ("T1", "township"), ("T2", "township"),
                           ("R1", "rural"), ("R2", "rural"), ("R3", "rural")]:
        await f.school(p, code, locality=locality)
    await f.school(p, "Y1", district_code="110119", locality="rural")

    p1 = await f.pairing(p, "U1", "T1", start="2024-09-01", end="2026-08-31", activate=True)  # covers T1
    await f.pairing(p, "U1", "R1")                                                          # proposed
    p3 = await f.pairing(p, "U2", "R2", activate=True)                                      # suspended later
    p4 = await f.pairing(p, "U2", "T2", start="2024-01-01", end="2024-12-31", activate=True)  # ended later
    await f.pairing(p, "U2", "R3", start="2025-04-01", end="2026-01-01", activate=True)     # D outside range
    p6 = await f.pairing(p, "U1", "Y1", start="2024-09-01", end="2025-08-31", activate=True)  # cross-district
    await f.pairing(p, "R2", "U1", start="2024-09-01", end="2025-08-31", activate=True)     # R2 leads: no cover

    await f.activity(p, p1["id"], date="2024-09-10", kind="lesson_delivery", teachers=4, students=60)
    await f.activity(p, p1["id"], date="2025-08-31", kind="joint_research", teachers=10)   # last day: in
    await f.activity(p, p1["id"], date="2025-09-01", kind="teacher_training", teachers=7)  # next year: out
    await f.activity(p, p3["id"], date="2024-12-01", kind="student_exchange", teachers=2, students=30)
    await f.activity(p, p4["id"], date="2024-08-31", kind="teacher_training", teachers=1, students=1)  # out
    await f.activity(p, p4["id"], date="2024-09-01", kind="teacher_training", teachers=6)  # first day: in
    await f.activity(p, p6["id"], date="2025-01-15", kind="lesson_delivery", teachers=3, students=45)
    assert (await p.post(f"/v1/pairings/{p3['id']}/suspend")).status_code == 200
    assert (await p.post(f"/v1/pairings/{p4['id']}/end")).status_code == 200


def _kind(activities=0, teachers=0, students=0):
    return {"activities": activities, "teacher_participations": teachers, "student_participations": students}


ZERO_KINDS = {k: _kind() for k in ["teacher_training", "lesson_delivery", "joint_research", "student_exchange",
                                   "cadre_shadowing", "resource_sharing", "other"]}


async def test_all_districts_in_one_call(partnership):
    await _hand_worked(partnership)
    response = await partnership.get("/v1/internal/partnership-stats", params={"as_of": AS_OF, **YEAR})
    assert response.status_code == 200
    body = response.json()
    assert (body["as_of"], body["from"], body["to"]) == (AS_OF, "2024-09-01", "2025-08-31")
    rows = {row["district_code"]: row for row in body["districts"]}
    assert list(rows) == ["110101", "110105", "110119"]
    # Coverage: only T1 (partner of the active P1 whose range holds D) of T1, T2, R1, R2, R3.
    # Active on D with a 朝阳 school on either side: P1, P6 (cross-district), P7 (R2 leads) = 3.
    # Activities in the year: P1 (4,60) and (10,0); P3 (2,30); P4 (6,0); P6 (3,45)
    #   = 5 activities, 25 teacher and 135 student participations.
    assert rows["110105"] == {
        "district_code": "110105", "name": "朝阳区", "township_rural_schools": 5, "covered_schools": 1,
        "active_pairings": 3, "activities": 5, "teacher_participations": 25, "student_participations": 135,
        "by_kind": {**ZERO_KINDS, "lesson_delivery": _kind(2, 7, 105), "joint_research": _kind(1, 10, 0),
                    "student_exchange": _kind(1, 2, 30), "teacher_training": _kind(1, 6, 0)},
    }
    # 延庆: Y1 is the partner of the active P6: covered 1 of 1; P6's activity counts here too.
    assert rows["110119"] == {
        "district_code": "110119", "name": "延庆区", "township_rural_schools": 1, "covered_schools": 1,
        "active_pairings": 1, "activities": 1, "teacher_participations": 3, "student_participations": 45,
        "by_kind": {**ZERO_KINDS, "lesson_delivery": _kind(1, 3, 45)},
    }
    assert rows["110101"] == {
        "district_code": "110101", "name": "东城区", "township_rural_schools": 0, "covered_schools": 0,
        "active_pairings": 0, "activities": 0, "teacher_participations": 0, "student_participations": 0,
        "by_kind": ZERO_KINDS,
    }


async def test_one_district_and_scope(partnership, auth):
    await _hand_worked(partnership)
    params = {"as_of": AS_OF, **YEAR, "district_code": "110119"}
    response = await partnership.get("/v1/internal/partnership-stats", params=params)
    assert [r["district_code"] for r in response.json()["districts"]] == ["110119"]
    scoped = auth("district_admin", districts=("110119",))
    assert (await partnership.get("/v1/internal/partnership-stats", params=params, headers=scoped)).status_code == 200
    everyone = {"as_of": AS_OF, **YEAR}
    assert (await partnership.get("/v1/internal/partnership-stats", params=everyone,
                                  headers=scoped)).status_code == 403
    # on the last day of P1's neighbour P6 (2025-08-31) it is still active; the day after it is not
    after = await partnership.get("/v1/internal/partnership-stats",
                                  params={**params, "as_of": "2025-09-01"})
    assert after.json()["districts"][0]["covered_schools"] == 0
    on_last_day = await partnership.get("/v1/internal/partnership-stats",
                                        params={**params, "as_of": "2025-08-31"})
    assert on_last_day.json()["districts"][0]["covered_schools"] == 1


async def test_school_briefs(partnership):
    await f.district(partnership)
    await f.school(partnership, "S2", primary=300, junior=0, locality="rural")
    await f.school(partnership, "S1", primary=0, junior=450, stage="junior")
    response = await partnership.get("/v1/internal/schools", params={"district_code": "110105"})
    assert response.status_code == 200
    assert [(s["code"], s["primary_enrollment"], s["junior_enrollment"]) for s in response.json()["items"]] == [
        ("S1", 0, 450), ("S2", 300, 0)]
