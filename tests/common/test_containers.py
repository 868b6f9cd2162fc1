"""compose.yaml and the Dockerfile agree with the code (Docker itself is not available here)."""

import re
from pathlib import Path

import yaml
from typer.main import get_command

from services.common.cli import app as cli
from services.common.settings import PROCESSES, Settings
from services.common.supervisor import APP_FACTORIES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
DEFAULTS = Settings()
CLI_COMMANDS = set(get_command(cli).commands)


def _services():
    return COMPOSE["services"]


def test_every_process_has_a_service_running_its_own_command():
    for process in PROCESSES:
        service = _services()[process]
        assert service["command"] == ["serve", process]
        assert service["image"] == "spp:latest"
    assert _services()["migrate"]["command"] == ["migrate"]
    assert {"serve", "migrate", "up", "seed", "token"} <= CLI_COMMANDS
    for name, service in _services().items():
        if name != "postgres":
            assert service["command"][0] in CLI_COMMANDS, name


def test_health_checks_hit_readyz_on_each_process_port():
    for process in PROCESSES:
        test = " ".join(_services()[process]["healthcheck"]["test"])
        match = re.search(r"http://127\.0\.0\.1:(\d+)/readyz", test)
        assert match, process
        assert int(match.group(1)) == DEFAULTS.port_of(process)
    assert "pg_isready" in " ".join(_services()["postgres"]["healthcheck"]["test"])


def test_environment_names_are_settings_and_upstream_urls_match_ports():
    fields = set(Settings.model_fields)
    for name, service in _services().items():
        if name == "postgres":
            continue
        for variable in service["environment"]:
            assert variable.startswith("SPP_"), variable
            assert variable[4:].lower() in fields, variable
    env = _services()["gateway"]["environment"]
    for upstream in ("partnership", "rotation", "training"):
        assert env[f"SPP_{upstream.upper()}_URL"] == f"http://{upstream}:{DEFAULTS.port_of(upstream)}"
    database = env["SPP_DATABASE_URL"]
    postgres_env = _services()["postgres"]["environment"]
    assert database == (f"postgresql://{postgres_env['POSTGRES_USER']}:{postgres_env['POSTGRES_PASSWORD']}"
                        f"@postgres:5432/{postgres_env['POSTGRES_DB']}")


def test_start_order_follows_health():
    assert _services()["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for process in ("partnership", "rotation", "training", "worker"):
        assert _services()[process]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    # The worker's jobs call partnership and rotation (references a file names indirectly).
    assert {"partnership", "rotation"} <= set(_services()["worker"]["depends_on"])
    assert _services()["gateway"]["depends_on"] == {
        p: {"condition": "service_healthy"} for p in ("partnership", "rotation", "training")}
    assert _services()["gateway"]["ports"] == [f"{DEFAULTS.gateway_port}:{DEFAULTS.gateway_port}"]


def test_dockerfile_runs_spp_as_non_root_and_exposes_the_ports():
    assert re.search(r"^USER\s+(?!root|0\b)\S+", DOCKERFILE, re.M)
    exposed = {int(p) for p in re.search(r"^EXPOSE\s+(.+)$", DOCKERFILE, re.M).group(1).split()}
    assert exposed == {DEFAULTS.port_of(p) for p in PROCESSES}
    assert 'ENTRYPOINT ["spp"]' in DOCKERFILE
    assert "SPP_HOST=0.0.0.0" in DOCKERFILE
    for source in ("services", "gateway", "migrations"):
        assert f"COPY {source} ./{source}" in DOCKERFILE
    assert set(APP_FACTORIES) == set(PROCESSES)


def test_the_compose_database_has_the_embedded_servers_settings():
    """The server settings imports are sized for (services/common/embedded.py) in both places."""
    from services.common.embedded import server_settings

    command = _services()["postgres"]["command"]
    assert command[0] == "postgres" and command[1::2] == ["-c"] * (len(command) // 2)
    assert dict(option.split("=", 1) for option in command[2::2]) == server_settings(memory_bytes=8 * 2**30)


def test_the_embedded_servers_shared_buffers_follow_the_memory():
    from services.common.embedded import server_settings

    assert [server_settings(memory_bytes=gib * 2**30)["shared_buffers"] for gib in (0.25, 2, 4, 64)] == [
        "128MB", "512MB", "1024MB", "1024MB"]
