"""Who a message says it is from, and what in that claim deserves a second look.

Everything here reads the stored `MessageContent`: the From address and name, Reply-To, the raw
``Authentication-Results`` headers and, when the spam filter saw the message arrive, its verdict
(`spam.models.Verdict`). With a verdict, the badges are its SPF, DKIM and DMARC results: from the
header of a trusted receiving server, or checked by Courrier; its lookalike flags join the
warnings, and what the filter did is explained. Without one, the headers' results are shown as
"unverified" badges: some server along the way wrote them, or the sender forged them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from mailboxes.models import MessageContent
from mailcore.senderauth import organisational_domain, skeleton
from spam import explain
from spam.explain import ExplainedRule
from spam.models import Verdict

# Domains people are phished in the name of; a From domain that reads like one of these but is
# not it gets a warning. Small on purpose: a lookalike of an unknown domain is just a domain.
WELL_KNOWN_DOMAINS = frozenset(
    {
        "amazon.com", "amazon.fr", "ameli.fr", "apple.com", "banquepopulaire.fr",
        "caf.fr", "credit-agricole.fr", "dhl.com", "ebay.com", "facebook.com", "free.fr",
        "github.com", "gmail.com", "google.com", "icloud.com", "impots.gouv.fr",
        "laposte.fr", "laposte.net", "linkedin.com", "live.com", "microsoft.com",
        "netflix.com", "orange.fr", "outlook.com", "paypal.com", "sfr.fr", "yahoo.com",
        "yahoo.fr",
    }
)  # fmt: skip

_EMAIL_IN_TEXT = re.compile(r"[^\s<>()\"',;:@]+@[^\s<>()\"',;:@]+\.[^\s<>()\"',;:@]+")


@dataclass(frozen=True)
class SenderWarning:
    """One thing about the sender to check before trusting the message."""

    code: str
    text: str


@dataclass(frozen=True)
class Badge:
    """One authentication result as a header reports it: never verified here."""

    method: str  # "spf", "dkim", "dmarc"
    result: str  # "pass", "fail", "softfail", "none", "neutral", "temperror"…
    domain: str = ""  # the domain it is about, when the header names one
    reporter: str = ""  # the authserv-id: who wrote the header
    verified: bool = False
    source: str = ""  # for a verified badge: "header" (a trusted server's) or "verified" (ours)
    source_text: str = ""
    explanation: str = ""

    @property
    def good(self) -> bool:
        return self.result == "pass"


@dataclass(frozen=True)
class Filtering:
    """What the spam filter did with the message when it arrived, and why."""

    action: str  # spam.models.Verdict.Action
    action_text: str
    score: float
    threshold: float
    classifier_score: float | None
    reason: str  # why it went where it went ("" when it stayed)
    rules: list[ExplainedRule] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def moved(self) -> bool:
        return self.action not in ("inbox", "error")


@dataclass(frozen=True)
class Sender:
    name: str
    address: str
    domain: str  # as stored: Unicode labels (mailcore.mime decodes xn--)
    ascii_domain: str  # the same in punycode, what DNS and the sender's server see
    warnings: list[SenderWarning] = field(default_factory=list)
    badges: list[Badge] = field(default_factory=list)
    filtering: Filtering | None = None

    @property
    def verified(self) -> bool:
        """Whether the badges are Courrier's verdicts (with explanations), not a header's say."""
        return any(badge.verified for badge in self.badges)


# The flags of mailcore.senderauth, and the code of the warning here that says the same.
_FLAG_WARNINGS = {
    "display-name-address": "name-address",
    "reply-to-domain": "reply-to-domain",
    "mixed-script-domain": "mixed-script",
    "confusable-domain": "lookalike",
}


def analyse(content: MessageContent) -> Sender:
    """The sender of a stored message, with warnings and authentication badges: verified when
    the spam filter left a verdict, else the headers' (unverified)."""
    address = visible(content.from_email.strip())
    domain = address.rpartition("@")[2].lower().rstrip(".")
    name = visible(content.from_name)
    warnings: list[SenderWarning] = []
    if name != content.from_name or address != content.from_email.strip():
        warnings.append(
            SenderWarning(
                "hidden-characters",
                _(
                    "The sender's name or address held invisible or direction-changing "
                    "characters, which can make it read as something else; they were removed."
                ),
            )
        )
    warnings.extend(_name_warnings(name, address))
    warnings.extend(_reply_to_warnings(domain, content.reply_to))
    warnings.extend(domain_warnings(domain))
    verdict = Verdict.objects.filter(content_id=content.pk).first() if content.pk else None
    found_badges = verified_badges(verdict.auth) if verdict is not None else []
    if verdict is not None:
        codes = {w.code for w in warnings}
        for code, text in explain.flag_texts(verdict.auth):
            if _FLAG_WARNINGS.get(code, code) not in codes:
                warnings.append(SenderWarning(code, text))
    return Sender(
        name=name,
        address=address,
        domain=domain,
        ascii_domain=to_ascii(domain),
        warnings=warnings,
        badges=found_badges or badges(content.auth_headers or {}),
        filtering=filtering(verdict) if verdict is not None else None,
    )


