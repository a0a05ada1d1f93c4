"""Mail rules: conditions over a message, actions in order, a spam score. No Django here.

Rules are plain data, as a form or a JSON file gives them::

    {"threshold": 5, "rules": [
        {"name": "Invoices", "match": "all",
         "conditions": [{"field": "sender", "op": "matches", "value": "*@billing.example.com"},
                        {"field": "subject", "op": "contains", "value": "invoice"}],
         "actions": [{"action": "move", "folder": "Invoices"}, {"action": "stop"}]}]}

`compile_rules` checks them and raises `RulesInvalid` with every problem found (path, code and
parameters, and a sentence for the form); `evaluate` runs compiled rules over a `MessageFacts`;
`dry_run` does both for raw bytes. The outcome records each matched rule and why, as `Reason`s:
codes and parameters whose sentences are marked for translation (`describe` formats them).

Hostile input is bounded: regular expressions run with the `regex` package's timeout, over at
most MAX_SCAN_CHARS of text, within a budget per message; a pattern whose compiled form would be
huge (nested counted repetitions) is refused when the rules are checked.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import regex

from mailcore.mime import ParsedMessage, decode_header_value, parse_addresses, parse_message
from mailcore.senderauth import RESULTS, SenderAuth, header_fields

__all__ = [
    "ATTACHMENT_GROUPS",
    "DEFAULT_THRESHOLD",
    "FIELDS",
    "MessageFacts",
    "Outcome",
    "Problem",
    "Reason",
    "RuleMatch",
    "RuleSet",
    "RulesInvalid",
    "check_rules",
    "compile_rules",
    "describe",
    "dry_run",
    "evaluate",
]


def gettext_noop(message: str) -> str:
    """Marks a sentence for translation (Django's makemessages knows this name); the web layer
    translates it when it shows it."""
    return message


DEFAULT_THRESHOLD = 5.0
MAX_RULES = 500
MAX_CONDITIONS = 50
MAX_ACTIONS = 20
MAX_VALUES = 100  # in a list value
MAX_VALUE_CHARS = 500
MAX_PATTERN_CHARS = 500
MAX_PATTERN_WEIGHT = 10_000  # estimated compiled size: (?:a{1000}){1000} costs `regex` 270 MB
MAX_SCAN_CHARS = 100_000  # of a body or header scanned by a condition
MAX_GLOB_CHARS = 2000
MAX_SCORE = 1000.0
REGEX_TIMEOUT = 0.2  # seconds for one search
REGEX_BUDGET = 1.0  # seconds of regex searching for one message, all rules together

# Built-in attachment groups: extensions and content types. Legacy Office formats (doc, xls, ppt)
# carry macros without saying so in their name, so they count as macro documents.
ATTACHMENT_GROUPS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "executables": (
        frozenset(
            [
                "exe",
                "com",
                "scr",
                "pif",
                "msi",
                "msp",
                "msix",
                "appx",
                "dll",
                "cpl",
                "sys",
                "drv",
                "ocx",
                "app",
                "apk",
                "jar",
                "xap",
                "elf",
                "bin",
                "run",
                "deb",
                "rpm",
                "lnk",
            ]
        ),
        frozenset(
            {
                "application/x-msdownload",
                "application/x-dosexec",
                "application/x-executable",
                "application/vnd.microsoft.portable-executable",
                "application/x-msi",
                "application/x-ms-installer",
                "application/java-archive",
                "application/vnd.android.package-archive",
            }
        ),
    ),
    "scripts": (
        frozenset(
            [
                "bat",
                "cmd",
                "ps1",
                "psm1",
                "psd1",
                "vbs",
                "vbe",
                "js",
                "jse",
                "wsf",
                "wsh",
                "wsc",
                "hta",
                "sh",
                "bash",
                "zsh",
                "py",
                "pyw",
                "pl",
                "rb",
                "php",
                "reg",
                "scf",
                "inf",
                "sct",
                "applescript",
                "scpt",
            ]
        ),
        frozenset(
            {
                "application/javascript",
                "text/javascript",
                "application/x-javascript",
                "application/x-sh",
                "application/x-shellscript",
                "text/x-python",
                "application/x-python-code",
                "text/vbscript",
                "application/hta",
                "application/x-bat",
            }
        ),
    ),
    "disk_images": (
        frozenset(["iso", "img", "vhd", "vhdx", "vmdk", "dmg", "udf", "toast"]),
        frozenset(
            {
                "application/x-iso9660-image",
                "application/x-apple-diskimage",
                "application/x-raw-disk-image",
                "application/x-virtualbox-vhd",
            }
        ),
    ),
    "macro_documents": (
        frozenset(
            [
                "docm",
                "dotm",
                "xlsm",
                "xltm",
                "xlam",
                "xlsb",
                "pptm",
                "potm",
                "ppam",
                "ppsm",
                "sldm",
                "doc",
                "dot",
                "xls",
                "xlt",
                "xla",
                "ppt",
                "pot",
                "pps",
            ]
        ),
        frozenset(
            {
                "application/vnd.ms-word.document.macroenabled.12",
                "application/vnd.ms-word.template.macroenabled.12",
                "application/vnd.ms-excel.sheet.macroenabled.12",
                "application/vnd.ms-excel.template.macroenabled.12",
                "application/vnd.ms-excel.addin.macroenabled.12",
                "application/vnd.ms-excel.sheet.binary.macroenabled.12",
                "application/vnd.ms-powerpoint.presentation.macroenabled.12",
                "application/vnd.ms-powerpoint.slideshow.macroenabled.12",
                "application/msword",
                "application/vnd.ms-excel",
                "application/vnd.ms-powerpoint",
            }
        ),
    ),
}

_TEXT_OPS = frozenset({"is", "contains", "matches", "regex"})
# field -> the operators it accepts
FIELDS: dict[str, frozenset[str]] = {
    "sender": _TEXT_OPS,
    "sender_domain": _TEXT_OPS,
    "display_name": _TEXT_OPS,
    "recipient": _TEXT_OPS,
    "subject": _TEXT_OPS,
    "body": frozenset({"contains", "regex"}),
    "header": _TEXT_OPS | {"present"},
    "spf": frozenset({"is"}),
    "dkim": frozenset({"is"}),
    "dmarc": frozenset({"is"}),
    "auth_flag": frozenset({"is", "present"}),
    "attachment": frozenset({"present", "group", "extension", "type"}),
    "size": frozenset({"gt", "lt"}),
    "list": _TEXT_OPS | {"present"},
    "bayes": frozenset({"gt", "lt"}),
}
AUTH_FLAGS = ("display-name-address", "reply-to-domain", "confusable-domain", "mixed-script-domain")
ACTIONS = ("score", "junk", "move", "mark_read", "flag", "delete", "stop")
_CONDITION_KEYS = frozenset({"field", "op", "value", "negate", "name"})
_RULE_KEYS = frozenset({"name", "enabled", "match", "conditions", "actions"})
_ACTION_KEYS = {
    "score": frozenset({"action", "value"}),
    "move": frozenset({"action", "folder"}),
}

FIELD_LABELS = {
    "sender": gettext_noop("The sender"),
    "sender_domain": gettext_noop("The sender's domain"),
    "display_name": gettext_noop("The sender's name"),
    "recipient": gettext_noop("A recipient"),
    "subject": gettext_noop("The subject"),
    "body": gettext_noop("The text"),
    "header": gettext_noop("The header %(name)s"),
    "spf": gettext_noop("SPF"),
    "dkim": gettext_noop("DKIM"),
    "dmarc": gettext_noop("DMARC"),
    "auth_flag": gettext_noop("A sender warning"),
    "attachment": gettext_noop("An attachment"),
    "size": gettext_noop("The size"),
    "list": gettext_noop("The mailing list"),
    "bayes": gettext_noop("The spam classifier's score"),
}

# Reason and problem sentences, by code; %(field)s is a translated FIELD_LABELS entry.
TEXTS = {
    "is": gettext_noop("%(field)s is %(value)s"),
    "not-is": gettext_noop("%(field)s is not %(value)s"),
    "contains": gettext_noop("%(field)s contains “%(found)s”"),
    "not-contains": gettext_noop("%(field)s does not contain “%(value)s”"),
    "matches": gettext_noop("%(field)s (%(found)s) matches %(value)s"),
    "not-matches": gettext_noop("%(field)s does not match %(value)s"),
    "regex": gettext_noop("%(field)s matches the pattern %(value)s (“%(found)s”)"),
    "not-regex": gettext_noop("%(field)s does not match the pattern %(value)s"),
    "present": gettext_noop("%(field)s is present (%(found)s)"),
    "not-present": gettext_noop("%(field)s is absent"),
    "gt": gettext_noop("%(field)s (%(found)s) is over %(value)s"),
    "not-gt": gettext_noop("%(field)s (%(found)s) is not over %(value)s"),
    "lt": gettext_noop("%(field)s (%(found)s) is under %(value)s"),
    "not-lt": gettext_noop("%(field)s (%(found)s) is not under %(value)s"),
    "group": gettext_noop("%(field)s is in the group %(value)s (%(found)s)"),
    "not-group": gettext_noop("%(field)s is not in the group %(value)s"),
    "extension": gettext_noop("%(field)s has the extension %(found)s"),
    "not-extension": gettext_noop("%(field)s has no extension %(value)s"),
    "type": gettext_noop("%(field)s has the type %(found)s"),
    "not-type": gettext_noop("%(field)s has no type %(value)s"),
    "threshold": gettext_noop("The spam score %(score)s reached the Junk threshold %(threshold)s"),
    "rule-junk": gettext_noop("The rule “%(rule)s” moves it to Junk"),
    "rule-delete": gettext_noop("The rule “%(rule)s” moves it to the Trash"),
    "rule-move": gettext_noop("The rule “%(rule)s” moves it to %(folder)s"),
    "regex-timeout": gettext_noop("The pattern %(value)s of the rule “%(rule)s” took too long"),
    "regex-budget": gettext_noop("Patterns of the rule “%(rule)s” were not tried: no time left"),
    # Problems
    "not-a-list": gettext_noop("Expected a list."),
    "not-an-object": gettext_noop("Expected an object."),
    "unknown-key": gettext_noop("Unknown key “%(key)s”."),
    "missing-key": gettext_noop("“%(key)s” is required."),
    "unknown-field": gettext_noop("Unknown field “%(value)s”."),
    "unknown-op": gettext_noop("The field “%(field)s” has no operator “%(value)s”."),
    "bad-value": gettext_noop("Invalid value: %(expected)s."),
    "bad-regex": gettext_noop("Invalid pattern: %(error)s."),
    "regex-too-complex": gettext_noop("The pattern is too long or repeats too much."),
    "unknown-group": gettext_noop("Unknown attachment group “%(value)s”."),
    "unknown-result": gettext_noop("Unknown result “%(value)s”."),
    "unknown-flag": gettext_noop("Unknown sender warning “%(value)s”."),
    "unknown-action": gettext_noop("Unknown action “%(value)s”."),
    "too-many": gettext_noop("At most %(limit)s items."),
    "empty": gettext_noop("At least one item is needed."),
}


# Reasons and problems --------------------------------------------------------------------------


@dataclass(frozen=True)
class Reason:
    """Why something happened: a code of TEXTS and its parameters (strings)."""

    code: str
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, code: str, **params: object) -> Reason:
        return cls(code, tuple((k, str(v)[:300]) for k, v in params.items()))

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "params": dict(self.params)}


def describe(reason: Reason, gettext: Callable[[str], str] = gettext_noop) -> str:
    """The reason as a sentence, through `gettext` (Django's, in the web layer)."""
    params = dict(reason.params)
    if "field" in params:
        label = gettext(FIELD_LABELS.get(params["field"], params["field"]))
        params["field"] = label % {"name": params.get("name", "")} if "%(" in label else label
    template = gettext(TEXTS.get(reason.code, reason.code))
    try:
        return template % params
    except (KeyError, ValueError, TypeError):  # a translation with a wrong placeholder
        return TEXTS.get(reason.code, reason.code)


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the rules: where ("rules[2].conditions[0].value"), what, details."""

    path: str
    code: str
    params: tuple[tuple[str, str], ...] = ()

    @property
    def message(self) -> str:
        return describe(Reason(self.code, self.params))

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class RulesInvalid(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems[:10]))
        self.problems = tuple(problems)


# Compiled rules --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    values: tuple[str, ...] = ()  # text operators: any of them
    number: float = 0.0  # gt/lt
    negate: bool = False
    name: str = ""  # of the header
    pattern: Any = None  # a compiled `regex` pattern for op "regex"

    @property
    def shown_value(self) -> str:
        if self.op in ("gt", "lt"):
            return f"{self.number:g}"
        return ", ".join(self.values)


@dataclass(frozen=True)
class Action:
    kind: str
    score: float = 0.0
    folder: str = ""


@dataclass(frozen=True)
class Rule:
    name: str
    conditions: tuple[Condition, ...]
    actions: tuple[Action, ...]
    match_all: bool = True
    enabled: bool = True


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    threshold: float = DEFAULT_THRESHOLD


class _Checker:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: str, code: str, **params: object) -> None:
        self.problems.append(Problem(path, code, Reason.of(code, **params).params))

    def keys(self, path: str, data: Mapping[str, Any], allowed: frozenset[str]) -> None:
        for key in data:
            if key not in allowed:
                self.add(path, "unknown-key", key=key)

    def items(self, path: str, data: object, limit: int) -> list[Any]:
        if not isinstance(data, list):
            self.add(path, "not-a-list")
            return []
        if not data:
            self.add(path, "empty")
        if len(data) > limit:
            self.add(path, "too-many", limit=limit)
        return data[:limit]


def check_rules(data: object) -> list[Problem]:
    """Every problem of the rules, [] when they are good."""
    try:
        compile_rules(data)
    except RulesInvalid as exc:
        return list(exc.problems)
    return []


def compile_rules(data: object, *, threshold: float | None = None) -> RuleSet:
    """Rules as data (a list of rules, or {"threshold": n, "rules": [...]}) checked and compiled.
    Raises RulesInvalid with every problem found."""
    checker = _Checker()
    rules_data: object = data
    if isinstance(data, dict):
        checker.keys("", data, frozenset({"threshold", "rules"}))
        rules_data = data.get("rules", [])
        if threshold is None and "threshold" in data:
            threshold = _number(checker, "threshold", data["threshold"])
    if not isinstance(rules_data, list):
        checker.add("rules", "not-a-list")
        rules_data = []
    if len(rules_data) > MAX_RULES:
        checker.add("rules", "too-many", limit=MAX_RULES)
    rules = []
    for index, item in enumerate(rules_data[:MAX_RULES]):
        rule = _compile_rule(checker, f"rules[{index}]", item)
        if rule is not None:
            rules.append(rule)
    if checker.problems:
        raise RulesInvalid(checker.problems)
    return RuleSet(tuple(rules), DEFAULT_THRESHOLD if threshold is None else threshold)


def _number(checker: _Checker, path: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or abs(value) > MAX_SCORE * 1000
    ):
        checker.add(path, "bad-value", expected="a number")
        return 0.0
    return float(value)


def _compile_rule(checker: _Checker, path: str, data: object) -> Rule | None:
    if not isinstance(data, dict):
        checker.add(path, "not-an-object")
        return None
    checker.keys(path, data, _RULE_KEYS)
    name = data.get("name", "")
    if not isinstance(name, str) or len(name) > 200:
        checker.add(f"{path}.name", "bad-value", expected="a text of at most 200 characters")
        name = ""
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        checker.add(f"{path}.enabled", "bad-value", expected="true or false")
    match = data.get("match", "all")
    if match not in ("all", "any"):
        checker.add(f"{path}.match", "bad-value", expected="“all” or “any”")
    if "conditions" not in data:
        checker.add(path, "missing-key", key="conditions")
    if "actions" not in data:
        checker.add(path, "missing-key", key="actions")
    conditions = [
        _compile_condition(checker, f"{path}.conditions[{i}]", item)
        for i, item in enumerate(
            checker.items(f"{path}.conditions", data.get("conditions", []), MAX_CONDITIONS)
        )
    ]
    actions = [
        _compile_action(checker, f"{path}.actions[{i}]", item)
        for i, item in enumerate(
            checker.items(f"{path}.actions", data.get("actions", []), MAX_ACTIONS)
        )
    ]
    return Rule(
        name=name or f"#{path}",
        conditions=tuple(c for c in conditions if c is not None),
        actions=tuple(a for a in actions if a is not None),
        match_all=match != "any",
        enabled=enabled is not False,
    )


def _texts(checker: _Checker, path: str, value: object) -> tuple[str, ...]:
    values = value if isinstance(value, list) else [value]
    if (
        not values
        or len(values) > MAX_VALUES
        or not all(isinstance(v, str) and 0 < len(v) <= MAX_VALUE_CHARS for v in values)
    ):
        checker.add(
            path,
            "bad-value",
            expected=f"a text, or a list of at most {MAX_VALUES} texts, "
            f"each of 1 to {MAX_VALUE_CHARS} characters",
        )
        return ()
    return tuple(values)


def _compile_condition(checker: _Checker, path: str, data: object) -> Condition | None:
    if not isinstance(data, dict):
        checker.add(path, "not-an-object")
        return None
    checker.keys(path, data, _CONDITION_KEYS)
    field_ = data.get("field")
    op = data.get("op")
    if field_ not in FIELDS:
        checker.add(f"{path}.field", "unknown-field", value=field_)
        return None
    if op not in FIELDS[field_]:
        checker.add(f"{path}.op", "unknown-op", field=field_, value=op)
        return None
    negate = data.get("negate", False)
    if not isinstance(negate, bool):
        checker.add(f"{path}.negate", "bad-value", expected="true or false")
    name = data.get("name", "")
    if field_ == "header":
        if not isinstance(name, str) or not regex.fullmatch(r"[!-9;-~]{1,100}", name):
            checker.add(f"{path}.name", "bad-value", expected="a header name")
            name = ""
    elif "name" in data:
        checker.add(path, "unknown-key", key="name")
    condition = Condition(field=field_, op=op, negate=negate is True, name=str(name).lower())
    value_path = f"{path}.value"
    if op == "present":
        return condition
    if "value" not in data:
        checker.add(path, "missing-key", key="value")
        return None
    value = data["value"]
    if op in ("gt", "lt"):
        number = _number(checker, value_path, value)
        if field_ == "bayes" and not 0 <= number <= 1:
            checker.add(value_path, "bad-value", expected="a number from 0 to 1")
        return replace(condition, number=number)
    values = _texts(checker, value_path, value)
    if op == "regex":
        if len(values) != 1:
            if values:
                checker.add(value_path, "bad-value", expected="one pattern")
            return None
        pattern = _compile_pattern(checker, value_path, values[0])
        return replace(condition, values=values, pattern=pattern)
    if field_ in ("spf", "dkim", "dmarc"):
        for v in values:
            if v not in RESULTS:
                checker.add(value_path, "unknown-result", value=v)
    elif field_ == "auth_flag":
        for v in values:
            if v not in AUTH_FLAGS:
                checker.add(value_path, "unknown-flag", value=v)
    elif op == "group":
        for v in values:
            if v not in ATTACHMENT_GROUPS:
                checker.add(value_path, "unknown-group", value=v)
    elif op == "extension":
        values = tuple(v.lower().lstrip(".") for v in values)
    return replace(condition, values=tuple(v.lower() for v in values))


def _compile_pattern(checker: _Checker, path: str, pattern: str) -> Any:
    if len(pattern) > MAX_PATTERN_CHARS or _pattern_weight(pattern) > MAX_PATTERN_WEIGHT:
        checker.add(path, "regex-too-complex")
        return None
    try:
        return _regex(pattern)
    except (regex.error, OverflowError, RecursionError, ValueError) as exc:
        checker.add(path, "bad-regex", error=str(exc)[:200])
        return None


@functools.lru_cache(maxsize=512)
def _regex(pattern: str) -> Any:
    return regex.compile(pattern, regex.IGNORECASE | regex.V0)


_COUNTED = regex.compile(r"\{\s*(\d*)\s*(?:,\s*(\d*)\s*)?\}")


def _pattern_weight(pattern: str) -> int:
    """An upper estimate of a pattern's compiled size: atoms count 1, a group the sum of its
    contents, and a counted repetition multiplies what it repeats. `regex` unrolls nested
    counted repetitions, so (?:a{1000}){1000} would cost it a million nodes."""
    stack: list[list[int]] = [[0, 0]]  # per open group: [total weight, weight of the last atom]
    i = 0
    while i < len(pattern):
        char = pattern[i]
        frame = stack[-1]
        if char == "\\":
            i += 2
            if i - 1 < len(pattern) and pattern[i - 1] in "pPNx" and pattern[i : i + 1] == "{":
                i = pattern.find("}", i) + 1 or len(pattern)
            frame[0] += 1
            frame[1] = 1
            continue
        if char == "[":
            depth, i = 1, i + 1
            if pattern[i : i + 1] == "^":
                i += 1
            if pattern[i : i + 1] == "]":
                i += 1
            while i < len(pattern) and depth:
                if pattern[i] == "\\":
                    i += 1
                elif pattern[i] == "[":
                    depth += 1
                elif pattern[i] == "]":
                    depth -= 1
                i += 1
            frame[0] += 1
            frame[1] = 1
            continue
        if char == "(":
            stack.append([0, 0])
        elif char == ")" and len(stack) > 1:
            inner = stack.pop()[0]
            stack[-1][0] += inner
            stack[-1][1] = inner
        elif char == "{":
            counted = _COUNTED.match(pattern, i)
            if counted:
                times = max(int(counted.group(1) or 0), int(counted.group(2) or 0), 1)
                frame[0] += frame[1] * (times - 1)
                frame[1] *= times
                i = counted.end()
                if frame[0] > MAX_PATTERN_WEIGHT:
                    return frame[0]
                continue
            frame[0] += 1
            frame[1] = 1
        elif char not in "*+?|":
            frame[0] += 1
            frame[1] = 1
        i += 1
    return sum(frame[0] for frame in stack)


def _compile_action(checker: _Checker, path: str, data: object) -> Action | None:
    if not isinstance(data, dict):
        checker.add(path, "not-an-object")
        return None
    kind = data.get("action")
    if kind not in ACTIONS:
        checker.add(f"{path}.action", "unknown-action", value=kind)
        return None
    checker.keys(path, data, _ACTION_KEYS.get(kind, frozenset({"action"})))
    if kind == "score":
        if "value" not in data:
            checker.add(path, "missing-key", key="value")
            return None
        score = _number(checker, f"{path}.value", data["value"])
        if abs(score) > MAX_SCORE:
            checker.add(
                f"{path}.value", "bad-value", expected=f"from -{MAX_SCORE:g} to {MAX_SCORE:g}"
            )
        return Action(kind, score=score)
    if kind == "move":
        folder = data.get("folder")
        if (
            not isinstance(folder, str)
            or not folder.strip()
            or len(folder) > 255
            or any(c in folder for c in "\r\n\0")
        ):
            checker.add(f"{path}.folder", "bad-value", expected="a folder name")
            return None
        return Action(kind, folder=folder.strip())
    return Action(kind)


# The message as the rules see it ---------------------------------------------------------------


@dataclass(frozen=True)
class MessageFacts:
    """What conditions look at: the parsed message, its top-level headers (decoded), the
    sender-authentication verdicts and the classifier's score, when known."""

    parsed: ParsedMessage
    headers: tuple[tuple[str, str], ...] = ()
    auth: SenderAuth | None = None
    bayes: float | None = None

    @classmethod
    def from_raw(
        cls, raw: bytes, *, auth: SenderAuth | None = None, bayes: float | None = None
    ) -> MessageFacts:
        headers = tuple((name, decode_header_value(value)) for name, value in header_fields(raw))
        return cls(parse_message(raw), headers, auth, bayes)

    def header_values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]


def _sender(facts: MessageFacts) -> list[str]:
    return [a.email.lower() for a in facts.parsed.from_[:1]]


def _recipients(facts: MessageFacts) -> list[str]:
    parsed = facts.parsed
    addresses = [a.email.lower() for a in (*parsed.to, *parsed.cc, *parsed.bcc)[:200]]
    for name in ("delivered-to", "x-original-to"):
        for value in facts.header_values(name)[:10]:
            addresses.extend(a.email.lower() for a in parse_addresses(value)[:10])
    return list(dict.fromkeys(addresses))


def _field_texts(facts: MessageFacts, condition: Condition) -> list[str]:
    """The texts a text condition looks at; several for recipients and repeated headers."""
    parsed = facts.parsed
    match condition.field:
        case "sender":
            return _sender(facts)
        case "sender_domain":
            return [a.rpartition("@")[2] for a in _sender(facts)]
        case "display_name":
            return [a.name for a in parsed.from_[:1]]
        case "recipient":
            return _recipients(facts)
        case "subject":
            return [parsed.subject]
        case "body":
            return [parsed.text[:MAX_SCAN_CHARS]]
        case "header":
            return [v[:MAX_SCAN_CHARS] for v in facts.header_values(condition.name)[:50]]
        case "list":
            return [parsed.list_id] if parsed.list_id else []
    return []


# Evaluation ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleMatch:
    index: int
    name: str
    reasons: tuple[Reason, ...]
    actions: tuple[str, ...]  # the kinds of its actions, in order
    score: float = 0.0


@dataclass(frozen=True)
class Outcome:
    matches: tuple[RuleMatch, ...] = ()
    score: float = 0.0
    threshold: float = DEFAULT_THRESHOLD
    destination: str = "inbox"  # inbox (stays), junk, trash, folder
    folder: str = ""  # for destination "folder"
    mark_read: bool = False
    flag: bool = False
    stopped: bool = False
    reason: Reason | None = None  # why the destination
    errors: tuple[Reason, ...] = ()  # patterns that timed out, budget spent

    @property
    def junk(self) -> bool:
        return self.destination == "junk"

    def to_dict(self) -> dict[str, Any]:
        return {
            "matches": [
                {
                    "index": m.index,
                    "name": m.name,
                    "reasons": [r.to_dict() for r in m.reasons],
                    "actions": list(m.actions),
                    "score": m.score,
                }
                for m in self.matches
            ],
            "score": self.score,
            "threshold": self.threshold,
            "destination": self.destination,
            "folder": self.folder,
            "mark_read": self.mark_read,
            "flag": self.flag,
            "stopped": self.stopped,
            "reason": self.reason.to_dict() if self.reason else None,
            "errors": [r.to_dict() for r in self.errors],
        }


class _Budget:
    """Seconds of regex searching left for one message."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()


class _PatternTimeout(Exception):
    pass


class _BudgetSpent(Exception):
    pass


def _glob(pattern: str, text: str) -> bool:
    """Whether `text` matches the shell-like `pattern` (* any run, ? one character), without
    case and without backtracking blow-ups: the classic two-pointer wildcard match."""
    pattern, text = pattern.lower(), text[:MAX_GLOB_CHARS].lower()
    p = t = 0
    star = -1
    resume = 0
    while t < len(text):
        if p < len(pattern) and pattern[p] in ("?", text[t]):
            p += 1
            t += 1
        elif p < len(pattern) and pattern[p] == "*":
            star, resume = p, t
            p += 1
        elif star >= 0:
            p = star + 1
            resume += 1
            t = resume
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


def _search(condition: Condition, text: str, budget: _Budget) -> str | None:
    left = budget.left()
    if left <= 0:
        raise _BudgetSpent
    try:
        found = condition.pattern.search(text[:MAX_SCAN_CHARS], timeout=min(REGEX_TIMEOUT, left))
    except TimeoutError as exc:
        raise _PatternTimeout from exc
    return found.group(0)[:100] if found else None


def _test(condition: Condition, facts: MessageFacts, budget: _Budget) -> str | None:
    """What made the condition true (shown in the reason), None when it is false; negation
    is applied by the caller."""
    field_, op = condition.field, condition.op
    if field_ in ("spf", "dkim", "dmarc"):
        result = facts.auth.verdict(field_).result if facts.auth else "none"
        return result if result in condition.values else None
    if field_ == "auth_flag":
        codes = [flag.code for flag in facts.auth.flags] if facts.auth else []
        if op == "present":
            return ", ".join(codes) if codes else None
        hits = [c for c in codes if c in condition.values]
        return hits[0] if hits else None
    if field_ == "attachment":
        return _test_attachments(condition, facts.parsed)
    if field_ in ("size", "bayes"):
        number = float(facts.parsed.size) if field_ == "size" else facts.bayes
        if number is None:
            return None
        hit = number > condition.number if op == "gt" else number < condition.number
        return f"{number:g}" if hit else None
    texts = _field_texts(facts, condition)
    if op == "present":
        return texts[0][:100] if texts else None
    for text in texts:
        if op == "regex":
            found = _search(condition, text, budget)
            if found is not None:
                return found
            continue
        lowered = text[:MAX_SCAN_CHARS].lower()
        for value in condition.values:
            if (
                (op == "is" and lowered == value)
                or (op == "contains" and value in lowered)
                or (op == "matches" and _glob(value, lowered))
            ):
                return value if op == "contains" else text[:100]
    return None


def _extension(filename: str) -> str:
    name = filename.rstrip(". ")  # Windows ignores trailing dots and spaces: "a.exe. " runs
    return name.rpartition(".")[2].lower() if "." in name else ""


def _test_attachments(condition: Condition, parsed: ParsedMessage) -> str | None:
    attachments = parsed.attachments[:500]
    if condition.op == "present":
        named = [a.filename or a.content_type for a in attachments if a.disposition == "attachment"]
        return named[0][:100] if named else None
    for attachment in attachments:
        extension = _extension(attachment.filename)
        content_type = attachment.content_type.lower()
        label = (attachment.filename or content_type)[:100]
        if condition.op == "extension" and extension in condition.values:
            return label
        if condition.op == "type" and any(_glob(v, content_type) for v in condition.values):
            return f"{label} ({content_type})"
        if condition.op == "group":
            for group in condition.values:
                extensions, types = ATTACHMENT_GROUPS[group]
                if extension in extensions or content_type in types:
                    return label
    return None


def evaluate(ruleset: RuleSet, facts: MessageFacts) -> Outcome:
    """Run the enabled rules in order over one message: what matched, why, and what to do."""
    budget = _Budget(REGEX_BUDGET)
    matches: list[RuleMatch] = []
    errors: list[Reason] = []
    score = 0.0
    destination, folder, reason = "inbox", "", None
    mark_read = flag = stopped = False
    for index, rule in enumerate(ruleset.rules):
        if not rule.enabled:
            continue
        reasons = _match(rule, facts, budget, errors)
        if reasons is None:
            continue
        rule_score = sum(a.score for a in rule.actions if a.kind == "score")
        score += rule_score
        matches.append(
            RuleMatch(index, rule.name, reasons, tuple(a.kind for a in rule.actions), rule_score)
        )
        for action in rule.actions:
            if action.kind == "mark_read":
                mark_read = True
            elif action.kind == "flag":
                flag = True
            elif action.kind in ("junk", "delete", "move") and destination == "inbox":
                # The first rule that files the message decides where it goes.
                destination = {"junk": "junk", "delete": "trash", "move": "folder"}[action.kind]
                folder = action.folder
                reason = Reason.of(f"rule-{action.kind}", rule=rule.name, folder=action.folder)
        if any(a.kind == "stop" for a in rule.actions):
            stopped = True
            break
    score = round(score, 3)
    if score >= ruleset.threshold and destination in ("inbox", "folder"):
        # Spam is not filed where the user reads; only an explicit Trash or Junk stands.
        destination, folder = "junk", ""
        reason = Reason.of("threshold", score=f"{score:g}", threshold=f"{ruleset.threshold:g}")
    return Outcome(
        matches=tuple(matches),
        score=score,
        threshold=ruleset.threshold,
        destination=destination,
        folder=folder,
        mark_read=mark_read,
        flag=flag,
        stopped=stopped,
        reason=reason,
        errors=tuple(errors[:20]),
    )


def _match(
    rule: Rule, facts: MessageFacts, budget: _Budget, errors: list[Reason]
) -> tuple[Reason, ...] | None:
    """The reasons the rule matches, None when it does not."""
    reasons: list[Reason] = []
    for condition in rule.conditions:
        try:
            found = _test(condition, facts, budget)
        except _PatternTimeout:
            # An unanswered question is neither a yes nor a no: negated or not, no match.
            errors.append(Reason.of("regex-timeout", rule=rule.name, value=condition.values[0]))
            found, hit = None, False
        except _BudgetSpent:
            errors.append(Reason.of("regex-budget", rule=rule.name))
            return None
        else:
            hit = (found is not None) != condition.negate
        if hit:
            reasons.append(_reason(condition, found))
            if not rule.match_all:
                return tuple(reasons)
        elif rule.match_all:
            return None
    return tuple(reasons) if reasons else None


def _reason(condition: Condition, found: str | None) -> Reason:
    code = condition.op if not condition.negate else f"not-{condition.op}"
    return Reason.of(
        code,
        field=condition.field,
        name=condition.name,
        value=condition.shown_value,
        found=found or "",
    )


def dry_run(
    raw: bytes,
    rules: object,
    *,
    auth: SenderAuth | None = None,
    bayes: float | None = None,
    threshold: float | None = None,
) -> Outcome:
    """Which rules match a raw message, its score and what would be done. Raises RulesInvalid
    when the rules are not valid."""
    return evaluate(
        compile_rules(rules, threshold=threshold),
        MessageFacts.from_raw(raw, auth=auth, bayes=bayes),
    )


def iter_reasons(outcome: Outcome) -> Iterable[Reason]:
    """Every reason of an outcome, in order: the rules' conditions, then the destination's."""
    for match in outcome.matches:
        yield from match.reasons
    if outcome.reason:
        yield outcome.reason
