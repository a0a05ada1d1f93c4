"""How long a client must wait after one of allauth's rate limits (ACCOUNT_RATE_LIMITS) trips.

allauth tells neither which of an action's limits tripped nor when it frees up, so the longest
window of the action's limits is given: an upper bound, never a promise that is too early.
"""

from __future__ import annotations

from allauth.core.internal.ratelimit import parse_duration
from django.conf import settings

# A view that refuses for a rate limit puts the wait here; RetryAfterMiddleware sends it.
RETRY_AFTER_ATTRIBUTE = "courrier_retry_after"

# Which allauth actions each page performs.
PAGE_ACTIONS = {
    "account_login": ("login", "login_failed"),
    "account_signup": ("signup",),
    "account_reset_password": ("reset_password",),
    "account_reset_password_from_key": ("reset_password_from_key",),
    "account_change_password": ("change_password",),
    "account_reauthenticate": ("reauthenticate",),
    "account_email": ("manage_email", "confirm_email"),
}
DEFAULT_WAIT_SECONDS = 60


def longest_window(*actions: str) -> int:
    windows = [
        parse_duration(rate.split("/")[1])
        for action in actions
        for rate in (settings.ACCOUNT_RATE_LIMITS.get(action) or "").split(",")
        if rate
    ]
    return int(max(windows, default=DEFAULT_WAIT_SECONDS))


def page_wait(url_name: str | None) -> int:
    return longest_window(*PAGE_ACTIONS.get(url_name or "", ()))
