"""Settings → Filters: the user's allow and block lists, own rules, classifier and dry run."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import User
from mailboxes import rawstore
from mailboxes.models import MailAccount, Message
from mailcore.bayes import Classifier
from spam import explain, pipeline, services, tasks
from spam.forms import DryRunForm, PickForm, QuickRuleForm, RulesForm, SenderEntryForm
from spam.models import ClassifierState, RuleSet, SenderEntry

RECENT_MESSAGES = 30  # offered in the dry run


def _get_entry(user: Any, entry_id: int) -> SenderEntry:
    """The user's list entry, or 404."""
    found = SenderEntry.objects.filter(pk=entry_id, user=user).first()
    if found is None:
        raise Http404
    return found


def _get_message(user: Any, message_id: int) -> Message:
    """The user's message, or 404."""
    found = (
        Message.objects.filter(pk=message_id, folder__account__user=user)
        .select_related("content", "folder__account")
        .first()
    )
    if found is None:
        raise Http404
    return found


def _page(request: HttpRequest, status: int = 200, **forms: Any) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]  # login_required
    own = RuleSet.objects.filter(scope=RuleSet.Scope.USER, user=user).first()
    rules = own.rules if own is not None and isinstance(own.rules, list) else []
    state = ClassifierState.objects.filter(user=user).values_list("state", flat=True).first()
    classifier = Classifier.from_dict(state or {})
    context = {
        "entries": SenderEntry.objects.filter(user=user),
        "rules": [
            (index, rule, explain.rule_summary(rule))
            for index, rule in enumerate(rules)
            if isinstance(rule, dict)
        ],
        "sender_form": forms.get("sender_form") or SenderEntryForm(),
        "rule_form": forms.get("rule_form") or QuickRuleForm(),
        "rules_form": forms.get("rules_form")
        or RulesForm(
            initial={
                "rules": json.dumps(rules, indent=2, ensure_ascii=False),
                "threshold": own.threshold if own is not None else None,
            }
        ),
        "classifier": classifier,
        "page": "filters",
    }
    return render(request, "spam/filters.html", context, status=status)


@login_required
@require_http_methods(["GET"])
def filters(request: HttpRequest) -> HttpResponse:
    return _page(request)


@login_required
@require_POST
def add_sender(request: HttpRequest) -> HttpResponse:
    form = SenderEntryForm(request.POST)
    if not form.is_valid():
        return _page(request, 400, sender_form=form)
    services.add_sender(request.user, form.cleaned_data["kind"], form.cleaned_data["pattern"])  # type: ignore[arg-type]  # login_required
    messages.success(request, _("The list is saved."))
    return redirect("spam-filters")


@login_required
@require_POST
def remove_sender(request: HttpRequest, entry_id: int) -> HttpResponse:
    entry = _get_entry(request.user, entry_id)
    services.remove_sender(entry)
    messages.success(request, _("%(pattern)s was removed.") % {"pattern": entry.pattern})
    return redirect("spam-filters")


@login_required
@require_POST
def add_rule(request: HttpRequest) -> HttpResponse:
    form = QuickRuleForm(request.POST)
    if not form.is_valid():
        return _page(request, 400, rule_form=form)
    services.add_rule(request.user, form.cleaned_data["rule"])  # type: ignore[arg-type]  # login_required
    messages.success(request, _("The rule is added."))
    return redirect("spam-filters")


@login_required
@require_POST
def remove_rule(request: HttpRequest, index: int) -> HttpResponse:
    if not services.remove_rule(request.user, index):  # type: ignore[arg-type]  # login_required
        raise Http404
    messages.success(request, _("The rule was removed."))
    return redirect("spam-filters")


@login_required
@require_POST
def save_rules(request: HttpRequest) -> HttpResponse:
    form = RulesForm(request.POST)
    if not form.is_valid():
        return _page(request, 400, rules_form=form)
    services.save_rules(request.user, form.cleaned_data["rules"], form.cleaned_data["threshold"])  # type: ignore[arg-type]  # login_required
    messages.success(request, _("Your rules are saved."))
    return redirect("spam-filters")


@login_required
@require_POST
def rebuild_classifier(request: HttpRequest) -> HttpResponse:
    user_id = request.user.pk
    transaction.on_commit(lambda: tasks.rebuild_classifier.delay(user_id))
    messages.success(
        request, _("The spam classifier is being rebuilt from your Junk and Inbox folders.")
    )
    return redirect("spam-filters")


@login_required
@require_http_methods(["GET", "POST"])
def dry_run(request: HttpRequest) -> HttpResponse:
    """Paste a message, or pick one of yours: which rules match, the score, what would happen."""
    user: User = request.user  # type: ignore[assignment]  # login_required
    pick = PickForm(request.GET)
    if not pick.is_valid():
        return HttpResponseBadRequest()
    accounts = list(MailAccount.objects.filter(user=user).order_by("pk"))
    address = accounts[0].email if accounts else user.email
    form = DryRunForm(request.POST or None)
    raw: bytes | None = None
    picked = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            raw = form.cleaned_data["raw"].encode("utf-8", "replace")
        else:
            status = 400
    elif pick.cleaned_data["message"]:
        picked = _get_message(user, pick.cleaned_data["message"])
        address = picked.folder.account.email
        try:
            raw = rawstore.read(picked.content)
        except OSError:
            messages.error(request, _("This message's content is missing."))
    result = None
    if raw is not None:
        found = pipeline.dry_run(user, raw, address)
        data = found.outcome.to_dict()
        result = {
            "rules": explain.explained_rules(data["matches"]),
            "score": found.outcome.score,
            "threshold": found.outcome.threshold,
            "classifier_score": found.classifier_score,
            "destination": str(explain.DESTINATION_TEXTS[found.outcome.destination])
            % {"folder": found.outcome.folder},
            "reason": explain.reason_text(data["reason"]),
            "errors": [explain.reason_text(e) for e in data["errors"]]
            + [str(explain.PIPELINE_TEXTS["rules-skipped"]) % {"detail": s} for s in found.skipped],
            "badges": explain.auth_badges(found.auth.to_dict()),
            "flags": explain.flag_texts(found.auth.to_dict()),
            "mark_read": found.outcome.mark_read,
            "flag": found.outcome.flag,
        }
    recent = (
        Message.objects.filter(folder__account__user=user)
        .select_related("content")
        .only("pk", "date", "content__subject", "content__from_email")
        .order_by("-date", "-id")[:RECENT_MESSAGES]
    )
    context = {
        "form": form,
        "result": result,
        "picked": picked,
        "recent": recent,
        "page": "dry-run",
    }
    return render(request, "spam/dry_run.html", context, status=status)
