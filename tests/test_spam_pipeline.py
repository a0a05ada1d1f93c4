"""spam.pipeline on stored rows, without a sync: verdicts, rules of every scope, the lists, the
classifier, and the outcome applied through mailboxes.actions (queued for the server).

DNS is real: the module's dnsmasq (tests.dnszones) serves the standard test zones, where
good.test publishes DKIM keys and a DMARC policy of p=reject, and reports.test has no DMARC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from accounts.models import User
from domains.models import Domain
from mail.models import UndoableAction
from mailboxes import sync
from mailboxes.models import Folder, MailAccount, Message, PendingAction
from mailcore.dkimkeys import sign
from spam import pipeline
from spam.models import (
    ClassifierState,
    RuleSet,
    SenderEntry,
    TrainedMessage,
    TrustedServer,
    Verdict,
)

pytest.register_assert_rewrite("tests.dnszones")
from tests.dnszones import Zones  # noqa: E402 -- after register_assert_rewrite, on purpose

pytest_plugins = ["tests.dnszones"]
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("app_uses_dnszones")]

MX = "mx.courrier.test"


class Box:
    """Alice's account at ecole.test, its folders, and messages stored as a sync stores them."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.account = MailAccount.objects.create(
            user=user,
            email="alice@ecole.test",
            incoming_host="127.0.0.1",
            username="alice@ecole.test",
            password="x",
            smtp_host="127.0.0.1",
        )
        make = Folder.objects.create
        self.inbox = make(account=self.account, name="INBOX", role="inbox", uidvalidity=1)
        self.junk = make(account=self.account, name="Junk", role="junk", uidvalidity=1)
        self.trash = make(account=self.account, name="Trash", role="trash", uidvalidity=1)
        self.invoices = make(account=self.account, name="Invoices", uidvalidity=1)
        self.uid = 0

    def store(self, raw: bytes, folder: Folder | None = None) -> Message:
        self.uid += 1
        content = sync.store_content(self.account, raw)
        return Message.objects.create(
            folder=folder or self.inbox,
            content=content,
            uidvalidity=1,
            uid=self.uid,
            date=content.date or timezone.now(),
        )

    def arrive(self, raw: bytes) -> Message:
        message = self.store(raw)
        pipeline.filter_incoming(self.account, [message])
        message.refresh_from_db()
        return message


@pytest.fixture
def box(alice: User) -> Box:
    return Box(alice)


def mail(
    sender: str = "Dave <dave@reports.test>",
    subject: str = "Lunch on Friday",
    body: str = "Shall we meet at noon?\n",
    **headers: str,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "alice@ecole.test"
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="reports.test")
    message["Date"] = format_datetime(datetime(2026, 3, 1, tzinfo=UTC))
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message.as_bytes()


def own_rules(user: User, rules: list[dict[str, Any]], threshold: float | None = None) -> None:
    RuleSet.objects.create(scope="user", user=user, rules=rules, threshold=threshold)


LOTTERY = {
    "name": "Lotteries",
    "conditions": [{"field": "subject", "op": "contains", "value": "lottery"}],
    "actions": [{"action": "junk"}],
}


# Moving and recording why ------------------------------------------------------------------------


def test_a_rule_moves_a_new_message_to_junk_and_queues_the_move_for_the_server(box: Box) -> None:
    own_rules(box.user, [LOTTERY])
    message = box.arrive(mail(subject="You won the lottery"))

    assert message.folder == box.junk
    assert message.uid is None  # the new UID is learnt when Junk syncs
    move = PendingAction.objects.get(kind="move")
    assert (move.folder, move.uid, move.target) == (box.inbox, 1, box.junk)
    verdict = Verdict.objects.get(content=message.content)
    assert verdict.action == "junk"
    assert [m["name"] for m in verdict.matches] == ["Lotteries"]
    assert verdict.matches[0]["reasons"][0]["params"]["found"] == "lottery"
    assert verdict.reason == {"code": "rule-junk", "params": {"rule": "Lotteries", "folder": ""}}


