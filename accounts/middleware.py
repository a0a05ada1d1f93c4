from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlencode

from allauth.usersessions.models import UserSession
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import Resolver404, resolve, reverse

from accounts import services

# Pages a signed-in user who still owes a second factor may reach.
ALWAYS_ALLOWED = frozenset({"account_logout", "set_language"})
VERIFY_PAGES = ALWAYS_ALLOWED | {"accounts-verify"}
ENROL_PAGES = ALWAYS_ALLOWED | {"accounts-totp-add"}


class SecondFactorMiddleware:
    """Holds back a signed-in user until their second factor is settled.

    - a user with an authenticator reaches nothing but the code page until they type a code;
    - a user who must have one (staff, or everyone when the site says so) and has none reaches
      nothing but enrolment.
    Verified users cost nothing here; others cost no query (``User.has_second_factor``).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if not user.is_authenticated or user.is_verified():
            return self.get_response(request)
        if request.path_info.startswith("/" + settings.STATIC_URL.lstrip("/")):
            return self.get_response(request)
        if user.has_second_factor:
            return self._hold(request, VERIFY_PAGES, "accounts-verify")
        if services.second_factor_required(user):
            return self._hold(request, ENROL_PAGES, "accounts-totp-add")
        return self.get_response(request)

    def _hold(self, request: HttpRequest, allowed: frozenset[str], target: str) -> HttpResponse:
        try:
            name = resolve(request.path_info).url_name
        except Resolver404:
            name = None
        if name in allowed:
            return self.get_response(request)
        url = reverse(target)
        if request.method == "GET":
            url += "?" + urlencode({"next": request.get_full_path()})
        return HttpResponseRedirect(url)


class SessionActivityMiddleware:
    """Keeps the Security page's "last seen" of each session, at most every few minutes.

    allauth's own tracking writes the session record on every request; this one remembers in
    the session when it last did, so most requests cost no query at all.
    """

    MARK = "_activity_recorded_at"
    INTERVAL_SECONDS = 300

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        key = request.session.session_key
        if user is not None and user.is_authenticated and key:
            # The key is part of the mark: sign-in, verification and password changes give the
            # session a new key, which needs a record of its own.
            recorded_key, recorded_at = request.session.get(self.MARK, ("", 0.0))
            now = time.time()
            if recorded_key != key or now - recorded_at >= self.INTERVAL_SECONDS:
                UserSession.objects.create_from_request(request, user=user)
                request.session[self.MARK] = (key, now)
        return response
