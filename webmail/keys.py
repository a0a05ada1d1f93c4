"""Keys for settings: development keys kept in the data directory, and encryption-key parsing."""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured


def development_key(path: Path, *, kind: str) -> str:
    """Read the key at ``path``, creating it (mode 0600) on first use.

    Only for development: production refuses to start without keys from the environment.
    """
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    if kind == "fernet":
        key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")
    else:
        key = secrets.token_urlsafe(50)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process (web, worker, scheduler start together) won the race: use its key.
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    return key


def parse_encryption_keys(value: str, *, secret_key: str) -> list[str]:
    """Comma-separated Fernet keys (32 url-safe base64 bytes each), newest first."""
    keys = [item.strip() for item in value.split(",") if item.strip()]
    if not keys:
        raise ImproperlyConfigured("ENCRYPTION_KEYS holds no key.")
    for position, key in enumerate(keys, start=1):
        try:
            raw = base64.urlsafe_b64decode(key.encode("ascii"))
        except (binascii.Error, UnicodeEncodeError):
            raw = b""
        if len(raw) != 32:
            raise ImproperlyConfigured(
                f"ENCRYPTION_KEYS key #{position} is not a Fernet key (32 url-safe base64 bytes); "
                "make one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'"
            )
        if key == secret_key:
            raise ImproperlyConfigured("ENCRYPTION_KEYS must differ from SECRET_KEY.")
    if len(set(keys)) != len(keys):
        raise ImproperlyConfigured("ENCRYPTION_KEYS lists the same key twice.")
    return keys
