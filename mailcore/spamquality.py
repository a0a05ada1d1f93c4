"""How well the spam pipeline does on a labelled corpus: precision and recall. No Django here.

`measure` runs the whole pipeline on each message: sender authentication (the corpus's trusted
Authentication-Results; no DNS), the Bayes classifier trained by k-fold cross-validation on the
other messages, and the rules with the classifier's score. A message is called spam when the
rules send it to Junk. Deterministic: folds are dealt by name, training goes in name order.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailcore.bayes import Classifier, tokens
from mailcore.mime import decode_header_value, parse_message
from mailcore.rules import MessageFacts, RuleSet, compile_rules, evaluate
from mailcore.senderauth import authenticate, header_fields

__all__ = [
    "BASELINE_RULES",
    "LabelledMessage",
    "Quality",
    "confusion",
    "load_corpus",
    "measure",
]

# A starting set: sender authentication, lookalikes, dangerous attachments and the classifier.
BASELINE_RULES: dict[str, Any] = {
    "threshold": 5,
    "rules": [
        {
            "name": "DMARC fails",
            "conditions": [{"field": "dmarc", "op": "is", "value": "fail"}],
            "actions": [{"action": "score", "value": 3}],
        },
        {
            "name": "DKIM or SPF fails",
            "match": "any",
            "conditions": [
                {"field": "dkim", "op": "is", "value": "fail"},
                {"field": "spf", "op": "is", "value": "fail"},
            ],
            "actions": [{"action": "score", "value": 1.5}],
        },
        {
            "name": "Sender imitates another",
            "conditions": [
                {
                    "field": "auth_flag",
                    "op": "is",
                    "value": ["confusable-domain", "mixed-script-domain", "display-name-address"],
                }
            ],
            "actions": [{"action": "score", "value": 5}],
        },
        {
            "name": "Replies go elsewhere",
            "conditions": [{"field": "auth_flag", "op": "is", "value": "reply-to-domain"}],
            "actions": [{"action": "score", "value": 1.5}],
        },
        {
            "name": "Dangerous attachment",
            "conditions": [
                {
                    "field": "attachment",
                    "op": "group",
                    "value": ["executables", "scripts", "disk_images", "macro_documents"],
                }
            ],
            "actions": [{"action": "score", "value": 5}],
        },
        {
            "name": "The classifier says spam",
            "conditions": [{"field": "bayes", "op": "gt", "value": 0.9}],
            "actions": [{"action": "score", "value": 4}],
        },
        {
            "name": "The classifier is sure",
            "conditions": [{"field": "bayes", "op": "gt", "value": 0.99}],
            "actions": [{"action": "score", "value": 1.5}],
        },
        {
            "name": "The classifier says ham",
            "conditions": [{"field": "bayes", "op": "lt", "value": 0.1}],
            "actions": [{"action": "score", "value": -3}],
        },
    ],
}


@dataclass(frozen=True)
class LabelledMessage:
    name: str
    raw: bytes
    is_spam: bool


@dataclass(frozen=True)
class Quality:
    true_positives: int  # spam sent to Junk
    false_positives: int  # ham sent to Junk
    false_negatives: int  # spam left in the inbox
    true_negatives: int
    missed: tuple[str, ...] = ()  # names of the false negatives
    wrongly_junked: tuple[str, ...] = ()  # names of the false positives

    @property
    def precision(self) -> float:
        """Of what went to Junk, the share that was spam; 0 when nothing did."""
        junked = self.true_positives + self.false_positives
        return self.true_positives / junked if junked else 0.0

    @property
    def recall(self) -> float:
        """Of the spam, the share that went to Junk; 0 when there was none."""
        spam = self.true_positives + self.false_negatives
        return self.true_positives / spam if spam else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "true_positives": self.true_positives,
            "false_positives": self.false_positives,
            "false_negatives": self.false_negatives,
            "true_negatives": self.true_negatives,
            "missed": list(self.missed),
            "wrongly_junked": list(self.wrongly_junked),
        }


def confusion(
    labels: Sequence[bool], predictions: Sequence[bool], names: Sequence[str] = ()
) -> Quality:
    """Counts of (spam?, called spam?) pairs."""
    if len(labels) != len(predictions):
        raise ValueError("as many predictions as labels are needed")
    names = list(names) or [str(i) for i in range(len(labels))]
    pairs = list(zip(labels, predictions, names, strict=True))
    return Quality(
        true_positives=sum(1 for label, called, _ in pairs if label and called),
        false_positives=sum(1 for label, called, _ in pairs if not label and called),
        false_negatives=sum(1 for label, called, _ in pairs if label and not called),
        true_negatives=sum(1 for label, called, _ in pairs if not label and not called),
        missed=tuple(name for label, called, name in pairs if label and not called),
        wrongly_junked=tuple(name for label, called, name in pairs if not label and called),
    )


def load_corpus(directory: Path) -> list[LabelledMessage]:
    """The .eml files of `directory`/spam and `directory`/ham, by name."""
    messages = []
    for folder, is_spam in (("spam", True), ("ham", False)):
        for path in sorted((directory / folder).glob("*.eml")):
            messages.append(LabelledMessage(f"{folder}/{path.name}", path.read_bytes(), is_spam))
    return messages


@dataclass(frozen=True)
class _Prepared:
    message: LabelledMessage
    facts: MessageFacts
    tokens: list[str]


def _prepare(
    message: LabelledMessage, trusted_authserv_ids: Collection[str], known_domains: Collection[str]
) -> _Prepared:
    parsed = parse_message(message.raw)
    auth = authenticate(
        message.raw, trusted_authserv_ids=trusted_authserv_ids, known_domains=known_domains
    )
    headers = tuple(
        (name, decode_header_value(value)) for name, value in header_fields(message.raw)
    )
    return _Prepared(message, MessageFacts(parsed, headers, auth), tokens(parsed))


def measure(
    messages: Sequence[LabelledMessage],
    rules: object = None,
    *,
    folds: int = 5,
    trusted_authserv_ids: Collection[str] = ("mx.courrier.test",),
    known_domains: Collection[str] = (),
) -> Quality:
    """Precision and recall of rules + classifier, by `folds`-fold cross-validation.

    Each class is dealt into the folds in name order (stratified); the classifier of a fold is
    trained on the other folds' messages, in name order. `folds` = 1 uses no classifier."""
    ruleset: RuleSet = compile_rules(BASELINE_RULES if rules is None else rules)
    prepared = sorted(
        (_prepare(m, trusted_authserv_ids, known_domains) for m in messages),
        key=lambda p: p.message.name,
    )
    fold_of: dict[str, int] = {}
    for is_spam in (True, False):
        members = [p for p in prepared if p.message.is_spam == is_spam]
        for index, item in enumerate(members):
            fold_of[item.message.name] = index % max(folds, 1)
    labels, predictions, names = [], [], []
    for fold in range(max(folds, 1)):
        classifier = Classifier()
        if folds > 1:
            for item in prepared:
                if fold_of[item.message.name] != fold:
                    classifier.train(item.tokens, is_spam=item.message.is_spam)
        for item in prepared:
            if fold_of[item.message.name] != fold:
                continue
            bayes = classifier.score(item.tokens) if folds > 1 else None
            facts = MessageFacts(item.facts.parsed, item.facts.headers, item.facts.auth, bayes)
            outcome = evaluate(ruleset, facts)
            labels.append(item.message.is_spam)
            predictions.append(outcome.junk)
            names.append(item.message.name)
    return confusion(labels, predictions, names)
