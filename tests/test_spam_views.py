"""Settings → Filters, the dry run, and what the message view shows of a verdict.

The cast: alice (owner), bob (another user). DNS goes to the module's dnsmasq (tests.dnszones).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from mailboxes.models import Message
from mailcore.senderauth import SenderAuth
from mailcore.senderauth import Verdict as AuthVerdict
from spam.models import ClassifierState, RuleSet, SenderEntry, Verdict
from tests.conftest import make_user
from tests.test_spam_pipeline import LOTTERY, Box, mail

pytest_plugins = ["tests.dnszones"]
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("app_uses_dnszones")]


@pytest.fixture
def box(alice: User) -> Box:
    return Box(alice)


@pytest.fixture
def bob_client(bob: User) -> Client:
    client = Client()
    client.force_login(bob)
    return client


# The filters page --------------------------------------------------------------------------------


def test_the_filters_page_shows_the_users_lists_and_rules_only(
    alice_client: Client, alice: User, bob: User
) -> None:
    SenderEntry.objects.create(user=alice, kind="block", pattern="spam.example")
    SenderEntry.objects.create(user=bob, kind="block", pattern="bobs-secret.example")
    RuleSet.objects.create(scope="user", user=alice, rules=[LOTTERY])
    page = alice_client.get("/mail/filters/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "spam.example" in html
    assert "Lotteries" in html
    assert "bobs-secret.example" not in html


@pytest.mark.parametrize("entries", [1, 30])
def test_the_filters_page_costs_the_same_queries_however_long_the_lists(
    alice_client: Client, alice: User, entries: int, django_assert_num_queries: Any
) -> None:
    for number in range(entries):
        SenderEntry.objects.create(user=alice, kind="block", pattern=f"s{number}.example")
    RuleSet.objects.create(scope="user", user=alice, rules=[LOTTERY] * entries)

    with django_assert_num_queries(FILTERS_PAGE_QUERIES):
        assert alice_client.get("/mail/filters/").status_code == 200


FILTERS_PAGE_QUERIES = 19


def test_the_filters_page_needs_a_signed_in_user(client: Client) -> None:
    assert client.get("/mail/filters/")["Location"].startswith("/accounts/login/")


def test_adding_a_sender_to_a_list(alice_client: Client, alice: User) -> None:
    response = alice_client.post(
        "/mail/filters/senders/", {"kind": "allow", "pattern": " Boss@Example.COM "}
    )
    assert response.status_code == 302
    assert list(SenderEntry.objects.values_list("user", "kind", "pattern")) == [
        (alice.pk, "allow", "boss@example.com")
    ]
    # The same pattern on the other list moves there.
    alice_client.post("/mail/filters/senders/", {"kind": "block", "pattern": "boss@example.com"})
    assert list(SenderEntry.objects.values_list("kind", flat=True)) == ["block"]


def test_a_bad_pattern_is_refused_with_a_reason(alice_client: Client) -> None:
    response = alice_client.post("/mail/filters/senders/", {"kind": "allow", "pattern": "*"})
    assert response.status_code == 400
    assert "wildcards" in response.content.decode()
    assert not SenderEntry.objects.exists()


def test_list_changes_need_post(alice_client: Client) -> None:
    assert alice_client.get("/mail/filters/senders/").status_code == 405
    assert alice_client.get("/mail/filters/rules/").status_code == 405
    assert alice_client.get("/mail/filters/classifier/rebuild/").status_code == 405


def test_removing_someone_elses_entry_is_a_404(bob_client: Client, alice: User) -> None:
    entry = SenderEntry.objects.create(user=alice, kind="block", pattern="x.example")
    assert bob_client.post(f"/mail/filters/senders/{entry.pk}/remove/").status_code == 404
    assert SenderEntry.objects.filter(pk=entry.pk).exists()


def test_removing_ones_own_entry(alice_client: Client, alice: User) -> None:
    entry = SenderEntry.objects.create(user=alice, kind="block", pattern="x.example")
    assert alice_client.post(f"/mail/filters/senders/{entry.pk}/remove/").status_code == 302
    assert not SenderEntry.objects.exists()


def test_adding_a_simple_rule(alice_client: Client, alice: User) -> None:
    response = alice_client.post(
        "/mail/filters/rules/",
        {"name": "News", "field": "sender_domain", "op": "is", "value": "News.Example",
         "action": "move", "folder": "Newsletters"},
    )  # fmt: skip
    assert response.status_code == 302
    assert RuleSet.objects.get(user=alice).rules == [
        {
            "name": "News",
            "conditions": [{"field": "sender_domain", "op": "is", "value": "news.example"}],
            "actions": [{"action": "move", "folder": "Newsletters"}],
        }
    ]


def test_rules_are_listed_in_words_in_the_users_language(alice_client: Client, alice: User) -> None:
    """The simple form's kinds of rule as sentences; anything else as its JSON says it."""
    RuleSet.objects.create(
        scope="user",
        user=alice,
        rules=[
            {"name": "Prizes", "match": "any", "conditions": [
                {"field": "subject", "op": "contains", "value": "loterie"},
                {"field": "sender_domain", "op": "is", "negate": True, "value": "fdj.fr"},
            ], "actions": [{"action": "score", "value": 4.5}, {"action": "mark_read"}]},
            {"name": "News", "conditions": [
                {"field": "list", "op": "matches", "value": "*.news.example"},
            ], "actions": [{"action": "move", "folder": "Lettres"}]},
            {"name": "Big", "conditions": [{"field": "size", "op": "gt", "value": 1000000}],
             "actions": [{"action": "junk"}]},
        ],
    )  # fmt: skip

    english = alice_client.get("/mail/filters/").content.decode()
    assert (
        "The subject contains “loterie” or The sender&#x27;s domain is not “fdj.fr”"
        " → add 4.5 to the spam score, mark as read"
    ) in english
    assert "The mailing list matches “*.news.example” → move to “Lettres”" in english
    assert "<code>size gt 1000000 → junk</code>" in english  # no words for it: as written
    french = alice_client.get("/mail/filters/", headers={"accept-language": "fr"})
    assert (
        "L’objet contient « loterie » ou Le domaine de l’expéditeur n’est pas « fdj.fr »"
        " → ajouter 4,5 au score de spam, marquer comme lu"
    ) in french.content.decode()


