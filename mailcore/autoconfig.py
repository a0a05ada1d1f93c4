"""Propose incoming and outgoing server settings for an email address the user just typed.

`discover` asks, in this order, and returns the first answer as a `Suggestion`:

1. `known`: the caller's own list (domains the admin manages), called with the domain;
2. DNS SRV records (RFC 6186), implicit TLS preferred over STARTTLS (RFC 8314), IMAP over POP3;
3. Mozilla-style autoconfig XML, from `https://autoconfig.<domain>/mail/config-v1.1.xml` and then
   `https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml`.

Everything that comes back is hostile input: the domain's owner writes it, and so may anyone on
the path of a DNS answer. Host names and ports are checked, HTTPS is the only scheme (certificate
verified, redirects only to other https:// URLs), documents are bounded in size and may not carry
a DTD. A suggestion is only ever a proposal: `mailcore.connect.check_server` still tests it, with
the user's password, before anything is saved.

Never raises for network trouble: what cannot be reached is simply not a source.
"""

from __future__ import annotations

import http.client
import ipaddress
import logging
import re
import socket
import ssl
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from enum import StrEnum, auto
from functools import partial

import dns.exception
import dns.name
import dns.rdtypes.IN.SRV
import dns.resolver

from mailcore import connect
from mailcore.connect import AddrInfo, Protocol, Resolver, Security, socket_opener, ssl_context

logger = logging.getLogger(__name__)

# A real config-v1.1.xml is a few kilobytes; anything this big is a mistake or an attack.
MAX_XML_BYTES = 256 * 1024
MAX_REDIRECTS = 3
MAX_HOST_LENGTH = 253
MAX_USERNAME_LENGTH = 320  # an address: 64 for the local part, @, 255 for the domain
READ_CHUNK = 16 * 1024
HTTPS_PORT = 443

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# RFC 6186 service labels in our order of preference: implicit TLS first, as RFC 8314 asks of
# clients (over RFC 6186's cross-service priorities), then STARTTLS; IMAP before POP3, since POP3
# has no folders.
SRV_INCOMING = (
    ("_imaps._tcp", Protocol.IMAP, Security.TLS),
    ("_imap._tcp", Protocol.IMAP, Security.STARTTLS),
    ("_pop3s._tcp", Protocol.POP3, Security.TLS),
    ("_pop3._tcp", Protocol.POP3, Security.STARTTLS),
)
SRV_OUTGOING = (
    ("_submissions._tcp", Protocol.SMTP, Security.TLS),
    ("_submission._tcp", Protocol.SMTP, Security.STARTTLS),
)

# Autoconfig's socketType values; anything else (a typo, a future value) is skipped.
SOCKET_TYPES = {"SSL": Security.TLS, "STARTTLS": Security.STARTTLS, "PLAIN": Security.PLAIN}
# Authentication methods our clients cannot do: they log in with a password. A server listing
# only these (an OAuth2-only provider, say) would fail the check whatever the user types.
NO_PASSWORD_AUTHENTICATION = frozenset(
    {"oauth2", "gssapi", "ntlm", "tls-client-cert", "client-ip-address"}
)


class Source(StrEnum):
    KNOWN = auto()
    SRV = auto()
    AUTOCONFIG = auto()


@dataclass(frozen=True)
class ServerGuess:
    protocol: Protocol
    host: str
    port: int
    security: Security
    username: str

    def __post_init__(self) -> None:
        # Every guess passes here, whatever its source: a bad one cannot reach a form.
        object.__setattr__(self, "protocol", Protocol(self.protocol))
        object.__setattr__(self, "security", Security(self.security))
        if not 0 < self.port < 65536:
            raise ValueError(f"port out of range: {self.port}")
        host = normalize_host(self.host)
        if host is None:
            raise ValueError(f"not a valid host name: {self.host!r}")
        object.__setattr__(self, "host", host)
        if len(self.username) > MAX_USERNAME_LENGTH or _CONTROL.search(self.username):
            raise ValueError("unusable username")

    @property
    def insecure(self) -> bool:
        return self.security is Security.PLAIN


