from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from core.ratelimits import RETRY_AFTER_ATTRIBUTE
from core.views import healthz

HEALTHZ_PATH = "/healthz"


class HealthCheckMiddleware:
    """Answers ``/healthz`` before host validation, HTTPS redirects, sessions and CSRF.

    Probes (compose, load balancers) call it over plain HTTP with whatever Host header they have;
    they must not need to be listed in ALLOWED_HOSTS nor follow a redirect to HTTPS. It is the
    first middleware, and the path is matched exactly.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == HEALTHZ_PATH:
            return healthz(request)
        return self.get_response(request)


class RetryAfterMiddleware:
    """Turns a page refused for a rate limit into a 429 that says when to come back.

    Views and allauth's adapter (for its failed-sign-in limit, which re-shows the form with an
    error) set ``request.courrier_retry_after`` in seconds.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        seconds = getattr(request, RETRY_AFTER_ATTRIBUTE, None)
        if seconds and not response.has_header("Retry-After"):
            response.status_code = 429
            response["Retry-After"] = str(seconds)
        return response
