"""A fixed-window counter in the shared cache, for limits allauth does not cover."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.core.cache import cache


@dataclass(frozen=True)
class Limit:
    name: str
    count: int
    window_seconds: int


def _key(limit: Limit, subject: str, window_start: int) -> str:
    return f"ratelimit:{limit.name}:{subject}:{window_start}"


def retry_after(limit: Limit, subject: str) -> int | None:
    """Seconds until ``subject`` may try again, or None when it is under the limit."""
    now = time.time()
    window_start = int(now // limit.window_seconds) * limit.window_seconds
    used = cache.get(_key(limit, subject, window_start), 0)
    if used < limit.count:
        return None
    return max(1, math.ceil(window_start + limit.window_seconds - now))


def record_failure(limit: Limit, subject: str) -> None:
    window_start = int(time.time() // limit.window_seconds) * limit.window_seconds
    key = _key(limit, subject, window_start)
    if not cache.add(key, 1, timeout=limit.window_seconds + 1):
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=limit.window_seconds + 1)


def reset(limit: Limit, subject: str) -> None:
    window_start = int(time.time() // limit.window_seconds) * limit.window_seconds
    cache.delete(_key(limit, subject, window_start))
