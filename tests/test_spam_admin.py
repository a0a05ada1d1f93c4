"""Rule sets and trusted servers in the admin, and `manage.py spamquality`.

The cast: root (superuser), dora (staff, administers ecole.test), mairie.test (not dora's).
"""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.models import User
from domains.models import Domain
from spam.models import RuleSet, TrustedServer
from tests.conftest import add_authenticator, make_user, sign_in, totp_code

pytestmark = pytest.mark.django_db

CORPUS = Path(__file__).parent / "fixtures" / "spam"


def signed_in(user: User) -> Client:
    """A browser of ``user`` through the sign-in page and the second-factor step."""
    device = add_authenticator(user)
    client = Client()
    sign_in(client, user.email)
    assert client.post("/accounts/security/verify/", {"code": totp_code(device)}).status_code == 302
    return client


@pytest.fixture
def ecole() -> Domain:
    return Domain.objects.create(name="ecole.test")


@pytest.fixture
def mairie() -> Domain:
    return Domain.objects.create(name="mairie.test")


@pytest.fixture
def root() -> Client:
    return signed_in(make_user("root@example.org", is_superuser=True, is_staff=True))


@pytest.fixture
def dora(ecole: Domain) -> Client:
    user = make_user("dora@example.org", is_staff=True)
    ecole.admins.add(user)
    return signed_in(user)


def form(scope: str, rules: object, **extra: object) -> dict[str, object]:
    return {"scope": scope, "rules": json.dumps(rules), "enabled": "on", **extra}


def test_an_admin_sees_every_problem_of_the_rules_with_its_place(root: Client) -> None:
    bad = [{"name": "x", "conditions": [{"field": "subject", "op": "regex", "value": "(a"}],
            "actions": [{"action": "move"}]}]  # fmt: skip
    response = root.post("/admin/spam/ruleset/add/", form("global", bad))
    assert response.status_code == 200
    html = response.content.decode()
    assert "rules[0].conditions[0].value: Invalid pattern" in html
    assert "rules[0].actions[0].folder: Invalid value: a folder name." in html
    assert not RuleSet.objects.exists()


def test_an_admin_writes_everyones_rules(root: Client) -> None:
    rules = [{"name": "Exe", "conditions": [{"field": "attachment", "op": "group",
              "value": "executables"}], "actions": [{"action": "junk"}]}]  # fmt: skip
    response = root.post("/admin/spam/ruleset/add/", form("global", rules, threshold="6"))
    assert response.status_code == 302
    saved = RuleSet.objects.get(scope="global")
    assert (saved.rules, saved.threshold) == (rules, 6.0)


def test_a_scope_names_its_owner(root: Client, ecole: Domain) -> None:
    response = root.post("/admin/spam/ruleset/add/", form("domain", []))
    assert "Rules for a domain name the domain, and no user." in response.content.decode()
    response = root.post("/admin/spam/ruleset/add/", form("domain", [], domain=ecole.pk))
    assert response.status_code == 302


def test_a_domain_admin_manages_only_their_domains_rules(
    dora: Client, ecole: Domain, mairie: Domain
) -> None:
    theirs = RuleSet.objects.create(scope="domain", domain=mairie, rules=[])
    RuleSet.objects.create(scope="global", rules=[])
    listing = dora.get("/admin/spam/ruleset/")
    assert listing.status_code == 200
    assert "mairie.test" not in listing.content.decode()
    assert dora.get(f"/admin/spam/ruleset/{theirs.pk}/change/").status_code == 404

    refused = dora.post("/admin/spam/ruleset/add/", form("global", []))
    assert "You can only write rules for your domains." in refused.content.decode()
    other = dora.post("/admin/spam/ruleset/add/", form("domain", [], domain=mairie.pk))
    assert other.status_code == 200  # not a choice for dora
    assert (
        dora.post("/admin/spam/ruleset/add/", form("domain", [], domain=ecole.pk)).status_code
        == 302
    )
    assert RuleSet.objects.filter(domain=ecole).exists()


def test_a_domain_admin_trusts_servers_for_their_domains_only(
    dora: Client, root: Client, ecole: Domain
) -> None:
    response = dora.post("/admin/spam/trustedserver/add/", {"authserv_id": "MX.ecole.test"})
    assert response.status_code == 200  # a domain is required
    response = dora.post(
        "/admin/spam/trustedserver/add/", {"authserv_id": "MX.ecole.test", "domain": ecole.pk}
    )
    assert response.status_code == 302
    assert TrustedServer.objects.get().authserv_id == "mx.ecole.test"
    assert (
        root.post("/admin/spam/trustedserver/add/", {"authserv_id": "mx.courrier.test"}).status_code
        == 302
    )
    assert TrustedServer.objects.get(domain=None).host_names() == ["mx.courrier.test"]


def test_a_user_without_a_domain_sees_no_spam_admin(alice: User) -> None:
    alice.is_staff = True
    alice.save()
    client = signed_in(alice)
    assert client.get("/admin/spam/ruleset/").status_code == 403


# manage.py spamquality ---------------------------------------------------------------------------


def test_the_quality_command_prints_precision_recall_and_the_misclassified() -> None:
    out = StringIO()
    call_command("spamquality", "--corpus", str(CORPUS), stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"corpus: {CORPUS} (")
    precision = float(lines[1].removeprefix("precision: "))
    recall = float(lines[2].removeprefix("recall: "))
    assert precision >= 0.9
    assert recall >= 0.8
    assert lines[3].startswith("spam to Junk: ")
    named = [line for line in lines[4:] if line.startswith(("missed spam: ", "ham sent to Junk: "))]
    assert len(named) == len(lines) - 4


def test_the_quality_command_uses_the_sites_rules(tmp_path: Path) -> None:
    RuleSet.objects.create(scope="global", rules=[], threshold=1000)
    out = StringIO()
    call_command("spamquality", "--corpus", str(CORPUS), "--json", stdout=out)
    result = json.loads(out.getvalue())
    assert result["true_positives"] == 0  # nothing can reach the threshold
    assert result["recall"] == 0.0


def test_the_quality_command_refuses_a_folder_without_a_corpus(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="needs spam/ and ham/"):
        call_command("spamquality", "--corpus", str(tmp_path))
