"""Every list of the three services scopes one way (Principal.list_scope): a district admin who
filters on another district is refused with 403, never handed an empty page (issue 13)."""

from __future__ import annotations

import pytest

# (service fixture, list path): every list that takes a district_code filter.
LISTS = [
    ("partnership", "/v1/schools"),
    ("partnership", "/v1/pairings"),
    ("partnership", "/v1/activities"),
    ("rotation", "/v1/staff"),
    ("rotation", "/v1/rotations"),
    ("rotation", "/v1/rotation-plans"),
    ("training", "/v1/studios"),
]

REFUSED = {"type": "urn:spp:problem:district-scope", "title": "Not allowed", "status": 403,
           "detail": "outside your districts"}


@pytest.mark.parametrize(("service", "path"), LISTS)
async def test_a_filter_on_another_district_is_403_on_every_list(partnership, rotation, training, auth,
                                                                 service, path):
    client = {"partnership": partnership, "rotation": rotation, "training": training}[service]
    headers = auth("district_admin", districts=("110105",))

    refused = await client.get(path, params={"district_code": "110108"}, headers=headers)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    body = refused.json()
    assert {key: body[key] for key in REFUSED} == REFUSED

    own = await client.get(path, params={"district_code": "110105"}, headers=headers)
    assert own.status_code == 200
    assert own.json() == {"items": [], "next_cursor": None}
