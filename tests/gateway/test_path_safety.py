"""Nothing walks around the gateway: a path with `.` or `..` segments, sent as is or percent-
encoded, is refused with 404 before routing, and only the normalised path is forwarded.

The paths are handed to the gateway as the ASGI scope a server builds from them (tests/raw.py),
because httpx resolves dot segments before it sends anything.
"""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import asgi
from tests.gateway.conftest import CHAOYANG, YANQING
from tests.raw import asgi_request

PROBLEM = "application/problem+json"
# Raw requests carry no Accept-Language: problems come in Chinese, the default.
REFUSED = {"type": "urn:spp:problem:not-found", "title": "未找到", "status": 404,
           "detail": "含有 '.' 或 '..' 段的路径不指向任何资源", "request_id": "walk-1"}


def test_httpx_resolves_dot_segments_itself():
    # Why these tests build ASGI scopes (and the e2e test writes to a socket) instead of using httpx.
    assert httpx.URL("http://gateway/api/v1/studios/../internal/x").raw_path == b"/api/v1/internal/x"
    assert httpx.URL("http://gateway/api/v1/staff/../../metrics").raw_path == b"/api/metrics"


def walks(staff_id: str) -> list[str]:
    memberships = f"internal/staff/{staff_id}/memberships"
    return [
        f"/api/v1/studios/../{memberships}",
        "/api/v1/staff/../../metrics",
        f"/api/v1/studios/%2e%2e/{memberships}",
        f"/api/v1/studios/%2E%2E/{memberships}",
        f"/api/v1/studios/%2E./{memberships}",
        f"/api/v1/studios/.%2e/{memberships}",
        "/api/v1/staff/%2e%2e/%2e%2e/metrics",
        f"/api/v1/studios/..%2f{memberships}",
        f"/api/v1/studios/..%2F{memberships}",
        f"/api/v1/studios/%252e%252e/{memberships}",
        f"/api/v1/studios/..%5c{memberships}",
        "/api/v1/studios/./x",
        "/api/v1/studios/%2e/x",
        "/api/v1/studios/..",
        "/api/v1/..",
        "/api/v1/.",
        "/api/v1/districts/../overview",
        f"/api/v1/districts/{CHAOYANG[0]}/../{CHAOYANG[0]}/overview",
    ]


class TestDotSegments:
    async def test_every_walk_is_refused(self, gateway_app, chaoyang, token):
        # 李娜 (T3) is a member of a 朝阳 studio; a 延庆 admin must not read that through a walk.
        outsider = token("district_admin", (YANQING[0],))
        for path in walks(chaoyang.staff["T3"]["id"]):
            response = await asgi_request(gateway_app, "GET", path.encode(), headers=[
                (b"authorization", f"Bearer {outsider}".encode()), (b"x-request-id", b"walk-1")])
            assert (response.status, response.headers["content-type"]) == (404, PROBLEM.encode()), path
            assert response.json() == REFUSED, path

    async def test_refused_for_every_method_and_caller(self, gateway_app, chaoyang, token):
        path = f"/api/v1/studios/../internal/staff/{chaoyang.staff['T3']['id']}/memberships".encode()
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            for headers in ([(b"authorization", f"Bearer {token()}".encode())], []):
                response = await asgi_request(gateway_app, method, path,
                                              headers=[*headers, (b"x-request-id", b"walk-1")])
                assert (response.status, response.json()) == (404, REFUSED), (method, headers)

    async def test_dots_inside_a_segment_are_fine(self, gateway_app, chaoyang, token):
        # Only whole `.`/`..` segments are walks; a name with dots in it is an ordinary name.
        for path in ("/api/v1/schools/S1..", "/api/v1/schools/..S1", "/api/v1/schools/a.b", "/api/v1/schools/..."):
            response = await asgi_request(gateway_app, "GET", path.encode(),
                                          headers=[(b"authorization", f"Bearer {token()}".encode())])
            assert response.status == 404, path
            assert response.json()["type"] == "urn:spp:problem:school-not-found", path


class TestForwardedPath:
    @pytest.fixture
    async def seen(self, gateway_with, partnership_app, training_app):
        """The raw paths the upstreams received from a gateway sent raw requests."""
        paths: list[bytes] = []

        def recorder(app):
            inner = asgi(app)

            async def record(request: httpx.Request) -> httpx.Response:
                paths.append(request.url.raw_path.split(b"?")[0])
                return await inner.handle_async_request(request)
            return httpx.MockTransport(record)

        async with gateway_with(partnership=recorder(partnership_app), training=recorder(training_app)) as client:
            yield client.app, paths

    async def test_percent_encoding_is_kept_where_it_means_data(self, seen, token):
        app, paths = seen
        bearer = [(b"authorization", f"Bearer {token()}".encode())]
        for raw, forwarded in ((b"/api/v1/schools/A%2FB", b"/v1/schools/A%2FB"),
                               (b"/api/v1/schools/A%3FB", b"/v1/schools/A%3FB"),
                               (b"/api/v1/schools/A%23B", b"/v1/schools/A%23B"),
                               (b"/api/v1/schools/%E5%AD%A6", b"/v1/schools/%E5%AD%A6"),
                               (b"/api/v1/schools/%41%2d1", b"/v1/schools/A-1"),
                               (b"/api/v1/schools/a%2eb", b"/v1/schools/a.b")):
            paths.clear()
            response = await asgi_request(app, "GET", raw, headers=bearer)
            assert response.status == 404, raw
            assert paths == [forwarded], raw

    async def test_an_export_forwards_the_normalised_path(self, seen, token):
        # The export used the decoded path: a `%3F` in the studio id turned into a query upstream.
        app, paths = seen
        response = await asgi_request(app, "GET", b"/api/v1/studios/x%3Fy/members", query=b"format=csv",
                                      headers=[(b"authorization", f"Bearer {token()}".encode())])
        assert response.status == 422
        assert paths == [b"/v1/studios/x%3Fy/members"]