def test_the_filters_own_move_neither_trains_the_classifier_nor_offers_an_undo(box: Box) -> None:
    """Only the user's Report spam teaches: learning from its own verdicts, the classifier
    would confirm whatever it once got wrong."""
    own_rules(box.user, [LOTTERY])
    box.arrive(mail(subject="You won the lottery"))

    assert not TrainedMessage.objects.exists()
    assert not ClassifierState.objects.filter(user=box.user).exists()
    assert not UndoableAction.objects.filter(user=box.user).exists()


def test_a_message_no_rule_files_stays_in_the_inbox_with_its_verdict(box: Box) -> None:
    own_rules(box.user, [LOTTERY])
    message = box.arrive(mail())
    assert message.folder == box.inbox
    assert not PendingAction.objects.exists()
    verdict = Verdict.objects.get(content=message.content)
    assert verdict.action == "inbox"
    assert verdict.matches == []
    assert verdict.auth["dmarc"]["result"] == "none"  # reports.test publishes no DMARC
    assert verdict.auth["dmarc"]["source"] == "verified"


def test_flags_are_queued_before_the_move_to_a_named_folder(box: Box) -> None:
    own_rules(
        box.user,
        [
            {
                "name": "Bills",
                "conditions": [{"field": "subject", "op": "contains", "value": "invoice"}],
                "actions": [
                    {"action": "mark_read"},
                    {"action": "flag"},
                    {"action": "move", "folder": "invoices"},
                ],
            }
        ],
    )
    message = box.arrive(mail(subject="Invoice 42"))
    assert message.folder == box.invoices
    assert message.seen
    assert message.flagged
    kinds = list(PendingAction.objects.values_list("kind", "folder__name", "flags"))
    assert kinds == [
        ("add_flags", "INBOX", ["\\Seen"]),
        ("add_flags", "INBOX", ["\\Flagged"]),
        ("move", "INBOX", []),
    ]
    verdict = Verdict.objects.get(content=message.content)
    assert (verdict.action, verdict.folder, verdict.marked_read, verdict.flagged) == (
        "folder",
        "invoices",
        True,
        True,
    )


def test_a_move_to_a_missing_folder_leaves_the_message_and_says_so(box: Box) -> None:
    own_rules(
        box.user,
        [
            {
                "name": "Elsewhere",
                "conditions": [{"field": "subject", "op": "contains", "value": "lunch"}],
                "actions": [{"action": "move", "folder": "Nowhere"}],
            }
        ],
    )
    message = box.arrive(mail())
    assert message.folder == box.inbox
    verdict = Verdict.objects.get(content=message.content)
    assert verdict.action == "inbox"
    assert verdict.errors[-1]["code"] == "not-moved"


def test_a_message_seen_before_is_not_filtered_again(box: Box) -> None:
    own_rules(box.user, [LOTTERY])
    message = box.arrive(mail(subject="Lottery"))
    # The user said "Not spam": back in the Inbox, where the sync may find it as new.
    Message.objects.filter(pk=message.pk).update(folder=box.inbox, uid=7)
    PendingAction.objects.all().delete()
    pipeline.filter_incoming(box.account, [Message.objects.get(pk=message.pk)])
    assert Message.objects.get(pk=message.pk).folder == box.inbox
    assert not PendingAction.objects.exists()


def test_a_failure_records_an_error_and_leaves_the_message_in_the_inbox(box: Box) -> None:
    own_rules(box.user, [LOTTERY])
    message = box.store(mail(subject="Lottery"))
    default_storage.delete(message.content.raw_path)  # the bytes are gone
    pipeline.filter_incoming(box.account, [message])  # does not raise
    message.refresh_from_db()
    assert message.folder == box.inbox
    verdict = Verdict.objects.get(content=message.content)
    assert verdict.action == "error"
    assert "FileNotFoundError" in verdict.error


def test_an_invalid_stored_rule_set_is_left_out_and_noted(box: Box) -> None:
    RuleSet.objects.create(scope="global", rules=[{"name": "broken", "conditions": "x"}])
    own_rules(box.user, [LOTTERY])
    message = box.arrive(mail(subject="Lottery"))
    assert message.folder == box.junk
    verdict = Verdict.objects.get(content=message.content)
    assert verdict.errors[0]["code"] == "rules-skipped"
    assert verdict.errors[0]["params"]["detail"].startswith("global:")


# Scopes and lists --------------------------------------------------------------------------------