def verified_badges(auth: object) -> list[Badge]:
    """A verdict's SPF, DKIM and DMARC results, from a trusted header or checked by Courrier."""
    return [
        Badge(
            found.method,
            found.result,
            found.domain,
            found.reporter if found.source == "header" else "",
            verified=True,
            source=found.source,
            source_text=found.source_text,
            explanation=found.explanation,
        )
        for found in explain.auth_badges(auth)
    ]


def filtering(verdict: Verdict) -> Filtering:
    action_text = str(explain.ACTION_TEXTS.get(verdict.action, "")) % {"folder": verdict.folder}
    errors = [explain.reason_text(e) for e in verdict.errors[:10]] if verdict.errors else []
    if verdict.error:
        errors.append(_("The filter failed: %(error)s") % {"error": verdict.error})
    return Filtering(
        action=verdict.action,
        action_text=action_text,
        score=verdict.score,
        threshold=verdict.threshold,
        classifier_score=verdict.classifier_score,
        reason=explain.reason_text(verdict.reason) if verdict.reason else "",
        rules=explain.explained_rules(verdict.matches),
        errors=[e for e in errors if e],
    )


def visible(text: str) -> str:
    """The text without format characters (bidi controls, zero-width spaces and joiners)."""
    return "".join(c for c in text if unicodedata.category(c) not in ("Cf", "Cc"))


def _name_warnings(name: str, address: str) -> list[SenderWarning]:
    shown = {m.group().strip(".").lower() for m in _EMAIL_IN_TEXT.finditer(name)}
    others = sorted(a for a in shown if a != address.lower())
    if not others:
        return []
    return [
        SenderWarning(
            "name-address",
            _("The sender's name shows the address %(shown)s, but the message is from %(real)s.")
            % {"shown": others[0], "real": address},
        )
    ]


def _reply_to_warnings(domain: str, reply_to: list[list[str]]) -> list[SenderWarning]:
    if not domain:
        return []
    mine = organisational_domain(domain)
    for _name, address in reply_to or []:
        other = str(address).rpartition("@")[2].lower().rstrip(".")
        if other and organisational_domain(other) != mine:
            return [
                SenderWarning(
                    "reply-to-domain",
                    _("Replies go to %(address)s, at another domain than the sender's.")
                    % {"address": address},
                )
            ]
    return []


def domain_warnings(domain: str) -> list[SenderWarning]:
    """Warnings about a From domain on its own: punycode, mixed scripts, lookalikes."""
    if not domain:
        return []
    found: list[SenderWarning] = []
    ascii_form = to_ascii(domain)
    if ascii_form != domain or "xn--" in domain:
        found.append(
            SenderWarning(
                "punycode",
                _("The sender's domain uses non-Latin or accented letters (%(ascii)s).")
                % {"ascii": ascii_form},
            )
        )
    if any(len(scripts(label)) > 1 for label in domain.split(".")):
        found.append(
            SenderWarning(
                "mixed-script", _("The sender's domain mixes letters of different alphabets.")
            )
        )
    lookalike = lookalike_of(domain)
    if lookalike:
        found.append(
            SenderWarning(
                "lookalike",
                _("The sender's domain looks like %(known)s but is not it.") % {"known": lookalike},
            )
        )
    return found


