from __future__ import annotations

import base64

import segno
from allauth.usersessions.models import UserSession
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import forms, services
from accounts.models import SecurityEvent, User
from core.ratelimits import RETRY_AFTER_ATTRIBUTE

RECENT_EVENTS = 20


def _get_device_for_user(request: HttpRequest, device_id: int) -> TOTPDevice:
    return get_object_or_404(TOTPDevice, pk=device_id, user=request.user, confirmed=True)


def _get_session_for_user(request: HttpRequest, session_id: int) -> UserSession:
    return get_object_or_404(UserSession, pk=session_id, user=request.user)


def _next_url(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse("core-home")


@login_required
def security(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]  # login_required
    context = {
        "devices": TOTPDevice.objects.filter(user=user, confirmed=True).order_by("id"),
        "backup_codes_left": services.backup_codes_left(user),
        "sessions": services.sessions_of(user),
        "current_session_key": request.session.session_key,
        "events": SecurityEvent.objects.filter(user=user)[:RECENT_EVENTS],
        "second_factor_required": services.second_factor_required(user),
    }
    return render(request, "accounts/security.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    if user.is_verified() or not user.has_second_factor:
        return HttpResponseRedirect(_next_url(request))
    form = forms.SecondFactorForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        result = services.verify_second_factor(request, user, form.cleaned_data["code"])
        if result.ok:
            return HttpResponseRedirect(_next_url(request))
        if result.retry_after:
            setattr(request, RETRY_AFTER_ATTRIBUTE, result.retry_after)
            form.add_error(
                None,
                _("Too many wrong codes. Try again in %(seconds)d seconds.")
                % {"seconds": result.retry_after},
            )
        else:
            form.add_error("code", _("This code is not valid. Check it and try again."))
    return render(request, "accounts/verify.html", {"form": form, "next": _next_url(request)})


@login_required
@require_http_methods(["GET", "POST"])
def add_totp(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    if user.has_second_factor and not user.is_verified():
        return redirect("accounts-verify")
    device = services.pending_totp_device(user)
    form = forms.TotpConfirmForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        codes = services.confirm_totp_device(
            request, user, device, form.cleaned_data["code"], form.cleaned_data["name"]
        )
        if codes:
            return _show_backup_codes(request, codes, first_time=True)
        if codes is not None:
            messages.success(request, _("The authenticator is added."))
            return redirect("accounts-security")
        form.add_error("code", _("This code is not valid. Check the app’s clock and try again."))
    secret = base64.b32encode(device.bin_key).decode()
    context = {
        "form": form,
        "qr_svg": segno.make(device.config_url, error="m").svg_inline(scale=4, dark="#1f1f1f"),
        "secret_groups": [secret[i : i + 4] for i in range(0, len(secret), 4)],
        "enrolment_required": not user.has_second_factor and services.second_factor_required(user),
    }
    return render(request, "accounts/totp_add.html", context)


@login_required
@require_POST
def rename_totp(request: HttpRequest, device_id: int) -> HttpResponse:
    device = _get_device_for_user(request, device_id)
    form = forms.RenameDeviceForm(request.POST)
    if form.is_valid():
        services.rename_totp_device(device, form.cleaned_data["name"])
        messages.success(request, _("The authenticator is renamed."))
    else:
        messages.error(request, _("A name is required, at most 64 characters."))
    return redirect("accounts-security")


@login_required
@require_http_methods(["GET", "POST"])
def remove_totp(request: HttpRequest, device_id: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    device = _get_device_for_user(request, device_id)
    form = forms.FreshProofForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if services.check_fresh_proof(user, form.cleaned_data["proof"]):
            services.remove_totp_device(request, user, device)
            messages.success(request, _("The authenticator is removed."))
            return redirect("accounts-security")
        form.add_error("proof", _("That is neither your password nor a valid code."))
    return render(request, "accounts/totp_remove.html", {"form": form, "device": device})


@login_required
@require_POST
def backup_codes(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    if not user.has_second_factor:
        messages.error(request, _("Add an authenticator app first; backup codes stand in for it."))
        return redirect("accounts-security")
    return _show_backup_codes(request, services.regenerate_backup_codes(request, user))


def _show_backup_codes(
    request: HttpRequest, codes: list[str], first_time: bool = False
) -> HttpResponse:
    text = "\n".join(codes) + "\n"
    context = {
        "codes": codes,
        "codes_text": text,
        "first_time": first_time,
        "next": _next_url(request),
    }
    response = render(request, "accounts/backup_codes.html", context)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def end_session(request: HttpRequest, session_id: int) -> HttpResponse:
    session = _get_session_for_user(request, session_id)
    if session.session_key == request.session.session_key:
        messages.error(request, _("To end this session, sign out."))
    else:
        services.end_session(request, request.user, session)  # type: ignore[arg-type]
        messages.success(request, _("That session is signed out."))
    return redirect("accounts-security")


@login_required
@require_POST
def end_other_sessions(request: HttpRequest) -> HttpResponse:
    count = services.end_other_sessions(request, request.user)  # type: ignore[arg-type]
    messages.success(request, _("Other sessions signed out: %(count)d.") % {"count": count})
    return redirect("accounts-security")


@login_required
@require_POST
def sign_out_everywhere(request: HttpRequest) -> HttpResponse:
    services.end_other_sessions(request, request.user)  # type: ignore[arg-type]
    logout(request)
    return redirect("account_login")
