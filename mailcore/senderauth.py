"""Who really sent a message: SPF, DKIM and DMARC verdicts, and lookalike warnings. No Django here.

`authenticate(raw, ...)` reads the receiving server's `Authentication-Results` headers (RFC 8601,
parsed by `authres`), but only those a trusted server can have added: an authserv-id the caller
trusts, placed above the Received header that records the message entering the trusted servers
(`trust_boundary`). Everything at or below that line was in the message when it arrived, so an
`Authentication-Results: dkim=pass` written by a sender is ignored, whatever its authserv-id.

For each of SPF, DKIM and DMARC that no trusted header answers, and when the caller passes a
resolver, the message is checked here: DKIM signatures with dkimpy, DMARC alignment of the From
domain (organisational domains from the bundled Public Suffix List, no network), SPF with pyspf
when the caller passes the connection (`trusted_connection` reads it from the trusted Received
header). Every DNS question goes to the resolver the caller passes.

Hostile input never makes it raise: a malformed header, a huge one or a missing From gives
verdicts whose `reason` says what was wrong.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import re
import unicodedata
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import authres
import dkim
import dns.exception
import dns.name
import dns.resolver
import spf
from publicsuffixlist import PublicSuffixList

from mailcore.dnscheck import parse_dmarc
from mailcore.mime import Address, parse_addresses

__all__ = [
    "RESULTS",
    "Connection",
    "Flag",
    "SenderAuth",
    "Verdict",
    "authenticate",
    "header_fields",
    "lookalike_flags",
    "organisational_domain",
    "parse_received",
    "skeleton",
    "trust_boundary",
    "trusted_connection",
]

RESULTS = ("pass", "fail", "softfail", "neutral", "none", "temperror", "permerror")
SOURCE_HEADER = "header"  # a trusted Authentication-Results header
SOURCE_VERIFIED = "verified"  # checked here
SOURCE_UNCHECKED = "unchecked"  # neither: no trusted header, no resolver or no connection
SOURCES = (SOURCE_HEADER, SOURCE_VERIFIED, SOURCE_UNCHECKED)

MAX_HEADER_BLOCK = 1024 * 1024  # bytes of header read; a real one is a few KB
MAX_FIELDS = 1000
MAX_FIELD_CHARS = 16_384  # of one unfolded field
MAX_AUTH_RESULTS_CHARS = 8192  # authres's parser is regex-driven: keep its input short
MAX_DKIM_SIGNATURES = 5  # verified at most; each costs a DNS lookup
MAX_FLAGS = 10
DNS_TIMEOUT = 3.0  # seconds per DNS question at most; less when the resolver's lifetime is less
SPF_TIME_LIMIT = 10.0  # seconds for a whole SPF evaluation (pyspf's querytime)
MAX_DOMAIN_CHARS = 253

_NAME = re.compile(r"[!-9;-~]+")
_EMAIL_IN_TEXT = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,63}")


# Results ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """One method's result, with a short machine reason and the domains it concerned."""

    result: str = "none"
    reason: str = "not-checked"
    domains: tuple[str, ...] = ()
    source: str = SOURCE_UNCHECKED

    def to_dict(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "reason": self.reason,
            "domains": list(self.domains),
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: object) -> Verdict:
        if not isinstance(data, dict):
            return cls()
        result = data.get("result")
        source = data.get("source")
        domains = data.get("domains")
        return cls(
            result=result if result in RESULTS else "none",
            reason=str(data.get("reason", ""))[:100],
            domains=tuple(str(d)[:MAX_DOMAIN_CHARS] for d in domains[:20])
            if isinstance(domains, list)
            else (),
            source=source if source in SOURCES else SOURCE_UNCHECKED,
        )


@dataclass(frozen=True)
class Flag:
    """A lookalike warning: `code` ("display-name-address", "reply-to-domain",
    "confusable-domain", "mixed-script-domain") and what triggered it."""

    code: str
    detail: str = ""


