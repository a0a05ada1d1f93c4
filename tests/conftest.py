from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING, Any

import pytest
from allauth.account.models import EmailAddress
from django.core.cache import cache
from django.test import Client, override_settings
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from imapclient import IMAPClient

from accounts.models import User
from mailboxes.models import MailAccount

if TYPE_CHECKING:
    from tests.mailstack import MailStack

pytest_plugins = ["tests.mailstack"]

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    """Rate-limit counters and cached settings live in Redis; no test sees another's."""
    cache.clear()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:  # pytest-django's SettingsWrapper
    """A deliberately slow hasher protects real passwords; tests only need a correct one."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def make_user(email: str, **extra: object) -> User:
    """A user whose address is verified, as after following the confirmation link."""
    if extra.get("is_superuser"):
        user = User.objects.create_superuser(email, PASSWORD, **extra)
    else:
        user = User.objects.create_user(email, PASSWORD, **extra)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    return user


@pytest.fixture
def alice(db: None) -> User:
    return make_user("alice@example.org")


@pytest.fixture
def bob(db: None) -> User:
    return make_user("bob@example.org")


@pytest.fixture
def admin_user(db: None) -> User:
    return make_user("admin@example.org", is_superuser=True)


@pytest.fixture
def alice_client(client: Client, alice: User) -> Client:
    client.force_login(alice)
    return client


def add_authenticator(user: User, name: str = "Phone") -> TOTPDevice:
    device = TOTPDevice.objects.create(user=user, name=name, confirmed=True)
    user.has_second_factor = True
    user.save(update_fields=["has_second_factor"])
    return device


def totp_code(device: TOTPDevice, steps: int = 0) -> str:
    """The code the user's app shows now, or ``steps`` time steps away.

    The step may turn between this and the check; codes of the current step or the next stay
    within the one-step tolerance when it does, so tests use those unless they freeze the clock.
    """
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps * device.step
    return f"{totp.token():0{device.digits}d}"


def sign_in(client: Client, email: str, password: str = PASSWORD, **extra: object):
    return client.post("/accounts/login/", {"login": email, "password": password}, **extra)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Moves ``time.time()`` forward, for windows and throttles that must run out."""
    offset = 0.0
    real_time = time.time

    def advance(seconds: float) -> None:
        nonlocal offset
        offset += seconds
        monkeypatch.setattr(time, "time", lambda: real_time() + offset)

    return advance


# Carol's IMAP mailbox on the test mail stack, as the sync tests use it -----------------------

CAROL = "carol@ecole.test"


def sample(number: int, subject: str = "Message", **headers: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Dave <dave@ecole.test>"
    message["To"] = CAROL
    message["Subject"] = f"{subject} {number}"
    message["Message-ID"] = make_msgid(domain="ecole.test")
    message["Date"] = format_datetime(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=number))
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(f"Body of message {number}. {uuid.uuid4()}\n")
    return message.as_bytes()


@pytest.fixture
def server(mailstack: MailStack) -> Iterator[IMAPClient]:
    """Carol's mailbox, emptied, seen from another client (a phone, say)."""
    mailstack.clear_mailbox(CAROL)
    with mailstack.imap(CAROL) as client:
        yield client


@pytest.fixture
def account(alice: User, mailstack: MailStack) -> Iterator[MailAccount]:
    with override_settings(MAIL_CA_FILE=str(mailstack.ca_file)):
        yield MailAccount.objects.create(
            user=alice,
            email=CAROL,
            incoming_host="127.0.0.1",
            incoming_port=mailstack.imaps_port,
            username=CAROL,
            password=mailstack.users[CAROL],
            smtp_host="127.0.0.1",
            smtp_port=mailstack.submissions_port,
        )
