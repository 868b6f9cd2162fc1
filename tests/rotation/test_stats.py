"""The figures the gateway needs (docs/internal-api.md → Rotation), checked against hand computations."""

from __future__ import annotations

from decimal import Decimal

from tests.conftest import fetch
from tests.rotation import factories as f


async def _staff(rotation, name, **fields) -> str:
    return (await f.staff(rotation, name=name, **fields))["id"]


async def test_hand_worked_district(partnership, rotation, auth, db_engine):
    """朝阳区 (110105), academic year 2024: E = 2024-09-01, the year runs 2024-09-01 – 2025-08-31.

    Policy: teachers 6 years, cadres 3 years, exempt 5 years before retirement; targets 0.25 / 0.20.

    | staff | role | in post since | other | eligible on E | rotations (start, status) | rotated | backbone |
    |---|---|---|---|---|---|---|---|
    | S1 张伟 | teacher | 2018-09-01 (+6 = E) | municipal | yes | 2024-09-01 active | yes | yes |
    | S2 李娜 | teacher | 2018-09-02 (a day short) | district | no | 2025-03-01 completed | yes | yes |
    | S3 王芳 | teacher | 2010-09-01 | retires 2029-09-01 = E+5: exempt | no | 2024-10-01 planned | no | |
    | S4 刘洋 | teacher | 2010-09-01 | retires 2029-09-02 | yes | 2024-09-01 approved | yes | no |
    | S5 陈静 | principal | 2021-09-01 (+3 = E) | school | yes | 2023-09-01 completed (before Y); 2024-09-01 withdrawn | no | |
    | S6 杨磊 | vice_principal | 2021-09-02 (a day short) | | no | — | no | |
    | S7 赵敏 | teacher | 2000-09-01 | special_grade, retired since | no (inactive) | 2024-09-01 completed | yes | yes |
    | S8 黄强 | teacher | 2015-09-01 | district | yes | 2024-06-01 approved (before Y); 2025-09-01 approved (after Y) | no | |
    | S9 周杰 | middle_manager | 2012-09-01 | | yes | 2024-09-01 completed + 2025-08-31 approved (last day) | yes, once | no |
    | S11 吴刚 | teacher | 2000-09-01 | left | no | — | no | |
    | S12 田静 | teacher | 2016-09-01 | school | yes | — | no | |
    | S13 孙悦 | principal | 2020-01-01 | | yes | — | no | |
    | S14 高峰 | teacher | 2017-03-01 | | yes | 2024-11-01 planned | no | |

    eligible = S1 S4 S5 S8 S9 S12 S13 S14 = 8; rotated = S1 S2 S4 S7 S9 = 5 (rotated staff count
    whether or not eligible); backbone rotated = S1 S2 S7 = 3.
    rotation rate = 5 / 8 = 0.625; backbone share = 3 / 5 = 0.6.
    延庆区 (110119, default policy): S10 (since 2010, no backbone) is eligible and has an active rotation
    into 朝阳区 starting 2024-09-01: eligible 1, rotated 1, backbone 0 → rate 1, share 0. It does not
    count for 朝阳区 (staff are counted by home district). 海淀区 (110108) has only a policy: zeros.
    """
    await f.chaoyang_with_schools(partnership)
    await f.district(partnership, *f.HAIDIAN)
    put = await rotation.put("/v1/rotation-policies/110105", json={
        "min_years_teacher": 6, "min_years_cadre": 3, "retirement_exempt_years": 5,
        "target_rate": "0.25", "target_backbone_share": "0.20"})
    assert put.status_code == 200
    assert (await rotation.put("/v1/rotation-policies/110108", json={})).status_code == 200

    s1 = await _staff(rotation, "张伟", in_post_since="2018-09-01", backbone_level="municipal")
    s2 = await _staff(rotation, "李娜", in_post_since="2018-09-02", backbone_level="district",
                      home_school_code="11010503", section="junior")
    s3 = await _staff(rotation, "王芳", in_post_since="2010-09-01", retirement_date="2029-09-01")
    s4 = await _staff(rotation, "刘洋", in_post_since="2010-09-01", retirement_date="2029-09-02",
                      home_school_code="11010502")
    s5 = await _staff(rotation, "陈静", role="principal", in_post_since="2021-09-01", backbone_level="school")
    await _staff(rotation, "杨磊", role="vice_principal", in_post_since="2021-09-02")
    s7 = await _staff(rotation, "赵敏", in_post_since="2000-09-01", backbone_level="special_grade")
    s8 = await _staff(rotation, "黄强", in_post_since="2015-09-01", backbone_level="district")
    s9 = await _staff(rotation, "周杰", role="middle_manager", in_post_since="2012-09-01",
                      home_school_code="11010503", section="junior")
    s10 = await _staff(rotation, "郑浩", in_post_since="2010-09-01", home_school_code="11011901")
    s11 = await _staff(rotation, "吴刚", in_post_since="2000-09-01")
    await _staff(rotation, "田静", in_post_since="2016-09-01", backbone_level="school")
    await _staff(rotation, "孙悦", role="principal", in_post_since="2020-01-01")
    s14 = await _staff(rotation, "高峰", in_post_since="2017-03-01")

    await f.rotation_of(rotation, s1, start="2024-09-01", end="2025-08-31", status="active")
    await f.rotation_of(rotation, s2, start="2025-03-01", end="2025-06-30", status="completed")
    await f.rotation_of(rotation, s3, start="2024-10-01", end="2025-06-30", status="planned")
    await f.rotation_of(rotation, s4, start="2024-09-01", end="2025-01-31", status="approved")
    await f.rotation_of(rotation, s5, start="2023-09-01", end="2024-06-30", status="completed")
    await f.rotation_of(rotation, s5, start="2024-09-01", end="2025-08-31", status="withdrawn")
    await f.rotation_of(rotation, s7, start="2024-09-01", end="2024-12-31", status="completed")
    await f.rotation_of(rotation, s8, start="2024-06-01", end="2024-08-31", status="approved")
    await f.rotation_of(rotation, s8, start="2025-09-01", end="2026-01-31", status="approved")
    await f.rotation_of(rotation, s9, mode="part_time", start="2024-09-01", end="2024-12-31", status="completed")
    await f.rotation_of(rotation, s9, mode="subject_guidance", start="2025-08-31", end="2025-12-31",
                        status="approved")
    await f.rotation_of(rotation, s10, to="11010501", start="2024-09-01", end="2025-08-31", status="active")
    await f.rotation_of(rotation, s14, start="2024-11-01", end="2025-06-30", status="planned")
    for member, status in ((s7, "retired"), (s11, "left")):
        assert (await rotation.patch(f"/v1/staff/{member}", json={"status": status})).status_code == 200

    # Every rotation state is present in the district.
    states = await fetch(db_engine, "select distinct status from rotation.rotations order by status")
    assert [r["status"] for r in states] == ["active", "approved", "completed", "planned", "withdrawn"]

    response = await rotation.get("/v1/internal/rotation-stats", params={"academic_year": 2024})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["academic_year"] == 2024
    assert body["defaults"] == {"target_rate": "0.10", "target_backbone_share": "0.20"}
    by_district = {d["district_code"]: d for d in body["districts"]}
    assert list(by_district) == ["110105", "110108", "110119"]
    chaoyang = by_district["110105"]
    assert (chaoyang["eligible"], chaoyang["rotated"], chaoyang["backbone_rotated"]) == (8, 5, 3)
    assert Decimal(chaoyang["rotation_rate"]) == Decimal(5) / Decimal(8) == Decimal("0.625")
    assert Decimal(chaoyang["backbone_share"]) == Decimal(3) / Decimal(5) == Decimal("0.6")
    assert (chaoyang["target_rate"], chaoyang["target_backbone_share"]) == ("0.25", "0.20")
    assert by_district["110119"] == {"district_code": "110119", "eligible": 1, "rotated": 1, "backbone_rotated": 0,
                                     "rotation_rate": "1.0000", "backbone_share": "0.0000",
                                     "target_rate": "0.10", "target_backbone_share": "0.20"}
    assert by_district["110108"] == {"district_code": "110108", "eligible": 0, "rotated": 0, "backbone_rotated": 0,
                                     "rotation_rate": None, "backbone_share": None,
                                     "target_rate": "0.10", "target_backbone_share": "0.20"}

    one = await rotation.get("/v1/internal/rotation-stats", params={"academic_year": 2024, "district_code": "110105"},
                             headers=auth("district_admin", districts=("110105",)))
    assert one.status_code == 200
    assert one.json()["districts"] == [chaoyang]
    # The staff list agrees with the figure.
    listed = await rotation.get("/v1/staff", params={"district_code": "110105", "eligible_for_year": 2024})
    assert len(listed.json()["items"]) == 8
    # A year later the window and E move: only S8's 2025-09-01 rotation counts (S9's starts 2025-08-31).
    later = (await rotation.get("/v1/internal/rotation-stats",
                                params={"academic_year": 2025, "district_code": "110105"})).json()["districts"][0]
    assert (later["rotated"], later["backbone_rotated"]) == (1, 1)


