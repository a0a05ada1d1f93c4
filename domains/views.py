"""The admin's own pages for domains: DNS report, key generation, import, export, zone snippet,
and the operations dashboard.

Each is wrapped in `admin.site.admin_view` where it is routed (staff with a verified second
factor only); each opens by fetching its object through a helper that answers 404 for a domain
the administrator does not administer.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.ratelimits import RETRY_AFTER_ATTRIBUTE
from domains import dkim, services
from domains.forms import (
    ExportKeyForm,
    GenerateKeyForm,
    ImportKeyForm,
    ReportForm,
    key_problem_message,
)
from domains.models import DkimKey, Domain
from mailcore import dkimkeys


def _domain_for(request: HttpRequest, domain_id: int) -> Domain:
    return get_object_or_404(services.domains_for(request.user), pk=domain_id)


def _key_for(request: HttpRequest, key_id: int) -> DkimKey:
    return get_object_or_404(services.keys_for(request.user).select_related("domain"), pk=key_id)


def _page(request: HttpRequest, title: str, **context: Any) -> dict[str, Any]:
    return {**admin.site.each_context(request), "title": title, **context}


def _key_url(key: DkimKey) -> str:
    return reverse("admin:domains_dkimkey_change", args=[key.pk])


# DNS ---------------------------------------------------------------------------------------------


@require_GET
def dns_report(request: HttpRequest, domain_id: int) -> HttpResponse:
    domain = _domain_for(request, domain_id)
    form = ReportForm(request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest(_("There is no such run."))
    run = form.cleaned_data["run"]
    results = services.latest_results(domain, run)
    if run is not None and not results:
        return HttpResponseBadRequest(_("There is no such run."))
    history = services.run_history(domain)
    shown_run = results[0].run if results else None
    keys = [
        (key, dkim.record(key))
        for key in domain.dkim_keys.exclude(state=DkimKey.State.REMOVED).order_by("selector")
    ]
    context = _page(
        request,
        _("DNS report: %(domain)s") % {"domain": domain.unicode_name},
        domain=domain,
        results=[services.explain(result) for result in results],
        checked_at=results[0].checked_at if results else None,
        shown_run=shown_run,
        latest_run=history[0]["run"] if history else None,
        history=history,
        keys=keys,
    )
    return render(request, "domains/dns_report.html", context)


@require_POST
def check_dns_now(request: HttpRequest, domain_id: int) -> HttpResponse:
    domain = _domain_for(request, domain_id)
    run = services.run_dns_check(domain, actor=services.actor_from_request(request))
    messages.info(request, run_summary(run))
    return redirect("admin:domains-dns-report", domain.pk)


def run_summary(run: services.CheckRun) -> str:
    summary = (
        _("DNS checked: %(ok)s ok, %(warning)s warnings, %(error)s errors, %(pending)s pending.")
        % run.counts
    )
    if run.key_changes:
        summary += " " + _("DKIM keys: %(changes)s.") % {"changes": "; ".join(run.key_changes)}
    return summary


# DKIM keys ---------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def generate_key(request: HttpRequest, domain_id: int) -> HttpResponse:
    domain = _domain_for(request, domain_id)
    form = GenerateKeyForm(request.POST or None, domain=domain)
    if request.method == "POST" and form.is_valid():
        algorithm, bits = form.algorithm_and_bits
        try:
            key = services.generate_key(
                services.actor_from_request(request),
                domain,
                algorithm=algorithm,
                bits=bits,
                selector=form.cleaned_data["selector"],
            )
        except dkimkeys.KeyProblem as problem:
            form.add_error(None, key_problem_message(problem))
        else:
            messages.success(request, created_message(key))
            return redirect(_key_url(key))
    title = _("Generate a DKIM key for %(domain)s") % {"domain": domain.unicode_name}
    context = _page(request, title, domain=domain, form=form)
    return render(request, "domains/key_form.html", context)


@sensitive_post_parameters("pem")
@require_http_methods(["GET", "POST"])
def import_key(request: HttpRequest, domain_id: int) -> HttpResponse:
    domain = _domain_for(request, domain_id)
    form = ImportKeyForm(request.POST or None, domain=domain)
    if request.method == "POST" and form.is_valid():
        try:
            key = services.import_key(
                services.actor_from_request(request),
                domain,
                pem=form.cleaned_data["pem"],
                selector=form.cleaned_data["selector"],
            )
        except dkimkeys.KeyProblem as problem:
            form.add_error(None, key_problem_message(problem))
        else:
            messages.success(request, created_message(key))
            return redirect(_key_url(key))
    title = _("Import a DKIM key for %(domain)s") % {"domain": domain.unicode_name}
    context = _page(request, title, domain=domain, form=form)
    return render(request, "domains/key_form.html", context)  # no-store: admin_view


def created_message(key: DkimKey) -> str:
    return _(
        "Key %(selector)s created. Publish its DNS record below; once DNS shows it, the key is "
        "published and can be activated."
    ) % {"selector": key.selector}


@require_GET
def key_zone(request: HttpRequest, key_id: int) -> HttpResponse:
    """The key's TXT record as a BIND zone-file snippet, to download."""
    key = _key_for(request, key_id)
    _name, _value, _strings, snippet = dkim.record(key)
    response = HttpResponse(snippet, content_type="text/plain; charset=us-ascii")
    filename = f"{key.selector}._domainkey.{key.domain.name}.zone"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@sensitive_post_parameters("password")
@require_http_methods(["GET", "POST"])
def export_key(request: HttpRequest, key_id: int) -> HttpResponse:
    """The private key as a PEM file, once the administrator typed their password again."""
    key = _key_for(request, key_id)
    if not key.private_key:
        messages.error(request, _("The private key of a removed key is erased."))
        return redirect(_key_url(key))
    form = ExportKeyForm(request.POST or None, user=request.user)
    waiting = request.method == "POST" and services.export_attempts_exhausted(request.user)
    if waiting:
        setattr(request, RETRY_AFTER_ATTRIBUTE, int(services.EXPORT_FAILURE_WINDOW.total_seconds()))
        form = ExportKeyForm(user=request.user)
    elif request.method == "POST":
        actor = services.actor_from_request(request)
        if form.is_valid():
            pem = services.export_key(actor, key)
            # Not cached anywhere: admin_view adds Cache-Control: no-store.
            response = HttpResponse(pem, content_type="application/x-pem-file")
            filename = f"{key.selector}._domainkey.{key.domain.name}.pem"
            response["Content-Disposition"] = f'attachment; filename="{filename}"'
            return response
        services.refuse_export(actor, key)
    title = _("Export the private key %(selector)s") % {"selector": key.selector}
    context = _page(request, title, key=key, form=form, waiting=waiting)
    return render(request, "domains/key_export.html", context)


# The operations dashboard ------------------------------------------------------------------------


@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """Accounts, sending, mail volume, DNS and services at a glance: superusers only, as it
    names users of every domain."""
    if not services.is_superuser(request.user):
        raise PermissionDenied
    data = services.dashboard()
    context = _page(
        request,
        _("Operations"),
        data=data,
        domains=[(domain, services.health_of(domain)) for domain in data.domains],
    )
    return render(request, "domains/dashboard.html", context)