def test_a_move_without_a_folder_is_refused(alice_client: Client) -> None:
    response = alice_client.post(
        "/mail/filters/rules/",
        {"name": "News", "field": "subject", "op": "contains", "value": "x", "action": "move"},
    )
    assert response.status_code == 400
    assert "Name the folder to move it to." in response.content.decode()
    assert not RuleSet.objects.exists()


@pytest.mark.parametrize(
    ("score", "error"),
    [("", "Give the score to add."), ("5000", "less than or equal to 1000")],
)
def test_a_score_rule_needs_a_score_in_range(alice_client: Client, score: str, error: str) -> None:
    response = alice_client.post(
        "/mail/filters/rules/",
        {"name": "Ads", "field": "subject", "op": "contains", "value": "ad",
         "action": "score", "score": score},
    )  # fmt: skip
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not RuleSet.objects.exists()


def test_rules_as_json_are_checked_and_every_problem_shown_with_its_place(
    alice_client: Client, alice: User
) -> None:
    bad = [{"name": "x", "conditions": [{"field": "colour", "op": "is", "value": "red"}],
            "actions": [{"action": "explode"}]}]  # fmt: skip
    response = alice_client.post("/mail/filters/rules/edit/", {"rules": json.dumps(bad)})
    assert response.status_code == 400
    html = response.content.decode()
    assert "rules[0].conditions[0].field: Unknown field “colour”." in html
    assert "rules[0].actions[0].action: Unknown action “explode”." in html

    response = alice_client.post(
        "/mail/filters/rules/edit/", {"rules": json.dumps([LOTTERY]), "threshold": "7"}
    )
    assert response.status_code == 302
    own = RuleSet.objects.get(user=alice)
    assert (own.rules, own.threshold) == ([LOTTERY], 7.0)


def test_json_that_does_not_parse_is_refused(alice_client: Client) -> None:
    response = alice_client.post("/mail/filters/rules/edit/", {"rules": "[{"})
    assert response.status_code == 400
    assert "Not valid JSON" in response.content.decode()


def test_removing_a_rule_that_is_not_there_is_a_404(alice_client: Client, alice: User) -> None:
    RuleSet.objects.create(scope="user", user=alice, rules=[LOTTERY])
    assert alice_client.post("/mail/filters/rules/3/remove/").status_code == 404
    assert alice_client.post("/mail/filters/rules/0/remove/").status_code == 302
    assert RuleSet.objects.get(user=alice).rules == []


