"""The product on embedded defaults: web, worker and scheduler from the Procfile, no services.

This is what `make run` starts. With SQLite and kombu's filesystem transport only, the scheduler
must enqueue the heartbeat, a worker must run it, and the web server must report it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEADLINE_SECONDS = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str) -> dict[str, object] | None:
    """The JSON body, also of a 503; None while nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 -- loopback URL
            return json.load(response)
    except urllib.error.HTTPError as error:
        return json.load(error)
    except OSError:
        return None


@pytest.fixture
def embedded_environ(tmp_path: Path) -> dict[str, str]:
    """A bare environment: no DATABASE_URL, no REDIS_URL, a fresh data directory."""
    bin_dir = str(Path(sys.executable).parent)
    return {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "DATA_DIR": str(tmp_path / "data"),
        "HEARTBEAT_INTERVAL": "1",
        "COURRIER_PORT": str(free_port()),
    }


@pytest.fixture
def running_product(
    embedded_environ: dict[str, str], tmp_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
        cwd=REPO,
        env=embedded_environ,
        check=True,
    )
    log = tmp_path / "honcho.log"
    honcho = subprocess.Popen(
        [str(Path(sys.executable).parent / "honcho"), "start", "--procfile", "Procfile"],
        cwd=REPO,
        env=embedded_environ,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield honcho
    finally:
        if process_group_alive(honcho.pid):
            os.killpg(honcho.pid, signal.SIGKILL)
        honcho.wait()
        print(log.read_text(errors="replace")[-20000:])  # pytest shows it when the test fails


def test_the_scheduler_worker_and_web_server_work_together_without_services(
    running_product: subprocess.Popen[bytes], embedded_environ: dict[str, str]
) -> None:
    base_url = f"http://127.0.0.1:{embedded_environ['COURRIER_PORT']}"
    deadline = time.monotonic() + DEADLINE_SECONDS
    health = None
    while time.monotonic() < deadline and running_product.poll() is None:
        health = get_json(f"{base_url}/healthz")
        if health and health["worker_last_seen"]:
            break
        time.sleep(0.5)
    assert health is not None, "the web server never answered"
    assert health["database"] == "ok"
    assert health["broker"] == "ok"
    assert health["worker_last_seen"], "no worker ran the scheduled heartbeat"
    data_dir = Path(embedded_environ["DATA_DIR"])
    assert (data_dir / "courrier.db").exists()
    assert (data_dir / "broker" / "queue").is_dir()
    with urllib.request.urlopen(f"{base_url}/accounts/login/", timeout=5) as response:  # noqa: S310
        assert response.status == 200

    # One Ctrl-C (SIGINT to the terminal's process group) stops all three processes.
    os.killpg(running_product.pid, signal.SIGINT)
    running_product.wait(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and process_group_alive(running_product.pid):
        time.sleep(0.1)
    assert not process_group_alive(running_product.pid)


def process_group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