def to_ascii(domain: str) -> str:
    """The domain in punycode (xn--) labels; labels that cannot be encoded are kept."""
    labels = []
    for label in domain.split("."):
        try:
            labels.append(label.encode("idna").decode("ascii") if label else label)
        except UnicodeError:
            labels.append(label)
    return ".".join(labels)


def scripts(label: str) -> set[str]:
    """The scripts of a label's letters (LATIN, CYRILLIC, GREEK…); digits and '-' have none."""
    found = set()
    for char in label:
        if not char.isalpha():
            continue
        name = unicodedata.name(char, "")
        found.add(name.split(" ", 1)[0] if name else "UNKNOWN")
    return found


_KNOWN_SKELETONS = {skeleton(known): known for known in WELL_KNOWN_DOMAINS}


def lookalike_of(domain: str) -> str:
    """The well-known domain this one imitates ("" when none): same look, other letters, or
    the well-known name used as a subdomain of another registered domain."""
    domain = domain.lower().rstrip(".")
    base = organisational_domain(domain)
    if base in WELL_KNOWN_DOMAINS or domain in WELL_KNOWN_DOMAINS:
        return ""
    for candidate in (base, domain):
        known = _KNOWN_SKELETONS.get(skeleton(candidate))
        if known:
            return known
    for known in WELL_KNOWN_DOMAINS:  # paypal.com.secure-login.example
        if domain.startswith(known + "."):
            return known
    return ""


# Authentication-Results (RFC 8601), read tolerantly --------------------------------------------

_METHODS = ("spf", "dkim", "dmarc")
_DOMAIN_PROPERTIES = {
    "spf": ("smtp.mailfrom", "smtp.helo"),
    "dkim": ("header.d", "header.i"),
    "dmarc": ("header.from",),
}
_RESULT_WORD = re.compile(r"[a-z]+")


def badges(auth_headers: dict[str, list[str]]) -> list[Badge]:
    """SPF, DKIM and DMARC results from the topmost Authentication-Results that has them (the
    one the receiving server added last; lower ones may come from anyone), else Received-SPF."""
    found: dict[str, list[Badge]] = {}
    for value in auth_headers.get("authentication-results", []):
        reporter, results = parse_authentication_results(value)
        for method, result, properties in results:
            if method not in _METHODS or (
                method in found and found[method][0].reporter != reporter
            ):
                continue
            domain = next(
                (properties[p] for p in _DOMAIN_PROPERTIES[method] if p in properties), ""
            )
            found.setdefault(method, []).append(
                Badge(method, result, domain.rpartition("@")[2], reporter)
            )
    if "spf" not in found:
        for value in auth_headers.get("received-spf", [])[:1]:
            match = _RESULT_WORD.match(_strip_comments(value).strip().lower())
            if match:
                found["spf"] = [Badge("spf", match.group())]
    return [badge for method in _METHODS for badge in found.get(method, [])[:3]]


def parse_authentication_results(value: str) -> tuple[str, list[tuple[str, str, dict[str, str]]]]:
    """(authserv-id, [(method, result, {ptype.property: value})]) of one header value; never
    raises, whatever the value."""
    text = _strip_comments(value.replace("\r", " ").replace("\n", " "))[:16_384]
    segments = _split_outside_quotes(text, ";")
    reporter = segments[0].strip().split()[0].lower() if segments[0].strip() else ""
    results = []
    for segment in segments[1:]:
        words = segment.split()
        if not words or "=" not in words[0]:
            continue
        method, _eq, result = words[0].partition("=")
        method = method.split("/", 1)[0].strip().lower()
        result = result.strip().strip('"').lower()
        properties = {}
        for word in words[1:]:
            key, eq, prop = word.partition("=")
            if eq and "." in key:
                properties[key.lower()] = prop.strip('"').lower()
        if method and result:
            results.append((method, result[:20], properties))
    return reporter, results


def _strip_comments(text: str) -> str:
    """The text without its (nested) parenthesised comments, quoted strings kept."""
    out = []
    depth = 0
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
            if not depth:
                out.append(char)
            continue
        if char == "\\":
            escaped = True
            if not depth:
                out.append(char)
        elif quoted:
            quoted = char != '"'
            out.append(char)
        elif char == '"' and not depth:
            quoted = True
            out.append(char)
        elif char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        elif not depth:
            out.append(char)
    return "".join(out)


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts = []
    current = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts
