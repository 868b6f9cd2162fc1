"""deploy/k8s agrees with the code: commands the CLI knows, ports from Settings, probes on routes the
apps serve, SPP_* names that are Settings fields; and the production overlay renders (kubectl's
kustomize, on the machine image) into objects whose references all resolve."""

import importlib
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from typer.main import get_command

from services.common.cli import app as cli
from services.common.settings import PROCESSES, SERVICES, Settings
from services.common.supervisor import APP_FACTORIES
from tests.conftest import asgi

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "deploy" / "k8s" / "base"
PRODUCTION = ROOT / "deploy" / "k8s" / "overlays" / "production"
DEFAULTS = Settings()
CLI_COMMANDS = set(get_command(cli).commands)
FIELDS = set(Settings.model_fields)
# The job worker arrives with the jobs branch (`spp serve worker`, health and metrics on 8004). Until
# that merge the checks hold it to that contract; afterwards PROCESSES names it and these add nothing.
PENDING_PORTS = {} if "worker" in PROCESSES else {"worker": 8004}
KNOWN = set(PROCESSES) | set(PENDING_PORTS)


def _kustomization(directory: Path) -> dict:
    return yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))


def _base_objects() -> list[dict]:
    objects = []
    for resource in _kustomization(BASE)["resources"]:
        objects += [doc for doc in yaml.safe_load_all((BASE / resource).read_text(encoding="utf-8")) if doc]
    return objects


def _of(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def _container(workload: dict) -> dict:
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    return container


def _port(process: str) -> int:
    return PENDING_PORTS.get(process) or DEFAULTS.port_of(process)


def _variable_ok(name: str) -> bool:
    return name.startswith("SPP_") and name[4:].lower() in FIELDS


def _config_literals(kustomization: dict) -> dict[str, str]:
    (generator,) = [g for g in kustomization["configMapGenerator"] if g["name"] == "spp-config"]
    return dict(literal.split("=", 1) for literal in generator["literals"])


async def _probe_statuses(process: str, settings: Settings) -> dict[str, int]:
    """Statuses of the probe paths on the process's real app (its lifespan run, its database up)."""
    module, factory = APP_FACTORIES[process].split(":")
    app = getattr(importlib.import_module(module), factory)(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=asgi(app), base_url="http://probe") as client:
            return {path: (await client.get(path)).status_code
                    for path in ("/livez", "/readyz", "/metrics", "/no-such-probe")}


def test_a_deployment_per_process_running_a_command_the_cli_knows():
    deployments = _of(_base_objects(), "Deployment")
    assert set(deployments) == KNOWN
    assert "serve" in CLI_COMMANDS and "migrate" in CLI_COMMANDS
    for name, deployment in deployments.items():
        container = _container(deployment)
        assert container["args"] == ["serve", name]
        assert "command" not in container  # the image's ENTRYPOINT is `spp`
        assert container["image"] == "spp"
    (job,) = _of(_base_objects(), "Job").values()
    assert _container(job)["args"] == ["migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_ports_are_the_settings_defaults_and_services_reach_them():
    objects = _base_objects()
    services = _of(objects, "Service")
    assert set(services) == set(PROCESSES) - {"worker"}  # the worker is called by nobody
    for name, deployment in _of(objects, "Deployment").items():
        container = _container(deployment)
        assert container["ports"] == [{"name": "http", "containerPort": _port(name)}]
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations == {"prometheus.io/scrape": "true", "prometheus.io/port": str(_port(name)),
                               "prometheus.io/path": "/metrics"}
        if name in services:
            spec = services[name]["spec"]
            assert spec["ports"] == [{"name": "http", "port": _port(name), "targetPort": "http"}]
            assert spec["selector"] == deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"] == deployment["spec"]["template"]["metadata"]["labels"]


async def test_probes_hit_routes_each_app_serves(settings):
    for name, deployment in _of(_base_objects(), "Deployment").items():
        container = _container(deployment)
        probes = {kind: (container[kind]["httpGet"]["path"], container[kind]["httpGet"]["port"])
                  for kind in ("startupProbe", "readinessProbe", "livenessProbe")}
        assert probes == {"startupProbe": ("/livez", "http"), "readinessProbe": ("/readyz", "http"),
                          "livenessProbe": ("/livez", "http")}
        if name in PENDING_PORTS:
            continue  # no app factory on this branch yet
        statuses = await _probe_statuses(name, settings)
        assert statuses == {"/livez": 200, "/readyz": 200, "/metrics": 200, "/no-such-probe": 404}, name


def test_every_container_has_requests_and_limits_and_runs_unprivileged():
    objects = _base_objects()
    for workload in [*_of(objects, "Deployment").values(), *_of(objects, "Job").values()]:
        container = _container(workload)
        resources = container["resources"]
        assert set(resources) == {"requests", "limits"}
        for bound in resources.values():
            assert set(bound) == {"cpu", "memory"}
        assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                                "capabilities": {"drop": ["ALL"]}}
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001  # the Dockerfile's USER
        assert pod["automountServiceAccountToken"] is False  # frees /run/secrets, and spp needs no API


def test_settings_come_from_the_config_map_and_secret_files():
    objects = _base_objects()
    literals = _config_literals(_kustomization(BASE))
    (secret,) = _of(objects, "Secret").values()
    for name in [*literals, *secret["stringData"]]:
        assert _variable_ok(name), name
    assert not set(literals) & set(secret["stringData"])  # the environment would win over the file
    for upstream in SERVICES:
        assert literals[f"SPP_{upstream.upper()}_URL"] == f"http://{upstream}:{DEFAULTS.port_of(upstream)}"
    # the placeholder secret could never start a production pod
    assert len(secret["stringData"]["SPP_JWT_SECRET"]) < 32
    for workload in [*_of(objects, "Deployment").values(), *_of(objects, "Job").values()]:
        container = _container(workload)
        assert container["envFrom"] == [{"configMapRef": {"name": "spp-config"}}]
        assert "env" not in container
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["secrets"] == {"name": "secrets", "mountPath": Settings.model_config["secrets_dir"],
                                     "readOnly": True}
        volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
        assert volumes["secrets"]["secret"]["secretName"] == secret["metadata"]["name"]


def test_autoscalers_and_disruption_budgets_cover_the_deployments():
    objects = _base_objects()
    deployments = _of(objects, "Deployment")
    autoscalers = _of(objects, "HorizontalPodAutoscaler")
    assert set(autoscalers) == {"gateway", *SERVICES}
    for name, hpa in autoscalers.items():
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert hpa["spec"]["minReplicas"] >= 2  # one pod lost is never the service lost
        assert "replicas" not in deployments[name]["spec"]  # the autoscaler owns the count
    budgets = _of(objects, "PodDisruptionBudget")
    assert set(budgets) == set(deployments)
    for name, budget in budgets.items():
        assert budget["spec"] == {"maxUnavailable": 1, "selector": {
            "matchLabels": deployments[name]["spec"]["template"]["metadata"]["labels"]}}


def test_overlay_patches_name_files_and_objects_that_exist():
    overlay = _kustomization(PRODUCTION)
    assert "../../base" in overlay["resources"]
    names = {(o["kind"], o["metadata"]["name"]) for o in _base_objects()}
    for patch in overlay["patches"]:
        if "path" in patch:
            assert (PRODUCTION / patch["path"]).is_file(), patch["path"]
        target = patch.get("target")
        if target and "name" in target:
            assert any(kind == target["kind"] and re.fullmatch(target["name"], name) for kind, name in names), target
        elif not target:
            doc = yaml.safe_load((PRODUCTION / patch["path"]).read_text(encoding="utf-8"))
            assert (doc["kind"], doc["metadata"]["name"]) in names, patch
    for name in _config_literals(overlay):
        assert _variable_ok(name), name


@pytest.fixture(scope="module")
def production() -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (the machine image ships it)")
    out = subprocess.run([kubectl, "kustomize", str(PRODUCTION)], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def test_production_overlay_renders_with_every_reference_resolved(production):
    overlay = _kustomization(PRODUCTION)
    (image,) = overlay["images"]
    kinds = {}
    for obj in production:
        kinds.setdefault(obj["kind"], set()).add(obj["metadata"]["name"])
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == overlay["namespace"], obj["metadata"]["name"]
    assert kinds["Namespace"] == {overlay["namespace"]}
    assert "Secret" not in kinds  # created out of band; the placeholder never overwrites it
    assert kinds["Deployment"] == KNOWN
    (config_map,) = [o for o in production if o["kind"] == "ConfigMap"]
    assert re.fullmatch(r"spp-config-[a-z0-9]{10}", config_map["metadata"]["name"])  # content hash: rolls pods
    assert all(_variable_ok(name) for name in config_map["data"])
    assert config_map["data"]["SPP_RATE_LIMIT_STORAGE"] == "redis://redis:6379/0"
    Settings(**{name[4:].lower(): value for name, value in config_map["data"].items()},
             jwt_secret="x" * 32)  # every value parses as its field
    for obj in production:
        if obj["kind"] not in ("Deployment", "Job"):
            continue
        container = _container(obj)
        assert container["image"] == f"{image['newName']}:{image['newTag']}"
        assert container["envFrom"] == [{"configMapRef": {"name": config_map["metadata"]["name"]}}]
    for obj in production:
        if obj["kind"] == "HorizontalPodAutoscaler":
            assert obj["spec"]["scaleTargetRef"]["name"] in kinds["Deployment"]
    hpa = {o["metadata"]["name"]: o["spec"] for o in production if o["kind"] == "HorizontalPodAutoscaler"}
    assert (hpa["gateway"]["minReplicas"], hpa["gateway"]["maxReplicas"]) == (3, 12)
    assert {(hpa[s]["minReplicas"], hpa[s]["maxReplicas"]) for s in SERVICES} == {(2, 8)}
