"""Spam filtering of incoming mail, and the classifier's training. The seam with the sync.

`filter_incoming(account, messages)` runs inside the sync's transaction, on the copies it just
inserted into an Inbox whose first full sync is done: for each message, sender authentication
(`mailcore.senderauth`), the rules (`mailcore.rules`: everyone's, the domain's, the
classifier's, the user's lists and rules) and the user's classifier score; the verdict is stored
and the outcome applied through the webmail's own actions (`mail.services`), which queue the
change for the IMAP server. It never raises: a message that fails gets a verdict with an error
and stays in the Inbox, and the work is bounded per message and per call.

`learn` and `rebuild_classifier` keep the user's classifier (`mailcore.bayes`) small and current.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import dns.resolver
from django.db import transaction
from django.db.models import QuerySet

from accounts.models import User
from domains.models import Domain
from domains.policies import active_domain, domain_of
from mailboxes import actions, rawstore
from mailboxes.models import Folder, MailAccount, Message, MessageContent
from mailcore.bayes import Classifier, tokens
from mailcore.mime import ParsedMessage, parse_message
from mailcore.rules import (
    DEFAULT_THRESHOLD,
    MAX_SCORE,
    MessageFacts,
    Outcome,
    Reason,
    RuleSet,
    RulesInvalid,
    compile_rules,
    evaluate,
)
from mailcore.senderauth import SenderAuth, authenticate, trusted_connection
from mailcore.spamquality import BASELINE_RULES
from spam.models import ClassifierState, SenderEntry, TrainedMessage, TrustedServer, Verdict
from spam.models import RuleSet as RuleSetRow

logger = logging.getLogger(__name__)

MAX_FILTER_BYTES = 10 * 1024 * 1024  # larger: the header alone is checked (no DKIM body hash)
MAX_TOKEN_BYTES = 2 * 1024 * 1024  # of a message read for the classifier
CALL_SECONDS = 60.0  # for one call; the messages left over stay in the Inbox, unfiltered
DNS_LIFETIME = 3.0  # seconds for one DNS question, retries included
CLASSIFIER_TOKENS = 5000  # kept per user: a state of a few hundred KB at most
MAX_LEARN = 200  # messages taught in one "Report spam" / "Not spam"
MAX_REBUILD = 500  # newest messages of each of Junk and Inbox read by a rebuild
MAX_KNOWN_DOMAINS = 500

# The classifier's score joins the rules through these (mailcore.spamquality's baseline).
CLASSIFIER_RULES: list[dict[str, Any]] = [
    rule for rule in BASELINE_RULES["rules"] if rule["conditions"][0]["field"] == "bayes"
]
# Everyone's rules until an administrator writes their own: authentication, lookalikes and
# dangerous attachments.
DEFAULT_GLOBAL_RULES: list[dict[str, Any]] = [
    rule for rule in BASELINE_RULES["rules"] if rule not in CLASSIFIER_RULES
]
ALLOW_RULE_NAME = "Allowed senders"
BLOCK_RULE_NAME = "Blocked senders"
_PATTERN = re.compile(r"[\w.+*?@'-]{1,320}", re.UNICODE)


# Rules of one user -------------------------------------------------------------------------------


def sender_globs(pattern: str) -> list[str]:
    """The From-address patterns of a list entry: an address pattern as it is; a domain
    pattern for its addresses and its subdomains' (*@example.com, *@*.example.com)."""
    pattern = pattern.strip().lower()
    if "@" in pattern:
        return [pattern]
    return [f"*@{pattern}", f"*@*.{pattern}"]


def valid_pattern(pattern: str) -> bool:
    """An address or domain, with * and ? as wildcards; at most one @, not only wildcards."""
    return (
        bool(_PATTERN.fullmatch(pattern))
        and pattern.count("@") <= 1
        and bool(pattern.strip("*?@."))
    )


