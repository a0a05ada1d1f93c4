"""Account security: second-factor enrolment and verification, sessions, the security log.

Views validate and call these; these change state, each in one transaction.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import django_otp
from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.models import Session
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django_otp.models import Device
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import ratelimit
from accounts.models import SecurityEvent, User
from core.services import site_settings

BACKUP_CODE_COUNT = 10
BACKUP_DEVICE_NAME = "backup"
# Failed second-factor attempts. django-otp adds, per device, a delay doubling after each failure.
SECOND_FACTOR_PER_ACCOUNT = ratelimit.Limit("2fa-account", 5, 300)
SECOND_FACTOR_PER_ADDRESS = ratelimit.Limit("2fa-ip", 20, 300)
USER_AGENT_MAX = SecurityEvent._meta.get_field("user_agent").max_length or 300


def client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def record_event(
    request: HttpRequest | None,
    user: User | None,
    kind: SecurityEvent.Kind,
    *,
    detail: str = "",
    attempted_email: str = "",
) -> SecurityEvent:
    """Add to the security log. Callers pass names and counts, never codes nor passwords."""
    return SecurityEvent.objects.create(
        user=user,
        kind=kind,
        detail=detail[:200],
        attempted_email=attempted_email[:254],
        ip=client_ip(request) if request else None,
        user_agent=(request.META.get("HTTP_USER_AGENT", "") if request else "")[:USER_AGENT_MAX],
    )


def second_factor_required(user: User) -> bool:
    """Staff always; everyone when the site says so; users of a domain whose policy says so."""
    from domains.policies import mfa_required_for

    return (
        user.is_staff
        or user.is_superuser
        or site_settings().mfa_required
        or mfa_required_for(user.email)
    )


def _sync_has_second_factor(user: User) -> None:
    has = TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    if user.has_second_factor != has:
        user.has_second_factor = has
        user.save(update_fields=["has_second_factor"])


# Enrolment -------------------------------------------------------------------------------------


def pending_totp_device(user: User) -> TOTPDevice:
    """The user's unconfirmed authenticator, made on first call and reused until confirmed."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("id").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, confirmed=False, name="")
    return device


@transaction.atomic
def confirm_totp_device(
    request: HttpRequest, user: User, device: TOTPDevice, token: str, name: str
) -> list[str] | None:
    """Activate ``device`` if ``token`` is a valid code from it.

    Returns the new backup codes when this is the user's first authenticator (shown once), an
    empty list for later ones, and None when the code is wrong.
    """
    pending = (
        TOTPDevice.objects.select_for_update().filter(pk=device.pk, user=user, confirmed=False)
    ).first()
    # Gone or confirmed meanwhile (a second tab): the code cannot apply to it any more.
    if pending is None or not pending.verify_token(token):
        return None
    device = pending
    first = not user.has_second_factor
    device.confirmed = True
    device.name = name
    device.save(update_fields=["confirmed", "name"])
    _sync_has_second_factor(user)
    record_event(request, user, SecurityEvent.Kind.DEVICE_ADDED, detail=name)
    # The code proves possession: this session is verified from now on.
    _mark_verified(request, device)
    if first:
        return regenerate_backup_codes(request, user)
    return []


def regenerate_backup_codes(request: HttpRequest, user: User) -> list[str]:
    """Ten new single-use codes; the old ones stop working."""
    with transaction.atomic():
        device, _created = StaticDevice.objects.get_or_create(
            user=user, name=BACKUP_DEVICE_NAME, defaults={"confirmed": True}
        )
        device.token_set.all().delete()
        codes = [_new_backup_code() for _ in range(BACKUP_CODE_COUNT)]
        StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
        record_event(request, user, SecurityEvent.Kind.BACKUP_CODES_REGENERATED)
    return codes


def _new_backup_code() -> str:
    # 8 characters of a 32-letter alphabet without look-alikes (no 0/O, 1/I/L): 40 bits.
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "".join(secrets.choice(alphabet) for _ in range(8))


def backup_codes_left(user: User) -> int:
    return StaticToken.objects.filter(device__user=user, device__name=BACKUP_DEVICE_NAME).count()


@transaction.atomic
def remove_totp_device(request: HttpRequest, user: User, device: TOTPDevice) -> None:
    """Remove an authenticator; with the last one go the backup codes."""
    name = device.name
    device.delete()
    _sync_has_second_factor(user)
    if not user.has_second_factor:
        StaticDevice.objects.filter(user=user).delete()
    record_event(request, user, SecurityEvent.Kind.DEVICE_REMOVED, detail=name)


def rename_totp_device(device: TOTPDevice, name: str) -> None:
    device.name = name
    device.save(update_fields=["name"])


