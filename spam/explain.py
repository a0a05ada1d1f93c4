"""Stored verdicts and outcomes as what the user reads: badges, flags and reasons, translated."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils import formats
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from mailcore.rules import Reason, describe
from mailcore.senderauth import SOURCE_HEADER, SOURCE_VERIFIED, SenderAuth
from mailcore.senderauth import Verdict as AuthVerdict

METHODS = ("spf", "dkim", "dmarc")

# The pipeline's own reason codes (mailcore.rules.TEXTS has the rules').
PIPELINE_TEXTS = {
    "rules-skipped": _("Some rules were left out because they are not valid: %(detail)s"),
    "not-moved": _("The rules asked for a move that could not be done (no such folder)."),
}

FLAG_TEXTS = {
    "display-name-address": _("The sender's name shows another address (%(detail)s)."),
    "reply-to-domain": _("Replies go to another domain (%(detail)s)."),
    "confusable-domain": _("The sender's domain looks like %(detail)s but is not it."),
    "mixed-script-domain": _("The sender's domain mixes letters of different alphabets."),
}

ACTION_TEXTS = {
    "inbox": _("It was left in the Inbox."),
    "junk": _("It was moved to Junk."),
    "trash": _("It was moved to the Trash."),
    "folder": _("It was moved to the folder %(folder)s."),
    "error": _("It could not be filtered and was left in the Inbox."),
}

DESTINATION_TEXTS = {
    "inbox": _("It would stay in the Inbox."),
    "junk": _("It would go to Junk."),
    "trash": _("It would go to the Trash."),
    "folder": _("It would go to the folder %(folder)s."),
}


@dataclass(frozen=True)
class AuthBadge:
    """One verdict of sender authentication as the message view shows it."""

    method: str
    result: str
    domain: str
    source: str  # "header", "verified", "unchecked"
    reporter: str  # the trusted authserv-id, for a header's verdict
    explanation: str

    @property
    def good(self) -> bool:
        return self.result == "pass"

    @property
    def source_text(self) -> str:
        if self.source == SOURCE_HEADER:
            return gettext("from the trusted header of %(server)s") % {"server": self.reporter}
        if self.source == SOURCE_VERIFIED:
            return gettext("checked by Courrier")
        return gettext("not checked")


@dataclass(frozen=True)
class ExplainedRule:
    name: str
    score: float
    sentences: list[str] = field(default_factory=list)


def _result_text(method: str, verdict: AuthVerdict) -> str:
    domain = verdict.domains[0] if verdict.domains else gettext("its domain")
    result = verdict.result
    texts = {
        ("spf", "pass"): _("The server that sent it may send mail for %(domain)s."),
        ("spf", "fail"): _("The server that sent it may not send mail for %(domain)s."),
        ("spf", "softfail"): _("%(domain)s does not vouch for the server that sent it."),
        ("dkim", "pass"): _("Signed by %(domain)s and unchanged since."),
        ("dkim", "fail"): _(
            "The signature of %(domain)s does not match: the message was changed or forged."
        ),
        ("dmarc", "pass"): _("It really comes from %(domain)s, the domain the sender shows."),
        ("dmarc", "fail"): _("Nothing proves that it comes from %(domain)s, as its sender shows."),
    }
    text = texts.get((method, result))
    if text is not None:
        return str(text) % {"domain": domain}
    if result == "none":
        return gettext("No %(method)s result.") % {"method": method.upper()}
    return gettext("%(method)s gave “%(result)s”: it could not be decided.") % {
        "method": method.upper(),
        "result": result,
    }


def auth_badges(auth_data: object) -> list[AuthBadge]:
    """The stored verdicts (SenderAuth.to_dict) as badges; unchecked ones left out."""
    auth = SenderAuth.from_dict(auth_data)
    badges = []
    for method in METHODS:
        verdict = auth.verdict(method)
        if verdict.source not in (SOURCE_HEADER, SOURCE_VERIFIED):
            continue
        badges.append(
            AuthBadge(
                method=method,
                result=verdict.result,
                domain=verdict.domains[0] if verdict.domains else "",
                source=verdict.source,
                reporter=auth.authserv_id,
                explanation=_result_text(method, verdict),
            )
        )
    return badges


def flag_texts(auth_data: object) -> list[tuple[str, str]]:
    """The lookalike flags as (code, sentence)."""
    auth = SenderAuth.from_dict(auth_data)
    found = []
    for flag in auth.flags:
        text = FLAG_TEXTS.get(flag.code)
        if text is not None:
            found.append((flag.code, str(text) % {"detail": flag.detail}))
    return found


def reason_text(data: object) -> str:
    """One stored reason ({"code", "params"}) as a sentence."""
    if not isinstance(data, dict):
        return ""
    code = str(data.get("code", ""))
    params = data.get("params") if isinstance(data.get("params"), dict) else {}
    params = {str(k): str(v) for k, v in params.items()}  # type: ignore[union-attr]  # a dict, checked above
    if code in PIPELINE_TEXTS:
        try:
            return str(PIPELINE_TEXTS[code]) % params
        except (KeyError, ValueError, TypeError):
            return str(PIPELINE_TEXTS[code])
    return describe(Reason(code, tuple(params.items())), gettext)


def explained_rules(matches: object) -> list[ExplainedRule]:
    """The rules that matched, each with its score and why it matched."""
    found = []
    for match in matches if isinstance(matches, list) else []:
        if not isinstance(match, dict):
            continue
        sentences = [reason_text(r) for r in match.get("reasons", [])[:20]]
        score = match.get("score", 0)
        found.append(
            ExplainedRule(
                name=str(match.get("name", ""))[:200],
                score=float(score) if isinstance(score, int | float) else 0.0,
                sentences=[s for s in sentences if s],
            )
        )
    return found


def number(value: Any) -> str:
    """A score as the user's language writes it: 4.5, 4,5 in French."""
    if not isinstance(value, int | float):
        return ""
    return f"{value:g}".replace(".", str(formats.get_format("DECIMAL_SEPARATOR")))


