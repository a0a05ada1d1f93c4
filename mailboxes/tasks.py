from __future__ import annotations

import logging

from celery import shared_task
from celery.app.task import Task
from django.db import transaction

from mailboxes import indexing, live, rawstore, services
from mailboxes.models import MailAccount
from mailcore import connect

logger = logging.getLogger(__name__)

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
    # Also after a pass that stored nothing: an index run killed earlier left rows behind.
    account = MailAccount.objects.filter(pk=account_id).first()
    if account is not None and indexing.pending(account):
        transaction.on_commit(lambda: index_account.delay(account_id))


@shared_task(name="mailboxes.index_account")
def index_account(account_id: int) -> None:
    """Parse the bodies of what the sync stored (mailboxes.indexing)."""
    account = MailAccount.objects.filter(pk=account_id).first()
    if account is not None and indexing.index_account(account).indexed:
        live.bump(account.user_id)  # snippets and attachment marks to show


@shared_task(name="mailboxes.sync_all_accounts")
def sync_all_accounts() -> None:
    """Every account, one task each: the fallback for IMAP push, the only trigger for POP3."""
    ids = MailAccount.objects.values_list("pk", flat=True)
    for account_id in ids:
        sync_account.delay(account_id)


@shared_task(name="mailboxes.collect_orphan_files")
def collect_orphan_files() -> int:
    """Remove raw message files that no row names any more (mailboxes.rawstore)."""
    removed = rawstore.collect_orphans()
    if removed:
        logger.info("removed %d orphan message files", len(removed))
    return len(removed)