@dataclass(frozen=True)
class Suggestion:
    incoming: ServerGuess
    outgoing: ServerGuess | None
    source: Source

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", Source(self.source))

    @property
    def insecure(self) -> bool:
        """True when a server was found only without TLS: the UI must warn before using it."""
        return self.incoming.insecure or (self.outgoing is not None and self.outgoing.insecure)


KnownDomains = Callable[[str], Suggestion | None]
HttpsGet = Callable[[str], bytes | None]


def discover(
    address: str,
    *,
    known: KnownDomains | None = None,
    resolver: dns.resolver.Resolver | None = None,
    https_get: HttpsGet | None = None,
    ca_file: str | None = None,
    timeout: float = 5.0,
    autoconfig_port: int = HTTPS_PORT,
) -> Suggestion | None:
    """Server settings to propose for `address`, or None when no source knows.

    `known` is called with the domain (lower case, IDNA-encoded) first. `resolver` answers the
    SRV queries and, when given, also resolves the autoconfig host names (the system resolver does
    otherwise). `https_get` replaces the built-in fetcher (`fetch_https` with `resolver`,
    `ca_file` and `timeout`); `ca_file` adds a trusted CA to the system ones, never removes
    checks. `timeout` bounds the SRV lookups together and each HTTPS fetch on its own, so the
    whole call takes at most about three times `timeout`. `autoconfig_port` exists for tests,
    which may not listen on 443; the URLs carry it when it is not 443.
    """
    parts = split_address(address)
    if parts is None:
        return None
    address = address.strip()
    _local_part, domain = parts
    if known is not None:
        found = known(domain)
        if found is not None:
            return replace(found, source=Source.KNOWN)
    # SRV records name no username; RFC 6186 has providers accept the whole address.
    found = srv_suggestion(domain, address, resolver, timeout=timeout)
    if found is not None:
        return found
    get = https_get or partial(fetch_https, resolver=resolver, ca_file=ca_file, timeout=timeout)
    for url in autoconfig_urls(address, port=autoconfig_port):
        try:
            data = get(url)
        except (OSError, http.client.HTTPException) as exc:  # a caller's fetcher may raise
            logger.info("autoconfig %s: %s", url, exc)
            continue
        if data is None:
            continue
        found = parse_autoconfig_xml(data, address)
        if found is not None:
            return found
        logger.info("autoconfig %s: no usable server in the document", url)
    return None


# Names -------------------------------------------------------------------------------------------


def normalize_host(text: str) -> str | None:
    """The host name in lower-case ASCII (or an IP address), None if it is not a valid one."""
    host = text.strip().lower().removesuffix(".")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not host.isascii():
        try:
            # The IDNA 2003 codec of the standard library: enough to look an IDN domain up.
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    if len(host) > MAX_HOST_LENGTH or not all(_LABEL.fullmatch(p) for p in host.split(".")):
        return None
    return host


def split_address(address: str) -> tuple[str, str] | None:
    """(local part, normalized domain) of an address, None if it does not look like one."""
    local_part, at, domain_text = address.strip().rpartition("@")
    if not at or not local_part or _CONTROL.search(local_part):
        return None
    domain = normalize_host(domain_text)
    # A domain, not an IP address: "autoconfig." in front of one would make no sense.
    if domain is None or _is_ip(domain):
        return None
    return local_part, domain


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# DNS SRV (RFC 6186, RFC 8314) --------------------------------------------------------------------


class _DNSUnavailable(Exception):
    """The DNS server did not answer or refused: asking it more questions will not help."""


