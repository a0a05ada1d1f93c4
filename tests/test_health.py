"""/healthz reports the database and the broker, which compose uses as the web health check."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from core import tasks
from core.models import Heartbeat

pytestmark = pytest.mark.django_db


def test_healthz_is_ok_when_postgresql_and_redis_answer(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "broker": "ok",
        "worker_last_seen": None,
    }
    assert "no-cache" in response["Cache-Control"]


@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0")
def test_healthz_fails_when_the_broker_is_unreachable(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["database"] == "ok"
    assert body["broker"].startswith("error: ")


def test_healthz_shows_when_a_worker_last_ran_the_heartbeat_task(client: Client) -> None:
    tasks.record_heartbeat.delay()
    beat = Heartbeat.objects.get(name="worker")
    assert client.get("/healthz").json()["worker_last_seen"] == beat.seen_at.isoformat()


def test_healthz_accepts_only_get(client: Client) -> None:
    assert client.post("/healthz").status_code == 405


def test_healthz_answers_probes_whatever_their_host_header(client: Client) -> None:
    response = client.get("/healthz", headers={"host": "10.1.2.3:8000"})
    assert response.status_code == 200
    # The same unknown host is refused everywhere else.
    assert client.get("/accounts/login/", headers={"host": "10.1.2.3:8000"}).status_code == 400


def test_healthz_needs_no_sign_in_and_sets_no_session(client: Client) -> None:
    response = client.get("/healthz")
    assert "sessionid" not in response.cookies
