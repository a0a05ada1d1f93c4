"""A per-user naive Bayes spam classifier (Graham's token probabilities with Robinson's
corrections, combined by Fisher's chi-square method as SpamBayes does). No Django here.

Tokens are what a message is made of, once each: words of the subject and of the text, the
sender's domain and the domains of the links. The state is counts: messages trained as spam and
as ham, and per token how many of each held it. It is small and JSON-friendly (`to_dict`,
`from_dict`), bounded (past MAX_TOKENS the rarest tokens are pruned) and deterministic: the same
training in the same order gives the same state and the same scores.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from mailcore.mime import ParsedMessage

__all__ = ["Classifier", "tokens"]

STATE_VERSION = 1
MAX_TOKENS = 20_000  # kept in the state
MAX_MESSAGE_TOKENS = 1500  # read from one message
MAX_TEXT_CHARS = 50_000  # of the body tokenised
MAX_CLUES = 150  # tokens that decide a score: the furthest from 0.5
MIN_STRENGTH = 0.1  # a clue's distance from 0.5 at least
UNKNOWN = 0.5  # Robinson's x: the probability of a token never seen
STRENGTH = 0.45  # Robinson's s: how much that belief weighs against few observations

_WORD = re.compile(r"[^\W_][\w'’.-]{1,38}[^\W_]", re.UNICODE)
_URL_HOST = re.compile(r"(?i)\bhttps?://([^/\s?#:\"'<>]{1,253})")


def _fold(text: str) -> str:
    """Lowercase without accents: "Compte" and "compté" are one token."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def tokens(message: ParsedMessage) -> list[str]:
    """The message's distinct tokens, in a fixed order: "s:" subject words, "w:" text words,
    "from:" the sender's domain, "url:" link domains."""
    found: dict[str, None] = {}

    def add(token: str) -> None:
        if len(found) < MAX_MESSAGE_TOKENS:
            found.setdefault(token)

    for address in message.from_[:1]:
        domain = address.email.rpartition("@")[2].lower()
        if domain:
            add(f"from:{domain}")
            parent = ".".join(domain.split(".")[-2:])
            if parent != domain:
                add(f"from:{parent}")
    text = message.text[:MAX_TEXT_CHARS]
    sources = [text, message.html[:MAX_TEXT_CHARS] if message.html else ""]
    for source in sources:
        for host in _URL_HOST.findall(source)[:100]:
            add(f"url:{host.lower().rstrip('.')}")
    for word in _WORD.findall(_fold(message.subject)):
        add(f"s:{word.strip('.')}")
    for word in _WORD.findall(_fold(_URL_HOST.sub(" ", text))):
        add(f"w:{word.strip('.')}")
    return list(found)


@dataclass
class Classifier:
    """One user's counts. `train`/`untrain` take a message's tokens (`tokens(parsed)`)."""

    spam: int = 0  # messages trained as spam
    ham: int = 0
    counts: dict[str, list[int]] = field(default_factory=dict)  # token -> [spam, ham]
    max_tokens: int = MAX_TOKENS

    def train(self, message_tokens: list[str], *, is_spam: bool) -> None:
        column = 0 if is_spam else 1
        for token in dict.fromkeys(message_tokens):
            self.counts.setdefault(token, [0, 0])[column] += 1
        if is_spam:
            self.spam += 1
        else:
            self.ham += 1
        if len(self.counts) > self.max_tokens * 1.1:  # prune now and then, not every message
            self.prune()

    def untrain(self, message_tokens: list[str], *, is_spam: bool) -> None:
        """Undo one `train` (a message the user moved out of Junk, say)."""
        column = 0 if is_spam else 1
        for token in dict.fromkeys(message_tokens):
            pair = self.counts.get(token)
            if pair is None:
                continue  # pruned since
            pair[column] = max(0, pair[column] - 1)
            if pair == [0, 0]:
                del self.counts[token]
        if is_spam:
            self.spam = max(0, self.spam - 1)
        else:
            self.ham = max(0, self.ham - 1)

    def prune(self) -> None:
        """Keep the `max_tokens` most seen tokens (ties: the first in alphabetical order)."""
        if len(self.counts) <= self.max_tokens:
            return
        kept = sorted(self.counts.items(), key=lambda item: (-sum(item[1]), item[0]))
        self.counts = dict(sorted(kept[: self.max_tokens]))

    def probability(self, token: str) -> float:
        """Robinson's f(w): how spammy a token is, pulled towards 0.5 when seldom seen."""
        spam_count, ham_count = self.counts.get(token, (0, 0))
        seen = spam_count + ham_count
        if not seen:
            return UNKNOWN
        spam_ratio = spam_count / self.spam if self.spam else 0.0
        ham_ratio = ham_count / self.ham if self.ham else 0.0
        graham = spam_ratio / (spam_ratio + ham_ratio) if spam_ratio + ham_ratio else UNKNOWN
        return (STRENGTH * UNKNOWN + seen * graham) / (STRENGTH + seen)

    def clues(self, message_tokens: list[str]) -> list[tuple[float, str]]:
        """The tokens that decide, strongest first: (probability, token)."""
        found = []
        for token in dict.fromkeys(message_tokens):
            probability = self.probability(token)
            if abs(probability - 0.5) >= MIN_STRENGTH:
                found.append((probability, token))
        found.sort(key=lambda clue: (-abs(clue[0] - 0.5), clue[1]))
        return found[:MAX_CLUES]

    def score(self, message_tokens: list[str]) -> float:
        """0 (ham) … 1 (spam); 0.5 when untrained or nothing is known of the tokens."""
        if not self.spam or not self.ham:
            return 0.5
        clues = [min(max(p, 1e-6), 1 - 1e-6) for p, _ in self.clues(message_tokens)]
        if not clues:
            return 0.5
        n = len(clues)
        spamminess = 1.0 - _chi2q(-2.0 * sum(math.log(1.0 - p) for p in clues), 2 * n)
        hamminess = 1.0 - _chi2q(-2.0 * sum(math.log(p) for p in clues), 2 * n)
        return round((spamminess - hamminess + 1.0) / 2.0, 6)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "spam": self.spam,
            "ham": self.ham,
            "tokens": {token: list(pair) for token, pair in sorted(self.counts.items())},
        }

    @classmethod
    def from_dict(cls, data: object, *, max_tokens: int = MAX_TOKENS) -> Classifier:
        """Back from `to_dict`; a state of another version or malformed gives an empty one."""
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            return cls(max_tokens=max_tokens)
        counts: dict[str, list[int]] = {}
        raw_tokens = data.get("tokens")
        for token, pair in raw_tokens.items() if isinstance(raw_tokens, dict) else []:
            if (
                isinstance(token, str)
                and isinstance(pair, list)
                and len(pair) == 2
                and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in pair)
            ):
                counts[token[:100]] = [pair[0], pair[1]]
        spam, ham = data.get("spam"), data.get("ham")
        classifier = cls(
            spam=spam if isinstance(spam, int) and spam >= 0 else 0,
            ham=ham if isinstance(ham, int) and ham >= 0 else 0,
            counts=counts,
            max_tokens=max_tokens,
        )
        classifier.prune()
        return classifier


def _chi2q(x2: float, freedom: int) -> float:
    """P(chi-square with `freedom` (even) degrees >= x2): the upper tail, as SpamBayes has it."""
    m = x2 / 2.0
    term = math.exp(-m)
    total = term
    for i in range(1, freedom // 2):
        term *= m / i
        total += term
    return min(total, 1.0)