def srv_suggestion(
    domain: str,
    username: str,
    resolver: dns.resolver.Resolver | None = None,
    *,
    timeout: float = 5.0,
) -> Suggestion | None:
    """What the domain's SRV records offer, or None if they offer no incoming server.

    `timeout` bounds all the lookups together; `resolver` defaults to the system's.
    """
    deadline = time.monotonic() + timeout
    try:
        dns_resolver = resolver or dns.resolver.Resolver()
    except dns.exception.DNSException as exc:  # no /etc/resolv.conf, say
        logger.info("SRV lookup for %s: no resolver: %s", domain, exc)
        return None
    try:
        incoming = _first_srv_guess(dns_resolver, domain, SRV_INCOMING, username, deadline)
    except _DNSUnavailable as exc:
        logger.info("SRV lookup for %s: %s", domain, exc)
        return None
    if incoming is None:
        return None
    try:
        outgoing = _first_srv_guess(dns_resolver, domain, SRV_OUTGOING, username, deadline)
    except _DNSUnavailable as exc:
        # The incoming half is still worth proposing; the user fills in the rest.
        logger.info("SRV lookup for %s: %s", domain, exc)
        outgoing = None
    return Suggestion(incoming, outgoing, Source.SRV)


def best_srv_target(records: Iterable[dns.rdtypes.IN.SRV.SRV]) -> tuple[str, int] | None:
    """(host, port) of the record to use first, None if the service is not offered.

    Lowest priority first; among equals the heaviest (RFC 2782 picks at random by weight; a
    suggestion wants a stable answer). A target of "." says the service is not offered at all
    (RFC 2782, RFC 6186). Records with an invalid host or port 0 are skipped.
    """
    ordered = sorted(records, key=lambda record: (record.priority, -record.weight))
    if any(record.target == dns.name.root for record in ordered):
        return None
    for record in ordered:
        host = normalize_host(record.target.to_text(omit_final_dot=True))
        if host is not None and 0 < record.port < 65536:
            return host, record.port
    return None


def _first_srv_guess(
    resolver: dns.resolver.Resolver,
    domain: str,
    services: Iterable[tuple[str, Protocol, Security]],
    username: str,
    deadline: float,
) -> ServerGuess | None:
    for label, protocol, security in services:
        target = best_srv_target(_srv_records(resolver, f"{label}.{domain}.", deadline))
        if target is not None:
            host, port = target
            return ServerGuess(protocol, host, port, security, username)
    return None


def _srv_records(
    resolver: dns.resolver.Resolver, name: str, deadline: float
) -> list[dns.rdtypes.IN.SRV.SRV]:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _DNSUnavailable(f"{name}: out of time")
    try:
        answer = resolver.resolve(name, "SRV", search=False, lifetime=remaining)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
        raise _DNSUnavailable(f"{name}: {exc}") from exc
    except dns.exception.DNSException as exc:  # a malformed answer, a bad name...
        logger.info("SRV lookup of %s: %s", name, exc)
        return []
    return [record for record in answer if isinstance(record, dns.rdtypes.IN.SRV.SRV)]


# Autoconfig XML ----------------------------------------------------------------------------------


def autoconfig_urls(address: str, *, port: int = HTTPS_PORT) -> list[str]:
    """The URLs Thunderbird asks for this address, in order; [] for something not an address."""
    parts = split_address(address)
    if parts is None:
        return []
    _local_part, domain = parts
    netloc_suffix = "" if port == HTTPS_PORT else f":{port}"
    query = urllib.parse.urlencode({"emailaddress": address.strip()})
    return [
        f"https://autoconfig.{domain}{netloc_suffix}/mail/config-v1.1.xml?{query}",
        f"https://{domain}{netloc_suffix}/.well-known/autoconfig/mail/config-v1.1.xml",
    ]