@dataclass(frozen=True)
class SenderAuth:
    spf: Verdict = field(default_factory=Verdict)
    dkim: Verdict = field(default_factory=Verdict)
    dmarc: Verdict = field(default_factory=Verdict)
    from_domain: str = ""
    dmarc_policy: str = ""  # none / quarantine / reject, when this module read the record
    authserv_id: str = ""  # the trusted header's, when one was read
    flags: tuple[Flag, ...] = ()
    notes: tuple[str, ...] = ()  # machine codes: headers ignored and why, limits hit

    def verdict(self, method: str) -> Verdict:
        return {"spf": self.spf, "dkim": self.dkim, "dmarc": self.dmarc}[method]

    def to_dict(self) -> dict[str, Any]:
        return {
            "spf": self.spf.to_dict(),
            "dkim": self.dkim.to_dict(),
            "dmarc": self.dmarc.to_dict(),
            "from_domain": self.from_domain,
            "dmarc_policy": self.dmarc_policy,
            "authserv_id": self.authserv_id,
            "flags": [[flag.code, flag.detail] for flag in self.flags],
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: object) -> SenderAuth:
        """Back from `to_dict`; anything malformed becomes the default rather than an error."""
        if not isinstance(data, dict):
            return cls()
        flags = data.get("flags")
        notes = data.get("notes")
        return cls(
            spf=Verdict.from_dict(data.get("spf")),
            dkim=Verdict.from_dict(data.get("dkim")),
            dmarc=Verdict.from_dict(data.get("dmarc")),
            from_domain=str(data.get("from_domain", ""))[:MAX_DOMAIN_CHARS],
            dmarc_policy=str(data.get("dmarc_policy", ""))[:20],
            authserv_id=str(data.get("authserv_id", ""))[:MAX_DOMAIN_CHARS],
            flags=tuple(
                Flag(str(item[0])[:50], str(item[1])[:320])
                for item in (flags[:MAX_FLAGS] if isinstance(flags, list) else [])
                if isinstance(item, list | tuple) and len(item) == 2
            ),
            notes=tuple(str(n)[:200] for n in (notes[:50] if isinstance(notes, list) else [])),
        )


@dataclass(frozen=True)
class Connection:
    """The SMTP connection that brought the message in: what SPF checks."""

    ip: str
    helo: str
    mail_from: str = ""  # the envelope sender; "" for a bounce (SPF then checks the HELO)


# Header fields ---------------------------------------------------------------------------------


def header_fields(raw: bytes) -> list[tuple[str, str]]:
    """The top-level header fields in order, unfolded: (lowercase name, value).

    At most MAX_FIELDS fields of MAX_FIELD_CHARS from the first MAX_HEADER_BLOCK bytes; lines
    that are not fields are skipped; bytes that are not UTF-8 are replaced.
    """
    match = re.compile(rb"\r?\n\r?\n").search(raw, 0, MAX_HEADER_BLOCK)
    block = raw[: match.start() if match else MAX_HEADER_BLOCK]
    text = block.decode("utf-8", "replace").replace("\0", "")
    fields: list[tuple[str, list[str]]] = []
    for line in re.split(r"\r?\n", text):
        if line[:1] in (" ", "\t"):
            if fields and sum(map(len, fields[-1][1])) < MAX_FIELD_CHARS:
                fields[-1][1].append(line)
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not _NAME.fullmatch(name):
            continue
        if len(fields) >= MAX_FIELDS:
            break
        fields.append((name.lower(), [value]))
    return [(name, "".join(parts).strip()[:MAX_FIELD_CHARS]) for name, parts in fields]


# Received headers and the trusted hop ------------------------------------------------------------


@dataclass(frozen=True)
class _Received:
    by_host: str = ""
    helo: str = ""
    rdns: str = ""
    ip: str = ""


def _strip_comments(value: str) -> tuple[str, list[str]]:
    """The value with its (nested) comments replaced by a space, and the comments' texts."""
    outside: list[str] = []
    comments: list[str] = []
    current: list[str] = []
    depth = 0
    escaped = False
    for char in value:
        if depth:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if not depth:
                    comments.append("".join(current))
                    current = []
                    outside.append(" ")
                    continue
            current.append(char)
        elif char == "(":
            depth = 1
        else:
            outside.append(char)
    return "".join(outside), comments


