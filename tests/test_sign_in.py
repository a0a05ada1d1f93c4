"""Sign-up, sign-in, password reset, policy and abuse limits around them."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client, override_settings

from accounts.models import SecurityEvent, User
from core.models import SiteSettings
from core.services import save_site_settings
from tests.conftest import PASSWORD, add_authenticator, make_user, sign_in, totp_code
from tests.mailstack import MailStack

pytestmark = pytest.mark.django_db
STRONG_PASSWORD = "larch-quiver-omelette-87"


def signup(client: Client, email: str, password: str = STRONG_PASSWORD):
    return client.post(
        "/accounts/signup/", {"email": email, "password1": password, "password2": password}
    )


def set_policy(**fields: bool) -> None:
    current = SiteSettings.load()
    for name, value in fields.items():
        setattr(current, name, value)
    save_site_settings(current, list(fields))


def without_csrf(html: str) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html).replace(
        re.search(r'"X-CSRFToken": "[^"]+"', html).group(0) if "X-CSRFToken" in html else "", ""
    )


# Sign-up -----------------------------------------------------------------------------------------


def test_sign_up_asks_to_confirm_the_address_by_mail(client: Client) -> None:
    response = signup(client, "carol@example.org")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"
    assert len(mail.outbox) == 1
    link = re.search(r"http://testserver(/accounts/confirm-email/[^\s]+/)", mail.outbox[0].body)
    assert link is not None
    # Until confirmed, signing in leads back to the confirmation notice.
    assert sign_in(client, "carol@example.org", STRONG_PASSWORD)["Location"].startswith(
        "/accounts/confirm-email/"
    )
    client.post(link.group(1))
    assert sign_in(client, "carol@example.org", STRONG_PASSWORD)["Location"] == "/"


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short1", "This password is too short"),
        ("12345678901234", "This password is entirely numeric"),
        ("password1234", "This password is too common"),
        ("carolcarol2024", "too easy to guess"),  # built from the address
        ("P@ssw0rd2024!", "too easy to guess"),  # a leaked password, disguised
        ("Jennifer1985!", "too easy to guess"),  # a name and a year
    ],
)
def test_weak_passwords_are_refused_with_the_reason(
    client: Client, password: str, message: str
) -> None:
    page = signup(client, "carol@example.org", password)
    assert page.status_code == 200
    assert message in page.text
    assert not User.objects.filter(email="carol@example.org").exists()


def test_weak_password_reasons_come_in_french(client: Client) -> None:
    page = client.post(
        "/accounts/signup/",
        {"email": "carol@example.org", "password1": "password1234", "password2": "password1234"},
        headers={"accept-language": "fr"},
    )
    assert "Ce mot de passe est trop courant" in page.text
    assert "trop facile à deviner" in page.text


def test_invite_only_mode_closes_sign_up(client: Client) -> None:
    set_policy(signup_open=False)
    page = client.get("/accounts/signup/")
    assert page.status_code == 200
    assert "Sign Up Closed" in page.text
    signup(client, "carol@example.org")
    assert not User.objects.filter(email="carol@example.org").exists()


# Sign-in ---------------------------------------------------------------------------------------


def test_signing_in_rotates_the_session_key(client: Client, alice: User) -> None:
    client.get("/accounts/login/")
    client.session.save()
    before = client.session.session_key
    assert sign_in(client, alice.email)["Location"] == "/"
    assert client.session.session_key != before
    assert SecurityEvent.objects.filter(user=alice, kind="signed_in").count() == 1


def test_unknown_and_known_addresses_get_the_same_answer(client: Client, alice: User) -> None:
    known = sign_in(client, alice.email, "wrong password here")
    unknown = sign_in(client, "nobody@example.org", "wrong password here")
    assert known.status_code == unknown.status_code == 200
    assert without_csrf(known.text).replace(alice.email, "X") == without_csrf(unknown.text).replace(
        "nobody@example.org", "X"
    )
    reset_known = client.post("/accounts/password/reset/", {"email": alice.email})
    reset_unknown = client.post("/accounts/password/reset/", {"email": "nobody@example.org"})
    assert reset_known.status_code == reset_unknown.status_code == 302
    assert reset_known["Location"] == reset_unknown["Location"]


def test_failed_sign_ins_are_logged_without_the_password(client: Client, alice: User) -> None:
    sign_in(client, alice.email, "hunter2-wrong")
    sign_in(client, "nobody@example.org", "hunter2-wrong")
    # A password typed into the address box is refused by the form and never stored.
    assert "valid email address" in sign_in(client, "hunter2-in-the-wrong-box", "x").text
    events = list(SecurityEvent.objects.filter(kind="sign_in_failed").order_by("id"))
    assert [(e.user, e.attempted_email) for e in events] == [
        (alice, ""),
        (None, "nobody@example.org"),
    ]
    for event in SecurityEvent.objects.all():
        assert "hunter2" not in " ".join(str(v) for v in vars(event).values())


def test_failed_sign_ins_for_one_account_are_limited_then_recover(
    client: Client, alice: User, clock: Callable[[float], None]
) -> None:
    for _ in range(5):
        assert sign_in(client, alice.email, "wrong password here").status_code == 200
    refused = sign_in(client, alice.email, PASSWORD)
    assert refused.status_code == 429
    assert refused["Retry-After"] == "300"
    assert "Too many failed sign-in attempts. Try again in 5 minutes." in refused.text
    # Another account from the same address is not locked by this one.
    assert sign_in(Client(), "bob@example.org", "wrong password here").status_code == 200

    clock(301)
    assert sign_in(client, alice.email, PASSWORD)["Location"] == "/"


def test_sign_in_attempts_from_one_address_are_limited(client: Client, alice: User) -> None:
    for number in range(10):
        sign_in(client, f"someone{number}@example.org", "wrong password here")
    refused = sign_in(client, alice.email, PASSWORD)
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    # A client from another address is unaffected.
    assert sign_in(Client(REMOTE_ADDR="192.0.2.7"), alice.email)["Location"] == "/"


def test_password_reset_requests_are_limited(client: Client, alice: User) -> None:
    for _ in range(3):
        assert client.post("/accounts/password/reset/", {"email": alice.email}).status_code == 302
    refused = client.post("/accounts/password/reset/", {"email": alice.email})
    assert refused.status_code == 429
    assert refused["Retry-After"] == "3600"
    assert "Try again in 60 minutes at most" in refused.text
    assert len(mail.outbox) == 3


# Password reset through the real mail stack ----------------------------------------------------


@pytest.mark.mailstack
def test_the_reset_mail_goes_out_through_the_apps_smtp_server(
    client: Client, mailstack: MailStack
) -> None:
    bob = make_user("bob@courrier.test")
    mailstack.clear_mailbox(bob.email)
    with override_settings(
        EMAIL_BACKEND="core.mail.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=mailstack.submission_port,
        EMAIL_USE_TLS=True,
        EMAIL_USE_SSL=False,
        EMAIL_HOST_USER="alice@courrier.test",
        EMAIL_HOST_PASSWORD=mailstack.users["alice@courrier.test"],
        EMAIL_CA_FILE=str(mailstack.ca_file),
        DEFAULT_FROM_EMAIL="Courrier <alice@courrier.test>",
    ):
        assert client.post("/accounts/password/reset/", {"email": bob.email}).status_code == 302

    with mailstack.imap(bob.email) as imap:
        imap.select_folder("INBOX")
        uids = imap.search(["SUBJECT", "Password Reset"])
        assert len(uids) == 1
        raw = imap.fetch(uids, ["RFC822"])[uids[0]][b"RFC822"].decode()
    link = re.search(r"http://testserver(/accounts/password/reset/key/[^\s]+/)", raw)
    assert link is not None
    form_page = client.get(link.group(1), follow=True)
    new_password = "marble-teapot-sundial-42"
    done = client.post(
        form_page.request["PATH_INFO"], {"password1": new_password, "password2": new_password}
    )
    assert done.status_code == 302
    assert sign_in(Client(), bob.email, new_password)["Location"] == "/"
    assert SecurityEvent.objects.filter(user=bob, kind="password_reset").exists()


def test_changing_the_password_is_logged(alice_client: Client, alice: User) -> None:
    response = alice_client.post(
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": STRONG_PASSWORD, "password2": STRONG_PASSWORD},
    )
    assert response.status_code == 302
    assert SecurityEvent.objects.filter(user=alice, kind="password_changed").exists()


# Policy: staff and, when the site says so, everyone need a second factor ------------------------


def test_staff_without_an_authenticator_must_enrol_before_anything(
    client: Client, admin_user: User
) -> None:
    sign_in(client, admin_user.email)
    for path in ("/", "/admin/", "/admin/accounts/user/", "/accounts/security/"):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/security/authenticator/add/")
    assert client.get("/accounts/security/authenticator/add/").status_code == 200


def test_staff_with_an_unverified_session_see_no_admin_data(
    client: Client, admin_user: User, alice: User
) -> None:
    device = add_authenticator(admin_user)
    sign_in(client, admin_user.email)
    for path in ("/admin/", "/admin/accounts/user/", f"/admin/accounts/user/{alice.pk}/change/"):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/security/verify/")
        assert alice.email not in response.text
    client.post("/accounts/security/verify/", {"code": totp_code(device), "next": "/admin/"})
    page = client.get("/admin/accounts/user/")
    assert page.status_code == 200
    assert alice.email in page.text


def test_the_admin_refuses_an_unverified_staff_session_even_without_the_middleware(
    client: Client, admin_user: User
) -> None:
    add_authenticator(admin_user)
    client.force_login(admin_user)
    without_ours = [m for m in settings.MIDDLEWARE if not m.endswith("SecondFactorMiddleware")]
    with override_settings(MIDDLEWARE=without_ours):
        response = client.get("/admin/accounts/user/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_admin_sign_in_page_is_the_sites(client: Client) -> None:
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/admin/"


def test_the_site_can_require_a_second_factor_of_everyone(client: Client, alice: User) -> None:
    sign_in(client, alice.email)
    assert client.get("/mail/inbox/").status_code == 200
    set_policy(mfa_required=True)
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/security/authenticator/add/")
    # Signing out and changing language still work.
    assert client.post("/i18n/setlang/", {"language": "fr", "next": "/"}).status_code == 302
    assert client.post("/accounts/logout/").status_code == 302


def test_signing_up_with_a_taken_address_looks_like_a_new_sign_up(
    client: Client, alice: User
) -> None:
    taken = signup(client, alice.email)
    fresh = signup(Client(), "carol@example.org")
    assert taken.status_code == fresh.status_code == 302
    assert taken["Location"] == fresh["Location"]
    # The owner of the taken address is told by mail instead.
    assert [message.to for message in mail.outbox] == [[alice.email], ["carol@example.org"]]