def list_rules(allowed: Iterable[str], blocked: Iterable[str]) -> list[dict[str, Any]]:
    """The allow and block lists as rules. Allowed senders cancel any score (an explicit rule
    still files them), unless their domain's DMARC fails: a forged From gains nothing. Blocked
    senders go to Junk, unless they are also allowed."""
    allow = [glob for pattern in allowed for glob in sender_globs(pattern)]
    block = [glob for pattern in blocked for glob in sender_globs(pattern)]
    rules: list[dict[str, Any]] = []
    for chunk in _chunks(allow):
        rules.append(
            {
                "name": ALLOW_RULE_NAME,
                "conditions": [
                    {"field": "sender", "op": "matches", "value": chunk},
                    {"field": "dmarc", "op": "is", "value": "fail", "negate": True},
                ],
                "actions": [{"action": "score", "value": -MAX_SCORE}],
            }
        )
    for chunk in _chunks(block):
        conditions: list[dict[str, Any]] = [
            {"field": "sender", "op": "matches", "value": chunk},
        ]
        conditions += [
            {"field": "sender", "op": "matches", "value": allowed_chunk, "negate": True}
            for allowed_chunk in _chunks(allow)
        ]
        rules.append(
            {"name": BLOCK_RULE_NAME, "conditions": conditions, "actions": [{"action": "junk"}]}
        )
    return rules


def _chunks(values: list[str], size: int = 100) -> list[list[str]]:
    """A condition holds at most 100 values (mailcore.rules.MAX_VALUES)."""
    return [values[i : i + size] for i in range(0, len(values), size)]


@dataclass(frozen=True)
class Rules:
    """A user's rules put together, and what was left out because it did not compile."""

    ruleset: RuleSet
    skipped: tuple[str, ...] = ()


def _part(data: object, label: str, skipped: list[str]) -> list[Any]:
    try:
        compile_rules(data)
    except RulesInvalid as problems:
        skipped.append(f"{label}: {problems}"[:200])
        return []
    return list(data) if isinstance(data, list) else []


def rules_for(user: User, domain: Domain | None) -> Rules:
    """Everyone's rules (or the defaults), the domain's, the classifier's, then the user's
    allow and block lists and own rules, in that order; the most specific threshold."""
    sets = {
        row.scope: row
        for row in RuleSetRow.objects.filter(scope=RuleSetRow.Scope.GLOBAL)
        | RuleSetRow.objects.filter(scope=RuleSetRow.Scope.USER, user=user)
        | RuleSetRow.objects.filter(scope=RuleSetRow.Scope.DOMAIN, domain=domain)
    }
    skipped: list[str] = []
    data: list[Any] = []
    threshold = DEFAULT_THRESHOLD
    global_set = sets.get(RuleSetRow.Scope.GLOBAL)
    if global_set is None:
        data += DEFAULT_GLOBAL_RULES
    for scope in (RuleSetRow.Scope.GLOBAL, RuleSetRow.Scope.DOMAIN):
        row = sets.get(scope)
        if row is not None and row.enabled:
            data += _part(row.rules, scope, skipped)
            threshold = row.threshold if row.threshold is not None else threshold
    data += CLASSIFIER_RULES
    entries = list(SenderEntry.objects.filter(user=user).values_list("kind", "pattern"))
    data += list_rules(
        [p for k, p in entries if k == SenderEntry.Kind.ALLOW],
        [p for k, p in entries if k == SenderEntry.Kind.BLOCK],
    )
    own = sets.get(RuleSetRow.Scope.USER)
    if own is not None and own.enabled:
        data += _part(own.rules, "user", skipped)
        threshold = own.threshold if own.threshold is not None else threshold
    try:
        ruleset = compile_rules(data, threshold=threshold)
    except RulesInvalid as problems:  # the parts compile alone: only limits can do this
        skipped.append(f"all: {problems}"[:200])
        ruleset = compile_rules(DEFAULT_GLOBAL_RULES + CLASSIFIER_RULES, threshold=threshold)
    return Rules(ruleset, tuple(skipped))


# Sender authentication's settings ----------------------------------------------------------------


@dataclass(frozen=True)
class Trust:
    authserv_ids: tuple[str, ...]
    hosts: tuple[str, ...]
    known_domains: tuple[str, ...]


