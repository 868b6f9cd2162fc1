"""Rotation serves the "works at" rule of design.md §4.6 on its own: the what-if of proposed moves
(`POST /v1/internal/backbone-what-if`) and one staff member's workplace
(`GET /v1/internal/staff/{id}/workplace`), worked by hand below. Nothing is stored by either.
"""

from __future__ import annotations

import uuid

from tests.conftest import fetch
from tests.rotation import factories as f

PROBLEM = "application/problem+json"
D = "2024-12-01"


async def _world(partnership, rotation) -> dict[str, str]:
    """On D, in 朝阳区 (110105), county-level-and-above backbone teachers work at:

    | staff | home | section, level | rotation | works at on D | counts |
    |---|---|---|---|---|---|
    | A 张伟 | 11010501 | primary, municipal | full time → 11010502, active | 11010502 | yes |
    | B 李娜 | 11010501 | primary, district | — | 11010501 | yes |
    | C 王芳 | 11010502 | primary, special_grade | — | 11010502 | yes |
    | D 刘洋 | 11010503 | junior, district | — | 11010503 | yes |
    | E 陈静 | 11010501 | primary, school | — | 11010501 | no (school level) |
    | F 周杰 | 11011901 (延庆) | primary, municipal | full time → 11010501, active | 11010501 | yes |
    | G 黄强 | 11010503 | senior, municipal | — | 11010503 | placed, but no balance section |
    | H 郑浩 | 11011901 (延庆) | junior, municipal | — | 11011901 | yes (in 延庆) |
    """
    await f.chaoyang_with_schools(partnership)
    people = {
        "A": ("张伟", "11010501", "primary", "municipal"), "B": ("李娜", "11010501", "primary", "district"),
        "C": ("王芳", "11010502", "primary", "special_grade"), "D": ("刘洋", "11010503", "junior", "district"),
        "E": ("陈静", "11010501", "primary", "school"), "F": ("周杰", "11011901", "primary", "municipal"),
        "G": ("黄强", "11010503", "senior", "municipal"), "H": ("郑浩", "11011901", "junior", "municipal"),
    }
    ids = {}
    for key, (name, school, section, level) in people.items():
        ids[key] = (await f.staff(rotation, name=name, home_school_code=school, section=section,
                                  backbone_level=level))["id"]
    await f.rotation_of(rotation, ids["A"], to="11010502", status="active")  # 2024-09-01 .. 2025-08-31
    await f.rotation_of(rotation, ids["F"], to="11010501", status="active")
    return ids


async def _stored(db_engine) -> dict:
    return {
        "staff": await fetch(db_engine, "select id, home_school_code, status, version from rotation.staff order by id"),
        "rotations": await fetch(db_engine, "select id, to_school_code, status, version from rotation.rotations "
                                            "order by id"),
    }


def _items(*rows: tuple[str, str, int]) -> list[dict]:
    return [{"school_code": school, "district_code": "110105", "section": section, "backbone": n}
            for school, section, n in rows]


async def test_what_if_moves_counted_teachers_where_they_work(partnership, rotation, db_engine):
    s = await _world(partnership, rotation)
    stored = await _stored(db_engine)
    response = await rotation.post("/v1/internal/backbone-what-if", json={
        "as_of": D, "district_code": "110105", "moves": [
            {"staff_id": s["A"], "to_school_code": "11010501"},  # leaves 11010502 (where R puts A), not home
            {"staff_id": s["F"], "to_school_code": "11011901"},  # out of the district: 11010501 loses one
            {"staff_id": s["E"], "to_school_code": "11010502"},  # school level: changes nothing
            {"staff_id": s["G"], "to_school_code": "11010501"},  # senior: not a balance section
            {"staff_id": s["D"], "to_school_code": "11010503"},  # already there
            {"staff_id": s["H"], "to_school_code": "11010503"},  # from 延庆: 11010503 junior gains one
        ]})
    assert response.status_code == 200, response.text
    # before: 11010501 primary B + F = 2; 11010502 primary A + C = 2; 11010503 junior D, senior G.
    # after:  11010501 2 + A − F = 2; 11010502 2 − A = 1; 11010503 junior D + H = 2; senior G stays.
    assert response.json() == {
        "as_of": D, "district_code": "110105",
        "before": _items(("11010501", "primary", 2), ("11010502", "primary", 2), ("11010503", "junior", 1),
                         ("11010503", "senior", 1)),
        "after": _items(("11010501", "primary", 2), ("11010502", "primary", 1), ("11010503", "junior", 2),
                        ("11010503", "senior", 1)),
        "moves": [
            {"staff_id": s["A"], "name": "张伟", "section": "primary", "from_school_code": "11010502",
             "to_school_code": "11010501", "counts_as_backbone": True},
            {"staff_id": s["F"], "name": "周杰", "section": "primary", "from_school_code": "11010501",
             "to_school_code": "11011901", "counts_as_backbone": True},
            {"staff_id": s["E"], "name": "陈静", "section": "primary", "from_school_code": "11010501",
             "to_school_code": "11010502", "counts_as_backbone": False},
            {"staff_id": s["G"], "name": "黄强", "section": "senior", "from_school_code": "11010503",
             "to_school_code": "11010501", "counts_as_backbone": False},
            {"staff_id": s["D"], "name": "刘洋", "section": "junior", "from_school_code": "11010503",
             "to_school_code": "11010503", "counts_as_backbone": True},
            {"staff_id": s["H"], "name": "郑浩", "section": "junior", "from_school_code": "11011901",
             "to_school_code": "11010503", "counts_as_backbone": True},
        ],
    }
    # Both rotations end 2025-08-31: on 2025-09-01 A and B work at 11010501, C at 11010502 (F is back
    # in 延庆), and moving A to 11010501, where A now works, changes nothing.
    later = await rotation.post("/v1/internal/backbone-what-if", json={
        "as_of": "2025-09-01", "district_code": "110105", "moves": [{"staff_id": s["A"], "to_school_code": "11010501"}]})
    assert later.status_code == 200
    assert later.json()["before"] == later.json()["after"] == _items(
        ("11010501", "primary", 2), ("11010502", "primary", 1), ("11010503", "junior", 1), ("11010503", "senior", 1))
    assert later.json()["moves"][0]["from_school_code"] == "11010501"
    assert await _stored(db_engine) == stored


