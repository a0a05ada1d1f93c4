from __future__ import annotations

import math

from allauth.core.internal.ratelimit import parse_duration
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core import services


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "core/home.html")


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the broker answer, 503 otherwise. Used by compose.

    The worker's last heartbeat is reported but does not fail the check: the web server is healthy
    even while workers restart.
    """
    database = services.check_database()
    broker = services.check_broker()
    last_seen = services.worker_last_seen() if database.ok else None
    body = {
        "status": "ok" if database.ok and broker.ok else "error",
        "database": "ok" if database.ok else f"error: {database.detail}",
        "broker": "ok" if broker.ok else f"error: {broker.detail}",
        "worker_last_seen": last_seen.isoformat() if last_seen else None,
    }
    return JsonResponse(body, status=200 if database.ok and broker.ok else 503)


# Which of allauth's rate-limited actions each page performs (ACCOUNT_RATE_LIMITS).
RATE_LIMITED_ACTIONS = {
    "account_login": ("login", "login_failed"),
    "account_signup": ("signup",),
    "account_reset_password": ("reset_password",),
    "account_reset_password_from_key": ("reset_password_from_key",),
    "account_change_password": ("change_password",),
    "account_reauthenticate": ("reauthenticate",),
    "account_email": ("manage_email", "confirm_email"),
}


def retry_after_seconds(request: HttpRequest) -> int:
    """The longest window among the page's limits: an upper bound of the wait.

    allauth does not tell which of its limits tripped, nor when it frees up.
    """
    match = getattr(request, "resolver_match", None)
    actions = RATE_LIMITED_ACTIONS.get(match.url_name if match else "", ())
    windows = [
        parse_duration(rate.split("/")[1])
        for action in actions
        for rate in (settings.ACCOUNT_RATE_LIMITS.get(action) or "").split(",")
        if rate
    ]
    return int(max(windows, default=60))


def too_many_requests(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    seconds = retry_after_seconds(request)
    context = {"retry_minutes": math.ceil(seconds / 60)}
    response = render(request, "429.html", context, status=429)
    response["Retry-After"] = str(seconds)
    return response