def trust_for(address: str, domain: Domain | None) -> Trust:
    """The receiving servers trusted for this account (everyone's and its domain's) and the
    domains a lookalike would imitate (well-known ones, the managed ones, the account's)."""
    from mail.sender import WELL_KNOWN_DOMAINS

    servers = TrustedServer.objects.filter(domain__isnull=True) | TrustedServer.objects.filter(
        domain=domain
    )
    ids, hosts = [], []
    for server in servers:
        ids.append(server.authserv_id.strip().lower())
        hosts.extend(server.host_names())
    managed = Domain.objects.filter(active=True).values_list("name", flat=True)[:MAX_KNOWN_DOMAINS]
    known = {*WELL_KNOWN_DOMAINS, *managed}
    if domain_of(address):
        known.add(domain_of(address))
    return Trust(tuple(dict.fromkeys(ids)), tuple(dict.fromkeys(hosts)), tuple(sorted(known)))


def resolver() -> dns.resolver.Resolver:
    """The configured resolver (`DNS_RESOLVER`), bounded in time, caching for one call."""
    from domains.services import dns_resolver

    found = dns_resolver()
    found.lifetime = DNS_LIFETIME
    found.timeout = DNS_LIFETIME
    found.cache = dns.resolver.Cache()
    return found


# One message -------------------------------------------------------------------------------------


def header_only(raw: bytes) -> bytes:
    match = re.compile(rb"\r?\n\r?\n").search(raw, 0, 1024 * 1024)
    return raw[: match.end()] if match else raw[: 1024 * 1024] + b"\r\n\r\n"


def check(
    raw: bytes,
    rules: RuleSet,
    trust: Trust,
    classifier: Classifier | None,
    dns_resolver: dns.resolver.Resolver | None,
) -> tuple[SenderAuth, Outcome, float | None]:
    """Authentication, classifier score and rules for one raw message (bounded by size):
    the verdicts, what the rules decide and the classifier's score (None while untrained)."""
    big = len(raw) > MAX_FILTER_BYTES
    if big:
        raw = header_only(raw)
    auth = authenticate(
        raw,
        trusted_authserv_ids=trust.authserv_ids,
        trusted_hosts=trust.hosts,
        resolver=None if big else dns_resolver,
        connection=trusted_connection(raw, trust.hosts) if trust.hosts else None,
        known_domains=trust.known_domains,
    )
    facts = MessageFacts.from_raw(raw, auth=auth)
    bayes = None
    if classifier is not None and classifier.spam and classifier.ham:
        bayes = classifier.score(tokens(facts.parsed))
        facts = replace(facts, bayes=bayes)
    return auth, evaluate(rules, facts), bayes


def classifier_of(user: User) -> Classifier:
    state = ClassifierState.objects.filter(user=user).values_list("state", flat=True).first()
    return Classifier.from_dict(state or {}, max_tokens=CLASSIFIER_TOKENS)


def on_incoming_mail(
    sender: object, account: MailAccount, messages: list[Message], **kwargs: object
) -> None:
    """Receiver of ``mailboxes.signals.incoming_mail``."""
    filter_incoming(account, messages)


def on_spam_reported(
    sender: object, user: User, messages: list[Message], is_spam: bool, **kwargs: object
) -> None:
    """Receiver of ``mail.signals.spam_reported``."""
    learn(user, messages, is_spam)


def filter_incoming(account: MailAccount, messages: list[Message]) -> None:
    """Filter the new copies of an Inbox, in the sync's transaction. Never raises."""
    try:
        _filter_incoming(account, messages)
    except Exception:
        logger.exception("spam filtering of account %s failed", account.pk)


