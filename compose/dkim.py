"""The seam where outgoing mail is DKIM-signed.

The admin side (the domains app, issue #7) registers a signer that knows the active keys of
the domains it manages; until one is registered, or for a domain it does not sign, the bytes go
out unchanged. A signer returns the signed bytes, or None when it has no key for the domain.
"""

from __future__ import annotations

from collections.abc import Callable

Signer = Callable[[bytes, str], bytes | None]
SIGNERS: list[Signer] = []


def register(signer: Signer) -> None:
    if signer not in SIGNERS:
        SIGNERS.append(signer)


def sign(raw: bytes, domain: str) -> bytes:
    for signer in SIGNERS:
        signed = signer(raw, domain.lower())
        if signed is not None:
            return signed
    return raw
