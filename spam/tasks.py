from __future__ import annotations

from celery import shared_task

from accounts.models import User
from spam import pipeline


@shared_task(name="spam.rebuild_classifier")
def rebuild_classifier(user_id: int) -> None:
    """Rebuild one user's classifier from their Junk and Inbox (idempotent)."""
    user = User.objects.filter(pk=user_id).first()
    if user is not None:
        pipeline.rebuild_classifier(user)
