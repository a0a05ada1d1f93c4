"""compose.yaml and the Dockerfile, checked without a Docker engine (there is none here)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
APP_SERVICES = {"migrate", "web", "worker", "scheduler", "push"}


@pytest.fixture(scope="module")
def compose_config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """`docker-compose config` of compose.yaml with .env.example as its .env."""
    folder = tmp_path_factory.mktemp("compose")
    shutil.copy(REPO / "compose.yaml", folder)
    env = (REPO / ".env.example").read_text().replace("POSTGRES_PASSWORD=", "POSTGRES_PASSWORD=pw")
    (folder / ".env").write_text(env)
    result = subprocess.run(
        ["docker-compose", "--file", str(folder / "compose.yaml"), "config"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_runs_web_worker_scheduler_push_postgresql_and_redis(
    compose_config: dict[str, object],
) -> None:
    services = compose_config["services"]
    assert set(services) == APP_SERVICES | {"db", "redis"}
    for name in ("web", "worker", "db", "redis"):
        assert "healthcheck" in services[name], name
    for name in APP_SERVICES:
        service = services[name]
        assert service["environment"]["COURRIER_MODE"] == "production"
        assert service["environment"]["DATABASE_URL"].startswith("postgres://courrier:pw@db:")
        assert service["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    for name in ("web", "worker", "scheduler", "push", "db", "redis"):
        assert services[name]["restart"] == "unless-stopped"
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    # Published on loopback only: a TLS reverse proxy goes in front.
    assert services["web"]["ports"] == ["127.0.0.1:8000:8000/tcp"]
    assert set(compose_config["volumes"]) == {"data", "pgdata", "redisdata"}


def test_compose_refuses_to_start_without_a_database_password(tmp_path: Path) -> None:
    shutil.copy(REPO / "compose.yaml", tmp_path)
    (tmp_path / ".env").write_text("")
    result = subprocess.run(
        ["docker-compose", "--file", str(tmp_path / "compose.yaml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "set POSTGRES_PASSWORD" in result.stderr


def test_the_image_runs_as_a_non_root_user() -> None:
    instructions = [
        line.split(maxsplit=1)
        for line in (REPO / "Dockerfile").read_text().splitlines()
        if line and not line.startswith((" ", "#"))
    ]
    users = [argument for keyword, argument in instructions if keyword == "USER"]
    assert users == ["courrier"]
    # USER comes after every RUN, so nothing at run time is root.
    keywords = [keyword for keyword, _ in instructions]
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")