async def test_what_if_names_unknown_staff_and_schools_per_move(partnership, rotation, db_engine):
    s = await _world(partnership, rotation)
    stored = await _stored(db_engine)
    unknown = str(uuid.uuid4())
    response = await rotation.post("/v1/internal/backbone-what-if", json={
        "as_of": D, "district_code": "110105", "moves": [
            {"staff_id": s["A"], "to_school_code": "NOPE"}, {"staff_id": unknown, "to_school_code": "11010502"},
            {"staff_id": s["B"], "to_school_code": "11010502"}]})
    assert (response.status_code, response.headers["content-type"]) == (422, PROBLEM)
    body = response.json()
    assert body["type"] == "urn:spp:problem:unknown-reference" and body["title"] == "Invalid moves"
    assert body["detail"] == (f"body.moves.0.to_school_code: school NOPE does not exist; "
                              f"body.moves.1.staff_id: staff member {unknown} does not exist")
    assert body["errors"] == [
        {"field": "body.moves.0.to_school_code", "message": "school NOPE does not exist", "type": "unknown_reference"},
        {"field": "body.moves.1.staff_id", "message": f"staff member {unknown} does not exist",
         "type": "unknown_reference"}]

    twice = await rotation.post("/v1/internal/backbone-what-if", json={
        "as_of": D, "district_code": "110105", "moves": [
            {"staff_id": s["A"], "to_school_code": "11010501"}, {"staff_id": s["A"], "to_school_code": "11010502"}]})
    assert twice.status_code == 422
    assert twice.json()["errors"] == [
        {"field": "body.moves.1.staff_id", "message": "already moved by moves[0]", "type": "duplicate"}]
    assert await _stored(db_engine) == stored


async def test_what_if_is_scoped(partnership, rotation, auth):
    s = await _world(partnership, rotation)
    yanqing = auth("district_admin", districts=("110119",))
    chaoyang = auth("district_admin", districts=("110105",))
    body = {"as_of": D, "district_code": "110105", "moves": []}
    refused = await rotation.post("/v1/internal/backbone-what-if", json=body, headers=yanqing)
    assert (refused.status_code, refused.json()["detail"]) == (403, "outside your districts")
    own = await rotation.post("/v1/internal/backbone-what-if", json=body, headers=chaoyang)
    assert own.status_code == 200
    assert own.json()["after"] == own.json()["before"]
    # Moving a staff member of a district the caller may not read is refused, as their record is.
    other = await rotation.post("/v1/internal/backbone-what-if", headers=chaoyang, json={
        **body, "moves": [{"staff_id": s["H"], "to_school_code": "11010503"}]})
    assert (other.status_code, other.json()["type"]) == (403, "urn:spp:problem:district-scope")


async def test_workplace_of_one_staff_member(partnership, rotation, auth):
    s = await _world(partnership, rotation)

    async def workplace(key_or_id: str, as_of: str, **headers):
        staff_id = s.get(key_or_id, key_or_id)
        return await rotation.get(f"/v1/internal/staff/{staff_id}/workplace", params={"as_of": as_of}, **headers)

    assert (await workplace("A", D)).json() == {"staff_id": s["A"], "as_of": D, "school_code": "11010502",
                                                "district_code": "110105"}
    assert (await workplace("A", "2025-09-01")).json()["school_code"] == "11010501"  # after the rotation
    assert (await workplace("A", "2024-09-01")).json()["school_code"] == "11010502"  # its first day
    assert (await workplace("F", D)).json() == {"staff_id": s["F"], "as_of": D, "school_code": "11010501",
                                                "district_code": "110105"}
    assert (await workplace("E", D)).json()["school_code"] == "11010501"
    missing = await workplace(str(uuid.uuid4()), D)
    assert (missing.status_code, missing.json()["type"]) == (404, "urn:spp:problem:staff-not-found")
    refused = await workplace("A", D, headers=auth("district_admin", districts=("110119",)))
    assert (refused.status_code, refused.json()["detail"]) == (403, "outside your districts")
