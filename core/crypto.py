"""Encryption at rest for secrets kept in the database (mail passwords, DKIM private keys).

Keys come from ``settings.ENCRYPTION_KEYS`` (Fernet keys, separate from ``SECRET_KEY``). The first
encrypts; all decrypt, so a key is rotated by putting a new one first, running
``manage.py rotate_encryption_keys``, then dropping the old one.
"""

from __future__ import annotations

import functools
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


class DecryptionError(Exception):
    """A stored secret cannot be read with any configured key: a key was dropped too early."""


@functools.lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def _current() -> MultiFernet:
    return _fernet(tuple(settings.ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return _current().encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    try:
        return _current().decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError) as exc:
        raise DecryptionError(
            "A stored secret cannot be decrypted with ENCRYPTION_KEYS; was a key removed before "
            "`manage.py rotate_encryption_keys` ran?"
        ) from exc


class EncryptedTextField(models.TextField):
    """A text column holding a Fernet token; Python code sees the plaintext.

    Empty strings are stored as they are (nothing to hide, and forms treat them as "unset").
    Encrypted values cannot be filtered on: every encryption of one value differs.
    """

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if not value:
            return value
        return decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if not value:
            return value
        return encrypt(value)


def encrypted_fields() -> list[tuple[type[models.Model], str]]:
    """Every (model, field name) holding encrypted data, across installed apps."""
    from django.apps import apps

    return [
        (model, field.name)
        for model in apps.get_models()
        for field in model._meta.get_fields()
        if isinstance(field, EncryptedTextField)
    ]
