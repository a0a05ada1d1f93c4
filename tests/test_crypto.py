"""Mail passwords are encrypted at rest with ENCRYPTION_KEYS, and the keys can be rotated."""

from __future__ import annotations

import base64
import io

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.test import override_settings

from accounts.models import User
from core import crypto
from mailboxes.models import MailAccount

pytestmark = pytest.mark.django_db
OLD_KEY = base64.urlsafe_b64encode(b"o" * 32).decode()
NEW_KEY = base64.urlsafe_b64encode(b"n" * 32).decode()
SECRET = "s3cret mail password"


def stored(account: MailAccount, column: str = "password") -> str:
    """The column as the database holds it, bypassing the field's decryption."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM mailboxes_mailaccount WHERE id = %s",  # noqa: S608 -- fixed names
            [account.pk],
        )
        return cursor.fetchone()[0]


def new_account(user: User, password: str = SECRET) -> MailAccount:
    return MailAccount.objects.create(
        user=user,
        email="alice@courrier.test",
        incoming_host="mail.courrier.test",
        username="alice@courrier.test",
        password=password,
        smtp_host="mail.courrier.test",
    )


def test_the_password_is_stored_encrypted_and_read_back_in_clear(alice: User) -> None:
    account = new_account(alice)
    raw = stored(account)
    assert SECRET not in raw
    assert raw.startswith("gAAAA")  # a Fernet token
    assert MailAccount.objects.get(pk=account.pk).password == SECRET


def test_an_empty_smtp_password_stays_empty(alice: User) -> None:
    account = new_account(alice)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT smtp_password FROM mailboxes_mailaccount WHERE id = %s", [account.pk]
        )
        assert cursor.fetchone()[0] == ""


def test_rotation_re_encrypts_every_secret_with_the_new_key(alice: User) -> None:
    with override_settings(ENCRYPTION_KEYS=[OLD_KEY]):
        account = new_account(alice)
    with override_settings(ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        # Readable during the transition, before any rotation.
        assert MailAccount.objects.get(pk=account.pk).password == SECRET
        out = io.StringIO()
        call_command("rotate_encryption_keys", stdout=out)
        assert "mailboxes.MailAccount.password: 1 re-encrypted" in out.getvalue()
    with override_settings(ENCRYPTION_KEYS=[NEW_KEY]):
        assert MailAccount.objects.get(pk=account.pk).password == SECRET


def test_a_secret_without_its_key_fails_loudly(alice: User) -> None:
    with override_settings(ENCRYPTION_KEYS=[OLD_KEY]):
        account = new_account(alice)
    with override_settings(ENCRYPTION_KEYS=[NEW_KEY]), pytest.raises(crypto.DecryptionError):
        MailAccount.objects.get(pk=account.pk)


def test_plain_connections_need_the_insecure_opt_in(alice: User) -> None:
    with transaction.atomic(), pytest.raises(IntegrityError):
        MailAccount.objects.create(
            user=alice,
            email="alice@courrier.test",
            incoming_host="mail.courrier.test",
            incoming_security="plain",
            username="alice",
            password=SECRET,
            smtp_host="mail.courrier.test",
        )
    account = MailAccount.objects.create(
        user=alice,
        email="alice@courrier.test",
        incoming_host="mail.courrier.test",
        incoming_security="plain",
        allow_insecure=True,
        username="alice",
        password=SECRET,
        smtp_host="mail.courrier.test",
    )
    assert account.pk
