from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import User

pytest_plugins = ["tests.mailstack"]

PASSWORD = "correct horse battery staple"


@pytest.fixture
def alice(db: None) -> User:
    return User.objects.create_user("alice@example.org", PASSWORD)


@pytest.fixture
def bob(db: None) -> User:
    return User.objects.create_user("bob@example.org", PASSWORD)


@pytest.fixture
def admin_user(db: None) -> User:
    return User.objects.create_superuser("admin@example.org", PASSWORD)


@pytest.fixture
def alice_client(client: Client, alice: User) -> Client:
    client.force_login(alice)
    return client
