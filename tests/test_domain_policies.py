"""A managed domain's policies: sign-up for its addresses, a second factor, attachment size."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import User
from domains.models import Domain
from domains.policies import attachment_limit_for
from tests.conftest import make_user, sign_in
from tests.test_sign_in import set_policy, signup

pytestmark = pytest.mark.django_db


def test_a_domain_can_open_sign_up_for_its_addresses_only(client: Client) -> None:
    set_policy(signup_open=False)
    Domain.objects.create(name="ecole.test", signup_allowed=True)

    refused = signup(client, "mallory@example.org")
    welcome = signup(Client(), "erin@ecole.test")

    assert "only for the addresses of some domains" in refused.content.decode()
    assert not User.objects.filter(email="mallory@example.org").exists()
    assert welcome.status_code == 302
    assert User.objects.filter(email="erin@ecole.test").exists()


def test_a_domain_can_require_a_second_factor_of_its_users(client: Client) -> None:
    make_user("erin@ecole.test")
    Domain.objects.create(name="ecole.test", mfa_required=True)
    sign_in(client, "erin@ecole.test")

    response = client.get("/mail/inbox/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/security/authenticator/add/")


def test_a_domain_can_lower_the_attachment_limit() -> None:
    Domain.objects.create(name="ecole.test", max_attachments_mb=5)
    assert attachment_limit_for("erin@ecole.test", 25 * 2**20) == 5 * 2**20
    assert attachment_limit_for("erin@example.org", 25 * 2**20) == 25 * 2**20
    Domain.objects.create(name="xn--cole-9oa.test", max_attachments_mb=2)
    assert attachment_limit_for("erin@école.test", 25 * 2**20) == 2 * 2**20


def test_adding_an_account_at_a_managed_domain_proposes_its_servers() -> None:
    from mailboxes.services import suggested_settings

    Domain.objects.create(
        name="ecole.test",
        incoming_host="imap.ecole.test",
        incoming_port=993,
        smtp_host="smtp.ecole.test",
        smtp_port=465,
    )

    initial = suggested_settings("erin@ecole.test")

    assert (initial["incoming_host"], initial["incoming_port"]) == ("imap.ecole.test", 993)
    assert (initial["smtp_host"], initial["smtp_port"]) == ("smtp.ecole.test", 465)
    assert initial["username"] == "erin@ecole.test"
