"""Spam rules and trusted receiving servers in Django's admin.

Superusers manage everything: everyone's rules, any domain's or user's, and the trusted
servers. A domain's administrators (domains.services) see and change only their domains' rule
sets and trusted servers; other rows are a 404 to them. Rules are checked by
`mailcore.rules.check_rules`, each problem shown with where it is.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest
from django.utils.translation import gettext_lazy as _

from domains import services as domain_services
from domains.models import Domain
from spam.forms import RuleSetAdminForm
from spam.models import RuleSet, TrustedServer, Verdict


def _domain_ids(request: HttpRequest) -> frozenset[int]:
    """The domains a (non-superuser) administrator administers."""
    return domain_services.administered_domain_ids(request.user)


class _DomainScoped(admin.ModelAdmin):
    """Rows with a domain: superusers see all, a domain's admins their domains' only."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return domain_services.may_administer_domains(request.user)

    def _allowed(self, request: HttpRequest, obj: Any) -> bool:
        if domain_services.is_superuser(request.user):
            return True
        return obj.domain_id is not None and obj.domain_id in _domain_ids(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None:
            return domain_services.may_administer_domains(request.user)
        return self._allowed(request, obj)

    has_change_permission = has_view_permission
    has_delete_permission = has_view_permission

    def has_add_permission(self, request: HttpRequest) -> bool:
        return domain_services.may_administer_domains(request.user)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        rows = super().get_queryset(request)
        if domain_services.is_superuser(request.user):
            return rows
        return rows.filter(domain__in=_domain_ids(request))

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        found = super().get_object(request, object_id, from_field)
        if found is None:
            raise Http404
        return found

    def formfield_for_foreignkey(
        self, db_field: Any, request: HttpRequest, **kwargs: Any
    ) -> forms.ModelChoiceField:
        if db_field.name == "domain" and not domain_services.is_superuser(request.user):
            kwargs["queryset"] = Domain.objects.filter(pk__in=_domain_ids(request))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[return-value]  # Django's stubs say Field


class ScopedRuleSetForm(RuleSetAdminForm):
    """A domain administrator's form: rules for one of their domains, nothing else."""

    restricted = False

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.restricted and (
            data.get("scope") != RuleSet.Scope.DOMAIN or data.get("domain") is None
        ):
            raise forms.ValidationError(_("You can only write rules for your domains."))
        return data


@admin.register(RuleSet)
class RuleSetAdmin(_DomainScoped):
    form = ScopedRuleSetForm
    list_display = ["__str__", "scope", "enabled", "threshold", "rule_count", "updated_at"]
    list_filter = ["scope", "enabled"]
    search_fields = ["domain__name", "user__email"]
    autocomplete_fields: list[str] = []
    raw_id_fields = ["user"]
    fieldsets = [
        (None, {"fields": ["scope", "domain", "user", "enabled", "threshold"]}),
        (
            _("Rules"),
            {
                "fields": ["rules"],
                "description": _(
                    "A JSON list of rules: "
                    '[{"name": "Invoices", "match": "all", "conditions": [{"field": '
                    '"sender", "op": "matches", "value": "*@billing.example.com"}], '
                    '"actions": [{"action": "move", "folder": "Invoices"}]}]. '
                    "Fields: sender, sender_domain, display_name, recipient, subject, body, "
                    "header, spf, dkim, dmarc, auth_flag, attachment, size, list, bayes. "
                    "Actions: score, junk, move, mark_read, flag, delete, stop."
                ),
            },
        ),
    ]

    @admin.display(description=_("rules"))
    def rule_count(self, obj: RuleSet) -> int:
        return len(obj.rules) if isinstance(obj.rules, list) else 0

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        form.restricted = not domain_services.is_superuser(request.user)  # type: ignore[attr-defined]  # ScopedRuleSetForm
        return form

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        rows = super().get_queryset(request).select_related("domain", "user")
        if domain_services.is_superuser(request.user):
            return rows
        return rows.filter(Q(scope=RuleSet.Scope.DOMAIN))


@admin.register(TrustedServer)
class TrustedServerAdmin(_DomainScoped):
    list_display = ["authserv_id", "domain", "hosts"]
    search_fields = ["authserv_id", "hosts"]

    def save_model(self, request: HttpRequest, obj: TrustedServer, form: Any, change: bool) -> None:
        if not domain_services.is_superuser(request.user) and obj.domain_id is None:
            raise Http404  # a domain's administrator trusts servers for their domains only
        obj.authserv_id = obj.authserv_id.strip().lower()
        super().save_model(request, obj, form, change)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        if not domain_services.is_superuser(request.user):
            form.base_fields["domain"].required = True
        return form


@admin.register(Verdict)
class VerdictAdmin(admin.ModelAdmin):
    """What the filter decided, read-only, for superusers investigating a complaint."""

    list_display = ["content", "action", "score", "classifier_score", "created_at", "error"]
    list_filter = ["action"]
    readonly_fields = [f.name for f in Verdict._meta.fields]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return domain_services.is_superuser(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return domain_services.is_superuser(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