async def test_stats_scope(rotation, auth):
    assert (await rotation.get("/v1/internal/rotation-stats", params={"academic_year": 2024},
                               headers=auth("district_admin", districts=("110105",)))).status_code == 403
    assert (await rotation.get("/v1/internal/rotation-stats", params={"academic_year": 2024,
                                                                       "district_code": "110119"},
                               headers=auth("district_admin", districts=("110105",)))).status_code == 403
    assert (await rotation.get("/v1/internal/rotation-stats", params={"academic_year": 2024},
                               headers=auth("viewer"))).status_code == 200
    assert (await rotation.get("/v1/internal/rotation-stats")).status_code == 422
    # The list of every active staff id is gone: training counts from its own staff directory.
    assert (await rotation.get("/v1/internal/active-staff")).status_code == 404


async def test_backbone_placement_around_a_date(partnership, rotation, auth):
    """On D = 2024-12-01 (inclusive ranges; only `active` `full_time` rotations move a teacher):

    B1 at 11011901 (active, contains D) · B2 home 11010501 (ended 11-30) · B3 home 11010502 (starts 12-02) ·
    B4 home 11010503 (withdrawn) · B5 at 11010501 junior (starts on D) · B6 at 11010502 (ends on D) ·
    B7 home 11010502 (part_time) · B8 home 11010502 (approved, not active) · B12 Yanqing home.
    Not counted: a special-grade principal, a school-level backbone teacher, a retired municipal teacher.
    """
    await f.chaoyang_with_schools(partnership)
    b = {}
    for key, name, school, section, level in [
        ("B1", "张伟", "11010501", "primary", "municipal"), ("B2", "李娜", "11010501", "primary", "district"),
        ("B3", "王芳", "11010502", "primary", "special_grade"), ("B4", "刘洋", "11010503", "junior", "district"),
        ("B5", "陈静", "11010503", "junior", "municipal"), ("B6", "杨磊", "11010501", "primary", "district"),
        ("B7", "赵敏", "11010502", "primary", "municipal"), ("B8", "黄强", "11010502", "primary", "district"),
        ("B10", "周杰", "11010501", "primary", "school"), ("B11", "吴刚", "11010501", "primary", "municipal"),
        ("B12", "郑浩", "11011901", "junior", "municipal"),
    ]:
        b[key] = await _staff(rotation, name, home_school_code=school, section=section, backbone_level=level)
    b["B9"] = await _staff(rotation, "孙悦", role="principal", backbone_level="special_grade")
    await rotation.patch(f"/v1/staff/{b['B11']}", json={"status": "retired"})
    await f.rotation_of(rotation, b["B1"], start="2024-09-01", end="2025-08-31", status="active")
    await f.rotation_of(rotation, b["B2"], start="2024-09-01", end="2024-11-30", status="active")
    await f.rotation_of(rotation, b["B3"], start="2024-12-02", end="2025-06-30", status="active")
    await f.rotation_of(rotation, b["B4"], start="2024-09-01", end="2025-08-31", status="withdrawn")
    await f.rotation_of(rotation, b["B5"], to="11010501", start="2024-12-01", end="2025-06-30", status="active")
    await f.rotation_of(rotation, b["B6"], to="11010502", start="2024-09-01", end="2024-12-01", status="active")
    await f.rotation_of(rotation, b["B7"], mode="part_time", start="2024-09-01", end="2025-08-31", status="active")
    await f.rotation_of(rotation, b["B8"], start="2024-09-01", end="2025-08-31", status="approved")
    await f.rotation_of(rotation, b["B9"], start="2024-09-01", end="2025-08-31", status="active")

    async def placement(as_of, **params):
        response = await rotation.get("/v1/internal/backbone-placement", params={"as_of": as_of, **params})
        assert response.status_code == 200, response.text
        assert response.json()["as_of"] == as_of
        return [(i["school_code"], i["district_code"], i["section"], i["backbone"]) for i in response.json()["items"]]

    assert await placement("2024-12-01") == [
        ("11010501", "110105", "junior", 1), ("11010501", "110105", "primary", 1),
        ("11010502", "110105", "primary", 4), ("11010503", "110105", "junior", 1),
        ("11011901", "110119", "junior", 1), ("11011901", "110119", "primary", 1)]
    assert await placement("2024-12-02") == [
        ("11010501", "110105", "junior", 1), ("11010501", "110105", "primary", 2),
        ("11010502", "110105", "primary", 2), ("11010503", "110105", "junior", 1),
        ("11011901", "110119", "junior", 1), ("11011901", "110119", "primary", 2)]
    # district_code filters by the district of the school where they work.
    assert await placement("2024-12-01", district_code="110119") == [
        ("11011901", "110119", "junior", 1), ("11011901", "110119", "primary", 1)]

    school = await rotation.get("/v1/internal/school-staff", params={"school_code": "11010502", "as_of": "2024-12-01"})
    assert school.json() == {"school_code": "11010502", "as_of": "2024-12-01", "staff": 3,
                             "backbone_by_section": {"primary": 4, "junior": 0, "senior": 0}}
    home = (await rotation.get("/v1/internal/school-staff",
                               params={"school_code": "11010501", "as_of": "2024-12-02"})).json()
    # Active staff with this home school: B1 B2 B6 B10 B9 (B11 retired); working here: B2 B6 (+ B5 junior).
    assert (home["staff"], home["backbone_by_section"]) == (5, {"primary": 2, "junior": 1, "senior": 0})
    assert (await rotation.get("/v1/internal/school-staff", params={"school_code": "11010502", "as_of": "2024-12-01"},
                               headers=auth("district_admin", districts=("110119",)))).status_code == 403



