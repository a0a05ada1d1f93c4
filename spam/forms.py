from __future__ import annotations

import json
from typing import Any

from django import forms
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from mailcore.rules import MAX_SCORE, Problem, Reason, check_rules, describe
from spam.explain import FIELD_LABELS
from spam.models import RuleSet, SenderEntry
from spam.pipeline import valid_pattern

MAX_RULES_JSON = 200_000  # characters of a rule set as typed
MAX_RAW_MESSAGE = 1024 * 1024  # characters of a message pasted into the dry run


def problem_messages(problems: list[Problem], *, where: bool = True) -> list[str]:
    """Each problem of `check_rules` as "where: what" (or "what" alone), translated."""
    messages = []
    for problem in problems[:50]:
        what = describe(Reason(problem.code, problem.params), gettext)
        messages.append(f"{problem.path or gettext('rules')}: {what}" if where else what)
    return messages


def clean_rules_json(text: str) -> list[Any]:
    """Rules as JSON text, parsed and checked; ValidationError lists every problem."""
    try:
        data = json.loads(text or "[]")
    except json.JSONDecodeError as exc:
        raise forms.ValidationError(
            _("Not valid JSON (line %(line)s, column %(column)s): %(error)s"),
            params={"line": exc.lineno, "column": exc.colno, "error": exc.msg},
        ) from exc
    if isinstance(data, dict) and set(data) <= {"rules"}:
        data = data.get("rules", [])
    check_list(data)
    return data


def check_list(data: object) -> None:
    if not isinstance(data, list):
        raise forms.ValidationError(_("Expected a list of rules."))
    problems = check_rules(data)
    if problems:
        raise forms.ValidationError(problem_messages(problems))


class RuleSetAdminForm(forms.ModelForm):
    """The admin's form: the rules checked by `mailcore.rules.check_rules`, every problem shown
    with where it is."""

    class Meta:
        model = RuleSet
        fields = ["scope", "domain", "user", "enabled", "threshold", "rules"]

    def clean_rules(self) -> list[Any]:
        rules = self.cleaned_data.get("rules")
        if isinstance(rules, dict) and set(rules) <= {"rules"}:
            rules = rules.get("rules", [])
        check_list(rules)
        return rules  # type: ignore[return-value]  # check_list refused anything but a list

    def clean_threshold(self) -> float | None:
        return _clean_threshold(self.cleaned_data.get("threshold"))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        scope, domain, user = data.get("scope"), data.get("domain"), data.get("user")
        if scope == RuleSet.Scope.DOMAIN and (domain is None or user is not None):
            raise forms.ValidationError(_("Rules for a domain name the domain, and no user."))
        if scope == RuleSet.Scope.USER and (user is None or domain is not None):
            raise forms.ValidationError(_("Rules for a user name the user, and no domain."))
        if scope == RuleSet.Scope.GLOBAL and (user is not None or domain is not None):
            raise forms.ValidationError(_("Rules for everyone name no domain and no user."))
        return data


def _clean_threshold(value: float | None) -> float | None:
    if value is not None and not 0 < value <= MAX_SCORE:
        raise forms.ValidationError(_("Between 0 and %(most)s."), params={"most": f"{MAX_SCORE:g}"})
    return value


class SenderEntryForm(forms.Form):
    kind = forms.ChoiceField(label=_("List"), choices=SenderEntry.Kind.choices)
    pattern = forms.CharField(
        label=_("Address or domain"),
        max_length=320,
        help_text=_("alice@example.com, example.com (and its subdomains), *@news.example.com…"),
    )

    def clean_pattern(self) -> str:
        pattern = self.cleaned_data["pattern"].strip().lower()
        if not valid_pattern(pattern):
            raise forms.ValidationError(_("An address or a domain, with * and ? as wildcards."))
        return pattern


class RulesForm(forms.Form):
    """The user's own rules as JSON, for those who want them all at once."""

    rules = forms.CharField(
        label=_("Your rules (JSON)"),
        required=False,
        max_length=MAX_RULES_JSON,
        widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false"}),
    )
    threshold = forms.FloatField(
        label=_("Junk threshold"),
        required=False,
        help_text=_("A message whose score reaches it goes to Junk. Empty: the site's (5)."),
    )

    def clean_rules(self) -> list[Any]:
        return clean_rules_json(self.cleaned_data["rules"])

    def clean_threshold(self) -> float | None:
        return _clean_threshold(self.cleaned_data.get("threshold"))


QUICK_FIELDS = list(FIELD_LABELS.items())
QUICK_OPS = [
    ("contains", _("contains")),
    ("is", _("is")),
    ("matches", _("matches (* and ?)")),
]
QUICK_ACTIONS = [
    ("junk", _("Move to Junk")),
    ("move", _("Move to the folder…")),
    ("mark_read", _("Mark as read")),
    ("flag", _("Star")),
    ("delete", _("Move to the Trash")),
    ("score", _("Add to the spam score…")),
]


class QuickRuleForm(forms.Form):
    """One simple rule: one condition, one action."""

    name = forms.CharField(label=_("Name"), max_length=200)
    # "When" alone is also the security log's date column, "Date" in French.
    field = forms.ChoiceField(label=pgettext_lazy("rule condition", "When"), choices=QUICK_FIELDS)
    op = forms.ChoiceField(label=_("Condition"), choices=QUICK_OPS)
    value = forms.CharField(label=_("Value"), max_length=500)
    action = forms.ChoiceField(label=_("Then"), choices=QUICK_ACTIONS)
    folder = forms.CharField(label=_("Folder"), max_length=255, required=False)
    score = forms.FloatField(
        label=_("Score"), required=False, min_value=-MAX_SCORE, max_value=MAX_SCORE
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        action: dict[str, Any] = {"action": data["action"]}
        # The action's own field says what it misses, rather than check_rules' path in JSON.
        if data["action"] == "move":
            if not data.get("folder"):
                self.add_error("folder", _("Name the folder to move it to."))
                return data
            action["folder"] = data["folder"]
        if data["action"] == "score":
            if data.get("score") is None:
                self.add_error("score", _("Give the score to add."))
                return data
            action["value"] = data["score"]
        op = data["op"]
        if data["field"] == "body" and op != "contains":
            raise forms.ValidationError(_("The text can only be searched for words (contains)."))
        value = data["value"].strip().lower()
        rule = {
            "name": data["name"].strip(),
            "conditions": [{"field": data["field"], "op": op, "value": value}],
            "actions": [action],
        }
        problems = check_rules([rule])
        if problems:  # one rule, one condition, one action: where in the JSON means nothing here
            raise forms.ValidationError(problem_messages(problems, where=False))
        data["rule"] = rule
        return data


class DryRunForm(forms.Form):
    raw = forms.CharField(
        label=_("The raw message"),
        max_length=MAX_RAW_MESSAGE,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false"}),
        help_text=_("Paste it with its headers (“Show original” in a message)."),
    )


class PickForm(forms.Form):
    """The query string of the dry run: one of the user's messages."""

    message = forms.IntegerField(required=False, min_value=1)
