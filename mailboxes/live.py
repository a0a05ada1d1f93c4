"""A per-user version number of their mail, for live updates without reloading.

Everything that changes what a user's mail looks like — a sync that stored, flagged or removed
something, the indexer filling in snippets, the user's own actions — bumps it, after its
transaction commits. Open pages poll it (one cache read, no database query) and fetch what
changed only when it moved. The cache is the project's (Redis in production); if it forgets a
version, pages see a new number once and refresh once: never a missed change.
"""

from __future__ import annotations

import secrets

from django.core.cache import cache
from django.db import transaction

TIMEOUT = 7 * 24 * 3600


def _key(user_id: int) -> str:
    return f"mail-version:{user_id}"


def version(user_id: int) -> str:
    """The user's current version: an opaque string that changes whenever their mail does."""
    value = cache.get(_key(user_id))
    if value is None:
        value = secrets.token_hex(8)
        if not cache.add(_key(user_id), value, TIMEOUT):
            value = cache.get(_key(user_id), value)
    return str(value)


def bump(user_id: int) -> None:
    """Give the user's mail a new version once the current transaction commits."""
    transaction.on_commit(lambda: cache.set(_key(user_id), secrets.token_hex(8), TIMEOUT))