SCORE_WORDS = {
    "name": "Pushy words",
    "conditions": [{"field": "body", "op": "contains", "value": "act now"}],
    "actions": [{"action": "score", "value": 3}],
}


def test_scores_add_up_across_scopes_and_the_most_specific_threshold_decides(box: Box) -> None:
    domain = Domain.objects.create(name="ecole.test")
    RuleSet.objects.create(scope="global", rules=[SCORE_WORDS], threshold=10)
    RuleSet.objects.create(
        scope="domain",
        domain=domain,
        rules=[{**SCORE_WORDS, "name": "Pushy (domain)"}],
        threshold=6,
    )
    message = box.arrive(mail(body="Act now!\n"))
    verdict = Verdict.objects.get(content=message.content)
    assert (verdict.score, verdict.threshold, verdict.action) == (6.0, 6.0, "junk")
    assert verdict.reason["code"] == "threshold"
    assert message.folder == box.junk

    own_rules(box.user, [], threshold=7)
    second = box.arrive(mail(body="Act now, again!\n"))
    assert second.folder == box.inbox
    assert Verdict.objects.get(content=second.content).threshold == 7.0


def test_another_users_rules_do_not_apply(box: Box, bob: User) -> None:
    own_rules(bob, [LOTTERY])
    assert box.arrive(mail(subject="Lottery")).folder == box.inbox


def test_blocked_senders_go_to_junk_unless_allowed(box: Box) -> None:
    SenderEntry.objects.create(user=box.user, kind="block", pattern="reports.test")
    SenderEntry.objects.create(user=box.user, kind="allow", pattern="boss@reports.test")
    assert box.arrive(mail("Spammer <promo@news.reports.test>")).folder == box.junk
    assert box.arrive(mail("Boss <boss@reports.test>", subject="Hi")).folder == box.inbox


def test_an_allowed_sender_cancels_the_score_unless_dmarc_fails(box: Box) -> None:
    RuleSet.objects.create(
        scope="global", rules=[{**SCORE_WORDS, "actions": [{"action": "score", "value": 9}]}]
    )
    SenderEntry.objects.create(user=box.user, kind="allow", pattern="*@reports.test")
    SenderEntry.objects.create(user=box.user, kind="allow", pattern="good.test")
    assert box.arrive(mail(body="Act now\n")).folder == box.inbox
    # good.test publishes p=reject and this message is not signed: its From proves nothing.
    forged = box.arrive(mail("Good <ceo@good.test>", body="Act now\n"))
    assert forged.folder == box.junk
    assert Verdict.objects.get(content=forged.content).auth["dmarc"]["result"] == "fail"


# Sender authentication ---------------------------------------------------------------------------


def test_a_signed_message_passes_dkim_and_dmarc_checked_by_courrier(
    box: Box, mail_zones: Zones
) -> None:
    key = mail_zones.keys["s1._domainkey.good.test"]
    raw = sign(
        mail("Good <news@good.test>"),
        domain="good.test",
        selector="s1",
        private_pem=key.private_pem,
    )
    verdict = Verdict.objects.get(content=box.arrive(raw).content)
    assert verdict.auth["dkim"] == {
        "result": "pass",
        "reason": "signature-verified",
        "domains": ["good.test"],
        "source": "verified",
    }
    assert verdict.auth["dmarc"]["result"] == "pass"


def test_an_authentication_results_header_is_believed_only_from_a_trusted_server(box: Box) -> None:
    forged = (
        f"Authentication-Results: {MX}; dkim=pass header.d=good.test; dmarc=pass "
        "header.from=good.test\r\n"
    ).encode() + mail("Good <ceo@good.test>")
    verdict = Verdict.objects.get(content=box.arrive(forged).content)
    assert verdict.auth["dmarc"]["result"] == "fail"  # checked here: not signed
    assert verdict.auth["dmarc"]["source"] == "verified"

    TrustedServer.objects.create(authserv_id=MX)
    received = (
        f"Authentication-Results: {MX}; spf=pass smtp.mailfrom=good.test; "
        "dkim=pass header.d=good.test; dmarc=pass header.from=good.test\r\n"
        "Received: from mail.good.test (mail.good.test [192.0.2.25])\r\n"
        f" by {MX} (Postfix) with ESMTPS id 1; Sun, 1 Mar 2026 00:00:00 +0000\r\n"
    ).encode() + mail("Good <ceo@good.test>", subject="Trusted")
    verdict = Verdict.objects.get(content=box.arrive(received).content)
    assert verdict.auth["dmarc"] == {
        "result": "pass",
        "reason": "header",
        "domains": ["good.test"],
        "source": "header",
    }
    assert verdict.auth["authserv_id"] == MX