# A rule as a sentence -----------------------------------------------------------------------

# The fields a rule of the simple form tests (spam.forms.QuickRuleForm offers the same).
FIELD_LABELS = {
    "sender": _("The sender's address"),
    "sender_domain": _("The sender's domain"),
    "display_name": _("The sender's name"),
    "recipient": _("A recipient"),
    "subject": _("The subject"),
    "body": _("The text"),
    "list": _("The mailing list"),
}
# Whole sentences, negations included: word order and negation differ between languages.
CONDITION_TEXTS = {
    ("contains", False): _("%(field)s contains “%(value)s”"),
    ("contains", True): _("%(field)s does not contain “%(value)s”"),
    ("is", False): _("%(field)s is “%(value)s”"),
    ("is", True): _("%(field)s is not “%(value)s”"),
    ("matches", False): _("%(field)s matches “%(value)s”"),
    ("matches", True): _("%(field)s does not match “%(value)s”"),
}
RULE_ACTION_TEXTS = {
    "junk": _("move to Junk"),
    "move": _("move to “%(folder)s”"),
    "mark_read": _("mark as read"),
    "flag": _("star"),
    "delete": _("move to the Trash"),
    "score": _("add %(value)s to the spam score"),
    "stop": _("stop here"),
}


def rule_summary(rule: dict[str, Any]) -> str:
    """A rule of the simple form's kinds in words ("The subject contains “lottery” → move to
    Junk"); "" for anything else (a header, a size, a regular expression…), which the page then
    shows as it is written in JSON."""
    conditions = rule.get("conditions")
    actions = rule.get("actions")
    if not (isinstance(conditions, list) and conditions and isinstance(actions, list) and actions):
        return ""
    tested = []
    for condition in conditions:
        if not isinstance(condition, dict):
            return ""
        label = FIELD_LABELS.get(condition.get("field"))  # type: ignore[arg-type]
        text = CONDITION_TEXTS.get((condition.get("op"), condition.get("negate") is True))
        value = condition.get("value")
        if label is None or text is None or not isinstance(value, str):
            return ""
        tested.append(str(text) % {"field": label, "value": value})
    done = []
    for action in actions:
        if not isinstance(action, dict):
            return ""
        text = RULE_ACTION_TEXTS.get(action.get("action"))  # type: ignore[arg-type]
        if text is None:
            return ""
        done.append(
            str(text) % {"folder": action.get("folder", ""), "value": number(action.get("value"))}
        )
    joiner = gettext(" or ") if rule.get("match") == "any" else gettext(" and ")
    return f"{joiner.join(tested)} → {', '.join(done)}"