_HOST = r"([A-Za-z0-9_.:\[\]-]+)"
_BY = re.compile(r"(?:^|\s)by\s+" + _HOST, re.IGNORECASE)
_FROM = re.compile(r"^\s*from\s+" + _HOST, re.IGNORECASE)
_BRACKET_IP = re.compile(r"\[(?:IPv6:)?([0-9A-Fa-f:.]+)\]")
_RDNS = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s+\[")
_HELO_IN_COMMENT = re.compile(r"helo=([A-Za-z0-9_.:\[\]-]+)", re.IGNORECASE)


def parse_received(value: str) -> _Received:
    """by-host, HELO name, reverse DNS name and IP of one Received header (Postfix, Exim,
    Sendmail, Dovecot LMTP shapes); empty strings for what it does not say."""
    outside, comments = _strip_comments(value[:MAX_FIELD_CHARS])
    outside = outside.split(";", 1)[0]
    by = _BY.search(outside)
    by_host = _host(by.group(1)) if by else ""
    sender = _FROM.search(outside)
    helo = rdns = ip = ""
    if sender:
        token = sender.group(1)
        literal = _BRACKET_IP.fullmatch(token)
        if literal:
            ip = _ip(literal.group(1))
        else:
            helo = _host(token)
    # The first comment after "from" holds "rdns [ip]" (Postfix, Sendmail) or "[ip] helo=x" (Exim).
    for comment in comments[:2]:
        if not ip:
            found = _BRACKET_IP.search(comment)
            ip = _ip(found.group(1)) if found else ""
            name = _RDNS.match(comment)
            if found and name and name.group(1).lower() != "unknown":
                rdns = _host(name.group(1))
        helo_match = _HELO_IN_COMMENT.search(comment)
        if helo_match and not helo:
            helo = _host(helo_match.group(1))
    return _Received(by_host=by_host, helo=helo, rdns=rdns, ip=ip)


def _host(name: str) -> str:
    return name.strip("[]").rstrip(".").lower()[:MAX_DOMAIN_CHARS]


def _ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return ""


def _normal_hosts(hosts: Collection[str]) -> frozenset[str]:
    return frozenset(h.strip().rstrip(".").lower() for h in hosts if h and h.strip())


def _from_trusted(received: _Received, trusted_hosts: frozenset[str]) -> bool:
    """Whether a hop came from a trusted host: by its reverse DNS name (checked by the receiving
    server, unlike the HELO name, which the client chooses) or from the loopback interface."""
    if received.rdns and received.rdns in trusted_hosts:
        return True
    return bool(received.ip) and ipaddress.ip_address(received.ip).is_loopback


def trust_boundary(
    fields: list[tuple[str, str]], trusted_hosts: Collection[str]
) -> tuple[int, _Received] | None:
    """The index of the Received header where the message entered the trusted servers, and it.

    Walking down from the top: the Received headers added by trusted hosts ("by" a trusted
    name), as long as each hop came from a trusted host too. The lowest of them records the
    handover from the outside world; every field below it was written before we had the message.
    None when the topmost Received is not a trusted host's (or there is none).
    """
    hosts = _normal_hosts(trusted_hosts)
    boundary: tuple[int, _Received] | None = None
    for index, (name, value) in enumerate(fields):
        if name != "received":
            continue
        received = parse_received(value)
        if received.by_host not in hosts:
            break
        boundary = (index, received)
        if not _from_trusted(received, hosts):
            break
    return boundary


def trusted_connection(raw: bytes, trusted_hosts: Collection[str]) -> Connection | None:
    """The connecting IP and HELO that the trusted servers recorded, for SPF; with the envelope
    sender of the topmost Return-Path when a trusted server added it. None when unknown."""
    fields = header_fields(raw)
    boundary = trust_boundary(fields, trusted_hosts)
    if boundary is None:
        return None
    index, received = boundary
    if not received.ip:
        return None
    mail_from = ""
    for name, value in fields[:index]:
        if name == "return-path":
            mail_from = value.strip().strip("<>").strip()[:320]
            break
    return Connection(ip=received.ip, helo=received.helo or received.rdns, mail_from=mail_from)


# Authentication-Results -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Result:
    method: str
    result: str
    properties: dict[str, str]  # "header.d" -> "example.com", …


def _parse_auth_results(value: str) -> tuple[str, list[_Result]]:
    """authserv-id and results of one header value; ("", []) when unreadable."""
    value = " ".join(value[:MAX_AUTH_RESULTS_CHARS].split())
    try:
        header = authres.all_features().parse_value(value)
    except Exception:  # noqa: BLE001 - authres raises SyntaxError, RecursionError…; the fallback reads each result alone
        return _parse_auth_results_leniently(value)
    results = [
        _Result(
            str(r.method).lower(),
            str(r.result or "").lower(),
            {f"{p.type}.{p.name}".lower(): str(p.value or "") for p in r.properties or []},
        )
        for r in header.results
        if getattr(r, "method", None)
    ]
    return str(header.authserv_id or "").lower(), results


_RESINFO = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=\s*([A-Za-z]+)")
_PROPERTY = re.compile(r"\b((?:smtp|header|body|policy)\.[A-Za-z0-9_-]+)\s*=\s*([^\s;]+)", re.I)


def _parse_auth_results_leniently(value: str) -> tuple[str, list[_Result]]:
    """authres rejects a whole header for one result it does not know (Microsoft's `action=`):
    read the authserv-id and each result's method, result and properties on their own."""
    outside, _comments = _strip_comments(value)
    parts = outside.split(";")
    authserv = parts[0].strip().split(" ")[0].lower() if parts else ""
    if not authserv or not re.fullmatch(r"[a-z0-9._-]+", authserv):
        return "", []
    results = []
    for part in parts[1:50]:
        match = _RESINFO.match(part)
        if match:
            properties = {k.lower(): v for k, v in _PROPERTY.findall(part)}
            results.append(_Result(match.group(1).lower(), match.group(2).lower(), properties))
    return authserv, results


def _trusted_results(
    fields: list[tuple[str, str]],
    trusted_ids: frozenset[str],
    boundary: int | None,
    notes: list[str],
) -> tuple[str, list[_Result]]:
    """The results of the trusted Authentication-Results headers, topmost first."""
    authserv_id = ""
    results: list[_Result] = []
    for index, (name, value) in enumerate(fields):
        if name != "authentication-results":
            continue
        found_id, found = _parse_auth_results(value)
        if not found_id:
            _note(notes, "unreadable-authentication-results")
        elif found_id not in trusted_ids:
            _note(notes, f"ignored-authentication-results:{found_id[:100]}")
        elif boundary is None or index > boundary:
            _note(notes, f"ignored-authentication-results-below-trusted-hop:{found_id[:100]}")
        else:
            authserv_id = authserv_id or found_id
            results.extend(found)
    return authserv_id, results


_RESULT_ALIASES = {"hardfail": "fail", "policy": "neutral"}


def _header_verdict(method: str, results: list[_Result]) -> Verdict | None:
    """One method's verdict from trusted results; None when they do not mention it."""
    mine = [r for r in results if r.method == method]
    if not mine:
        return None
    values = [_RESULT_ALIASES.get(r.result, r.result) for r in mine]
    values = [v if v in RESULTS else "neutral" for v in values]
    if method == "dkim":
        passing = [r for r, v in zip(mine, values, strict=True) if v == "pass"]
        if passing:
            domains = _unique(_dkim_domain(r) for r in passing)
            return Verdict("pass", "header", domains, SOURCE_HEADER)
        order = ("temperror", "fail", "permerror", "neutral", "softfail", "none")
        worst = min(values, key=order.index)
        domains = _unique(_dkim_domain(r) for r in mine)
        return Verdict(worst, "header", domains, SOURCE_HEADER)
    first = mine[0]
    if method == "spf":
        domain = _domain_of(first.properties.get("smtp.mailfrom", "")) or _domain_of(
            first.properties.get("smtp.helo", "")
        )
    else:
        domain = _domain_of(first.properties.get("header.from", ""))
    return Verdict(values[0], "header", (domain,) if domain else (), SOURCE_HEADER)


def _dkim_domain(result: _Result) -> str:
    return _domain_of(result.properties.get("header.d", "")) or _domain_of(
        result.properties.get("header.i", "")
    )


def _unique(items: Iterator[str] | list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(item for item in items if item))


# Domains ----------------------------------------------------------------------------------------


def _domain_of(value: str) -> str:
    """The ASCII, lowercase domain of an address or domain; "" when it is not one."""
    domain = value.strip().strip("<>").rpartition("@")[2].strip().rstrip(".").lower()
    if not domain or len(domain) > MAX_DOMAIN_CHARS:
        return ""
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            return ""
    if not re.fullmatch(r"[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9])?", domain) or ".." in domain:
        return ""
    return domain


def _unicode_domain(domain: str) -> str:
    labels = []
    for label in domain.split("."):
        if label.startswith("xn--"):
            with contextlib.suppress(UnicodeError):
                label = label.encode("ascii").decode("idna")
        labels.append(label)
    return ".".join(labels)


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    return PublicSuffixList()  # the list bundled with the package: no network


def organisational_domain(domain: str) -> str:
    """The registrable domain (RFC 7489 §3.2, from the Public Suffix List): example.co.uk for
    mail.example.co.uk; the domain itself when it is a public suffix or not a domain."""
    domain = domain.rstrip(".").lower()
    return _psl().privatesuffix(domain) or domain


def _aligned(one: str, other: str, mode: str) -> bool:
    if mode == "s":
        return one == other
    return organisational_domain(one) == organisational_domain(other)


# DNS --------------------------------------------------------------------------------------------


class _TempError(Exception):
    """The resolver did not answer (timeout, SERVFAIL)."""


def _txt(resolver: dns.resolver.Resolver, name: str, timeout: float) -> list[str]:
    """TXT records of a name, each joined; [] when there is none. Raises _TempError."""
    try:
        answer = resolver.resolve(
            name, "TXT", lifetime=min(timeout, resolver.lifetime), search=False
        )
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.name.NameTooLong, dns.name.LabelTooLong, dns.name.EmptyLabel):
        return []
    except dns.exception.DNSException as exc:
        raise _TempError(type(exc).__name__) from exc
    return [b"".join(r.strings).decode("utf-8", "replace") for r in list(answer)[:20]]


