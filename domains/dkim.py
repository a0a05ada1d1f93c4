"""DKIM keys of managed domains: their life, and the signer outgoing mail goes through.

created → published (DNS shows exactly this key) → active (signing) → retired (still in DNS for
`GRACE_DAYS`, signatures made before keep verifying) → removed (private key erased).

Rotation in one action: `rotate` creates the new key beside the old one; the DNS pass
(`advance`) publishes it when DNS shows it, and only then switches signing to it and retires
the old one. A first key is activated by the administrator once it is published.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import dns.exception
import dns.resolver
from django.db import transaction
from django.utils import timezone

from domains.models import DkimKey, Domain
from mailcore import dkimkeys

logger = logging.getLogger(__name__)

GRACE_DAYS = 7
TxtLookup = Callable[[str], list[str] | None]  # the TXT values at a name; None: no answer


class KeyStateError(ValueError):
    """A key operation that is not allowed in the key's state."""


def new_selector(domain: Domain, algorithm: str, now: datetime | None = None) -> str:
    now = now or timezone.now()
    base = f"{'ed' if algorithm == 'ed25519' else 'rsa'}{now:%Y%m}"
    taken = set(domain.dkim_keys.values_list("selector", flat=True))
    if base not in taken:
        return base
    number = 2
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"


@transaction.atomic
def create_key(
    domain: Domain,
    *,
    algorithm: str = "rsa",
    bits: int = 2048,
    selector: str = "",
    pem: str = "",
    replaces: DkimKey | None = None,
) -> DkimKey:
    """A new key (generated, or imported from PEM). Raises dkimkeys.KeyProblem."""
    made = dkimkeys.load(pem) if pem else dkimkeys.generate(algorithm, bits)
    selector = selector.strip().lower() or new_selector(domain, made.algorithm)
    if not dkimkeys.valid_selector(selector):
        raise dkimkeys.KeyProblem("bad-selector", selector)
    if domain.dkim_keys.filter(selector=selector).exists():
        raise dkimkeys.KeyProblem("selector-taken", selector)
    return DkimKey.objects.create(
        domain=domain,
        selector=selector,
        algorithm=made.algorithm,
        bits=made.bits,
        private_key=made.private_pem,
        public_key=made.public_b64,
        replaces=replaces,
    )


def rotate(key: DkimKey) -> DkimKey:
    """Start a rotation: a new key of the same kind beside `key`, which keeps signing until DNS
    shows the new one."""
    if key.state != DkimKey.State.ACTIVE:
        raise KeyStateError("only an active key can be rotated")
    return create_key(key.domain, algorithm=key.algorithm, bits=key.bits, replaces=key)


def record(key: DkimKey) -> tuple[str, str, list[str], str]:
    """(name, value, ≤255-byte strings, BIND snippet) of the key's TXT record."""
    value = dkimkeys.dns_value(key.algorithm, key.public_key)
    name = dkimkeys.record_name(key.selector, key.domain.name)
    return (
        name,
        value,
        dkimkeys.split_txt(value),
        dkimkeys.zone_snippet(key.selector, key.domain.name, value),
    )


def visible(key: DkimKey, lookup: TxtLookup) -> bool:
    """Whether DNS shows exactly this key at its selector."""
    found = lookup(dkimkeys.record_name(key.selector, key.domain.name))
    return bool(found) and any(
        dkimkeys.record_matches(value, key.algorithm, key.public_key) for value in found or []
    )


@transaction.atomic
def activate(key: DkimKey, now: datetime | None = None) -> None:
    key = DkimKey.objects.select_for_update().get(pk=key.pk)
    if key.state != DkimKey.State.PUBLISHED:
        raise KeyStateError("a key signs only once DNS shows it (published)")
    now = now or timezone.now()
    key.state, key.activated_at = DkimKey.State.ACTIVE, now
    key.save(update_fields=["state", "activated_at"])
    old = key.replaces
    if old is not None and old.state == DkimKey.State.ACTIVE:
        retire(old, now)


def retire(key: DkimKey, now: datetime | None = None) -> None:
    now = now or timezone.now()
    DkimKey.objects.filter(pk=key.pk, state=DkimKey.State.ACTIVE).update(
        state=DkimKey.State.RETIRED, retired_at=now, remove_after=now + timedelta(days=GRACE_DAYS)
    )


def advance(domain: Domain, lookup: TxtLookup, now: datetime | None = None) -> list[str]:
    """One pass of the lifecycle from what DNS says; returns what changed, for the audit log."""
    now = now or timezone.now()
    changes = []
    for key in domain.dkim_keys.filter(state=DkimKey.State.CREATED):
        if visible(key, lookup):
            DkimKey.objects.filter(pk=key.pk).update(
                state=DkimKey.State.PUBLISHED, published_at=now
            )
            changes.append(f"{key.selector}: published")
    for key in domain.dkim_keys.filter(state=DkimKey.State.PUBLISHED, replaces__isnull=False):
        if visible(key, lookup):  # still there (a record withdrawn meanwhile stops the switch)
            activate(key, now)
            changes.append(f"{key.selector}: active, {key.replaces.selector}: retired")
    for key in domain.dkim_keys.filter(state=DkimKey.State.RETIRED, remove_after__lte=now):
        DkimKey.objects.filter(pk=key.pk).update(state=DkimKey.State.REMOVED, private_key="")
        changes.append(f"{key.selector}: removed")
    return changes


def resolver_lookup(resolver: dns.resolver.Resolver, timeout: float = 3.0) -> TxtLookup:
    def lookup(name: str) -> list[str] | None:
        try:
            answer = resolver.resolve(name, "TXT", lifetime=timeout)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException:
            return None
        return [b"".join(rdata.strings).decode("ascii", "replace") for rdata in answer]

    return lookup


# Signing ----------------------------------------------------------------------------------------


def signer(raw: bytes, domain_name: str) -> bytes | None:
    """compose.dkim's signer: every active key of the From domain, when Courrier manages it."""
    keys = list(
        DkimKey.objects.filter(
            domain__name=domain_name.encode("idna").decode("ascii").lower(),
            domain__active=True,
            state=DkimKey.State.ACTIVE,
        ).order_by("algorithm")  # "ed25519" before "rsa": the RSA signature ends up on top
    )
    if not keys:
        return None
    for key in keys:
        raw = dkimkeys.sign(
            raw, domain=key.domain.name, selector=key.selector, private_pem=key.private_key
        )
    return raw
