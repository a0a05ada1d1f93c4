from __future__ import annotations

import math

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core import services
from core.ratelimits import page_wait


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The webmail's front door: all inboxes."""
    return redirect("mail-inbox")


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


def too_many_requests(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    match = getattr(request, "resolver_match", None)
    seconds = page_wait(match.url_name if match else None)
    context = {"retry_minutes": math.ceil(seconds / 60)}
    response = render(request, "429.html", context, status=429)
    response["Retry-After"] = str(seconds)
    return response


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    # Resolved per request: the hashed name exists only once collectstatic has run.
    return HttpResponsePermanentRedirect(static("img/favicon.svg"))