# SPF: pyspf asks DNS through its module-level `DNSLookup` function. It is replaced once, here, by
# one that asks the resolver of the current `_spf_check` call (a context variable, so threads and
# calls do not mix), and pyspf's own function otherwise.
_SPF_RESOLVER: contextvars.ContextVar[dns.resolver.Resolver | None] = contextvars.ContextVar(
    "senderauth_spf_resolver", default=None
)
_PYSPF_LOOKUP: Callable[..., list[Any]] = spf.DNSLookup


def _spf_lookup(name: str, qtype: str, strict: object = True, timeout: float = 20) -> list[Any]:
    resolver = _SPF_RESOLVER.get()
    if resolver is None:
        return _PYSPF_LOOKUP(name, qtype, strict, timeout)
    try:
        lifetime = min(timeout, DNS_TIMEOUT, resolver.lifetime)
        answer = resolver.resolve(name, qtype, lifetime=lifetime, search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.name.NameTooLong, dns.name.LabelTooLong, dns.name.EmptyLabel):
        return []
    except dns.exception.DNSException as exc:
        raise spf.TempError(f"DNS {type(exc).__name__}") from exc
    found: list[Any] = []
    for rdata in answer:
        if qtype in ("A", "AAAA"):
            found.append(((name, qtype), rdata.address))
        elif qtype == "MX":
            found.append(((name, qtype), (rdata.preference, rdata.exchange)))
        elif qtype == "PTR":
            found.append(((name, qtype), rdata.target.to_text(True)))
        elif qtype in ("TXT", "SPF"):
            found.append(((name, qtype), rdata.strings))
    return found


