"""Async factories with keyword defaults: each makes one record through the HTTP API of its owner
(partnership for districts and schools, rotation for staff, training for the rest)."""

from __future__ import annotations

import itertools

import httpx

HAIDIAN = ("110108", "海淀区")
YANQING = ("110119", "延庆区")

_staff_numbers = itertools.count(1)


async def district(partnership: httpx.AsyncClient, code: str = HAIDIAN[0], name: str = HAIDIAN[1]) -> dict:
    response = await partnership.post("/v1/districts", json={"code": code, "name": name})
    assert response.status_code == 201, response.text
    return response.json()


async def school(partnership: httpx.AsyncClient, code: str, *, district_code: str = HAIDIAN[0],
                 name: str | None = None, locality: str = "urban") -> dict:
    response = await partnership.post("/v1/schools", json={
        "code": code, "name": name or f"北京市测试学校{code}", "district_code": district_code,
        "stage": "primary", "locality": locality, "primary_enrollment": 600,
    })
    assert response.status_code == 201, response.text
    return response.json()


async def staff(rotation: httpx.AsyncClient, *, school_code: str, name: str = "王芳", subject: str = "语文",
                backbone_level: str = "district", role: str = "teacher") -> dict:
    response = await rotation.post("/v1/staff", json={
        "staff_no": f"T{next(_staff_numbers):07d}", "name": name, "home_school_code": school_code,
        "role": role, "section": "primary", "subject": subject, "backbone_level": backbone_level,
        "in_post_since": "2015-09-01",
    })
    assert response.status_code == 201, response.text
    return response.json()


async def studio(training: httpx.AsyncClient, *, host_staff_id: str, district_code: str = YANQING[0],
                 name: str = "李华名师工作室", kind: str = "famous_teacher", subject: str = "语文",
                 start_date: str = "2024-09-01", end_date: str | None = "2027-08-31", capacity: int = 10,
                 headers: dict | None = None) -> dict:
    body = {"name": name, "kind": kind, "host_staff_id": host_staff_id, "subject": subject,
            "district_code": district_code, "start_date": start_date, "capacity": capacity}
    if end_date is not None:
        body["end_date"] = end_date
    response = await training.post("/v1/studios", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def member(training: httpx.AsyncClient, studio_id: str, staff_id: str, *,
                 joined_on: str = "2024-09-01") -> dict:
    response = await training.post(f"/v1/studios/{studio_id}/members",
                                   json={"staff_id": staff_id, "joined_on": joined_on})
    assert response.status_code == 201, response.text
    return response.json()


async def session(training: httpx.AsyncClient, studio_id: str, *, starts_at: str = "2024-10-12T09:00:00+08:00",
                  hours: str = "3", kind: str = "collective_research", title: str = "整本书阅读教学研讨") -> dict:
    response = await training.post(f"/v1/studios/{studio_id}/sessions",
                                   json={"kind": kind, "title": title, "starts_at": starts_at, "hours": hours})
    assert response.status_code == 201, response.text
    return response.json()


async def attend(training: httpx.AsyncClient, session_id: str, staff_ids: list[str]) -> dict:
    response = await training.put(f"/v1/sessions/{session_id}/attendance", json={"staff_ids": staff_ids})
    assert response.status_code == 200, response.text
    return response.json()


async def credit(training: httpx.AsyncClient, staff_id: str, *, hours: str, earned_on: str,
                 source: str = "municipal_platform", reference: str | None = None) -> dict:
    response = await training.post("/v1/training-hours", json={
        "staff_id": staff_id, "hours": hours, "earned_on": earned_on, "source": source,
        "reference": reference or f"{source}-{staff_id}-{earned_on}-{hours}",
    })
    assert response.status_code == 201, response.text
    return response.json()
