"""`manage.py demo`, run by `make run`: a live demo on the local mail stack."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client, override_settings

from accounts.models import User
from mailboxes.models import MailAccount, Message
from tests.conftest import sign_in
from tests.mailstack import MailStack

pytestmark = [pytest.mark.django_db, pytest.mark.mailstack]


def test_the_demo_fills_a_mailbox_and_creates_two_users(
    mailstack: MailStack, tmp_path: Path
) -> None:
    mailstack.clear_mailbox("demo@courrier.test")
    mailstack.clear_mailbox("demo2@courrier.test")
    out = io.StringIO()
    with override_settings(DATA_DIR=tmp_path):
        call_command("demo", "--messages", "40", stdout=out)
    assert "Demo ready at http://127.0.0.1:8000/" in out.getvalue()
    assert (tmp_path / "mail-ca.pem").read_bytes() == mailstack.ca_file.read_bytes()

    demo = User.objects.get(email="demo@courrier.test")
    assert MailAccount.objects.filter(user=demo).count() == 1
    assert Message.objects.filter(folder__account__user=demo).count() == 40
    assert User.objects.filter(email="demo2@courrier.test").exists()
    assert sign_in(Client(), "demo@courrier.test", "courrier-demo-2026")["Location"] == "/"

    # Running it again (every `make run` does) changes nothing.
    with override_settings(DATA_DIR=tmp_path):
        call_command("demo", "--messages", "40", stdout=io.StringIO())
    assert Message.objects.filter(folder__account__user=demo).count() == 40
    assert User.objects.filter(email__startswith="demo").count() == 2


def test_the_demo_refuses_production(mailstack: MailStack) -> None:
    from django.core.management import CommandError

    with override_settings(PRODUCTION=True), pytest.raises(CommandError, match="production"):
        call_command("demo", stdout=io.StringIO())
