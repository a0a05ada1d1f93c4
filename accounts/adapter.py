from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django import forms
from django.http import HttpRequest
from django.utils.translation import gettext as _

from accounts import services
from accounts.models import SecurityEvent
from core.ratelimits import RETRY_AFTER_ATTRIBUTE, longest_window
from core.services import site_settings


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        """Sign-up follows the site setting; off means invite-only."""
        return site_settings().signup_open

    def pre_authenticate(self, request: HttpRequest, **credentials: Any) -> None:
        """allauth's failed-sign-in limit, with the wait said in words and in Retry-After."""
        try:
            super().pre_authenticate(request, **credentials)
        except forms.ValidationError:
            seconds = longest_window("login_failed")
            setattr(request, RETRY_AFTER_ATTRIBUTE, seconds)
            services.record_event(request, None, SecurityEvent.Kind.RATE_LIMITED, detail="sign-in")
            raise forms.ValidationError(
                _("Too many failed sign-in attempts. Try again in %(minutes)d minutes.")
                % {"minutes": -(-seconds // 60)},
                code="too_many_login_attempts",
            ) from None