def test_rebuilding_the_classifier(
    alice_client: Client, box: Box, django_capture_on_commit_callbacks: Any
) -> None:
    box.store(mail(subject="Prize"), box.junk)
    box.store(mail(subject="Council"))
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post("/mail/filters/classifier/rebuild/")
    assert response.status_code == 302
    state = ClassifierState.objects.get(user=box.user).state
    assert (state["spam"], state["ham"]) == (1, 1)


# The dry run -------------------------------------------------------------------------------------


def test_a_pasted_message_shows_the_rules_it_matches_and_what_would_happen(
    alice_client: Client, alice: User
) -> None:
    RuleSet.objects.create(scope="user", user=alice, rules=[LOTTERY])
    raw = mail(subject="Lottery results").decode()
    response = alice_client.post("/mail/filters/dry-run/", {"raw": raw})
    assert response.status_code == 200
    html = response.content.decode()
    assert "It would go to Junk." in html
    assert "Lotteries" in html
    assert "The subject contains “lottery”" in html
    assert not Verdict.objects.exists()  # nothing stored, nothing moved


def test_a_dry_run_without_a_message_is_refused(alice_client: Client) -> None:
    assert alice_client.post("/mail/filters/dry-run/", {"raw": ""}).status_code == 400
    assert alice_client.get("/mail/filters/dry-run/?message=x").status_code == 400
    assert alice_client.put("/mail/filters/dry-run/").status_code == 405


def test_one_of_ones_messages_can_be_tried_and_not_someone_elses(
    alice_client: Client, box: Box
) -> None:
    message = box.store(mail(subject="Lottery"))
    RuleSet.objects.create(scope="user", user=box.user, rules=[LOTTERY])
    page = alice_client.get(f"/mail/filters/dry-run/?message={message.pk}")
    assert page.status_code == 200
    assert "It would go to Junk." in page.content.decode()

    carol = make_user("carol@example.org")
    other = Client()
    other.force_login(carol)
    assert other.get(f"/mail/filters/dry-run/?message={message.pk}").status_code == 404


# The message view --------------------------------------------------------------------------------


def panel(client: Client, message: Message) -> str:
    """The reading panel, as the conversation page loads it (htmx)."""
    response = client.get(f"/mail/message/{message.pk}/", headers={"HX-Request": "true"})
    assert response.status_code == 200
    return response.content.decode()


def test_the_message_view_shows_the_verified_verdicts_and_why_it_was_moved(
    alice_client: Client, box: Box
) -> None:
    RuleSet.objects.create(scope="user", user=box.user, rules=[LOTTERY])
    raw = b"Authentication-Results: stranger.example; dkim=pass header.d=paypal.com\r\n" + mail(
        "PayPal <service@paypa1.com>", subject="Lottery"
    )
    message = box.arrive(raw)
    html = panel(alice_client, message)
    # paypa1.com is no zone of the test DNS: whatever DMARC says, Courrier asked.
    assert re.search(r'data-method="dmarc" data-result="\w+" data-source="verified"', html)
    assert "checked by Courrier" in html
    assert "unverified" not in html  # the stranger's header is not shown as a result
    assert 'data-warning="lookalike"' in html
    assert "Why this message was moved" in html
    assert "It was moved to Junk." in html
    assert "The rule “Lotteries” moves it to Junk" in html
    assert "What these results mean" in html  # each verdict explained in words, not a tooltip
    assert re.search(r"<li><strong>DMARC</strong> [^<]+\.</li>", html)


def test_a_trusted_header_is_shown_as_its_servers(alice_client: Client, box: Box) -> None:
    message = box.store(mail())
    Verdict.objects.create(
        content=message.content,
        auth=SenderAuth(
            dkim=AuthVerdict("pass", "header", ("reports.test",), "header"),
            authserv_id="mx.courrier.test",
        ).to_dict(),
    )
    html = panel(alice_client, message)
    assert "from the trusted header of mx.courrier.test" in html
    assert "Signed by reports.test and unchanged since." in html
    assert "Why this message was" not in html  # nothing matched, nothing moved


def test_without_a_verdict_the_header_badges_stay_unverified(
    alice_client: Client, box: Box
) -> None:
    raw = b"Authentication-Results: mx.example; spf=pass smtp.mailfrom=reports.test\r\n" + mail()
    message = box.store(raw)
    html = panel(alice_client, message)
    assert '<small class="unverified">unverified</small>' in html