spf.DNSLookup = _spf_lookup


def _spf_check(resolver: dns.resolver.Resolver, connection: Connection) -> Verdict:
    helo = _domain_of(connection.helo) or connection.helo[:MAX_DOMAIN_CHARS]
    mail_from = connection.mail_from.strip()[:320]
    domain = _domain_of(mail_from) if mail_from else _domain_of(helo)
    if not _ip(connection.ip):
        return Verdict("none", "no-connection", (), SOURCE_UNCHECKED)
    if not domain:
        return Verdict("none", "no-domain", (), SOURCE_VERIFIED)
    token = _SPF_RESOLVER.set(resolver)
    try:
        query = spf.query(
            i=connection.ip,
            s=mail_from,
            h=helo,
            timeout=DNS_TIMEOUT,
            querytime=SPF_TIME_LIMIT,
        )
        result, _code, _explanation = query.check()
    except Exception:  # noqa: BLE001 - pyspf on a hostile record; its errors are its own classes and more
        return Verdict("permerror", "spf-error", (domain,), SOURCE_VERIFIED)
    finally:
        _SPF_RESOLVER.reset(token)
    result = {"ambiguous": "permerror", "unknown": "permerror", "error": "temperror"}.get(
        result, result
    )
    if result not in RESULTS:
        result = "permerror"
    return Verdict(result, f"spf-{result}", (domain,), SOURCE_VERIFIED)


# DKIM -------------------------------------------------------------------------------------------


