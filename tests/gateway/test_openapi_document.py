"""The merged OpenAPI document is valid and a client generator can use it: chosen camelCase
operationIds, a description on every operation, documented headers, formats and problem answers,
and a typed client generated from it works against the gateway."""

from __future__ import annotations

import asyncio
import importlib
import json
import re
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from gateway.exports import XLSX, is_exportable
from gateway.openapi_catalog import OPERATIONS, TAGS
from tests.conftest import asgi, fetch
from tests.gateway.test_openapi_examples import _has_example, _operations


@pytest.fixture
async def document(gateway) -> dict[str, Any]:
    response = await gateway.get("/api/v1/openapi.json")
    assert response.status_code == 200
    body = response.json()
    assert "x-spp-missing" not in body
    return body


def _parameters(document: dict[str, Any], operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The operation's parameters by (lowercased) name, `$ref`s resolved."""
    found = {}
    for parameter in operation.get("parameters", []):
        if "$ref" in parameter:
            parameter = document["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[1]]
        found[parameter["name"].lower()] = parameter
    return found


async def test_document_is_valid_openapi(document):
    validate(document)  # raises on the first error
    assert document["openapi"].startswith("3.1")


async def test_operation_ids_are_chosen_camel_case_and_unique(document):
    ids = {f"{method.upper()} {path}": op.get("operationId") for path, method, op in _operations(document)}
    assert len(ids) >= 70
    # Every public operation has its entry in the catalog, and every entry names a public operation.
    assert sorted(set(ids) - set(OPERATIONS)) == []
    assert sorted(set(OPERATIONS) - set(ids)) == []
    assert [i for i in ids.values() if not re.fullmatch(r"[a-z]+(?:[A-Z][a-z]+)+", i or "")] == []
    assert len(set(ids.values())) == len(ids)
    assert ids["GET /api/v1/schools"] == "listSchools"
    assert ids["GET /api/v1/schools/{code}"] == "getSchool"
    assert ids["POST /api/v1/schools"] == "createSchool"
    assert ids["PATCH /api/v1/schools/{code}"] == "updateSchool"
    assert ids["GET /api/v1/districts/{code}/overview"] == "getDistrictOverview"
    assert ids["POST /api/v1/pairings/{pairing_id}/activate"] == "activatePairing"
    assert ids["POST /api/v1/imports/training-hours"] == "importTrainingHours"


async def test_every_operation_and_tag_is_described(document):
    undescribed = [f"{method.upper()} {path}" for path, method, op in _operations(document)
                   if not op.get("description") or not op.get("summary")]
    assert undescribed == []
    for _, _, op in _operations(document):
        assert "**Who may call:**" in op["description"]
        assert "urn:spp:problem:" in op["description"]
    overview = document["paths"]["/api/v1/districts/{code}/overview"]["get"]["description"]
    assert "- 404 `urn:spp:problem:district-not-found`" in overview
    assert "- 429 `urn:spp:problem:rate-limited`" in overview
    used = {tag for _, _, op in _operations(document) for tag in op.get("tags", [])}
    described = {t["name"] for t in document["tags"] if t.get("description")}
    assert used - described == set()
    assert {t["name"] for t in document["tags"]} == set(TAGS)


async def test_no_text_points_at_repository_files(document):
    text = json.dumps(document, ensure_ascii=False)
    assert [word for word in ("design.md", "api.md", ".py") if word in text] == []


async def test_every_request_body_has_an_example(document):
    missing = [f"{method.upper()} {path}" for path, method, op in _operations(document)
               if "requestBody" in op and not _has_example(document, op["requestBody"])]
    assert missing == []


GATEWAY_OWN_POSTS = {"/api/v1/oauth/token", "/api/v1/integration-clients", "/api/v1/districts/{code}/balance/what-if"}


async def test_request_headers_are_documented(document):
    problems = []
    for path, method, op in _operations(document):
        name, params = f"{method.upper()} {path}", _parameters(document, op)
        for header in ("x-request-id", "accept-language"):
            if header not in params or params[header]["in"] != "header":
                problems.append(f"{name}: {header}")
        if method == "post" and path not in GATEWAY_OWN_POSTS and "idempotency-key" not in params:
            problems.append(f"{name}: Idempotency-Key")
        if method in ("put", "patch") and "if-match" not in params:
            problems.append(f"{name}: If-Match")
        if method == "get" and "304" in op["responses"] and "if-none-match" not in params:
            problems.append(f"{name}: If-None-Match")
    assert problems == []
    # The single resources answer 304 to If-None-Match.
    for path in ("/api/v1/districts/{code}", "/api/v1/schools/{code}", "/api/v1/pairings/{pairing_id}",
                 "/api/v1/staff/{staff_id}", "/api/v1/rotations/{rotation_id}", "/api/v1/studios/{studio_id}",
                 "/api/v1/sessions/{session_id}", "/api/v1/training-hours/{credit_id}"):
        assert "if-none-match" in _parameters(document, document["paths"][path]["get"]), path


async def test_response_headers_and_problem_answers_are_documented(document):
    headers = document["components"]["headers"]
    assert set(headers) >= {"XRequestId", "ETag", "Location", "RetryAfter"}
    problems = []
    for path, method, op in _operations(document):
        name, responses = f"{method.upper()} {path}", op["responses"]
        for status in ("429", "503"):
            if "Retry-After" not in responses.get(status, {}).get("headers", {}):
                problems.append(f"{name}: {status} Retry-After")
        if "requestBody" in op and "413" not in responses:
            problems.append(f"{name}: 413")
        for status, response in responses.items():
            if "X-Request-ID" not in response.get("headers", {}):
                problems.append(f"{name}: {status} X-Request-ID")
            if status in ("201", "202") and "Location" not in response["headers"]:
                problems.append(f"{name}: {status} Location")
        single = "304" in responses or "if-match" in _parameters(document, op)
        if single and "ETag" not in responses["200"]["headers"]:
            problems.append(f"{name}: ETag")
    assert problems == []
    school = document["paths"]["/api/v1/schools/{code}"]
    assert school["get"]["responses"]["200"]["headers"]["ETag"] == {"$ref": "#/components/headers/ETag"}
    assert school["patch"]["responses"]["200"]["headers"]["ETag"] == {"$ref": "#/components/headers/ETag"}
    imports = document["paths"]["/api/v1/imports/schools"]["post"]["responses"]
    assert imports["202"]["headers"]["Location"] == {"$ref": "#/components/headers/Location"}
    assert "413" in imports


async def test_exportable_lists_document_their_formats(document):
    exportable = [(path, item["get"]) for path, item in document["paths"].items()
                  if "get" in item and is_exportable(path.removeprefix("/api/v1"))]
    assert sorted(path for path, _ in exportable) == [
        "/api/v1/activities", "/api/v1/pairings", "/api/v1/rotations", "/api/v1/schools", "/api/v1/staff",
        "/api/v1/studios/{studio_id}/members"]
    for path, op in [*exportable, ("overview", document["paths"]["/api/v1/districts/{code}/overview"]["get"])]:
        assert _parameters(document, op)["format"]["schema"]["enum"] == ["csv", "xlsx"], path
        assert {"application/json", "text/csv", XLSX} <= set(op["responses"]["200"]["content"]), path


async def test_changes_names_its_service_parameter(document):
    service = _parameters(document, document["paths"]["/api/v1/changes"]["get"])["service"]
    assert service["in"] == "query"
    assert service["required"] is True
    assert service["schema"]["enum"] == ["partnership", "rotation", "training"]


# A typed client generated from the document -------------------------------------------------------

GENERATOR_CONFIG = """\
package_name_override: {package}
post_hooks: []
content_type_overrides:
  text/csv: application/octet-stream
"""


async def _generate(document: dict[str, Any], where: Path, package: str) -> None:
    (where / "openapi.json").write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    (where / "config.yaml").write_text(GENERATOR_CONFIG.format(package=package), encoding="utf-8")
    generator = Path(sys.executable).with_name("openapi-python-client")
    process = await asyncio.create_subprocess_exec(
        str(generator), "generate", "--path", str(where / "openapi.json"), "--meta", "none",
        "--config", str(where / "config.yaml"), "--output-path", str(where / package),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, output.decode()
    assert b"WARNING" not in output, output.decode()  # every operation and model was generated


async def test_generated_client_calls_the_gateway(document, gateway_app, token, db_engine, tmp_path):
    package = f"spp_client_{uuid.uuid4().hex[:8]}"
    await _generate(document, tmp_path, package)
    sys.path.insert(0, str(tmp_path))
    try:
        client_module = importlib.import_module(f"{package}.client")
        create_district = importlib.import_module(f"{package}.api.districts.create_district")
        get_district = importlib.import_module(f"{package}.api.districts.get_district")
        list_districts = importlib.import_module(f"{package}.api.districts.list_districts")
        overview = importlib.import_module(f"{package}.api.views.get_district_overview")
        models = importlib.import_module(f"{package}.models")

        client = client_module.AuthenticatedClient(base_url="http://gateway", token=token())
        client.set_async_httpx_client(httpx.AsyncClient(
            transport=asgi(gateway_app), base_url="http://gateway",
            headers={"Authorization": f"Bearer {token()}", "Accept-Language": "en"}, timeout=30))
        async with client:
            created = await create_district.asyncio_detailed(
                client=client, body=models.DistrictCreate(code="110105", name="朝阳区"),
                idempotency_key="create-chaoyang", x_request_id="client-test-1")
            assert created.status_code == 201
            assert created.headers["location"] == "/api/v1/districts/110105"
            assert created.headers["x-request-id"] == "client-test-1"
            assert isinstance(created.parsed, models.DistrictRead)
            assert (created.parsed.code, created.parsed.name) == ("110105", "朝阳区")

            read = await get_district.asyncio_detailed(client=client, code="110105")
            assert read.status_code == 200
            assert read.headers["etag"] == '"v1"'
            assert (read.parsed.code, read.parsed.name) == ("110105", "朝阳区")

            page = await list_districts.asyncio(client=client)
            assert isinstance(page, models.PageDistrictRead)
            assert [(d.code, d.name) for d in page.items] == [("110105", "朝阳区")]

            answer = await overview.asyncio(client=client, code="110105", as_of="2025-03-01")
            assert isinstance(answer, models.DistrictOverview)
            assert (answer.district.code, answer.district.name) == ("110105", "朝阳区")
            assert answer.partnership.township_rural_schools == 0
            assert answer.degraded == []

            missing = await get_district.asyncio_detailed(client=client, code="110119")
            assert missing.status_code == 404
            assert isinstance(missing.parsed, models.Problem)
            assert missing.parsed.type_ == "urn:spp:problem:district-not-found"
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == package or m.startswith(f"{package}.")]:
            del sys.modules[name]
    assert await fetch(db_engine, "select code, name, version from partnership.districts") == [
        {"code": "110105", "name": "朝阳区", "version": 1}]
