from __future__ import annotations

from celery import shared_task

from mail import services


@shared_task(name="mail.wake_snoozed")
def wake_snoozed() -> None:
    """Snoozed conversations whose time came back to the Inbox; old undo entries forgotten."""
    services.wake_snoozed()
    services.forget_old_undos()