def _dkim_check(raw: bytes, resolver: dns.resolver.Resolver, notes: list[str]) -> Verdict:
    try:
        verifier = dkim.DKIM(raw)
        signatures = [h for h in verifier.headers if h[0].lower() == b"dkim-signature"]
    except Exception:  # noqa: BLE001 - dkimpy on a message it cannot split into headers and body
        return Verdict("permerror", "unreadable-message", (), SOURCE_VERIFIED)
    if not signatures:
        return Verdict("none", "no-signature", (), SOURCE_VERIFIED)
    if len(signatures) > MAX_DKIM_SIGNATURES:
        _note(notes, f"dkim-signatures-not-checked:{len(signatures) - MAX_DKIM_SIGNATURES}")
    verdicts = [
        _dkim_one(verifier, index, signatures[index][1], resolver)
        for index in range(min(len(signatures), MAX_DKIM_SIGNATURES))
    ]
    passing = [v for v in verdicts if v.result == "pass"]
    if passing:
        domains = _unique(d for v in passing for d in v.domains)
        return Verdict("pass", "signature-verified", domains, SOURCE_VERIFIED)
    domains = _unique(d for v in verdicts for d in v.domains)
    for wanted in ("temperror", "fail", "permerror"):
        for verdict in verdicts:
            if verdict.result == wanted:
                return Verdict(wanted, verdict.reason, domains, SOURCE_VERIFIED)
    return Verdict("permerror", verdicts[0].reason, domains, SOURCE_VERIFIED)


def _dkim_one(
    verifier: dkim.DKIM, index: int, header: bytes, resolver: dns.resolver.Resolver
) -> Verdict:
    match = re.search(rb"(?:^|;)\s*d\s*=\s*([^;\s]+)", header)
    domain = _domain_of(match.group(1).decode("ascii", "replace")) if match else ""
    domains = (domain,) if domain else ()
    lookups: list[str] = []  # "found", "missing" or "temperror" for each key lookup

    def dnsfunc(name: bytes, timeout: float = 5) -> bytes | None:
        try:
            records = _txt(resolver, name.decode("ascii", "replace"), DNS_TIMEOUT)
        except _TempError:
            lookups.append("temperror")
            return None
        lookups.append("found" if records else "missing")
        return records[0].encode("utf-8", "replace") if records else None

    try:
        ok = verifier.verify(idx=index, dnsfunc=dnsfunc)
    except dkim.ValidationError as exc:
        if "body hash mismatch" in str(exc):
            return Verdict("fail", "body-hash-mismatch", domains, SOURCE_VERIFIED)
        return Verdict("permerror", "invalid-signature", domains, SOURCE_VERIFIED)
    except Exception:  # noqa: BLE001 - dkimpy raises many kinds on hostile signatures and keys
        return Verdict("permerror", "invalid-signature", domains, SOURCE_VERIFIED)
    if ok:
        return Verdict("pass", "signature-verified", domains, SOURCE_VERIFIED)
    if "temperror" in lookups:
        return Verdict("temperror", "dns-error", domains, SOURCE_VERIFIED)
    if "missing" in lookups:
        return Verdict("permerror", "no-key", domains, SOURCE_VERIFIED)
    return Verdict("fail", "bad-signature", domains, SOURCE_VERIFIED)


# DMARC ------------------------------------------------------------------------------------------


def _dmarc_record(
    resolver: dns.resolver.Resolver, from_domain: str
) -> tuple[dict[str, str], bool] | None:
    """The DMARC tags for the From domain (its own record, else its organisational domain's)
    and whether they came from the organisational domain; None when there is no record.
    Raises _TempError."""
    candidates = [from_domain]
    organisation = organisational_domain(from_domain)
    if organisation != from_domain:
        candidates.append(organisation)
    for domain in candidates:
        records = [
            r
            for r in _txt(resolver, f"_dmarc.{domain}", DNS_TIMEOUT)
            if re.match(r"v\s*=\s*DMARC1\s*(?:;|$)", r)
        ]
        if len(records) == 1:  # RFC 7489 §6.6.3: several records count as none
            tags, _bad = parse_dmarc(records[0][:2048])
            return dict(tags), domain != from_domain
    return None


