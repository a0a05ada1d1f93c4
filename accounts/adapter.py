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
from domains.policies import any_signup_domain, signup_allowed_for


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        """Sign-up follows the site setting (off means invite-only), except for the addresses
        of managed domains whose policy allows it (checked in ``clean_email``)."""
        return site_settings().signup_open or any_signup_domain()

    def clean_email(self, email: str) -> str:
        email = super().clean_email(email)
        if not site_settings().signup_open and not signup_allowed_for(email):
            raise forms.ValidationError(
                _("Sign-up is open only for the addresses of some domains; this is not one.")
            )
        return email

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
