"""Managed domains in Django's admin.

Superusers see everything. A staff member named in a domain's `admins` sees and changes that
domain, its DKIM keys, its DNS results and its audit entries, and nothing of other domains (404
on their pages): membership is the grant, Django's model permissions play no part. Every change
is written to the audit log through domains.services.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import RelatedOnlyFieldListFilter
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.forms import Form, ModelMultipleChoiceField
from django.http import Http404, HttpRequest
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from domains import dkim, services, views
from domains.forms import DomainForm, ascii_domain, key_problem_message
from domains.models import AuditEntry, DkimKey, DnsCheckResult, Domain
from mailcore import dkimkeys

CSS = {"all": ["css/admin-extra.css"]}
STATUS_LABELS = {
    "ok": _("ok"),
    "warning": _("warning"),
    "error": _("error"),
    "pending": _("pending"),
    "": _("not checked yet"),
}


def status_badge(status: str, text: str = "") -> SafeString:
    """A status as colour and words (never colour alone)."""
    return format_html(
        '<span class="courrier-status courrier-status--{}">{}</span>',
        status or "none",
        text or STATUS_LABELS.get(status, status),
    )


def domain_id_of(obj: Any) -> int:
    return obj.pk if isinstance(obj, Domain) else obj.domain_id


class ScopedAdmin(admin.ModelAdmin):
    """Shared by the domain models' admins: visible to superusers and the domain's admins."""

    class Media:
        css = CSS

    def has_module_permission(self, request: HttpRequest) -> bool:
        return services.may_administer_domains(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None:
            return services.may_administer_domains(request.user)
        return services.may_administer(request.user, domain_id_of(obj))

    def has_manage_permission(self, request: HttpRequest) -> bool:
        """The admin actions on keys and DNS: for whoever sees them (the rows are scoped)."""
        return services.may_administer_domains(request.user)

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        # Another domain's page is a 404, as if it did not exist (the admin would redirect).
        found = super().get_object(request, object_id, from_field)
        if found is None:
            raise Http404
        return found

    def _each_key(
        self,
        request: HttpRequest,
        keys: QuerySet[DkimKey],
        operation: Callable[[services.Actor, DkimKey], Any],
        refusal: str,
        success: str,
        **params: object,
    ) -> None:
        actor = services.actor_from_request(request)
        done, refused = [], []
        for key in keys.select_related("domain"):
            try:
                operation(actor, key)
            except dkim.KeyStateError:
                refused.append(key.selector)
            else:
                done.append(key.selector)
        if done:
            messages.success(request, success % {"selectors": ", ".join(done), **params})
        if refused:
            messages.error(request, refusal % {"selectors": ", ".join(refused), **params})

    def _check_domains(self, request: HttpRequest, domains: QuerySet[Domain]) -> None:
        actor = services.actor_from_request(request)
        for domain in domains:
            run = services.run_dns_check(domain, actor=actor)
            text = views.run_summary(run)
            messages.info(request, f"{domain.unicode_name}: {text}")


# Domains -----------------------------------------------------------------------------------------


class DkimKeyInline(admin.TabularInline):
    model = DkimKey
    fields = ["selector", "algorithm", "bits", "state", "created_at", "activated_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = _("DKIM keys (generate or import them with the buttons above)")

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None or services.may_administer(request.user, obj.pk)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DnsHealthFilter(admin.SimpleListFilter):
    title = _("DNS health")
    parameter_name = "dns"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [(status, label) for status, label in STATUS_LABELS.items() if status] + [
            ("never", STATUS_LABELS[""])
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Domain]) -> QuerySet[Domain]:
        checked = Q(dns_run__isnull=False)
        match self.value():
            case "error":
                return queryset.filter(dns_errors__gt=0)
            case "warning":
                return queryset.filter(checked, dns_errors=0, dns_warnings__gt=0)
            case "pending":
                return queryset.filter(checked, dns_errors=0, dns_warnings=0, dns_pending__gt=0)
            case "ok":
                return queryset.filter(checked, dns_errors=0, dns_warnings=0, dns_pending=0)
            case "never":
                return queryset.filter(dns_run__isnull=True)
        return queryset


@admin.register(Domain)
class DomainAdmin(ScopedAdmin):
    form = DomainForm
    list_display = ["display_name", "active", "dns_health", "signing_keys", "incoming_host"]
    list_display_links = ["display_name"]
    list_filter = ["active", DnsHealthFilter, "incoming_protocol", "mfa_required"]
    search_fields = ["name", "incoming_host", "smtp_host"]
    actions = ["check_dns", "generate_rsa_key"]
    inlines = [DkimKeyInline]
    fieldsets = [
        (None, {"fields": ["name", "active"]}),
        (
            _("Incoming server"),
            {
                "fields": [
                    "incoming_protocol",
                    "incoming_host",
                    "incoming_port",
                    "incoming_security",
                ]
            },
        ),
        (_("Outgoing server"), {"fields": ["smtp_host", "smtp_port", "smtp_security"]}),
        (_("Policies"), {"fields": ["mfa_required", "max_attachments_mb", "signup_allowed"]}),
        (_("DNS checks"), {"fields": ["mta_sts", "tls_rpt"]}),
        (_("Administrators"), {"fields": ["admins"]}),
    ]

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("<int:domain_id>/dns/", view(views.dns_report), name="domains-dns-report"),
            path("<int:domain_id>/dns/check/", view(views.check_dns_now), name="domains-dns-check"),
            path(
                "<int:domain_id>/keys/generate/",
                view(views.generate_key),
                name="domains-key-generate",
            ),
            path("<int:domain_id>/keys/import/", view(views.import_key), name="domains-key-import"),
            *super().get_urls(),
        ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Domain]:
        signing = (
            DkimKey.objects.filter(domain=OuterRef("pk"), state=DkimKey.State.ACTIVE)
            .order_by()
            .values("domain")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return services.with_dns_health(services.domains_for(request.user)).annotate(
            signing_keys=Coalesce(Subquery(signing, output_field=IntegerField()), 0)
        )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Domain], search_term: str
    ) -> tuple[QuerySet[Domain], bool]:
        """A domain typed in Unicode finds its IDNA name."""
        results, duplicates = super().get_search_results(request, queryset, search_term)
        try:
            encoded = ascii_domain(search_term) if "." in search_term else ""
        except ValidationError:  # not a whole domain: searched as typed only
            encoded = ""
        if encoded and encoded != search_term.strip().lower():
            results = results | queryset.filter(name__icontains=encoded)
        return results, duplicates

    # Who may do what: superusers everything; a domain's admins change its settings.

    def has_add_permission(self, request: HttpRequest) -> bool:
        return services.is_superuser(request.user)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_view_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return services.is_superuser(request.user)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        # A domain's keys and DNS results go with it, though nobody deletes them on their own.
        deleted, counts, _perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, set(), protected

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if services.is_superuser(request.user):
            return self.fieldsets
        # The name and the list of administrators are the superusers' to change.
        return [
            (None, {"fields": ["display_name", "active"]}),
            *self.fieldsets[1:-1],
            (_("Administrators"), {"fields": ["admin_list"]}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if services.is_superuser(request.user):
            return []
        return ["display_name", "admin_list"]

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "admins":
            kwargs["queryset"] = (
                get_user_model().objects.filter(is_staff=True, is_active=True).order_by("email")
            )
            field = super().formfield_for_manytomany(db_field, request, **kwargs)
            if isinstance(field, ModelMultipleChoiceField):
                field.help_text = DomainForm._meta.help_texts["admins"]
                field.widget.can_add_related = False  # users are made on their own page
            return field
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    # Columns

    @admin.display(description=_("domain"), ordering="name")
    def display_name(self, domain: Domain) -> str:
        if domain.unicode_name != domain.name:
            return f"{domain.unicode_name} ({domain.name})"
        return domain.name

    @admin.display(description=_("DNS health"))
    def dns_health(self, domain: Domain) -> SafeString:
        status = services.health_of(domain)
        url = reverse("admin:domains-dns-report", args=[domain.pk])
        count = {"error": domain.dns_errors, "warning": domain.dns_warnings}.get(status)
        text = STATUS_LABELS[status] if not count else f"{STATUS_LABELS[status]} × {count}"
        return format_html('<a href="{}">{}</a>', url, status_badge(status, str(text)))

    @admin.display(description=_("signing keys"), ordering="signing_keys")
    def signing_keys(self, domain: Domain) -> int:
        return domain.signing_keys

    @admin.display(description=_("domain administrators"))
    def admin_list(self, domain: Domain) -> str:
        return ", ".join(user.email for user in domain.admins.order_by("email")) or "—"

    # Saving: every change audited with what it was and what it became.

    def save_related(self, request: HttpRequest, form: Form, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        services.record_domain_saved(
            services.actor_from_request(request),
            form.instance,
            getattr(form, "before", {}),
            created=not change,
        )

    def delete_model(self, request: HttpRequest, obj: Domain) -> None:
        services.delete_domain(services.actor_from_request(request), obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Domain]) -> None:
        actor = services.actor_from_request(request)
        for domain in queryset:
            services.delete_domain(actor, domain)

    # Actions

    @admin.action(description=_("Check DNS now"), permissions=["manage"])
    def check_dns(self, request: HttpRequest, queryset: QuerySet[Domain]) -> None:
        self._check_domains(request, queryset)

    @admin.action(description=_("Generate a DKIM key (RSA, 2048 bits)"), permissions=["manage"])
    def generate_rsa_key(self, request: HttpRequest, queryset: QuerySet[Domain]) -> None:
        actor = services.actor_from_request(request)
        for domain in queryset:
            try:
                key = services.generate_key(actor, domain, algorithm="rsa", bits=2048)
            except dkimkeys.KeyProblem as problem:  # a dated selector taken, for one
                messages.error(request, f"{domain.unicode_name}: {key_problem_message(problem)}")
            else:
                messages.success(request, views.created_message(key))


# DKIM keys ---------------------------------------------------------------------------------------


@admin.register(DkimKey)
class DkimKeyAdmin(ScopedAdmin):
    """Keys are shown, never edited: they change through the actions, which follow their life."""

    list_display = [
        "record_name",
        "algorithm",
        "bits",
        "state_badge",
        "created_at",
        "published_at",
        "activated_at",
        "retired_at",
    ]
    list_filter = ["state", "algorithm", ("domain", RelatedOnlyFieldListFilter)]
    search_fields = ["selector", "domain__name"]
    list_select_related = ["domain"]
    actions = ["activate", "rotate", "retire", "check_dns"]
    # Never the private key: it leaves only through the export page.
    fields = [
        "domain",
        "selector",
        "algorithm",
        "bits",
        "state",
        "dns_record",
        "created_at",
        "published_at",
        "activated_at",
        "retired_at",
        "remove_after",
        "replaces",
    ]
    readonly_fields = fields

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("<int:key_id>/zone/", view(views.key_zone), name="domains-key-zone"),
            path("<int:key_id>/export/", view(views.export_key), name="domains-key-export"),
            *super().get_urls(),
        ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[DkimKey]:
        return services.keys_for(request.user).select_related("domain", "replaces")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # through the domain's "generate" and "import" pages

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # keys are retired, then removed by the DNS pass, not deleted

    @admin.display(description=_("record"), ordering="selector")
    def record_name(self, key: DkimKey) -> str:
        return f"{key.selector}._domainkey.{key.domain.unicode_name}"

    @admin.display(description=_("state"), ordering="state")
    def state_badge(self, key: DkimKey) -> SafeString:
        status = {
            DkimKey.State.CREATED: "pending",
            DkimKey.State.PUBLISHED: "pending",
            DkimKey.State.ACTIVE: "ok",
        }.get(key.state, "none")
        return status_badge(status, key.get_state_display())

    @admin.display(description=_("DNS record to publish"))
    def dns_record(self, key: DkimKey) -> SafeString:
        name, _value, strings, _snippet = dkim.record(key)
        quoted = "\n".join(f'"{part}"' for part in strings)
        return format_html(
            '<dl class="courrier-record"><dt>{}</dt><dd><pre class="courrier-copy">{}</pre></dd>'
            '<dt>{}</dt><dd><pre class="courrier-copy">TXT</pre></dd>'
            '<dt>{}</dt><dd><pre class="courrier-copy">{}</pre></dd></dl>'
            '<p><a href="{}" download>{}</a></p>',
            gettext("Name"),
            name,
            gettext("Type"),
            gettext("Value (quoted strings of at most 255 bytes each)"),
            quoted,
            reverse("admin:domains-key-zone", args=[key.pk]),
            gettext("Download the BIND zone snippet"),
        )

    @admin.action(description=_("Activate (start signing)"), permissions=["manage"])
    def activate(self, request: HttpRequest, queryset: QuerySet[DkimKey]) -> None:
        self._each_key(
            request,
            queryset,
            services.activate_key,
            refusal=gettext(
                "Not activated: %(selectors)s. A key signs only once DNS shows it "
                "(state “published”): publish its record, then check DNS."
            ),
            success=gettext("Now signing: %(selectors)s."),
        )

    @admin.action(description=_("Rotate (replace with a new key)"), permissions=["manage"])
    def rotate(self, request: HttpRequest, queryset: QuerySet[DkimKey]) -> None:
        self._each_key(
            request,
            queryset,
            services.rotate_key,
            refusal=gettext("Not rotated: %(selectors)s. Only an active key can be rotated."),
            success=gettext(
                "Rotation started for %(selectors)s: publish the new keys' records; they take "
                "over once DNS shows them."
            ),
        )

    @admin.action(description=_("Retire (stop signing)"), permissions=["manage"])
    def retire(self, request: HttpRequest, queryset: QuerySet[DkimKey]) -> None:
        self._each_key(
            request,
            queryset,
            services.retire_key,
            refusal=gettext("Not retired: %(selectors)s. Only an active key can be retired."),
            success=gettext(
                "Retired: %(selectors)s. Leave their records in DNS for %(days)s days: mail "
                "signed before still needs them."
            ),
            days=dkim.GRACE_DAYS,
        )

    @admin.action(description=_("Check DNS now"), permissions=["manage"])
    def check_dns(self, request: HttpRequest, queryset: QuerySet[DkimKey]) -> None:
        domains = services.domains_for(request.user).filter(pk__in=queryset.values("domain_id"))
        self._check_domains(request, domains)


# DNS results -------------------------------------------------------------------------------------


@admin.register(DnsCheckResult)
class DnsCheckResultAdmin(ScopedAdmin):
    """The kept results, for searching; the DNS report page reads them better."""

    list_display = ["domain", "run", "kind", "status_badge", "problem", "checked_at"]
    list_filter = ["status", ("domain", RelatedOnlyFieldListFilter)]
    search_fields = ["kind", "problem", "domain__name"]
    list_select_related = ["domain"]
    date_hierarchy = "checked_at"

    def get_queryset(self, request: HttpRequest) -> QuerySet[DnsCheckResult]:
        return services.dns_results_for(request.user).select_related("domain")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, result: DnsCheckResult) -> SafeString:
        return status_badge(result.status)


# The audit log -----------------------------------------------------------------------------------


class ActionFilter(admin.SimpleListFilter):
    title = _("action")
    parameter_name = "action"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return list(services.ACTION_LABELS.items())

    def queryset(self, request: HttpRequest, queryset: QuerySet[AuditEntry]) -> QuerySet:
        return queryset.filter(action=self.value()) if self.value() else queryset


@admin.register(AuditEntry)
class AuditEntryAdmin(ScopedAdmin):
    """Read-only: nobody edits history."""

    list_display = ["created_at", "user_email", "role", "client_address", "action_label", "target"]
    list_filter = [ActionFilter, "role"]
    search_fields = ["user_email", "target", "action", "client_address"]
    date_hierarchy = "created_at"
    fields = [
        "created_at",
        "user_email",
        "role",
        "client_address",
        "action_label",
        "target",
        "before_json",
        "after_json",
    ]
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[AuditEntry]:
        return services.audit_entries_for(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None:
            return services.may_administer_domains(request.user)
        return services.audit_entries_for(request.user).filter(pk=obj.pk).exists()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("action"), ordering="action")
    def action_label(self, entry: AuditEntry) -> str:
        return str(services.ACTION_LABELS.get(entry.action, entry.action))

    @admin.display(description=_("before"))
    def before_json(self, entry: AuditEntry) -> SafeString:
        return _json_block(entry.before)

    @admin.display(description=_("after"))
    def after_json(self, entry: AuditEntry) -> SafeString:
        return _json_block(entry.after)


def _json_block(value: dict[str, Any]) -> SafeString:
    if not value:
        return format_html("{}", "—")
    lines = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    return format_html('<pre class="courrier-json">{}</pre>', lines)