def test_a_lookalike_sender_is_flagged(box: Box) -> None:
    message = box.arrive(mail("PayPal <service@paypa1.com>", subject="Your account"))
    verdict = Verdict.objects.get(content=message.content)
    assert ["confusable-domain", "paypal.com"] in verdict.auth["flags"]
    # The default rules score an imitation at 5: Junk.
    assert message.folder == box.junk


# The classifier ----------------------------------------------------------------------------------

SPAMMY = "Cheap pills, casino bonus, crypto giveaway: claim your prize today\n"
HAMMY = "The minutes of the school council meeting are attached for review\n"


def teach(box: Box, count: int = 6) -> None:
    spam = [box.store(mail(subject=f"Prize {n}", body=SPAMMY), box.junk) for n in range(count)]
    ham = [box.store(mail(subject=f"Council {n}", body=HAMMY)) for n in range(count)]
    assert pipeline.learn(box.user, spam, is_spam=True) == count
    assert pipeline.learn(box.user, ham, is_spam=False) == count


def test_learning_changes_the_classifier_and_its_score_joins_the_rules(box: Box) -> None:
    teach(box)
    state = ClassifierState.objects.get(user=box.user).state
    assert (state["spam"], state["ham"]) == (6, 6)
    message = box.arrive(mail(subject="Prize waiting", body=SPAMMY))
    verdict = Verdict.objects.get(content=message.content)
    assert verdict.classifier_score > 0.9
    assert "The classifier says spam" in [m["name"] for m in verdict.matches]
    assert message.folder == box.junk
    good = box.arrive(mail(subject="Council notes", body=HAMMY))
    assert Verdict.objects.get(content=good.content).classifier_score < 0.1
    assert good.folder == box.inbox


def test_changing_ones_mind_untrains_first_and_twice_the_same_way_does_nothing(box: Box) -> None:
    message = box.store(mail(subject="Prize", body=SPAMMY))
    assert pipeline.learn(box.user, [message], is_spam=True) == 1
    assert pipeline.learn(box.user, [message], is_spam=True) == 0
    assert pipeline.learn(box.user, [message], is_spam=False) == 1
    state = ClassifierState.objects.get(user=box.user).state
    assert (state["spam"], state["ham"]) == (0, 1)
    assert TrainedMessage.objects.get(content=message.content).is_spam is False


def test_nobody_learns_from_another_users_messages(box: Box, bob: User) -> None:
    message = box.store(mail(subject="Prize", body=SPAMMY))
    assert pipeline.learn(bob, [message], is_spam=True) == 0
    assert not ClassifierState.objects.filter(user=bob).exists()


def test_rebuilding_starts_again_from_junk_and_inbox(box: Box) -> None:
    for n in range(3):
        box.store(mail(subject=f"Prize {n}", body=SPAMMY), box.junk)
    for n in range(2):
        box.store(mail(subject=f"Council {n}", body=HAMMY))
    ClassifierState.objects.create(user=box.user, state={"version": 1, "spam": 99, "ham": 0})
    assert pipeline.rebuild_classifier(box.user) == (3, 2)
    state = ClassifierState.objects.get(user=box.user).state
    assert (state["spam"], state["ham"]) == (3, 2)
    assert TrainedMessage.objects.filter(is_spam=True).count() == 3


# Rules of lists ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "ok"),
    [
        ("alice@example.com", True),
        ("*@news.example.com", True),
        ("example.com", True),
        ("exa?ple.*", True),
        ("*", False),
        ("a@b@c", False),
        ("with space.com", False),
        ("", False),
    ],
)
def test_list_patterns(pattern: str, ok: bool) -> None:
    assert pipeline.valid_pattern(pattern) is ok


def test_many_list_entries_compile_into_valid_rules() -> None:
    rules = pipeline.list_rules([f"a{n}@x.test" for n in range(250)], ["spam.test"])
    from mailcore.rules import check_rules

    assert check_rules(rules) == []
