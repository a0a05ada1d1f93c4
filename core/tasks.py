from __future__ import annotations

from celery import shared_task

from core import services


@shared_task(name="core.tasks.record_heartbeat")
def record_heartbeat() -> None:
    """Scheduled by beat and run by a worker: proves the scheduler → broker → worker path works."""
    services.record_heartbeat("worker")