def _filter_incoming(account: MailAccount, messages: list[Message]) -> None:
    if not messages:
        return
    done = set(
        Verdict.objects.filter(content__in=[m.content_id for m in messages]).values_list(
            "content_id", flat=True
        )
    )
    # A message seen before (back from Junk, a second copy) keeps its verdict: not filtered again.
    todo = [m for m in messages if m.content_id not in done]
    if not todo:
        return
    user = account.user
    domain = active_domain(account.email)
    rules = rules_for(user, domain)
    trust = trust_for(account.email, domain)
    classifier = classifier_of(user)
    dns_resolver = resolver()
    deadline = time.monotonic() + CALL_SECONDS
    for message in todo:
        if time.monotonic() > deadline:
            _record_error(message, "time-budget-spent")
            continue
        try:
            with transaction.atomic():
                _filter_one(account, message, rules, trust, classifier, dns_resolver)
        except Exception as exc:
            logger.warning("spam filtering of message %s failed", message.pk, exc_info=True)
            _record_error(message, f"{type(exc).__name__}: {exc}")


def _record_error(message: Message, error: str) -> None:
    try:
        with transaction.atomic():
            Verdict.objects.update_or_create(
                content_id=message.content_id,
                defaults={"action": Verdict.Action.ERROR, "error": error[:300]},
            )
    except Exception:
        logger.exception("could not record the spam verdict of message %s", message.pk)


def _filter_one(
    account: MailAccount,
    message: Message,
    rules: Rules,
    trust: Trust,
    classifier: Classifier,
    dns_resolver: dns.resolver.Resolver,
) -> None:
    raw = rawstore.read(message.content)
    auth, outcome, bayes = check(raw, rules.ruleset, trust, classifier, dns_resolver)
    data = outcome.to_dict()
    skipped = [Reason.of("rules-skipped", detail=note).to_dict() for note in rules.skipped]
    verdict = Verdict(
        content_id=message.content_id,
        auth=auth.to_dict(),
        score=outcome.score,
        threshold=outcome.threshold,
        classifier_score=bayes,
        matches=data["matches"],
        reason=data["reason"],
        errors=data["errors"] + skipped,
    )
    apply_outcome(account.user, message, outcome, verdict)
    verdict.save()


def apply_outcome(user: User, message: Message, outcome: Outcome, verdict: Verdict) -> None:
    """Do what the rules decided through mailboxes.actions, which queue each change for the
    IMAP server (not through the webmail's actions: no Undo record, and a move to Junk here is
    not the user reporting spam, which would train the classifier on its own verdicts). What
    cannot be done (no Junk folder, an unknown folder) is noted in the verdict."""
    ids = [message.pk]
    # Flags first: queued against the Inbox UID, they reach the server before the move.
    if outcome.mark_read:
        verdict.marked_read = bool(actions.set_flag(user, ids, "seen", True))
    if outcome.flag:
        verdict.flagged = bool(actions.set_flag(user, ids, "flagged", True))
    account_id = message.folder.account_id
    roles = {"junk": Folder.Role.JUNK, "trash": Folder.Role.TRASH}
    action, target = Verdict.Action.INBOX, None
    if outcome.destination in roles:
        action = Verdict.Action.JUNK if outcome.destination == "junk" else Verdict.Action.TRASH
        target = Folder.objects.filter(
            account_id=account_id, role=roles[outcome.destination]
        ).first()
    elif outcome.destination == "folder":
        action = Verdict.Action.FOLDER
        target = _folder_named(account_id, outcome.folder)
        verdict.folder = outcome.folder[:255]
    moved = actions.move_messages(user, ids, target) if target is not None else 0
    if action != Verdict.Action.INBOX and not moved:
        verdict.errors = [*verdict.errors, Reason.of("not-moved", folder=outcome.folder).to_dict()]
        action = Verdict.Action.INBOX
    verdict.action = action


def _folder_named(account_id: int, name: str) -> Folder | None:
    folders = Folder.objects.filter(account_id=account_id, selectable=True)
    return folders.filter(name=name).first() or folders.filter(name__iexact=name).first()


@dataclass(frozen=True)
class DryRun:
    auth: SenderAuth
    outcome: Outcome
    classifier_score: float | None
    skipped: tuple[str, ...]


