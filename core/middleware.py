from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

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