def check_fresh_proof(user: User, proof: str) -> bool:
    """True if ``proof`` is the user's password or a valid code of one of their devices."""
    if user.check_password(proof):
        return True
    return match_device(user, proof) is not None


def match_device(user: User, token: str) -> Device | None:
    """The device that accepts ``token`` (a TOTP code or a backup code), used up; or None.

    Unlike ``django_otp.match_token``, a code is only put to the device it matches, so that
    using one authenticator does not count as a failure of the user's others. A wrong code
    counts against every authenticator: django-otp then makes each wait before the next try.
    """
    token = token.strip().replace(" ", "").lower()
    with transaction.atomic():
        authenticators = list(
            TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True)
        )
        if token.isdigit():
            for device in authenticators:
                if device.verify_is_allowed()[0] and _totp_accepts(device, int(token)):
                    return device if device.verify_token(token) else None
        else:
            for backup in StaticDevice.objects.select_for_update().filter(user=user):
                if backup.verify_token(token):
                    return backup
        for device in authenticators:
            device.throttle_increment(commit=True)
    return None


def _totp_accepts(device: TOTPDevice, token: int) -> bool:
    """Would ``device`` accept ``token`` now? Changes nothing."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    return bool(totp.verify(token, device.tolerance, device.last_t + 1))


# Verification ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    retry_after: int | None = None


def verify_second_factor(request: HttpRequest, user: User, token: str) -> VerifyResult:
    """Check a code from an authenticator or a backup code, within the rate limits."""
    address = client_ip(request) or "unknown"
    for limit, subject in (
        (SECOND_FACTOR_PER_ACCOUNT, str(user.pk)),
        (SECOND_FACTOR_PER_ADDRESS, address),
    ):
        wait = ratelimit.retry_after(limit, subject)
        if wait is not None:
            record_event(request, user, SecurityEvent.Kind.RATE_LIMITED, detail=limit.name)
            return VerifyResult(False, retry_after=wait)

    device = match_device(user, token)
    if device is None:
        ratelimit.record_failure(SECOND_FACTOR_PER_ACCOUNT, str(user.pk))
        ratelimit.record_failure(SECOND_FACTOR_PER_ADDRESS, address)
        record_event(request, user, SecurityEvent.Kind.SECOND_FACTOR_FAILED)
        return VerifyResult(False)

    ratelimit.reset(SECOND_FACTOR_PER_ACCOUNT, str(user.pk))
    if isinstance(device, StaticDevice):
        record_event(
            request,
            user,
            SecurityEvent.Kind.BACKUP_CODE_USED,
            detail=f"{backup_codes_left(user)} left",
        )
    else:
        record_event(request, user, SecurityEvent.Kind.SECOND_FACTOR_USED, detail=device.name)
    _mark_verified(request, device)
    return VerifyResult(True)


def _mark_verified(request: HttpRequest, device: Device) -> None:
    django_otp.login(request, device)
    # A new session key once the second factor is proven: a key seen before it is worth nothing.
    request.session.cycle_key()


# Sessions --------------------------------------------------------------------------------------


def sessions_of(user: User) -> list[UserSession]:
    """The user's live sessions, most recent first; records of dead ones are deleted.

    allauth's ``purge_and_list`` opens each session on its own; with sessions in the database
    (our setting) two queries serve any number of them.
    """
    if settings.SESSION_ENGINE != "django.contrib.sessions.backends.db":
        live_records = UserSession.objects.purge_and_list(user)
        return sorted(live_records, key=lambda s: s.last_seen_at, reverse=True)
    records = list(UserSession.objects.filter(user=user).order_by("-last_seen_at"))
    stored = Session.objects.filter(
        session_key__in=[record.session_key for record in records], expire_date__gt=timezone.now()
    )
    data_by_key = {session.session_key: session.get_decoded() for session in stored}
    auth_hash = user.get_session_auth_hash()
    alive, dead = [], []
    for record in records:
        data = data_by_key.get(record.session_key, {})
        # A session signed in as someone else, or before a password change, is no longer theirs.
        if data.get(SESSION_KEY) == str(user.pk) and constant_time_compare(
            data.get(HASH_SESSION_KEY, ""), auth_hash
        ):
            alive.append(record)
        else:
            dead.append(record.pk)
    if dead:
        UserSession.objects.filter(pk__in=dead).delete()
    return alive


def end_session(request: HttpRequest, user: User, session: UserSession) -> None:
    session.end()
    record_event(request, user, SecurityEvent.Kind.SESSIONS_ENDED, detail="1")


def end_other_sessions(request: HttpRequest, user: User) -> int:
    others = [s for s in sessions_of(user) if s.session_key != request.session.session_key]
    for session in others:
        session.end()
    record_event(request, user, SecurityEvent.Kind.SESSIONS_ENDED, detail=str(len(others)))
    return len(others)
