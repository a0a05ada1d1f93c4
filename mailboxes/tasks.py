from __future__ import annotations

from celery import shared_task
from celery.app.task import Task

from mailboxes import services
from mailboxes.models import MailAccount
from mailcore import connect

RETRY_BASE_SECONDS = 30
MAX_RETRIES = 6  # 30 s, 1, 2, 4, 8, 16 minutes: about half an hour of trying


@shared_task(bind=True, name="mailboxes.sync_account", max_retries=MAX_RETRIES)
def sync_account(self: Task, account_id: int) -> None:
    """Sync one account; transient connection failures are retried with exponential backoff."""
    try:
        services.run_sync(account_id)
    except connect.ConnectionFailed as failure:
        raise self.retry(
            exc=failure, countdown=RETRY_BASE_SECONDS * 2**self.request.retries
        ) from failure


@shared_task(name="mailboxes.sync_all_accounts")
def sync_all_accounts() -> None:
    """Every account, one task each: the fallback for IMAP push, the only trigger for POP3."""
    ids = MailAccount.objects.values_list("pk", flat=True)
    for account_id in ids:
        sync_account.delay(account_id)