def _dmarc_check(
    resolver: dns.resolver.Resolver, from_domain: str, dkim_: Verdict, spf_: Verdict
) -> tuple[Verdict, str]:
    try:
        found = _dmarc_record(resolver, from_domain)
    except _TempError:
        return Verdict("temperror", "dns-error", (from_domain,), SOURCE_VERIFIED), ""
    if found is None:
        return Verdict("none", "no-policy", (from_domain,), SOURCE_VERIFIED), ""
    tags, inherited = found
    policy = tags.get("sp", "") if inherited else ""
    policy = policy or tags.get("p", "")
    policy = policy if policy in ("none", "quarantine", "reject") else ""
    dkim_mode = tags.get("adkim", "r")
    spf_mode = tags.get("aspf", "r")
    for verdict, mode, reason in (
        (dkim_, dkim_mode, "aligned-dkim"),
        (spf_, spf_mode, "aligned-spf"),
    ):
        if verdict.result != "pass":
            continue
        for domain in verdict.domains:
            if _aligned(domain, from_domain, mode):
                return Verdict("pass", reason, (from_domain, domain), SOURCE_VERIFIED), policy
    authenticated = [
        d for v in (dkim_, spf_) if v.result == "pass" for d in v.domains if d != from_domain
    ]
    reason = "not-aligned" if authenticated else "not-authenticated"
    return Verdict("fail", reason, _unique([from_domain, *authenticated]), SOURCE_VERIFIED), policy


# Lookalikes -------------------------------------------------------------------------------------

# ASCII look-alikes that Unicode's confusables data maps to other letters: 0/o, 1/l, rn/m…
_ASCII_CONFUSABLES = (("rn", "m"), ("vv", "w"), ("cl", "d"), ("0", "o"), ("1", "l"))


@lru_cache(maxsize=4096)
def _ascii_lookalike(char: str) -> str:
    """The ASCII letter or digit that a non-ASCII character looks like, per Unicode's
    confusables data as `confusable_homoglyphs` ships it; the character itself if none."""
    from confusable_homoglyphs import confusables  # a 2 MB JSON read at import: only when needed

    candidates = sorted(
        entry["c"]
        for entry in confusables.confusables_data.get(char, [])
        if len(entry["c"]) == 1 and entry["c"].isascii() and entry["c"].isalnum()
    )
    return candidates[0].lower() if candidates else char