def parse_autoconfig_xml(data: bytes, address: str) -> Suggestion | None:
    """The suggestion a config-v1.1.xml document makes for `address`, None if it makes none.

    Prefers IMAP over SSL, then IMAP with STARTTLS, then POP3 (SSL before STARTTLS); SMTP over SSL
    before STARTTLS. A server without TLS is proposed only when the document offers nothing
    else, and the suggestion then says it is `insecure`.
    """
    parts = split_address(address)
    root = _parse_xml(data)
    if parts is None or root is None or root.tag != "clientConfig":
        return None
    local_part, domain = parts
    placeholders = {
        "%EMAILADDRESS%": address.strip(),
        "%EMAILLOCALPART%": local_part,
        "%EMAILDOMAIN%": domain,
    }
    incoming: list[ServerGuess] = []
    outgoing: list[ServerGuess] = []
    for provider in root.iterfind("emailProvider"):
        for element in provider.iterfind("incomingServer"):
            guess = _server_guess(element, placeholders)
            if guess is not None and guess.protocol in (Protocol.IMAP, Protocol.POP3):
                incoming.append(guess)
        for element in provider.iterfind("outgoingServer"):
            guess = _server_guess(element, placeholders)
            if guess is not None and guess.protocol is Protocol.SMTP:
                outgoing.append(guess)
    if not incoming:
        return None
    # sort() is stable: among equals, the document's own order decides.
    incoming.sort(key=_incoming_rank)
    outgoing.sort(key=_outgoing_rank)
    return Suggestion(incoming[0], outgoing[0] if outgoing else None, Source.AUTOCONFIG)


def _incoming_rank(guess: ServerGuess) -> tuple[bool, bool, bool]:
    return guess.insecure, guess.protocol is Protocol.POP3, guess.security is not Security.TLS


def _outgoing_rank(guess: ServerGuess) -> tuple[bool, bool]:
    return guess.insecure, guess.security is not Security.TLS


def _parse_xml(data: bytes) -> ET.Element | None:
    if len(data) > MAX_XML_BYTES:
        return None
    try:
        # UTF-8 only (as every real config is): the DTD check below must see the real text, which
        # a UTF-16 document would hide from a byte search.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    upper = text.upper()
    # No DTD at all: entity expansion (billion laughs) and external entities need one, and
    # autoconfig documents never have one. ElementTree has no switch to refuse it.
    if "<!DOCTYPE" in upper or "<!ENTITY" in upper:
        return None
    try:
        # A str: expat then ignores the encoding the XML declaration claims.
        # S314: the attacks defusedxml stops all need a DTD, refused above; no new dependency.
        return ET.fromstring(text)  # noqa: S314
    except (ET.ParseError, ValueError):
        return None


def _server_guess(element: ET.Element, placeholders: dict[str, str]) -> ServerGuess | None:
    protocol = {"imap": Protocol.IMAP, "pop3": Protocol.POP3, "smtp": Protocol.SMTP}.get(
        element.get("type", "").strip().lower()
    )
    security = SOCKET_TYPES.get((element.findtext("socketType") or "").strip().upper())
    port_text = (element.findtext("port") or "").strip()
    host = normalize_host(_substitute(element.findtext("hostname") or "", placeholders))
    if protocol is None or security is None or host is None:
        return None
    if not (port_text.isascii() and port_text.isdigit() and len(port_text) <= 5):
        return None
    methods = {(m.text or "").strip().lower() for m in element.iterfind("authentication")}
    if methods and methods <= NO_PASSWORD_AUTHENTICATION:
        return None
    username_text = element.findtext("username")
    username = (
        _substitute(username_text, placeholders).strip()
        if username_text and username_text.strip()
        else placeholders["%EMAILADDRESS%"]
    )
    try:
        return ServerGuess(protocol, host, int(port_text), security, username)
    except ValueError:
        return None


def _substitute(text: str, placeholders: dict[str, str]) -> str:
    for placeholder, value in placeholders.items():
        text = text.replace(placeholder, value)
    return text


# HTTPS -------------------------------------------------------------------------------------------


