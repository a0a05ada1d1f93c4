from __future__ import annotations

from celery import shared_task

from compose import drafts, sending


@shared_task(name="compose.send_draft")
def send_draft(draft_id: int) -> None:
    """One attempt at sending (compose.sending): claims the row, so a duplicate task is harmless."""
    sending.send(draft_id)


@shared_task(name="compose.send_due")
def send_due() -> None:
    """The scheduler's pass: what is due, what a killed worker abandoned, what is not filed."""
    for draft_id in sending.due_ids():
        send_draft.delay(draft_id)
    drafts.forget_empty_drafts()


@shared_task(name="compose.save_draft_on_server")
def save_draft_on_server(draft_id: int) -> None:
    """Put the latest version of a draft in the account's IMAP Drafts folder."""
    drafts.push_to_server(draft_id)
