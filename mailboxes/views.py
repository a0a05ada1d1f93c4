from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from mailboxes import services
from mailboxes.forms import AddressForm, MailAccountForm
from mailboxes.models import MailAccount


def _get_account_for_user(request: HttpRequest, account_id: int) -> MailAccount:
    return get_object_or_404(MailAccount, pk=account_id, user=request.user)


@login_required
def account_list(request: HttpRequest) -> HttpResponse:
    accounts = MailAccount.objects.filter(user=request.user)
    return render(request, "mailboxes/account_list.html", {"accounts": accounts})


@login_required
@require_http_methods(["GET", "POST"])
def account_add(request: HttpRequest) -> HttpResponse:
    initial = {}
    lookup = AddressForm(request.GET or None)
    if request.method == "GET" and lookup.is_valid():
        initial = services.suggested_settings(lookup.cleaned_data["email"])
    form = MailAccountForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        duplicate = MailAccount.objects.filter(
            user=request.user, email__iexact=form.cleaned_data["email"]
        ).exists()
        if duplicate:
            form.add_error("email", _("You have already added this address."))
        else:
            problems = services.check_account_settings(form.cleaned_data)
            if "incoming" in problems:
                form.add_error("incoming_host", problems["incoming"])
            if "smtp" in problems:
                form.add_error("smtp_host", problems["smtp"])
            if not problems:
                account = services.add_account(request.user, form.cleaned_data)  # type: ignore[arg-type]
                messages.success(request, _("%(email)s is connected.") % {"email": account.email})
                return redirect("mail-accounts")
    context = {"form": form, "lookup": lookup, "found": bool(initial.get("incoming_host"))}
    return render(request, "mailboxes/account_form.html", context)


@login_required
@require_POST
def account_remove(request: HttpRequest, account_id: int) -> HttpResponse:
    account = _get_account_for_user(request, account_id)
    services.remove_account(account)
    messages.success(request, _("%(email)s is removed from Courrier.") % {"email": account.email})
    return redirect("mail-accounts")
