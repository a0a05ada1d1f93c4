"""Security-log entries for sign-in events raised by Django and allauth.

Signals are the only hook these libraries give; the receivers only append to the log.
"""

from __future__ import annotations

from typing import Any

from allauth.account.signals import password_changed, password_reset
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.dispatch import receiver
from django.http import HttpRequest

from accounts import services
from accounts.models import SecurityEvent, User


@receiver(user_logged_in, dispatch_uid="accounts-log-sign-in")
def log_sign_in(sender: Any, request: HttpRequest, user: User, **kwargs: Any) -> None:
    services.record_event(request, user, SecurityEvent.Kind.SIGNED_IN)


@receiver(user_logged_out, dispatch_uid="accounts-log-sign-out")
def log_sign_out(sender: Any, request: HttpRequest, user: User | None, **kwargs: Any) -> None:
    if user is not None:
        services.record_event(request, user, SecurityEvent.Kind.SIGNED_OUT)


@receiver(user_login_failed, dispatch_uid="accounts-log-sign-in-failure")
def log_sign_in_failure(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # Django has already masked the password in ``credentials``; only the address is kept, and
    # only if it is one: people type their password into the address field by mistake.
    email = str(credentials.get("email") or credentials.get("username") or "")
    try:
        validate_email(email)
    except ValidationError:
        email = ""
    user = User.objects.filter(email__iexact=email).first() if email else None
    services.record_event(
        request,
        user,
        SecurityEvent.Kind.SIGN_IN_FAILED,
        attempted_email="" if user else email,
    )


@receiver(password_changed, dispatch_uid="accounts-log-password-change")
def log_password_change(sender: Any, request: HttpRequest, user: User, **kwargs: Any) -> None:
    services.record_event(request, user, SecurityEvent.Kind.PASSWORD_CHANGED)


@receiver(password_reset, dispatch_uid="accounts-log-password-reset")
def log_password_reset(sender: Any, request: HttpRequest, user: User, **kwargs: Any) -> None:
    services.record_event(request, user, SecurityEvent.Kind.PASSWORD_RESET)
