"""The Docker files are honest: docker-compose.yml's structure (images, health checks, depends_on, volumes,
.env values) and every container command parsed by the real `kommandant` command line; the Dockerfile's
CPU-only PyTorch, non-root user, tini and health check. Images cannot be pulled on these machines and
their `docker` has no compose plugin, so no container runs here; `docker compose config` is run too when
the plugin is there."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from typer.testing import CliRunner

from agents import BUILTIN_AGENTS
from assistant.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
OURS = "kommandant:latest"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # resolves the <<: merges
    assert isinstance(loaded, dict)
    return loaded


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def is_ours(service: dict[str, Any]) -> bool:
    return service.get("image") == OURS or "build" in service


def has_healthcheck(service: dict[str, Any]) -> bool:
    check = service.get("healthcheck")
    if check is not None:
        return not check.get("disable", False) and bool(check.get("test"))
    return is_ours(service) and "HEALTHCHECK" in dockerfile()  # the image's own


def test_services_images_dependencies_and_volumes(compose: dict[str, Any]) -> None:
    services: dict[str, dict[str, Any]] = compose["services"]
    for wanted in ("postgres", "rabbitmq", "ollama", "web", "scheduler", "bots", "memory", "connectors"):
        assert wanted in services, wanted
    assert services["postgres"]["image"].startswith("pgvector/pgvector:")
    assert "management" in services["rabbitmq"]["image"]
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        assert "container_name" not in service, f"{name} could not be scaled with --scale"
        for target, rule in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            if rule["condition"] == "service_healthy":
                assert has_healthcheck(services[target]), f"{name} waits for {target}, which has no check"
        for mount in service.get("volumes") or []:
            source = mount.split(":", 1)[0]
            assert source.startswith((".", "/")) or source in declared, f"{name}: undeclared volume {source}"
        if is_ours(service) and name != "migrate":
            assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
            assert service["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
            assert has_healthcheck(service) or name == "scheduler", f"{name} has no health check"
            assert service["env_file"] == ".env"


def test_secrets_come_from_env_and_the_example_names_them(compose: dict[str, Any]) -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    needed = set(re.findall(r"\$\{(\w+)", text))
    example = (ROOT / ".env.example").read_text()
    named = set(re.findall(r"^#?\s*(\w+)=", example, flags=re.M))
    assert needed and needed <= named, needed - named
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASS|SECRET|TOKEN|_KEY", key):
                assert str(value).startswith("${"), f"{name}: {key} is written in the file"
            if key.endswith("_URL") and "@" in str(value):
                assert "${" in str(value), f"{name}: {key} carries a literal password"


def test_every_container_command_is_a_real_kommandant_command(compose: dict[str, Any]) -> None:
    root = typer.main.get_command(app)
    runner = CliRunner()
    ours = {n: s for n, s in compose["services"].items() if is_ours(s)}
    assert len(ours) >= 8
    served: set[str] = set()
    for name, service in ours.items():
        args = list(service.get("command") or ["up", "--host", "0.0.0.0", "--port", "8000"])
        group: Any = root
        path: list[str] = []
        while args and args[0] in getattr(group, "commands", {}):
            path.append(args.pop(0))
            group = group.commands[path[-1]]
        assert path, f"{name}: {service['command']} is no kommandant subcommand"
        shown = runner.invoke(app, [*path, "--help"])
        assert shown.exit_code == 0, (name, shown.output)
        group.make_context(" ".join(path), list(args))  # its options and arguments parse
        if path == ["worker"]:
            assert args and set(args) <= set(BUILTIN_AGENTS), f"{name}: {args}"
            served |= set(args)
    assert served == set(BUILTIN_AGENTS)  # every built-in agent has a worker group


def test_health_check_commands_are_python_that_compiles(compose: dict[str, Any]) -> None:
    checks = [re.search(r'"-c", "(.*)"\]', dockerfile()).group(1)]  # type: ignore[union-attr]
    for service in compose["services"].values():
        test = (service.get("healthcheck") or {}).get("test") or []
        if test[:2] == ["CMD", "python"]:
            checks.append(test[-1])
    assert len(checks) >= 2 and "/healthz" in checks[0]
    for source in checks:
        compile(source, "<healthcheck>", "exec")


def test_dockerfile_cpu_torch_non_root_tini_healthz() -> None:
    text = dockerfile()
    makefile = (ROOT / "Makefile").read_text()
    version = re.search(r"^TORCH_VERSION \?= (\S+)", makefile, flags=re.M)
    assert version is not None
    assert f"ARG TORCH_VERSION={version.group(1)}" in text
    assert "ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu" in text
    assert '--extra-index-url "$TORCH_INDEX" "torch==$TORCH_VERSION"' in text
    assert re.search(r"apt-get install .*\btini\b", text)
    assert 'ENTRYPOINT ["tini", "--", "kommandant"]' in text
    users = re.findall(r"^USER (\S+)", text, flags=re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*\n?.*CMD \[\"python\"", text, flags=re.M)
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".venv/", ".git/", "test-artifacts/", ".env"):
        assert entry in ignored, entry


def test_docker_compose_config_when_the_plugin_is_there(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode:
        pytest.skip("no `docker compose` plugin here; the structure tests above stand in for it")
    env = tmp_path / ".env"
    env.write_text("POSTGRES_PASSWORD=x\nRABBITMQ_PASSWORD=y\n")
    checked = subprocess.run(
        [docker, "compose", "--env-file", str(env), "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert checked.returncode == 0, checked.stderr
