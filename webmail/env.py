"""Typed readers for settings that come from the environment.

Each helper fails loudly (``ImproperlyConfigured``) on a value it cannot understand: a typo in a
deployment must stop the start-up, not silently fall back to a default.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _get(name: str) -> str | None:
    """The variable's value; blank counts as unset, so `NAME=` in an env file means "default"."""
    value = os.environ.get(name)
    if value is None or not value.strip():
        return None
    return value


def env_str(name: str, default: str | None = None) -> str:
    value = _get(name)
    if value is None:
        if default is None:
            raise ImproperlyConfigured(f"{name} must be set.")
        return default
    return value


def env_bool(name: str, default: bool) -> bool:
    value = _get(name)
    if value is None:
        return default
    normalised = value.strip().lower()
    if normalised in _TRUE:
        return True
    if normalised in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use true/false, 1/0, yes/no).")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _get(name)
    if value is None:
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below the minimum of {minimum}.")
    return number


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    """A comma-separated list; blank items are dropped."""
    value = _get(name)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def env_choice(name: str, choices: tuple[str, ...], default: str) -> str:
    value = (_get(name) or default).strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} must be one of {', '.join(choices)}.")
    return value


def env_secret(name: str, default: str | None = None) -> str | None:
    """A secret from ``NAME`` or from the file named by ``NAME_FILE`` (Docker/Kubernetes secrets).

    Setting both is refused: which one wins would be a guess.
    """
    direct = os.environ.get(name)
    file_name = os.environ.get(f"{name}_FILE")
    if direct is not None and file_name is not None:
        raise ImproperlyConfigured(f"Set {name} or {name}_FILE, not both.")
    if file_name is not None:
        try:
            secret = Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={file_name!r} cannot be read: {exc}") from None
        if not secret:
            raise ImproperlyConfigured(f"{name}_FILE={file_name!r} is empty.")
        return secret
    if direct is not None:
        if not direct.strip():
            raise ImproperlyConfigured(f"{name} is set but empty.")
        return direct.strip()
    return default


def env_url(name: str, schemes: tuple[str, ...], default: str | None = None) -> str | None:
    """A URL whose scheme is one of ``schemes``; the host is required unless the scheme is local."""
    value = _get(name)
    if value is None:
        return default
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        raise ImproperlyConfigured(
            f"{name} must start with one of {', '.join(s + '://' for s in schemes)}; "
            f"got {parts.scheme or 'no scheme'!r}."
        )
    try:
        parts.port  # noqa: B018 -- urlsplit validates the port lazily, on access
    except ValueError:
        raise ImproperlyConfigured(f"{name} has an invalid port.") from None
    return value
