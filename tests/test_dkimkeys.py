"""mailcore.dkimkeys: keys made, imported, published and used to sign, verified independently."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailcore import dkimkeys
from mailcore.compose import Outgoing, build

MESSAGE = build(
    Outgoing(
        from_email="alice@courrier.test",
        from_name="Alice",
        message_id="dkim.1@courrier.test",
        date=datetime(2026, 11, 29, tzinfo=UTC),
        to=[("Bob", "bob@courrier.test")],
        subject="Signé",
        text="Bonjour\n",
    )
).as_bytes()


def lookup_for(records: dict[bytes, str]) -> Callable[[bytes], bytes | None]:
    """DNS for the test: TXT records by name."""

    def lookup(name: bytes) -> bytes | None:
        found = records.get(name.rstrip(b"."))
        return found.encode() if found is not None else None

    return lookup


@pytest.mark.parametrize(("algorithm", "bits"), [("rsa", 2048), ("ed25519", 256)])
def test_a_new_key_signs_and_the_signature_verifies_against_its_record(
    algorithm: str, bits: int
) -> None:
    key = dkimkeys.generate(algorithm)
    record = dkimkeys.dns_value(key.algorithm, key.public_b64)

    signed = dkimkeys.sign(
        MESSAGE, domain="courrier.test", selector="s1", private_pem=key.private_pem
    )

    assert key.bits == bits
    assert signed.startswith(b"DKIM-Signature:")
    assert b"c=relaxed/relaxed" in signed.replace(b"\r\n ", b" ")
    lookup = lookup_for({b"s1._domainkey.courrier.test": record})
    assert dkimkeys.verify(signed, lookup) == [True]
    tampered = signed.replace(b"Bonjour", b"Bonsoir")
    assert dkimkeys.verify(tampered, lookup) == [False]


def test_dual_signing_gives_two_signatures_that_both_verify() -> None:
    rsa_key, ed_key = dkimkeys.generate("rsa"), dkimkeys.generate("ed25519")
    once = dkimkeys.sign(
        MESSAGE, domain="courrier.test", selector="r1", private_pem=rsa_key.private_pem
    )
    twice = dkimkeys.sign(
        once, domain="courrier.test", selector="e1", private_pem=ed_key.private_pem
    )
    lookup = lookup_for(
        {
            b"r1._domainkey.courrier.test": dkimkeys.dns_value("rsa", rsa_key.public_b64),
            b"e1._domainkey.courrier.test": dkimkeys.dns_value("ed25519", ed_key.public_b64),
        }
    )
    assert dkimkeys.verify(twice, lookup) == [True, True]


def test_weak_and_broken_keys_are_refused() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 -- refused
    pem = weak.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    with pytest.raises(dkimkeys.KeyProblem) as problem:
        dkimkeys.load(pem)
    assert problem.value.code == "weak-rsa"
    with pytest.raises(dkimkeys.KeyProblem) as problem:
        dkimkeys.generate("rsa", 1024)
    assert problem.value.code == "weak-rsa"
    with pytest.raises(dkimkeys.KeyProblem) as problem:
        dkimkeys.load("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----")
    assert problem.value.code == "not-a-key"


def test_an_imported_key_keeps_its_public_half() -> None:
    key = dkimkeys.generate("rsa", 4096)
    assert dkimkeys.load(key.private_pem) == key


def test_the_record_is_split_into_strings_of_at_most_255_bytes_and_matched_exactly() -> None:
    key = dkimkeys.generate("rsa", 4096)
    value = dkimkeys.dns_value("rsa", key.public_b64)

    parts = dkimkeys.split_txt(value)
    snippet = dkimkeys.zone_snippet("s1", "courrier.test", value)

    assert len(parts) > 2
    assert all(len(part.encode()) <= 255 for part in parts)
    assert "".join(parts) == value
    assert snippet.startswith("s1._domainkey.courrier.test. 3600 IN TXT (")
    assert dkimkeys.record_matches(value, "rsa", key.public_b64)
    other = dkimkeys.generate("rsa")
    assert not dkimkeys.record_matches(value, "rsa", other.public_b64)
    assert not dkimkeys.record_matches(value, "ed25519", key.public_b64)
