"""Demo data, loaded through the public API so it obeys every rule a client would.

Beijing's 16 districts with their GB/T 2260 codes and a few schools each (an urban primary and
junior school, a township nine-year school and a rural primary school), one active hand-in-hand
pairing per district with an activity. Idempotent: what exists already (409) is left as it is.
"""

from __future__ import annotations

from collections import Counter

import httpx

BEIJING_DISTRICTS = [
    ("110101", "东城区"), ("110102", "西城区"), ("110105", "朝阳区"), ("110106", "丰台区"),
    ("110107", "石景山区"), ("110108", "海淀区"), ("110109", "门头沟区"), ("110111", "房山区"),
    ("110112", "通州区"), ("110113", "顺义区"), ("110114", "昌平区"), ("110115", "大兴区"),
    ("110116", "怀柔区"), ("110117", "平谷区"), ("110118", "密云区"), ("110119", "延庆区"),
]

SCHOOL_KINDS = [
    # (suffix, name pattern, stage, locality, primary, junior)
    ("01", "北京市{d}第一实验小学", "primary", "urban", 1860, 0),
    ("02", "北京市{d}实验中学", "junior", "urban", 0, 1240),
    ("03", "北京市{d}城关镇九年一贯制学校", "nine_year", "township", 520, 310),
    ("04", "北京市{d}山区中心小学", "primary", "rural", 180, 0),
]


def demo_records() -> dict[str, list[dict]]:
    districts, schools, pairings = [], [], []
    for code, name in BEIJING_DISTRICTS:
        districts.append({"code": code, "name": name})
        for suffix, pattern, stage, locality, primary, junior in SCHOOL_KINDS:
            schools.append({"code": f"{code}{suffix}", "name": pattern.format(d=name), "district_code": code,
                            "stage": stage, "locality": locality, "primary_enrollment": primary,
                            "junior_enrollment": junior, "senior_enrollment": 0})
        pairings.append({"lead_school_code": f"{code}01", "partner_school_code": f"{code}04",
                         "program": f"{name}城乡学校手拉手结对帮扶", "start_date": "2024-09-01",
                         "end_date": "2027-08-31", "goals": "共建课程、送课到校、联合教研"})
    return {"districts": districts, "schools": schools, "pairings": pairings}


async def seed_demo(base_url: str, token: str) -> dict[str, int]:
    """Create what is missing; return how many records of each kind were created."""
    created: Counter[str] = Counter()
    records = demo_records()
    async with httpx.AsyncClient(base_url=f"{base_url}/api/v1", timeout=10.0,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        for kind in ("districts", "schools"):
            for record in records[kind]:
                response = await client.post(f"/{kind}", json=record)
                if response.status_code == 201:
                    created[kind] += 1
                elif response.status_code != 409:
                    response.raise_for_status()
        for record in records["pairings"]:
            response = await client.post("/pairings", json=record)
            if response.status_code != 201:
                continue  # already paired (409): the demo pairing exists
            created["pairings"] += 1
            pairing_id = response.json()["id"]
            await client.post(f"/pairings/{pairing_id}/activate")
            activity = await client.post(f"/pairings/{pairing_id}/activities", json={
                "kind": "lesson_delivery", "date": "2024-10-15", "title": "送课到校：四年级数学公开课",
                "teacher_participants": 6, "student_participants": 42})
            if activity.status_code == 201:
                created["activities"] += 1
    return dict(created)
