"""docker-compose.yml (no Docker engine here): parsed and checked for services, commands,
health checks, configuration from .env and the absence of hard-coded secrets."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|FERNET|API_KEY|KEY_ID", re.IGNORECASE)
REFERENCE = re.compile(r"^\$\{[A-Z0-9_]+(:?[-?][^}]*)?\}$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    return {k: str(v) for k, v in env.items()}


def test_compose_when_parsed_then_every_component_present(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in (
        "postgres", "airflow-init", "airflow-apiserver", "airflow-scheduler",
        "airflow-dag-processor", "airflow-triggerer", "sidecar",
    ):
        assert name in services, name
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["profiles"] == ["celery"]
    assert services["airflow-worker"]["profiles"] == ["celery"]
    assert services["airflow-worker"]["command"][:3] == ["airflow", "celery", "worker"]


def test_compose_when_parsed_then_commands_and_health_checks_set(compose: dict[str, Any]) -> None:
    services = compose["services"]
    expected = {
        "airflow-apiserver": ["airflow", "api-server"],
        "airflow-scheduler": ["airflow", "scheduler"],
        "airflow-dag-processor": ["airflow", "dag-processor"],
        "airflow-triggerer": ["airflow", "triggerer"],
        "sidecar": ["quant", "sidecar"],
    }
    for name, prefix in expected.items():
        assert services[name]["command"][: len(prefix)] == prefix, name
        assert "healthcheck" in services[name], name
        assert services[name]["depends_on"]["airflow-init"]["condition"] == (
            "service_completed_successfully"
        )
    assert "healthcheck" in services["postgres"]
    init = " ".join(services["airflow-init"]["command"])
    assert "quant db migrate" in init and "airflow db migrate" in init


def test_compose_when_parsed_then_airflow_image_built_from_pinned_requirements(
    compose: dict[str, Any],
) -> None:
    build = compose["services"]["airflow-scheduler"]["build"]
    dockerfile = build["dockerfile_inline"]
    airflow_pin = re.search(r"^apache-airflow==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert airflow_pin is not None
    assert f"FROM apache/airflow:{airflow_pin.group(1)}-python3.11" in dockerfile
    assert "requirements.txt" in dockerfile
    env = _env(compose["services"]["airflow-scheduler"])
    assert env["AIRFLOW__CORE__EXECUTOR"] == "${AIRFLOW_EXECUTOR:-LocalExecutor}"
    assert env["QUANT_TRADING_MODE"] == "${QUANT_TRADING_MODE:-paper}"


def test_compose_when_parsed_then_no_secret_hard_coded(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for key, value in _env(service).items():
            if SECRET_NAME.search(key) and not value.startswith("/run/secrets/"):
                assert REFERENCE.match(value), f"{name}: {key} must come from .env, not {value!r}"
            literal = re.sub(r"\$\{[^}]*\}", "", value)
            assert not re.search(r"://[^/@]*:[^/@]+@", literal), f"{name}: {key} embeds a password"
    assert compose["secrets"]["airflow_passwords"] == {"environment": "AIRFLOW_ADMIN_PASSWORDS_JSON"}


def test_compose_when_ports_published_then_only_on_loopback(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_env_example_when_read_then_covers_every_variable_and_holds_no_secret(
    compose: dict[str, Any],
) -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", text))
    example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert required <= set(example), required - set(example)
    for key, value in example.items():
        if SECRET_NAME.search(key) and value:
            assert "CHANGE_ME" in value or key == "POSTGRES_USER", f"{key} holds a value"
