"""The base pages: who sees what, in which language, under which security headers."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice
from pytest_django import DjangoAssertNumQueries

from accounts.models import User
from tests.conftest import add_authenticator, sign_in, totp_code

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parent.parent


def test_the_mailbox_sends_an_anonymous_visitor_to_sign_in(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"


def test_the_sign_in_page_renders_in_the_shell(client: Client) -> None:
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b'class="entrance"' in response.content
    assert b"/static/vendor/htmx-2.0.11.min.js" in response.content


def test_every_page_sends_a_csp_without_inline_script_or_eval(client: Client) -> None:
    policy = client.get("/accounts/login/")["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["script-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy


def test_a_signed_in_user_sees_the_mailbox_shell(
    alice_client: Client, alice: User, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    assert alice_client.get("/").url == "/mail/inbox/"
    alice_client.get("/mail/inbox/")  # the first visit records the session for the Security page
    # Then: session, user, preferences, folders; no folder, so no unread count, no labels and
    # no walk of the messages (mail.listing puts the folders' ids in their WHERE clauses).
    with django_assert_num_queries(4):
        response = alice_client.get("/mail/inbox/")
    assert response.status_code == 200
    assert alice.email.encode() in response.content
    assert b'<nav class="sidebar"' in response.content
    assert b"/admin/" not in response.content  # administration is for staff only


def test_staff_see_the_way_to_administration(client: Client, admin_user: User) -> None:
    device = add_authenticator(admin_user)
    sign_in(client, admin_user.email)
    client.post("/accounts/security/verify/", {"code": totp_code(device)})
    assert b'href="/admin/"' in client.get("/mail/inbox/").content


def test_the_browser_language_picks_french(alice_client: Client) -> None:
    response = alice_client.get(
        "/mail/inbox/", headers={"accept-language": "fr-FR,fr;q=0.9,en;q=0.5"}
    )
    assert '<html lang="fr">' in response.text
    assert "Toutes les boîtes de réception" in response.text
    assert "Se déconnecter" in response.text


def test_the_language_can_be_switched_and_stays_switched(client: Client) -> None:
    response = client.post("/i18n/setlang/", {"language": "fr", "next": "/accounts/login/"})
    assert response.status_code == 302
    assert response.cookies["django_language"].value == "fr"
    page = client.get("/accounts/login/", headers={"accept-language": "en"})
    assert '<html lang="fr">' in page.text
    assert "Connexion" in page.text  # allauth's own French catalogue
    assert 'value="en"' in page.text  # the switch now offers English


def test_the_french_catalogue_has_no_untranslated_or_fuzzy_message() -> None:
    result = subprocess.run(
        ["msgfmt", "--check", "--statistics", "-o", "/dev/null", "locale/fr/LC_MESSAGES/django.po"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "translated messages" in result.stderr
    assert "untranslated" not in result.stderr
    assert "fuzzy" not in result.stderr


def test_the_second_factor_pages_speak_french(client: Client, alice: User) -> None:
    device = add_authenticator(alice)
    client.cookies["django_language"] = "fr"
    sign_in(client, alice.email)
    page = client.get("/accounts/security/verify/")
    assert "Validation en deux étapes" in page.text
    wrong = f"{(int(totp_code(device)) + 1) % 1_000_000:06d}"
    refused = client.post("/accounts/security/verify/", {"code": wrong})
    assert "Ce code n’est pas valable" in refused.text
    # Skip django-otp's back-off after the wrong code; it is tested elsewhere.
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_count=0)
    client.post("/accounts/security/verify/", {"code": totp_code(device, 1)})
    security = client.get("/accounts/security/")
    assert "Où vous êtes connecté" in security.text
    assert "Activité de sécurité récente" in security.text
