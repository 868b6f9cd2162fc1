"""Requests written byte for byte to real processes (issue 9, items 3 and 5): `..` paths that no
client normalised, and UTF-8 bytes in header values, each answered with a problem, never a walk
to an internal endpoint, a 500 or a reset connection."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import httpx
import pytest

from tests.raw import socket_request

pytestmark = pytest.mark.e2e

PROBLEM = b"application/problem+json"


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname, parts.port


async def test_dot_segments_and_utf8_headers_on_real_processes(platform, token):
    gateway = platform.url("gateway")
    async with httpx.AsyncClient(base_url=f"{gateway}/api/v1", timeout=10,
                                 headers={"Authorization": f"Bearer {token()}", "Accept-Language": "en"}) as client:
        assert (await client.post("/districts", json={"code": "110105", "name": "朝阳区"})).status_code == 201
        assert (await client.post("/districts", json={"code": "110119", "name": "延庆区"})).status_code == 201
        assert (await client.post("/schools", json={"code": "S1", "name": "实验小学", "district_code": "110105",
                                                    "stage": "primary", "locality": "urban"})).status_code == 201
        staff = await client.post("/staff", json={
            "staff_no": "T1", "name": "张伟", "home_school_code": "S1", "role": "teacher", "section": "primary",
            "subject": "数学", "backbone_level": "municipal", "in_post_since": "2015-09-01"})
        assert staff.status_code == 201, staff.text
        staff_id = staff.json()["id"]
        studio = await client.post("/studios", json={
            "name": "张伟名师工作室", "kind": "famous_teacher", "host_staff_id": staff_id, "subject": "数学",
            "district_code": "110105", "start_date": "2024-09-01", "end_date": "2027-08-31"})
        assert studio.status_code == 201, studio.text

    outsider = f"Bearer {token('district_admin', ('110119',))}".encode()
    host, port = address(gateway)
    walks = [f"/api/v1/studios/../internal/staff/{staff_id}/memberships", "/api/v1/staff/../../metrics",
             f"/api/v1/studios/%2e%2e/internal/staff/{staff_id}/memberships", "/api/v1/staff/%2E./%2e%2E/metrics",
             f"/api/v1/studios/..%2finternal/staff/{staff_id}/memberships"]
    for target in walks:
        response = await socket_request(host, port, "GET", target.encode(), [
            (b"Authorization", outsider), (b"X-Request-ID", b"walk-1")])
        assert (response.status, response.headers["content-type"]) == (404, PROBLEM), target
        assert json.loads(response.body) == {
            "type": "urn:spp:problem:not-found", "title": "未找到", "status": 404,
            "detail": "含有 '.' 或 '..' 段的路径不指向任何资源", "request_id": "walk-1"}, target

    # A service reached directly refuses the walk to its own metrics the same way.
    t_host, t_port = address(platform.url("training"))
    response = await socket_request(t_host, t_port, "GET", b"/v1/studios/../../metrics", [(b"X-Request-ID", b"w")])
    assert (response.status, json.loads(response.body)["detail"]) == (
        404, "含有 '.' 或 '..' 段的路径不指向任何资源")

    for name, label in ((b"X-Request-ID", "X-Request-ID"), (b"Accept-Language", "Accept-Language"),
                        (b"If-Match", "If-Match"), (b"Idempotency-Key", "Idempotency-Key")):
        for target, method in ((b"/api/v1/schools", "GET"), (b"/api/v1/districts", "POST")):
            response = await socket_request(host, port, method, target, [
                (b"Authorization", f"Bearer {token()}".encode()), (name, "请求-甲".encode())])
            assert (response.status, response.headers["content-type"]) == (400, PROBLEM), (name, target)
            echoed = response.headers["x-request-id"]
            assert re.fullmatch(rb"[0-9a-f]{32}", echoed) or name != b"X-Request-ID", echoed
            assert json.loads(response.body) == {
                "type": "urn:spp:problem:invalid-header", "title": "请求无效", "status": 400,
                "detail": f"{label} 请求头只能包含可打印的 ASCII 字符", "request_id": echoed.decode()}, name