async def test_balance_totals_are_the_hand_worked_sums(partnership, rotation, auth, db_engine):
    """design.md §4.6's worked example in 朝阳 (primary): P = 1000, 500, 500 and B = 10, 2, 8, so
    Σ B_i²/P_i = 100/1000 + 4/500 + 64/500 = 59/250 and CV² = 2000 · 59/250 / 20² − 1 = 0.18; one
    school below 1 per 100 students. One of school A's ten works at school C on a full-time rotation
    and one of C's nine is a junior teacher, so the sums come from where people work on D. 延庆's rural
    school has 300 primary pupils and nobody; a district without schools has no row."""
    from tests.feed import synced

    await f.district(partnership)
    await f.district(partnership, *f.YANQING)
    for code, primary, junior in (("11010501", 1000, 0), ("11010502", 500, 0), ("11010503", 500, 400)):
        await f.school(partnership, code, primary=primary, junior=junior, stage="nine_year")
    await f.school(partnership, "11011901", district_code=f.YANQING[0], locality="rural", primary=300)
    people = [("11010501", "primary")] * 11 + [("11010502", "primary")] * 2 + [("11010503", "primary")] * 7
    ids = [(await f.staff(rotation, home_school_code=school, section=section, backbone_level="district"))["id"]
           for school, section in people]
    await f.staff(rotation, home_school_code="11010503", section="junior", backbone_level="municipal")
    await f.staff(rotation, home_school_code="11010501", section="primary", backbone_level="school")  # not county+
    await f.rotation_of(rotation, ids[0], to="11010503", start="2024-09-01", end="2025-08-31", status="active")
    await synced(db_engine, staff=False)

    answer = await rotation.get("/v1/internal/balance-totals", params={"as_of": "2024-12-01"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"as_of": "2024-12-01", "districts": [
        {"district_code": "110105", "sections": {
            "junior": {"school_count": 1, "enrollment": 400, "backbone": 1, "schools_below_one": 1,
                       "backbone_squared_per_enrollment": "1/400"},
            "primary": {"school_count": 3, "enrollment": 2000, "backbone": 20, "schools_below_one": 1,
                        "backbone_squared_per_enrollment": "59/250"}}},
        {"district_code": "110119", "sections": {
            "primary": {"school_count": 1, "enrollment": 300, "backbone": 0, "schools_below_one": 1,
                        "backbone_squared_per_enrollment": "0/1"}}}]}
    one = await rotation.get("/v1/internal/balance-totals", params={"as_of": "2024-12-01", "district_code": "110108"})
    assert one.json() == {"as_of": "2024-12-01", "districts": [{"district_code": "110108", "sections": {}}]}
    scoped = await rotation.get("/v1/internal/balance-totals", params={"as_of": "2024-12-01"},
                                headers=auth("district_admin", districts=("110105",)))
    assert scoped.status_code == 403
