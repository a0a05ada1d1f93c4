"""The second factor: enrolment, the code step at sign-in, backup codes, removal, replay."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable

import pytest
from django.test import Client
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services
from accounts.models import SecurityEvent, User
from tests.conftest import PASSWORD, add_authenticator, sign_in, totp_code

pytestmark = pytest.mark.django_db


def verify(client: Client, code: str, next_url: str = "/"):
    return client.post("/accounts/security/verify/", {"code": code, "next": next_url})


def backup_codes_on(page: str) -> list[str]:
    return re.findall(r"<li><code>([a-z2-9]{8})</code></li>", page)


def kinds(user: User) -> list[str]:
    return list(SecurityEvent.objects.filter(user=user).values_list("kind", flat=True))


# Enrolment -------------------------------------------------------------------------------------


def test_enrolment_shows_a_server_rendered_qr_code_and_the_secret(alice_client: Client) -> None:
    page = alice_client.get("/accounts/security/authenticator/add/")
    assert page.status_code == 200
    svg = page.text.split("<svg", 1)[1].split("</svg>")[0]
    assert "<script" not in svg
    device = TOTPDevice.objects.get(user__email="alice@example.org")
    secret = re.search(r'<code class="secret" id="totp-secret">([A-Z2-7 ]+)</code>', page.text)
    assert secret is not None
    assert secret.group(1).replace(" ", "") == base64.b32encode(device.bin_key).decode()
    # Not active until a code proves the app has the secret.
    assert device.confirmed is False
    assert alice_client.get("/accounts/security/authenticator/add/").status_code == 200
    assert TOTPDevice.objects.filter(user__email="alice@example.org").count() == 1


def test_a_wrong_code_leaves_the_authenticator_inactive(alice_client: Client, alice: User) -> None:
    alice_client.get("/accounts/security/authenticator/add/")
    device = TOTPDevice.objects.get(user=alice)
    wrong = f"{(int(totp_code(device)) + 1) % 1_000_000:06d}"
    page = alice_client.post(
        "/accounts/security/authenticator/add/", {"name": "Phone", "code": wrong}
    )
    assert page.status_code == 200
    assert "This code is not valid" in page.text
    device.refresh_from_db()
    alice.refresh_from_db()
    assert device.confirmed is False
    assert alice.has_second_factor is False


def test_the_first_authenticator_comes_with_ten_backup_codes_shown_once(
    alice_client: Client, alice: User
) -> None:
    alice_client.get("/accounts/security/authenticator/add/")
    device = TOTPDevice.objects.get(user=alice)
    page = alice_client.post(
        "/accounts/security/authenticator/add/", {"name": "Phone", "code": totp_code(device)}
    )
    assert page.status_code == 200
    assert page["Cache-Control"] == "no-store"
    codes = backup_codes_on(page.text)
    assert len(codes) == 10 == len(set(codes))
    assert 'download="courrier-backup-codes.txt"' in page.text
    device.refresh_from_db()
    alice.refresh_from_db()
    assert device.confirmed
    assert device.name == "Phone"
    assert alice.has_second_factor
    # The security page never shows them again, only how many are left.
    security = alice_client.get("/accounts/security/").text
    assert not any(code in security for code in codes)
    assert "10 backup codes left" in security
    assert kinds(alice)[:2] == ["backup_codes_regenerated", "device_added"]


# Sign-in with a second factor ------------------------------------------------------------------


@pytest.fixture
def alice_phone(alice: User) -> TOTPDevice:
    return add_authenticator(alice)


def test_after_the_password_every_page_asks_for_the_code(
    client: Client, alice: User, alice_phone: TOTPDevice
) -> None:
    assert sign_in(client, alice.email)["Location"] == "/"
    for path in ("/", "/accounts/security/", "/accounts/password/change/"):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/security/verify/?next=")
    assert client.get("/accounts/security/verify/").status_code == 200


def test_the_right_code_opens_the_mailbox_and_rotates_the_session(
    client: Client, alice: User, alice_phone: TOTPDevice
) -> None:
    sign_in(client, alice.email)
    key_after_password = client.session.session_key
    response = verify(client, totp_code(alice_phone), next_url="/accounts/security/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/security/"
    assert client.session.session_key != key_after_password
    assert client.get("/mail/inbox/").status_code == 200
    assert kinds(alice)[0] == "second_factor_used"


def test_the_next_url_cannot_lead_off_site(
    client: Client, alice: User, alice_phone: TOTPDevice
) -> None:
    sign_in(client, alice.email)
    response = verify(client, totp_code(alice_phone), next_url="https://evil.example/")
    assert response["Location"] == "/"


def test_a_wrong_code_is_refused_with_a_clear_message(
    client: Client, alice: User, alice_phone: TOTPDevice
) -> None:
    sign_in(client, alice.email)
    wrong = f"{(int(totp_code(alice_phone)) + 1) % 1_000_000:06d}"
    page = verify(client, wrong)
    assert page.status_code == 200
    assert "This code is not valid" in page.text
    assert client.get("/mail/inbox/")["Location"].startswith("/accounts/security/verify/")
    assert kinds(alice)[0] == "second_factor_failed"


def test_a_used_code_cannot_be_replayed(
    client: Client, alice: User, alice_phone: TOTPDevice
) -> None:
    code = totp_code(alice_phone)
    sign_in(client, alice.email)
    assert verify(client, code).status_code == 302
    client.post("/accounts/logout/")

    sign_in(client, alice.email)
    page = verify(client, code)
    assert page.status_code == 200
    assert "This code is not valid" in page.text


@pytest.mark.parametrize(
    ("steps", "accepted"), [(-2, False), (-1, True), (0, True), (1, True), (2, False)]
)
def test_codes_one_time_step_early_or_late_are_accepted(
    client: Client,
    alice: User,
    alice_phone: TOTPDevice,
    steps: int,
    accepted: bool,
    clock: Callable[[float], None],
) -> None:
    # Mid-step, so that the step cannot change between computing the code and checking it.
    clock(15 - time.time() % 30)
    sign_in(client, alice.email)
    assert (verify(client, totp_code(alice_phone, steps)).status_code == 302) is accepted


def test_a_backup_code_works_once(client: Client, alice: User, alice_phone: TOTPDevice) -> None:
    codes = services.regenerate_backup_codes(None, alice)  # type: ignore[arg-type]
    sign_in(client, alice.email)
    assert verify(client, codes[3].upper()).status_code == 302  # typed in capitals: still fine
    assert services.backup_codes_left(alice) == 9
    assert kinds(alice)[0] == "backup_code_used"
    client.post("/accounts/logout/")

    sign_in(client, alice.email)
    page = verify(client, codes[3])
    assert page.status_code == 200
    assert "This code is not valid" in page.text


def test_new_backup_codes_cancel_the_old_ones(
    client: Client, alice: User, alice_phone: TOTPDevice
) -> None:
    old = services.regenerate_backup_codes(None, alice)  # type: ignore[arg-type]
    sign_in(client, alice.email)
    verify(client, totp_code(alice_phone))
    page = client.post("/accounts/security/backup-codes/")
    new = backup_codes_on(page.text)
    assert len(new) == 10
    assert set(
        StaticToken.objects.filter(device__user=alice).values_list("token", flat=True)
    ) == set(new)
    assert not set(old) & set(new)


def test_backup_codes_need_an_authenticator_first(alice_client: Client) -> None:
    response = alice_client.post("/accounts/security/backup-codes/")
    assert response.status_code == 302
    assert not StaticToken.objects.exists()


# Managing authenticators -----------------------------------------------------------------------


@pytest.fixture
def verified_alice_client(client: Client, alice: User, alice_phone: TOTPDevice) -> Client:
    sign_in(client, alice.email)
    verify(client, totp_code(alice_phone))
    return client


def test_removing_an_authenticator_asks_for_the_password_or_a_code(
    verified_alice_client: Client, alice: User, alice_phone: TOTPDevice
) -> None:
    url = f"/accounts/security/authenticator/{alice_phone.id}/remove/"
    page = verified_alice_client.post(url, {"proof": "not my password"})
    assert page.status_code == 200
    assert "neither your password nor a valid code" in page.text
    assert TOTPDevice.objects.filter(pk=alice_phone.pk).exists()

    assert verified_alice_client.post(url, {"proof": PASSWORD}).status_code == 302
    assert not TOTPDevice.objects.filter(pk=alice_phone.pk).exists()
    alice.refresh_from_db()
    assert alice.has_second_factor is False
    assert kinds(alice)[0] == "device_removed"


def test_a_current_code_also_confirms_a_removal(
    verified_alice_client: Client, alice: User, alice_phone: TOTPDevice
) -> None:
    second = add_authenticator(alice, "Tablet")
    url = f"/accounts/security/authenticator/{second.id}/remove/"
    alice_phone.refresh_from_db()  # its clock drift was learnt at sign-in
    assert verified_alice_client.post(url, {"proof": totp_code(alice_phone, 1)}).status_code == 302
    assert list(TOTPDevice.objects.filter(user=alice).values_list("name", flat=True)) == ["Phone"]


def test_an_authenticator_can_be_renamed(
    verified_alice_client: Client, alice_phone: TOTPDevice
) -> None:
    url = f"/accounts/security/authenticator/{alice_phone.id}/rename/"
    assert verified_alice_client.post(url, {"name": "Old phone"}).status_code == 302
    alice_phone.refresh_from_db()
    assert alice_phone.name == "Old phone"
    assert verified_alice_client.get(url).status_code == 405


def test_another_users_authenticator_is_not_found(verified_alice_client: Client, bob: User) -> None:
    bobs = add_authenticator(bob)
    for action in ("rename", "remove"):
        url = f"/accounts/security/authenticator/{bobs.id}/{action}/"
        assert verified_alice_client.post(url, {"name": "x", "proof": PASSWORD}).status_code == 404
    assert TOTPDevice.objects.filter(pk=bobs.pk, name="Phone").exists()


# Rate limit ------------------------------------------------------------------------------------


def test_wrong_codes_are_rate_limited_and_the_limit_recovers(
    client: Client, alice: User, alice_phone: TOTPDevice, clock: Callable[[float], None]
) -> None:
    sign_in(client, alice.email)
    wrong = f"{(int(totp_code(alice_phone)) + 1) % 1_000_000:06d}"
    for _ in range(services.SECOND_FACTOR_PER_ACCOUNT.count):
        assert verify(client, wrong).status_code == 200
    refused = verify(client, totp_code(alice_phone))  # even the right code, while it lasts
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= services.SECOND_FACTOR_PER_ACCOUNT.window_seconds
    assert "Too many wrong codes" in refused.text
    assert kinds(alice)[0] == "rate_limited"

    clock(services.SECOND_FACTOR_PER_ACCOUNT.window_seconds + 1)
    TOTPDevice.objects.filter(pk=alice_phone.pk).update(throttling_failure_count=0)
    assert verify(client, totp_code(alice_phone)).status_code == 302


def test_django_otp_also_slows_down_guessing_on_the_device(
    client: Client, alice: User, alice_phone: TOTPDevice
) -> None:
    sign_in(client, alice.email)
    wrong = f"{(int(totp_code(alice_phone)) + 1) % 1_000_000:06d}"
    verify(client, wrong)
    # Straight after a failure, even the right code waits for the device's back-off.
    assert verify(client, totp_code(alice_phone)).status_code == 200


def test_using_one_authenticator_does_not_hold_back_the_others(
    verified_alice_client: Client, alice: User
) -> None:
    tablet = add_authenticator(alice, "Tablet")
    client = verified_alice_client
    client.post("/accounts/logout/")
    sign_in(client, alice.email)
    assert verify(client, totp_code(tablet)).status_code == 302
    phone = TOTPDevice.objects.get(user=alice, name="Phone")
    assert phone.throttling_failure_count == 0
