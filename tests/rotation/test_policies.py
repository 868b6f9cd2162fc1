"""District rotation policies: defaults, validation, numeric storage and scope."""

from __future__ import annotations

from decimal import Decimal

from tests.conftest import fetch
from tests.rotation import factories as f

DEFAULTS = {"min_years_teacher": 6, "min_years_cadre": 6, "retirement_exempt_years": 5,
            "target_rate": "0.10", "target_backbone_share": "0.20"}


async def test_defaults_when_never_set(rotation):
    response = await rotation.get("/v1/rotation-policies/110105")
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in DEFAULTS} == DEFAULTS
    assert body["is_default"] is True


async def test_put_stores_numeric_and_bumps_version(partnership, rotation, db_engine):
    await f.district(partnership)
    response = await rotation.put("/v1/rotation-policies/110105", json={
        "min_years_teacher": 5, "min_years_cadre": 4, "retirement_exempt_years": 3,
        "target_rate": "0.125", "target_backbone_share": 0.3})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["target_rate"], body["target_backbone_share"], body["is_default"]) == ("0.125", "0.3", False)
    rows = await fetch(db_engine, "select min_years_teacher, min_years_cadre, retirement_exempt_years, "
                                  "target_rate, target_backbone_share, pg_typeof(target_rate)::text as t, "
                                  "version, updated_by from rotation.rotation_policies")
    assert rows == [{"min_years_teacher": 5, "min_years_cadre": 4, "retirement_exempt_years": 3,
                     "target_rate": Decimal("0.125"), "target_backbone_share": Decimal("0.3"), "t": "numeric",
                     "version": 1, "updated_by": "tester"}]
    # A second PUT replaces the whole policy: omitted fields return to their defaults.
    again = await rotation.put("/v1/rotation-policies/110105", json={"target_rate": "0.15"})
    assert again.status_code == 200
    assert {k: again.json()[k] for k in DEFAULTS} == {**DEFAULTS, "target_rate": "0.15"}
    assert (await fetch(db_engine, "select version from rotation.rotation_policies")) == [{"version": 2}]
    assert (await rotation.get("/v1/rotation-policies/110105")).json()["target_rate"] == "0.15"


async def test_validation(partnership, rotation, db_engine):
    await f.district(partnership)
    for body, field in [({"target_rate": 1.5}, "body.target_rate"), ({"target_backbone_share": -0.1},
                        "body.target_backbone_share"), ({"min_years_teacher": -1}, "body.min_years_teacher"),
                        ({"retirement_exempt_years": -2}, "body.retirement_exempt_years"),
                        ({"target_rate": "0.12345"}, "body.target_rate")]:
        response = await rotation.put("/v1/rotation-policies/110105", json=body)
        assert response.status_code == 422, body
        assert response.json()["errors"][0]["field"] == field
    assert (await rotation.put("/v1/rotation-policies/1101", json={})).status_code == 422
    # Bounds themselves are allowed.
    ok = await rotation.put("/v1/rotation-policies/110105", json={"target_rate": 1, "min_years_cadre": 0})
    assert ok.status_code == 200
    assert await fetch(db_engine, "select count(*) as n from rotation.rotation_policies") == [{"n": 1}]


async def test_unknown_district_is_422(partnership, rotation, db_engine):
    response = await rotation.put("/v1/rotation-policies/110199", json={})
    assert response.status_code == 422
    assert response.json()["type"] == "urn:spp:problem:unknown-district"
    assert await fetch(db_engine, "select count(*) as n from rotation.rotation_policies") == [{"n": 0}]


async def test_scope(partnership, rotation, auth):
    await f.district(partnership)
    assert (await rotation.put("/v1/rotation-policies/110105", json={},
                               headers=auth("viewer"))).status_code == 403
    assert (await rotation.put("/v1/rotation-policies/110105", json={},
                               headers=auth("district_admin", districts=("110119",)))).status_code == 403
    assert (await rotation.get("/v1/rotation-policies/110105",
                               headers=auth("school_admin", districts=("110119",)))).status_code == 403
    assert (await rotation.put("/v1/rotation-policies/110105", json={},
                               headers=auth("district_admin", districts=("110105",)))).status_code == 200