def dry_run(user: User, raw: bytes, address: str) -> DryRun:
    """What the filter would find and do with this message for this user, as if it arrived
    at `address` (one of the user's accounts); nothing is stored or moved."""
    domain = active_domain(address)
    rules = rules_for(user, domain)
    auth, outcome, bayes = check(
        raw, rules.ruleset, trust_for(address, domain), classifier_of(user), resolver()
    )
    return DryRun(auth, outcome, bayes, rules.skipped)


# The classifier ----------------------------------------------------------------------------------


def _message_tokens(content: MessageContent) -> list[str] | None:
    try:
        raw = rawstore.read(content)
    except OSError:
        return None
    parsed: ParsedMessage = parse_message(raw[:MAX_TOKEN_BYTES])
    return tokens(parsed)


def learn(user: User, messages: Iterable[Message] | QuerySet[Message], is_spam: bool) -> int:
    """Teach the user's classifier that these messages are spam (Report spam) or not (Not
    spam); a message taught the other way before is untaught first. Returns how many were
    taught. Never raises: the move the user asked for matters more."""
    ids = [m.pk for m in messages]
    try:
        with transaction.atomic():
            return _learn(user, ids, is_spam)
    except Exception:
        logger.exception("training the classifier of user %s failed", user.pk)
        return 0


def _learn(user: User, message_ids: list[int], is_spam: bool) -> int:
    contents = list(
        MessageContent.objects.filter(copies__pk__in=message_ids, account__user=user).distinct()[
            :MAX_LEARN
        ]
    )
    if not contents:
        return 0
    ClassifierState.objects.get_or_create(user=user)
    state = ClassifierState.objects.select_for_update().get(user=user)
    classifier = Classifier.from_dict(state.state, max_tokens=CLASSIFIER_TOKENS)
    trained = {t.content_id: t for t in TrainedMessage.objects.filter(content__in=contents)}
    taught = 0
    for content in contents:
        before = trained.get(content.pk)
        if before is not None and before.is_spam == is_spam:
            continue
        found = _message_tokens(content)
        if found is None:
            continue
        if before is not None:
            classifier.untrain(found, is_spam=before.is_spam)
            before.is_spam = is_spam
            before.save(update_fields=["is_spam"])
        else:
            TrainedMessage.objects.create(content=content, is_spam=is_spam)
        classifier.train(found, is_spam=is_spam)
        taught += 1
    if taught:
        classifier.prune()
        state.state = classifier.to_dict()
        state.save(update_fields=["state", "updated_at"])
    return taught


@transaction.atomic
def rebuild_classifier(user: User) -> tuple[int, int]:
    """Start the user's classifier again from their Junk (spam) and Inbox (ham): the newest
    MAX_REBUILD of each. Returns how many spam and ham messages it was taught."""
    mine = Message.objects.filter(folder__account__user=user)
    spam_ids = list(
        mine.filter(folder__role=Folder.Role.JUNK)
        .order_by("-date", "-id")
        .values_list("content_id", flat=True)[:MAX_REBUILD]
    )
    ham_ids = list(
        mine.filter(folder__role=Folder.Role.INBOX)
        .order_by("-date", "-id")
        .values_list("content_id", flat=True)[:MAX_REBUILD]
    )
    both = set(spam_ids) & set(ham_ids)  # a copy in each: it says nothing
    classifier = Classifier(max_tokens=CLASSIFIER_TOKENS)
    TrainedMessage.objects.filter(content__account__user=user).delete()
    contents = MessageContent.objects.in_bulk(set(spam_ids) | set(ham_ids))
    rows = []
    counts = [0, 0]
    for ids, is_spam in ((spam_ids, True), (ham_ids, False)):
        for content_id in dict.fromkeys(ids):
            if content_id in both:
                continue
            found = _message_tokens(contents[content_id])
            if found is None:
                continue
            classifier.train(found, is_spam=is_spam)
            rows.append(TrainedMessage(content_id=content_id, is_spam=is_spam))
            counts[0 if is_spam else 1] += 1
    classifier.prune()
    TrainedMessage.objects.bulk_create(rows)
    ClassifierState.objects.update_or_create(user=user, defaults={"state": classifier.to_dict()})
    return counts[0], counts[1]