class _HTTPSConnection(http.client.HTTPSConnection):
    """Connects through our resolver; TLS still sends the name and checks the certificate for it."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float,
        context: ssl.SSLContext,
        opener: Callable[[str, int, float | None], socket.socket],
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._tls_context = context
        self._opener = opener

    def connect(self) -> None:
        raw = self._opener(self.host, self.port, self.timeout)
        try:
            self.sock = self._tls_context.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()  # a no-op when the failed SSLSocket already took and closed it
            raise


class _HTTPSFailed(Exception):
    pass


def fetch_https(
    url: str,
    *,
    resolver: dns.resolver.Resolver | None = None,
    ca_file: str | None = None,
    timeout: float = 5.0,
) -> bytes | None:
    """The body of a 200 answer to GET `url`, or None; only https://, at most MAX_XML_BYTES.

    Redirects are followed to https:// URLs only, at most MAX_REDIRECTS of them. `timeout` bounds
    the whole fetch, redirects and name resolution included; `resolver` resolves the host names
    (the system resolver does otherwise).
    """
    deadline = time.monotonic() + timeout
    context = ssl_context(ca_file)
    opener = socket_opener(None if resolver is None else _address_resolver(resolver, deadline))
    for _attempt in range(MAX_REDIRECTS + 1):
        try:
            status, location, body = _get(url, context, opener, deadline)
        except (_HTTPSFailed, OSError, http.client.HTTPException, ValueError) as exc:
            # OSError covers DNS (gaierror), refusals, timeouts and every TLS failure.
            logger.info("GET %s: %s", url, exc)
            return None
        if status in (301, 302, 303, 307, 308) and location:
            url = urllib.parse.urljoin(url, location)
            continue
        if status != 200:
            logger.info("GET %s: HTTP %s", url, status)
            return None
        return body
    logger.info("GET %s: too many redirects", url)
    return None


def _get(
    url: str,
    context: ssl.SSLContext,
    opener: Callable[[str, int, float | None], socket.socket],
    deadline: float,
) -> tuple[int, str | None, bytes | None]:
    """(status, Location, body) of one GET; the body only for a 200."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme.lower() != "https":
        # Also where a redirect to http:// ends: the document would arrive unauthenticated.
        raise _HTTPSFailed(f"not an https URL: {url}")
    if parsed.username is not None or parsed.password is not None:
        raise _HTTPSFailed("credentials in the URL")
    host = normalize_host(parsed.hostname or "")
    if host is None:
        raise _HTTPSFailed(f"not a valid host name: {parsed.hostname!r}")
    port = parsed.port or HTTPS_PORT  # raises ValueError when out of range
    path = urllib.parse.urlunsplit(("", "", parsed.path or "/", parsed.query, ""))
    connection = _HTTPSConnection(
        host, port, timeout=_remaining(deadline), context=context, opener=opener
    )
    try:
        connection.request(
            "GET",
            path,
            headers={"Accept": "application/xml, text/xml", "User-Agent": "Courrier-autoconfig"},
        )
        response = connection.getresponse()
        if response.status != 200:
            return response.status, response.getheader("Location"), None
        declared = response.getheader("Content-Length", "")
        if declared.isdigit() and int(declared) > MAX_XML_BYTES:
            raise _HTTPSFailed(f"document of {declared} bytes")
        return 200, None, _read_bounded(response, connection, deadline)
    finally:
        connection.close()


def _read_bounded(
    response: http.client.HTTPResponse, connection: http.client.HTTPConnection, deadline: float
) -> bytes:
    # The socket timeout bounds each read, not the sum: a server dripping one byte at a time
    # would never trip it. Hence the deadline, checked and applied before every read.
    body = bytearray()
    while True:
        if connection.sock is not None:
            connection.sock.settimeout(_remaining(deadline))
        chunk = response.read(READ_CHUNK)
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > MAX_XML_BYTES:
            raise _HTTPSFailed(f"document larger than {MAX_XML_BYTES} bytes, cut off")


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("out of time")
    return remaining


def _address_resolver(dns_resolver: dns.resolver.Resolver, deadline: float) -> Resolver:
    """A getaddrinfo look-alike asking `dns_resolver`, within the fetch's deadline."""

    def resolve(host: str, port: int) -> list[AddrInfo]:
        return connect.resolve_addresses(dns_resolver, host, port, deadline=deadline)

    return resolve