def skeleton(text: str) -> str:
    """A lookalike-insensitive form of a domain (after UTS #39's skeleton, simplified for
    domains): compatibility forms folded, accents dropped, non-ASCII letters replaced by the
    ASCII letter they imitate, then the ASCII pairs that read alike (rn/m, 0/o, 1/l…) merged.

    Accents are dropped, unlike UTS #39, because "pàypal.com" fools a reader as well as a
    Cyrillic "a" (U+0430) does. The data is Unicode's confusables.txt as `confusable_homoglyphs`
    ships it; that package has no skeleton function (its table maps both ways)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    decomposed = unicodedata.normalize("NFD", folded)
    letters = "".join(
        char if char.isascii() else _ascii_lookalike(char)
        for char in decomposed
        if not unicodedata.combining(char)
    ).lower()
    for pair, single in _ASCII_CONFUSABLES:
        letters = letters.replace(pair, single)
    return letters


def _mixed_script(label: str) -> bool:
    from confusable_homoglyphs import confusables

    return bool(confusables.is_mixed_script(label))


def lookalike_flags(
    sender: list[Address], reply_to: list[Address], known_domains: Collection[str] = ()
) -> tuple[Flag, ...]:
    """Warnings about a From that imitates someone else."""
    flags: list[Flag] = []
    if not sender:
        return ()
    address = sender[0]
    from_domain = _domain_of(address.email)
    for found in _EMAIL_IN_TEXT.findall(address.name[:1000])[:5]:
        if found.lower() != address.email.lower():
            flags.append(Flag("display-name-address", found.lower()[:320]))
            break
    if from_domain:
        organisation = organisational_domain(from_domain)
        for other in reply_to[:10]:
            other_domain = _domain_of(other.email)
            if other_domain and organisational_domain(other_domain) != organisation:
                flags.append(Flag("reply-to-domain", other_domain))
                break
        unicode_domain = _unicode_domain(from_domain)
        unicode_organisation = _unicode_domain(organisation)
        shape = skeleton(unicode_organisation)
        for known in sorted(_normal_hosts(known_domains))[:1000]:
            known_ascii = _domain_of(known)
            if not known_ascii:
                continue
            known_organisation = organisational_domain(known_ascii)
            if known_organisation == organisation:
                continue
            if skeleton(_unicode_domain(known_organisation)) == shape:
                flags.append(Flag("confusable-domain", known_ascii))
                break
        if any(_mixed_script(label) for label in unicode_domain.split(".") if not label.isascii()):
            flags.append(Flag("mixed-script-domain", unicode_domain))
    return tuple(flags[:MAX_FLAGS])


# The whole ---------------------------------------------------------------------------------------


def _note(notes: list[str], note: str) -> None:
    if len(notes) < 50 and note not in notes:
        notes.append(note)


def authenticate(
    raw: bytes,
    *,
    trusted_authserv_ids: Collection[str] = (),
    trusted_hosts: Collection[str] | None = None,
    resolver: dns.resolver.Resolver | None = None,
    connection: Connection | None = None,
    known_domains: Collection[str] = (),
) -> SenderAuth:
    """The sender-authentication verdicts of one raw message. Never raises.

    `trusted_authserv_ids`: the authserv-ids of our receiving servers' Authentication-Results.
    `trusted_hosts`: their host names as they write them in Received headers ("by" part);
    the authserv-ids when not given. `resolver`: asked for what no trusted header answers;
    without it those verdicts stay unchecked. `connection`: the SMTP client, for SPF
    (`trusted_connection` finds it). `known_domains`: domains a lookalike would imitate.
    """
    notes: list[str] = []
    try:
        return _authenticate(
            bytes(raw),
            _normal_hosts(trusted_authserv_ids),
            _normal_hosts(trusted_authserv_ids if trusted_hosts is None else trusted_hosts),
            resolver,
            connection,
            known_domains,
            notes,
        )
    except Exception as exc:  # noqa: BLE001 - one hostile message must never stop a sync; tests fail on this code
        error = Verdict("permerror", "internal-error", (), SOURCE_UNCHECKED)
        return SenderAuth(error, error, error, notes=(f"internal-error:{type(exc).__name__}",))


def _authenticate(
    raw: bytes,
    trusted_ids: frozenset[str],
    trusted_hosts: frozenset[str],
    resolver: dns.resolver.Resolver | None,
    connection: Connection | None,
    known_domains: Collection[str],
    notes: list[str],
) -> SenderAuth:
    fields = header_fields(raw)
    boundary = trust_boundary(fields, trusted_hosts)
    if boundary is None and any(name == "authentication-results" for name, _ in fields):
        _note(notes, "no-trusted-hop")
    authserv_id, results = _trusted_results(
        fields, trusted_ids, boundary[0] if boundary else None, notes
    )

    senders = [a for name, v in fields if name == "from" for a in parse_addresses(v)[:10]]
    reply_to = [a for name, v in fields if name == "reply-to" for a in parse_addresses(v)[:10]]
    from_domains = _unique(_domain_of(a.email) for a in senders)
    from_domain = from_domains[0] if len(from_domains) == 1 else ""

    spf_ = _header_verdict("spf", results)
    if spf_ is None:
        if resolver is None:
            spf_ = Verdict()
        elif connection is None:
            spf_ = Verdict("none", "no-connection", (), SOURCE_UNCHECKED)
        else:
            spf_ = _spf_check(resolver, connection)
    dkim_ = _header_verdict("dkim", results)
    if dkim_ is None:
        dkim_ = Verdict() if resolver is None else _dkim_check(raw, resolver, notes)

    policy = ""
    dmarc_ = _header_verdict("dmarc", results)
    if dmarc_ is None:
        if not from_domains:
            dmarc_ = Verdict("none", "no-from", (), SOURCE_VERIFIED)
        elif len(from_domains) > 1:
            dmarc_ = Verdict("permerror", "multiple-from-domains", from_domains, SOURCE_VERIFIED)
        elif resolver is None:
            dmarc_ = Verdict(domains=(from_domain,))
        else:
            dmarc_, policy = _dmarc_check(resolver, from_domain, dkim_, spf_)

    return SenderAuth(
        spf=spf_,
        dkim=dkim_,
        dmarc=dmarc_,
        from_domain=from_domain or (from_domains[0] if from_domains else ""),
        dmarc_policy=policy,
        authserv_id=authserv_id,
        flags=lookalike_flags(senders, reply_to, known_domains),
        notes=tuple(notes),
    )
