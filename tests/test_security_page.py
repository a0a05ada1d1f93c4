"""The Security page: sessions, their ending, the security log; each user sees only their own."""

from __future__ import annotations

import pytest
from allauth.usersessions.models import UserSession
from django.test import Client
from pytest_django import DjangoAssertNumQueries

from accounts.models import SecurityEvent, User
from tests.conftest import PASSWORD, add_authenticator, make_user, sign_in, totp_code

pytestmark = pytest.mark.django_db


def signed_in(email: str, agent: str) -> Client:
    client = Client(headers={"user-agent": agent})
    assert sign_in(client, email)["Location"] == "/"
    return client


def test_the_page_lists_each_session_with_browser_address_and_last_seen(alice: User) -> None:
    laptop = signed_in(alice.email, "Firefox on the laptop")
    signed_in(alice.email, "Chromium on the phone")
    page = laptop.get("/accounts/security/")
    assert page.status_code == 200
    assert "Firefox on the laptop" in page.text
    assert "Chromium on the phone" in page.text
    assert "127.0.0.1" in page.text
    assert page.text.count("This session") == 1


def test_ending_another_session_signs_that_browser_out(alice: User) -> None:
    laptop = signed_in(alice.email, "laptop")
    phone = signed_in(alice.email, "phone")
    phones = UserSession.objects.get(user=alice, user_agent="phone")
    assert laptop.post(f"/accounts/security/sessions/{phones.id}/end/").status_code == 302
    assert phone.get("/mail/inbox/")["Location"].startswith("/accounts/login/")
    assert laptop.get("/mail/inbox/").status_code == 200
    assert SecurityEvent.objects.filter(user=alice, kind="sessions_ended").exists()


def test_the_current_session_is_ended_by_signing_out_not_from_the_list(alice: User) -> None:
    laptop = signed_in(alice.email, "laptop")
    own = UserSession.objects.get(user=alice)
    laptop.post(f"/accounts/security/sessions/{own.id}/end/")
    assert laptop.get("/mail/inbox/").status_code == 200


def test_signing_out_all_other_sessions_keeps_this_one(alice: User) -> None:
    laptop = signed_in(alice.email, "laptop")
    others = [signed_in(alice.email, f"browser {n}") for n in range(3)]
    page = laptop.post("/accounts/security/sessions/end-others/", follow=True)
    assert "Other sessions signed out: 3." in page.text
    assert laptop.get("/mail/inbox/").status_code == 200
    for other in others:
        assert other.get("/mail/inbox/")["Location"].startswith("/accounts/login/")


def test_signing_out_everywhere_ends_this_session_too(alice: User) -> None:
    laptop = signed_in(alice.email, "laptop")
    phone = signed_in(alice.email, "phone")
    assert laptop.post("/accounts/security/sessions/end-all/")["Location"] == "/accounts/login/"
    for client in (laptop, phone):
        assert client.get("/mail/inbox/")["Location"].startswith("/accounts/login/")


def test_another_users_session_is_not_found(alice: User, bob: User) -> None:
    alices = signed_in(alice.email, "alice's browser")
    bobs_client = signed_in(bob.email, "bob's browser")
    alices_session = UserSession.objects.get(user=alice)
    response = bobs_client.post(f"/accounts/security/sessions/{alices_session.id}/end/")
    assert response.status_code == 404
    assert alices.get("/mail/inbox/").status_code == 200
    assert "alice's browser" not in bobs_client.get("/accounts/security/").text


def test_session_actions_take_only_post(alice: User) -> None:
    laptop = signed_in(alice.email, "laptop")
    own = UserSession.objects.get(user=alice)
    assert laptop.get(f"/accounts/security/sessions/{own.id}/end/").status_code == 405
    assert laptop.get("/accounts/security/sessions/end-others/").status_code == 405


def test_the_log_shows_the_users_own_events_only(alice: User, bob: User) -> None:
    signed_in(bob.email, "bob's browser")
    laptop = signed_in(alice.email, "alice's browser")
    sign_in(Client(), alice.email, "a wrong password")
    page = laptop.get("/accounts/security/").text
    assert "Sign-in failed" in page
    assert "bob&#x27;s browser" not in page
    assert "bob's browser" not in page


def test_the_page_costs_a_bounded_number_of_queries(
    alice: User, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    laptop = signed_in(alice.email, "laptop")
    for n in range(5):
        signed_in(alice.email, f"browser {n}")
    for _ in range(3):
        sign_in(Client(), alice.email, "a wrong password")
    laptop.get("/accounts/security/")
    # session, user, devices, backup codes, session records, stored sessions, events
    with django_assert_num_queries(7):
        assert laptop.get("/accounts/security/").status_code == 200
    for n in range(5, 10):
        signed_in(alice.email, f"browser {n}")
    with django_assert_num_queries(7):
        assert laptop.get("/accounts/security/").status_code == 200


def test_admins_read_the_log_of_every_user_and_cannot_edit_it(client: Client, alice: User) -> None:
    admin_user = make_user("root@example.org", is_superuser=True)
    device = add_authenticator(admin_user)
    sign_in(Client(), alice.email, "a wrong password")
    sign_in(client, admin_user.email, PASSWORD)
    client.post("/accounts/security/verify/", {"code": totp_code(device)})
    page = client.get("/admin/accounts/securityevent/")
    assert page.status_code == 200
    assert alice.email in page.text
    event = SecurityEvent.objects.filter(user=alice).first()
    assert client.post(f"/admin/accounts/securityevent/{event.pk}/delete/").status_code == 403


def test_sessions_left_behind_by_a_password_change_drop_off_the_list(alice: User) -> None:
    laptop = signed_in(alice.email, "laptop")
    phone = signed_in(alice.email, "phone")
    changed = laptop.post(
        "/accounts/password/change/",
        {
            "oldpassword": PASSWORD,
            "password1": "larch-quiver-omelette-87",
            "password2": "larch-quiver-omelette-87",
        },
    )
    assert changed.status_code == 302
    page = laptop.get("/accounts/security/").text
    sessions = page.split('id="sessions"')[1].split("</section>")[0]
    assert ">laptop<" in sessions
    assert ">phone<" not in sessions
    assert phone.get("/mail/inbox/")["Location"].startswith("/accounts/login/")
    assert UserSession.objects.filter(user=alice).count() == 1
