"""Every public operation in the merged OpenAPI document shows an example, and every example a
model declares is one the model itself accepts."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pytest
from pydantic import BaseModel

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

SCHEMA_MODULES = (
    "services.partnership.schemas",
    "services.rotation.schemas",
    "services.training.schemas",
    "gateway.views.schemas",
    "gateway.clients_registry",
    "gateway.oauth",
)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _has_example(document: dict[str, Any], node: Any, seen: set[str] | None = None) -> bool:
    """An `example` or a non-empty `examples` anywhere under `node`, following `$ref`s once each."""
    seen = set() if seen is None else seen
    if isinstance(node, list):
        return any(_has_example(document, item, seen) for item in node)
    if not isinstance(node, dict):
        return False
    if "example" in node or node.get("examples"):
        return True
    ref = node.get("$ref")
    if isinstance(ref, str) and ref not in seen:
        seen.add(ref)
        if _has_example(document, _resolve(document, ref), seen):
            return True
    return any(_has_example(document, value, seen) for key, value in node.items() if key != "$ref")


def _operations(document: dict[str, Any]):
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


async def test_every_operation_has_examples(gateway):
    response = await gateway.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert "x-spp-missing" not in document
    operations = list(_operations(document))
    assert len(operations) >= 60

    missing: list[str] = []
    for path, method, operation in operations:
        name = f"{method.upper()} {path}"
        success = {code: r for code, r in operation.get("responses", {}).items() if str(code).startswith("2")}
        if not success:
            missing.append(f"{name}: no 2xx response")
        elif not any(_has_example(document, r) for r in success.values()):
            missing.append(f"{name}: 2xx response")
        if "requestBody" in operation and not _has_example(document, operation["requestBody"]):
            missing.append(f"{name}: request body")
    assert missing == [], "\n".join(missing)


def _models_with_examples() -> list[type[BaseModel]]:
    from services.common.imports import ImportReport
    from services.common.outbox import Change, ChangePage

    found: dict[str, type[BaseModel]] = {}
    for module_name in SCHEMA_MODULES:
        module = importlib.import_module(module_name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseModel) and obj.__module__ == module_name:
                found[f"{module_name}.{obj.__qualname__}"] = obj
    for model in (ImportReport, Change, ChangePage):
        found[f"{model.__module__}.{model.__qualname__}"] = model
    return [m for _, m in sorted(found.items()) if _declared_examples(m)]


def _declared_examples(model: type[BaseModel]) -> list[Any]:
    extra = model.model_config.get("json_schema_extra")
    if isinstance(extra, dict):
        return list(extra.get("examples") or [])
    return []


MODELS = _models_with_examples()


def test_models_declare_examples():
    # The response and request models of the public API; a regression guard on the list below.
    names = {m.__name__ for m in MODELS}
    expected = {
        "DistrictRead", "DistrictCreate", "DistrictUpdate", "SchoolRead", "SchoolCreate", "SchoolUpdate",
        "PairingRead", "PairingCreate", "ActivityRead", "ActivityCreate",
        "StaffRead", "StaffCreate", "StaffUpdate", "PolicyRead", "PolicyWrite", "RotationRead", "RotationCreate",
        "RotationUpdate", "TransitionRead", "TransitionRequest", "PlanRead", "PlanCreate", "PlanAddRotation",
        "StudioRead", "StudioCreate", "MembershipRead", "MembershipCreate", "MembershipLeave", "SessionRead",
        "SessionCreate", "SessionUpdate", "AttendanceRead", "AttendanceUpdate", "TrainingHoursRead",
        "TrainingHoursCreate", "TrainingSummary",
        "DistrictOverview", "CityOverview", "DistrictBalance", "WhatIfRequest", "WhatIfAnswer",
        "StaffProfile", "SchoolProfile", "ImportReport", "Change", "ChangePage",
        "IntegrationClientRead", "IntegrationClientCreated", "IntegrationClientCreate", "TokenResponse",
    }
    assert expected - names == set()


@pytest.mark.parametrize("model", MODELS, ids=lambda m: f"{m.__module__}.{m.__name__}")
def test_declared_examples_validate(model: type[BaseModel]):
    examples = _declared_examples(model)
    assert examples, model.__name__
    for example in examples:
        parsed = model.model_validate(example)  # raises when the example does not fit its model
        assert set(parsed.model_fields_set) == set(example) & set(model.model_fields)


async def test_every_request_media_type_has_an_example(gateway):
    # A client generator or a reader picks one media type; each must show what to send (an import's
    # JSON rows as well as its CSV file).
    document = (await gateway.get("/api/v1/openapi.json")).json()
    missing = [f"{method.upper()} {path} {media_type}"
               for path, method, operation in _operations(document)
               for media_type, content in operation.get("requestBody", {}).get("content", {}).items()
               if not _has_example(document, content)]
    assert missing == []
    schools = document["paths"]["/api/v1/imports/schools"]["post"]["requestBody"]["content"]
    assert schools["application/json"]["example"] == [
        {"学校代码": "11010501", "学校名称": "北京市朝阳区实验小学", "区县代码": "110105", "学段": "小学",
         "城乡类别": "城区", "小学在校生数": "1200"}]
    staff = document["paths"]["/api/v1/imports/staff"]["post"]["requestBody"]["content"]
    assert "退休日期" not in staff["application/json"]["example"][0]  # an empty cell is an absent field
