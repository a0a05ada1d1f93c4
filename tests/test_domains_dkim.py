"""domains.dkim: keys through their life, and outgoing mail of managed domains signed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from domains import dkim
from domains.models import DkimKey, Domain
from mailcore import dkimkeys
from mailcore.compose import Outgoing, build

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


class FakeDns:
    """TXT records by name, changed by the test: what the admin has published so far."""

    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}

    def publish(self, key: DkimKey) -> None:
        name, value, _parts, _snippet = dkim.record(key)
        self.records[name] = [value]

    def __call__(self, name: str) -> list[str] | None:
        return self.records.get(name, [])

    def txt(self, name: bytes) -> bytes | None:
        found = self.records.get(name.decode().rstrip(".") + ".") or []
        return found[0].encode() if found else None


@pytest.fixture
def domain() -> Domain:
    return Domain.objects.create(name="courrier.test")


def message() -> bytes:
    return build(
        Outgoing(
            from_email="alice@courrier.test",
            message_id="m1@courrier.test",
            date=NOW,
            to=[("", "bob@courrier.test")],
            subject="Signé ?",
            text="Bonjour",
        )
    ).as_bytes()


def test_a_key_is_published_by_dns_activated_by_the_admin_then_signs(domain: Domain) -> None:
    dns = FakeDns()
    key = dkim.create_key(domain)
    assert key.selector == f"rsa{datetime.now(UTC):%Y%m}"
    assert dkim.signer(message(), "courrier.test") is None  # created: not signing

    with pytest.raises(dkim.KeyStateError):
        dkim.activate(key)
    assert dkim.advance(domain, dns, NOW) == []  # not in DNS yet
    dns.publish(key)
    assert dkim.advance(domain, dns, NOW) == [f"{key.selector}: published"]
    dkim.activate(key)

    signed = dkim.signer(message(), "courrier.test")
    assert signed is not None
    assert dkimkeys.verify(signed, dns.txt) == [True]


def test_the_private_key_is_encrypted_at_rest(domain: Domain) -> None:
    key = dkim.create_key(domain)
    with connection.cursor() as cursor:
        cursor.execute("SELECT private_key FROM domains_dkimkey WHERE id = %s", [key.pk])
        stored = cursor.fetchone()[0]
    assert "PRIVATE KEY" not in stored
    assert DkimKey.objects.get(pk=key.pk).private_key.startswith("-----BEGIN PRIVATE KEY")


def test_rotation_switches_signing_only_once_dns_shows_the_new_key(domain: Domain) -> None:
    dns = FakeDns()
    old = dkim.create_key(domain, selector="old")
    dns.publish(old)
    dkim.advance(domain, dns, NOW)
    dkim.activate(old)

    new = dkim.rotate(DkimKey.objects.get(pk=old.pk))
    dkim.advance(domain, dns, NOW)  # DNS does not show the new key yet
    signed = dkim.signer(message(), "courrier.test")
    assert signed is not None
    assert b"s=old;" in signed.replace(b"\r\n ", b" ")
    assert DkimKey.objects.get(pk=new.pk).state == DkimKey.State.CREATED

    dns.publish(new)
    changes = dkim.advance(domain, dns, NOW)

    assert changes == [f"{new.selector}: published", f"{new.selector}: active, old: retired"]
    signed = dkim.signer(message(), "courrier.test")
    assert signed is not None
    assert f"s={new.selector};".encode() in signed.replace(b"\r\n ", b" ")
    assert b"s=old;" not in signed.replace(b"\r\n ", b" ")
    assert dkimkeys.verify(signed, dns.txt) == [True]
    retired = DkimKey.objects.get(pk=old.pk)
    assert retired.state == DkimKey.State.RETIRED

    dkim.advance(domain, dns, NOW + timedelta(days=dkim.GRACE_DAYS + 1))
    removed = DkimKey.objects.get(pk=old.pk)
    assert (removed.state, removed.private_key) == (DkimKey.State.REMOVED, "")


def test_dual_signing_with_rsa_and_ed25519(domain: Domain) -> None:
    dns = FakeDns()
    for algorithm in ("rsa", "ed25519"):
        key = dkim.create_key(domain, algorithm=algorithm)
        dns.publish(key)
    dkim.advance(domain, dns, NOW)
    for key in DkimKey.objects.all():
        dkim.activate(key)

    signed = dkim.signer(message(), "courrier.test")

    assert signed is not None
    assert dkimkeys.verify(signed, dns.txt) == [True, True]
    first = signed.split(b"DKIM-Signature:")[1]
    assert b"a=rsa-sha256" in first.replace(b"\r\n ", b" ")  # RSA on top, for old verifiers


def test_weak_or_clashing_keys_are_refused(domain: Domain) -> None:
    with pytest.raises(dkimkeys.KeyProblem) as problem:
        dkim.create_key(domain, bits=1024)
    assert problem.value.code == "weak-rsa"
    dkim.create_key(domain, selector="s1")
    with pytest.raises(dkimkeys.KeyProblem) as problem:
        dkim.create_key(domain, selector="s1")
    assert problem.value.code == "selector-taken"
    with pytest.raises(dkimkeys.KeyProblem):
        dkim.create_key(domain, selector="bad selector!")


def test_mail_of_an_inactive_or_unmanaged_domain_is_not_signed(domain: Domain) -> None:
    dns = FakeDns()
    key = dkim.create_key(domain)
    dns.publish(key)
    dkim.advance(domain, dns, NOW)
    dkim.activate(key)
    assert dkim.signer(message(), "ecole.test") is None
    Domain.objects.filter(pk=domain.pk).update(active=False)
    assert dkim.signer(message(), "courrier.test") is None
