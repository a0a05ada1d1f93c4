"""DKIM keys and signatures (RFC 6376, Ed25519 per RFC 8463). No Django here.

Keys are made with `cryptography`; signing and verifying are dkimpy's. A private key travels as
PEM (PKCS#8) text everywhere in Courrier; dkimpy wants RSA keys as PEM and Ed25519 keys as the
base64 of their 32 raw bytes, which `sign` converts to.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

__all__ = [
    "KeyProblem",
    "NewKey",
    "dns_value",
    "generate",
    "load",
    "record_matches",
    "sign",
    "split_txt",
    "verify",
    "zone_snippet",
]

RSA_SIZES = (2048, 3072, 4096)
MIN_RSA_BITS = 2048  # RFC 8301 requires 1024 at least; 1024-bit keys are factorable for money
# From always; the rest when present (dkimpy signs only headers that exist).
SIGNED_HEADERS = [
    b"From",
    b"To",
    b"Cc",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"In-Reply-To",
    b"References",
    b"Reply-To",
    b"MIME-Version",
    b"Content-Type",
    b"Content-Transfer-Encoding",
]
_SELECTOR = re.compile(
    r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
)


class KeyProblem(ValueError):
    """A key that cannot be used, with a machine-readable code ("weak-rsa", "not-a-key", …)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code


@dataclass(frozen=True)
class NewKey:
    algorithm: str  # "rsa" or "ed25519"
    bits: int  # 2048/3072/4096 for RSA, 256 for Ed25519
    private_pem: str
    public_b64: str  # the p= value


def valid_selector(selector: str) -> bool:
    return len(selector) <= 63 and bool(_SELECTOR.fullmatch(selector))


def generate(algorithm: str = "rsa", bits: int = 2048) -> NewKey:
    if algorithm == "ed25519":
        return _describe(ed25519.Ed25519PrivateKey.generate())
    if algorithm != "rsa":
        raise KeyProblem("unknown-algorithm", algorithm)
    if bits < MIN_RSA_BITS:
        raise KeyProblem("weak-rsa", str(bits))
    if bits not in RSA_SIZES:
        raise KeyProblem("rsa-size", str(bits))
    return _describe(rsa.generate_private_key(public_exponent=65537, key_size=bits))


def load(pem: str | bytes) -> NewKey:
    """An imported private key (PEM, PKCS#1 or PKCS#8, unencrypted); RSA under 2048 bits refused."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data.strip(), password=None)
    except (ValueError, TypeError) as exc:
        raise KeyProblem("not-a-key", str(exc)[:200]) from exc
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise KeyProblem("weak-rsa", str(key.key_size))
        return _describe(key)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return _describe(key)
    raise KeyProblem("unknown-algorithm", type(key).__name__)


def _describe(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> NewKey:
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return NewKey("ed25519", 256, private_pem, base64.b64encode(raw).decode("ascii"))
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return NewKey("rsa", key.key_size, private_pem, base64.b64encode(der).decode("ascii"))


# DNS ---------------------------------------------------------------------------------------------


def dns_value(algorithm: str, public_b64: str) -> str:
    return f"v=DKIM1; k={algorithm}; p={public_b64}"


def split_txt(value: str) -> list[str]:
    """A TXT value as DNS character-strings of at most 255 bytes each."""
    data = value.encode("ascii")
    return [data[i : i + 255].decode("ascii") for i in range(0, len(data), 255)] or [""]


def record_name(selector: str, domain: str) -> str:
    return f"{selector}._domainkey.{domain}."


def zone_snippet(selector: str, domain: str, value: str, ttl: int = 3600) -> str:
    """The record in BIND zone-file syntax, ready to paste."""
    strings = "\n    ".join(f'"{part}"' for part in split_txt(value))
    return f"{record_name(selector, domain)} {ttl} IN TXT (\n    {strings} )\n"


def record_matches(found: str, algorithm: str, public_b64: str) -> bool:
    """Whether a TXT record published at the selector is exactly this key."""
    tags = {}
    for item in found.split(";"):
        name, _, value = item.strip().partition("=")
        if name:
            tags[name.strip().lower()] = re.sub(r"\s+", "", value)
    return (
        tags.get("v", "DKIM1") == "DKIM1"
        and tags.get("k", "rsa") == algorithm
        and tags.get("p") == public_b64
    )


# Signing and verifying ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _private_key(private_pem: str) -> rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey:
    """Loaded once: cryptography checks an RSA key as it loads it, ~50 ms of CPU each time."""
    key = serialization.load_pem_private_key(private_pem.encode("ascii"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        raise KeyProblem("unknown-algorithm", type(key).__name__)
    return key


def sign(raw: bytes, *, domain: str, selector: str, private_pem: str) -> bytes:
    """The message with a DKIM-Signature header in front (relaxed/relaxed)."""
    key = _private_key(private_pem)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        seed = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        privkey, algorithm = base64.b64encode(seed), b"ed25519-sha256"
    else:
        privkey, algorithm = private_pem.encode("ascii"), b"rsa-sha256"
    header = dkim.sign(
        raw,
        selector.encode("ascii"),
        domain.encode("idna"),
        privkey,
        canonicalize=(b"relaxed", b"relaxed"),
        signature_algorithm=algorithm,
        include_headers=[h for h in SIGNED_HEADERS if _has_header(raw, h)],
    )
    return header + raw


def _has_header(raw: bytes, name: bytes) -> bool:
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    return bool(re.search(rb"(?im)^" + re.escape(name) + rb"[ \t]*:", head))


def verify(raw: bytes, txt_lookup: Callable[[bytes], bytes | None]) -> list[bool]:
    """Each DKIM signature's verdict, newest first; `txt_lookup(name)` gives the TXT record."""

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return txt_lookup(name)

    verifier = dkim.DKIM(raw)
    count = len([h for h in verifier.headers if h[0].lower() == b"dkim-signature"])
    verdicts = []
    for index in range(count):
        try:
            verdicts.append(bool(verifier.verify(idx=index, dnsfunc=dnsfunc)))
        except dkim.DKIMException:  # a body hash mismatch, a bad tag: a failed signature
            verdicts.append(False)
    return verdicts
