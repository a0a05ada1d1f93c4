"""Connect to a user's IMAP, POP3 or SMTP server, and say precisely what went wrong when it fails.

`check_server` is what the account form runs: it connects, negotiates TLS, logs in, reads the
capabilities and logs out, and returns a `CheckResult` whose `Problem` code the Django layer turns
into a translated message. `open_imap`, `open_pop3` and `open_smtp` are the same steps for the sync
and send engines: they return a logged-in client or raise `ConnectionFailed` with the same codes.

Certificates and host names are always verified; `ca_file` can add a trusted CA, never remove
checks. Every network step is bounded by `ServerSettings.timeout` (name resolution through the
system resolver is the exception: libc offers no timeout; a `resolver` can bound it).
"""

from __future__ import annotations

import errno
import functools
import imaplib
import ipaddress
import logging
import os
import poplib
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum, auto
from typing import Any

import dns.exception
import dns.resolver
from imapclient import IMAPClient

logger = logging.getLogger(__name__)

# One getaddrinfo() entry: family, type, proto, canonical name, socket address.
AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]
Resolver = Callable[[str, int], list[AddrInfo]]
SocketOpener = Callable[[str, int, float | None], socket.socket]

# What we say in EHLO. smtplib's default is socket.getfqdn(), a reverse DNS lookup with no timeout.
EHLO_HOSTNAME = "localhost"

# Extensions the sync engine uses when present; without them it works, only less well.
OPTIONAL_IMAP_CAPABILITIES = {
    "IDLE": "no IDLE: push will fall back to polling",
    "CONDSTORE": "no CONDSTORE: flag changes are found by rescanning folders",
    "QRESYNC": "no QRESYNC: deleted messages are found by comparing UID lists",
    "SPECIAL-USE": "no SPECIAL-USE: Sent, Drafts, Trash… are guessed from folder names",
    "UIDPLUS": "no UIDPLUS: copied and appended messages are found by searching",
}
# The mechanisms smtplib implements, in our order of preference. Under TLS, PLAIN is as safe as
# any and the best supported; without TLS, CRAM-MD5 at least keeps the password off the wire.
SMTP_AUTH_MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5")
SMTP_AUTH_MECHANISMS_WITHOUT_TLS = ("CRAM-MD5", "PLAIN", "LOGIN")
# Server text quoted in a detail (a greeting, an error line) is cut here: it is hostile input.
MAX_DETAIL = 500


class Security(StrEnum):
    TLS = auto()  # implicit TLS from the first byte (IMAPS 993, POP3S 995, submissions 465)
    STARTTLS = auto()  # plain greeting, then an upgrade before login
    PLAIN = auto()  # no encryption at all; only when the user explicitly chose it


class Protocol(StrEnum):
    IMAP = auto()
    POP3 = auto()
    SMTP = auto()


class Problem(StrEnum):
    DNS = auto()
    REFUSED = auto()
    UNREACHABLE = auto()
    TIMEOUT = auto()
    TLS_CERTIFICATE = auto()
    TLS_HANDSHAKE = auto()
    STARTTLS_UNSUPPORTED = auto()
    AUTHENTICATION = auto()
    CAPABILITY = auto()
    PROTOCOL = auto()
    OTHER = auto()


@dataclass(frozen=True)
class ServerSettings:
    protocol: Protocol
    host: str
    port: int
    security: Security
    username: str
    password: str = field(repr=False)
    timeout: float = 15.0

    def __post_init__(self) -> None:
        # Model fields arrive as plain strings; the enums make typos fail here, not mid-check.
        object.__setattr__(self, "protocol", Protocol(self.protocol))
        object.__setattr__(self, "security", Security(self.security))
        if not 0 < self.port < 65536:
            raise ValueError(f"port out of range: {self.port}")
        if not self.timeout > 0:
            raise ValueError(f"timeout must be positive: {self.timeout}")


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    problem: Problem | None
    detail: str
    capabilities: frozenset[str] = frozenset()
    notes: tuple[str, ...] = ()


class ConnectionFailed(Exception):
    """A connection attempt failed for a reason the user can act on; `detail` has no secrets."""

    def __init__(self, problem: Problem, detail: str) -> None:
        super().__init__(f"{problem}: {detail}")
        self.problem = problem
        self.detail = detail


# Sockets, TLS (ssl.SSLError is an OSError) and smtplib errors (SMTPException is an OSError too),
# the IMAP and POP3 libraries' own errors, and undecodable bytes from a hostile server.
TROUBLE: tuple[type[Exception], ...] = (
    OSError,
    imaplib.IMAP4.error,
    poplib.error_proto,
    UnicodeError,
)

UNREACHABLE_ERRNOS = frozenset(
    {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN}
)
# Certificate verification codes of OpenSSL (X509_V_ERR_*) we can name for the user.
CERTIFICATE_ERRORS = {
    9: "not yet valid",
    10: "expired",
    18: "untrusted (self-signed)",
    19: "untrusted (self-signed CA in chain)",
    20: "untrusted (unknown issuer)",
    21: "untrusted (unknown issuer)",
    23: "revoked",
    62: "wrong host name",
    64: "wrong IP address",
}


# TLS and name resolution -------------------------------------------------------------------------


def ssl_context(ca_file: str | None = None) -> ssl.SSLContext:
    """A verifying client context: the system CAs, plus `ca_file` if given, TLS 1.2 or later.

    Made once per CA file (and again when the file changes): loading the system's CA store
    costs ~50 ms of CPU, twice per message sent (SMTP, then IMAP for the Sent copy). Callers
    must not change the context they get; it is shared.
    """
    mtime = os.stat(ca_file).st_mtime_ns if ca_file and os.path.exists(ca_file) else 0
    return _ssl_context(ca_file or "", mtime)


@functools.lru_cache(maxsize=8)
def _ssl_context(ca_file: str, _mtime: int) -> ssl.SSLContext:
    # Not create_default_context(cafile=...): that would trust the extra CA *instead of* the
    # system ones, and an admin adding a private CA must not break accounts on public servers.
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


def system_resolver(host: str, port: int) -> list[AddrInfo]:
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def dnsmasq_resolver(nameserver: str, port: int, *, timeout: float = 5.0) -> Resolver:
    """A getaddrinfo-like resolver asking one DNS server (the test stack's dnsmasq, say).

    Raises socket.gaierror like getaddrinfo does: EAI_NONAME for a name that does not exist,
    EAI_AGAIN when the server fails or does not answer within `timeout`.
    """
    dns_resolver = dns.resolver.Resolver(configure=False)
    dns_resolver.nameservers = [nameserver]
    dns_resolver.port = port
    dns_resolver.lifetime = timeout

    def resolve(host: str, service_port: int) -> list[AddrInfo]:
        return resolve_addresses(dns_resolver, host, service_port)

    return resolve


def resolve_addresses(
    dns_resolver: dns.resolver.Resolver,
    host: str,
    port: int,
    *,
    deadline: float | None = None,
) -> list[AddrInfo]:
    """getaddrinfo's answer for `host`, asked of `dns_resolver` (A, then AAAA records).

    Raises socket.gaierror as getaddrinfo does; `deadline` (time.monotonic()) bounds the whole.
    """
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))]
    results: list[AddrInfo] = []
    for rdtype, family in (("A", socket.AF_INET), ("AAAA", socket.AF_INET6)):
        lifetime = None
        if deadline is not None:
            lifetime = deadline - time.monotonic()
            if lifetime <= 0:
                raise socket.gaierror(socket.EAI_AGAIN, f"{host}: out of time")
        try:
            answer = dns_resolver.resolve(host, rdtype, search=False, lifetime=lifetime)
        except dns.resolver.NXDOMAIN as exc:
            raise socket.gaierror(socket.EAI_NONAME, f"{host}: name does not exist") from exc
        except dns.resolver.NoAnswer:
            continue  # the name exists, just not with this address family
        except dns.exception.DNSException as exc:
            raise socket.gaierror(socket.EAI_AGAIN, f"{host}: {exc}") from exc
        for record in answer:
            sockaddr: tuple[Any, ...] = (
                (record.address, port) if family == socket.AF_INET else (record.address, port, 0, 0)
            )
            results.append((family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
    if not results:
        raise socket.gaierror(socket.EAI_NONAME, f"{host}: no address records")
    return results


def socket_opener(resolver: Resolver | None) -> SocketOpener:
    """A create_connection() look-alike that resolves through `resolver`.

    The protocol classes below keep the *name* as their host, so TLS sends it as SNI and checks
    the certificate against it, whatever address the resolver gave.
    """
    resolve = resolver or system_resolver

    def open_socket(host: str, port: int, timeout: float | None) -> socket.socket:
        addresses = resolve(host, port)
        # One deadline for all addresses, so that a name with many dead ones is still bounded.
        deadline = None if timeout is None else time.monotonic() + timeout
        last_error: OSError = socket.gaierror(socket.EAI_NONAME, f"{host}: no address")
        for family, _type, proto, _canonname, sockaddr in addresses:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"connecting to {host}:{port} timed out")
            sock = socket.socket(family, socket.SOCK_STREAM, proto)
            try:
                sock.settimeout(remaining)
                sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                last_error = exc
                continue
            sock.settimeout(timeout)
            return sock
        raise last_error

    return open_socket


# Protocol classes that connect through a SocketOpener --------------------------------------------


class _IMAP4(imaplib.IMAP4):
    def __init__(self, host: str, port: int, timeout: float | None, opener: SocketOpener) -> None:
        self._opener = opener
        super().__init__(host, port, timeout)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return self._opener(self.host, self.port, timeout)


class _IMAP4TLS(_IMAP4):
    def __init__(
        self,
        host: str,
        port: int,
        timeout: float | None,
        opener: SocketOpener,
        context: ssl.SSLContext,
    ) -> None:
        self._context = context
        super().__init__(host, port, timeout, opener)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return self._context.wrap_socket(super()._create_socket(timeout), server_hostname=self.host)


class _IMAPClient(IMAPClient):
    def __init__(
        self,
        settings: ServerSettings,
        context: ssl.SSLContext,
        opener: SocketOpener,
    ) -> None:
        self._opener = opener
        super().__init__(
            settings.host,
            settings.port,
            ssl=settings.security is Security.TLS,
            ssl_context=context,
            timeout=settings.timeout,
        )
        # IMAPClient sets imaplib's debug level to 5 so that imaplib logs through it; imaplib
        # then formats every response it reads, whole message bodies included, with %r before
        # the logger drops the line: 0.5 ms of CPU a message, as much as the FETCH itself.
        # Only when that logger really wants debug lines.
        if not logging.getLogger("imapclient.imaplib").isEnabledFor(logging.DEBUG):
            self._imap.debug = 0

    def _create_IMAP4(self) -> imaplib.IMAP4:
        timeout = self._timeout.connect
        if self.ssl:
            return _IMAP4TLS(self.host, self.port, timeout, self._opener, self.ssl_context)
        return _IMAP4(self.host, self.port, timeout, self._opener)


class _POP3(poplib.POP3):
    def __init__(
        self,
        host: str,
        port: int,
        timeout: float,
        opener: SocketOpener,
        context: ssl.SSLContext | None,
    ) -> None:
        self._opener = opener
        self._context = context
        try:
            super().__init__(host, port, timeout)
        except BaseException:
            # poplib.POP3 leaves its socket open when the greeting is not "+OK".
            for name in ("file", "sock"):
                resource = self.__dict__.get(name)
                if resource is not None:
                    resource.close()
            raise

    def _create_socket(self, timeout: float) -> socket.socket:
        sock = self._opener(self.host, self.port, timeout)
        if self._context is None:
            return sock
        return self._context.wrap_socket(sock, server_hostname=self.host)


class _SMTP(smtplib.SMTP):
    def __init__(self, timeout: float, opener: SocketOpener) -> None:
        self._opener = opener
        super().__init__(local_hostname=EHLO_HOSTNAME, timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        # smtplib sets _host (the name starttls() verifies) only when its constructor connects.
        self._host = host
        return self._opener(host, port, timeout)


class _SMTPTLS(smtplib.SMTP_SSL):
    def __init__(self, timeout: float, opener: SocketOpener, context: ssl.SSLContext) -> None:
        self._opener = opener
        super().__init__(local_hostname=EHLO_HOSTNAME, timeout=timeout, context=context)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        self._host = host
        return self.context.wrap_socket(self._opener(host, port, timeout), server_hostname=host)


# Classification ----------------------------------------------------------------------------------


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what it was raised from or while handling, innermost last.

    The libraries wrap socket errors: smtplib turns a read timeout into SMTPServerDisconnected,
    imaplib into IMAP4.abort, IMAPClient that into LoginError. The cause is what the user needs.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _closed_by_server(exc: BaseException) -> bool:
    if isinstance(exc, smtplib.SMTPServerDisconnected | EOFError):
        return True
    message = str(exc)
    return (isinstance(exc, imaplib.IMAP4.abort) and "EOF" in message) or (
        isinstance(exc, poplib.error_proto) and message.endswith("EOF")
    )


def _certificate_detail(exc: ssl.SSLCertVerificationError, host: str) -> str:
    kind = CERTIFICATE_ERRORS.get(exc.verify_code, "not verified")
    return f"certificate of {host} {kind}: {exc.verify_message}"


def _transport_problem(
    exc: BaseException, settings: ServerSettings, step: str
) -> tuple[Problem, str] | None:
    """DNS, TCP, TLS and timeout trouble, wherever it hides in the chain; None if there is none."""
    where = f"{settings.host}:{settings.port}"
    causes = list(_causes(exc))
    for cause in causes:
        if isinstance(cause, socket.gaierror):
            return Problem.DNS, f"{settings.host} does not resolve: {cause}"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return Problem.TLS_CERTIFICATE, _certificate_detail(cause, settings.host)
        if isinstance(cause, ssl.SSLError):
            detail = f"TLS handshake with {where} failed during {step}: {cause}"
            if cause.reason == "WRONG_VERSION_NUMBER":
                # The classic: the server answered our TLS hello in plain text.
                detail += " (the server does not speak TLS on this port; STARTTLS?)"
            return Problem.TLS_HANDSHAKE, detail
        if isinstance(cause, TimeoutError):
            detail = f"{where} did not answer within {settings.timeout:g} s during {step}"
            if step == "greeting" and settings.security is not Security.TLS:
                # An implicit-TLS port waits for our TLS hello while we wait for its greeting.
                detail += " (an implicit-TLS port is silent like this until TLS starts)"
            return Problem.TIMEOUT, detail
        if isinstance(cause, ConnectionRefusedError):
            return Problem.REFUSED, f"{where} refused the connection"
        if isinstance(cause, OSError) and cause.errno in UNREACHABLE_ERRNOS:
            return Problem.UNREACHABLE, f"{where} is unreachable: {cause.strerror}"
    # Only then the vaguer ones: smtplib reports a read timeout as a disconnection, for example.
    for cause in causes:
        if _closed_by_server(cause):
            return Problem.OTHER, f"{where} closed the connection during {step}: {cause}"
        if isinstance(cause, OSError) and not isinstance(cause, smtplib.SMTPException):
            return Problem.OTHER, f"network error with {where} during {step}: {cause}"
    return None


def _redact(text: str, settings: ServerSettings) -> str:
    # Servers sometimes echo what they received; a password must not reach a form or a log.
    return text.replace(settings.password, "********") if settings.password else text


def _fail(settings: ServerSettings, problem: Problem, detail: str) -> ConnectionFailed:
    # Redact before cutting, so that the cut cannot leave half a password behind.
    detail = _redact(detail, settings)
    if len(detail) > MAX_DETAIL:
        detail = detail[: MAX_DETAIL - 1] + "…"
    logger.info(
        "%s %s:%s: %s: %s", settings.protocol, settings.host, settings.port, problem, detail
    )
    return ConnectionFailed(problem, detail)


@contextmanager
def _step(settings: ServerSettings, step: str, protocol_problem: Problem) -> Iterator[None]:
    """Turn any trouble in this step into ConnectionFailed.

    Transport trouble is classified by its type. Otherwise the server answered, and its refusal
    or garbage (a "NO", "-ERR" or 5xx reply, a line that is not the protocol) is
    `protocol_problem` for this step: AUTHENTICATION at login, PROTOCOL at the greeting...
    """
    try:
        yield
    except TROUBLE as exc:
        problem, detail = _transport_problem(exc, settings, step) or (
            protocol_problem,
            f"{step}: {type(exc).__name__}: {exc}",
        )
        raise _fail(settings, problem, detail) from exc


def _require(settings: ServerSettings, protocol: Protocol) -> None:
    if settings.protocol is not protocol:
        raise ValueError(f"{settings.protocol} settings given to a {protocol} client")


def _close_quietly(close: Callable[[], object]) -> None:
    try:
        close()
    except TROUBLE as exc:
        logger.debug("closing a failed connection: %s", exc)


# Logged-in clients -------------------------------------------------------------------------------


def open_imap(
    settings: ServerSettings, *, ca_file: str | None = None, resolver: Resolver | None = None
) -> IMAPClient:
    """A logged-in IMAPClient (use it as a context manager to log out); raises ConnectionFailed."""
    _require(settings, Protocol.IMAP)
    context = ssl_context(ca_file)
    # imaplib reads the greeting and asks for CAPABILITY in its constructor; it also rejects a
    # server that announces neither IMAP4 nor IMAP4rev1 there.
    with _step(settings, "greeting", Problem.PROTOCOL):
        client = _IMAPClient(settings, context, socket_opener(resolver))
    try:
        if settings.security is Security.STARTTLS:
            if b"STARTTLS" not in client.capabilities():  # cached from the greeting: no I/O
                raise _fail(
                    settings, Problem.STARTTLS_UNSUPPORTED, "server does not announce STARTTLS"
                )
            with _step(settings, "STARTTLS", Problem.TLS_HANDSHAKE):
                client.starttls(context)
        with _step(settings, "login", Problem.AUTHENTICATION):
            client.login(settings.username, settings.password)
    except ConnectionFailed:
        _close_quietly(client.shutdown)
        raise
    return client


def open_pop3(
    settings: ServerSettings, *, ca_file: str | None = None, resolver: Resolver | None = None
) -> poplib.POP3:
    """A logged-in POP3 client (call quit() when done); raises ConnectionFailed."""
    _require(settings, Protocol.POP3)
    context = ssl_context(ca_file)
    implicit = context if settings.security is Security.TLS else None
    with _step(settings, "greeting", Problem.PROTOCOL):
        client = _POP3(
            settings.host, settings.port, settings.timeout, socket_opener(resolver), implicit
        )
    try:
        if settings.security is Security.STARTTLS:
            # A "-ERR" to CAPA means a server without CAPA (RFC 2449), hence without STLS.
            with _step(settings, "CAPA", Problem.STARTTLS_UNSUPPORTED):
                offered = "STLS" in client.capa()
            if not offered:
                raise _fail(settings, Problem.STARTTLS_UNSUPPORTED, "server does not announce STLS")
            with _step(settings, "STLS", Problem.TLS_HANDSHAKE):
                client.stls(context)
        with _step(settings, "login", Problem.AUTHENTICATION):
            client.user(settings.username)
            client.pass_(settings.password)
    except ConnectionFailed:
        _close_quietly(client.close)
        raise
    return client


def open_smtp(
    settings: ServerSettings, *, ca_file: str | None = None, resolver: Resolver | None = None
) -> smtplib.SMTP:
    """An authenticated SMTP client (call quit() when done); raises ConnectionFailed."""
    _require(settings, Protocol.SMTP)
    context = ssl_context(ca_file)
    opener = socket_opener(resolver)
    client: smtplib.SMTP = (
        _SMTPTLS(settings.timeout, opener, context)
        if settings.security is Security.TLS
        else _SMTP(settings.timeout, opener)
    )
    try:
        with _step(settings, "greeting", Problem.PROTOCOL):
            code, message = client.connect(settings.host, settings.port)
            if code != 220:
                _raise_for_greeting(settings, code, message)
            client.ehlo()
        if settings.security is Security.STARTTLS:
            if not client.has_extn("starttls"):
                raise _fail(
                    settings, Problem.STARTTLS_UNSUPPORTED, "server does not announce STARTTLS"
                )
            with _step(settings, "STARTTLS", Problem.TLS_HANDSHAKE):
                client.starttls(context=context)
                client.ehlo()  # what a server offers may change once the channel is private
        offered = set(client.esmtp_features.get("auth", "").upper().split())
        if not offered:
            detail = "server offers no AUTH on this connection"
            if settings.security is Security.PLAIN:
                detail += " (servers commonly offer AUTH only after TLS)"
            raise _fail(settings, Problem.CAPABILITY, detail)
        preferred = (
            SMTP_AUTH_MECHANISMS_WITHOUT_TLS
            if settings.security is Security.PLAIN
            else SMTP_AUTH_MECHANISMS
        )
        mechanism = next((m for m in preferred if m in offered), None)
        if mechanism is None:
            detail = f"no supported AUTH mechanism (server offers {' '.join(sorted(offered))})"
            raise _fail(settings, Problem.CAPABILITY, detail)
        with _step(settings, "login", Problem.AUTHENTICATION):
            # One attempt with one mechanism, not login()'s try-them-all: each failed attempt
            # counts towards the server's lockout of the user and costs its failure delay.
            client.user, client.password = settings.username, settings.password
            authenticate = getattr(client, "auth_" + mechanism.lower().replace("-", "_"))
            client.auth(mechanism, authenticate)
    except ConnectionFailed:
        _close_quietly(client.close)
        raise
    return client


def _raise_for_greeting(settings: ServerSettings, code: int, message: bytes) -> None:
    text = message.decode("utf-8", "replace")[:200]
    if 400 <= code < 600:
        # A real SMTP server that will not serve us (blocklisted, overloaded): not a wrong port.
        raise _fail(settings, Problem.OTHER, f"server refused the session: {code} {text}")
    # smtplib gives -1 for a line that does not start with a 3-digit code (an IMAP greeting...).
    raise _fail(settings, Problem.PROTOCOL, f"not an SMTP greeting: {text!r}")


# The account form's check ------------------------------------------------------------------------


def check_server(
    settings: ServerSettings, *, ca_file: str | None = None, resolver: Resolver | None = None
) -> CheckResult:
    """Connect, log in, read capabilities, log out; report the first problem found.

    Never raises for network or server trouble, only for programming errors.
    """
    try:
        if settings.protocol is Protocol.IMAP:
            return _check_imap(settings, ca_file, resolver)
        if settings.protocol is Protocol.POP3:
            return _check_pop3(settings, ca_file, resolver)
        return _check_smtp(settings, ca_file, resolver)
    except ConnectionFailed as exc:
        return CheckResult(ok=False, problem=exc.problem, detail=exc.detail)


def _success(settings: ServerSettings) -> str:
    return (
        f"logged in as {settings.username} over {settings.protocol} "
        f"({settings.security}) at {settings.host}:{settings.port}"
    )


def _check_imap(
    settings: ServerSettings, ca_file: str | None, resolver: Resolver | None
) -> CheckResult:
    client = open_imap(settings, ca_file=ca_file, resolver=resolver)
    try:
        # Servers announce more after login (RFC 3501 6.2.3); this asks again if needed.
        with _step(settings, "CAPABILITY", Problem.PROTOCOL):
            announced = client.capabilities()
    except ConnectionFailed:
        _close_quietly(client.shutdown)
        raise
    _log_out(client.logout, client.shutdown)
    capabilities = frozenset(bytes(c).decode("ascii", "replace").upper() for c in announced)
    if "IMAP4REV1" not in capabilities:
        return CheckResult(
            ok=False,
            problem=Problem.CAPABILITY,
            detail="server does not announce IMAP4rev1",
            capabilities=capabilities,
        )
    notes = tuple(
        note for name, note in OPTIONAL_IMAP_CAPABILITIES.items() if name not in capabilities
    )
    return CheckResult(
        ok=True, problem=None, detail=_success(settings), capabilities=capabilities, notes=notes
    )


def _check_pop3(
    settings: ServerSettings, ca_file: str | None, resolver: Resolver | None
) -> CheckResult:
    client = open_pop3(settings, ca_file=ca_file, resolver=resolver)
    try:
        # CAPA is optional in POP3 (RFC 2449): a "-ERR" just means nothing is announced.
        with _step(settings, "CAPA", Problem.OTHER):
            try:
                announced: dict[str, list[str]] = client.capa()
            except poplib.error_proto as exc:
                if _transport_problem(exc, settings, "CAPA"):
                    raise
                announced = {}
    except ConnectionFailed:
        _close_quietly(client.close)
        raise
    _log_out(client.quit, client.close)
    capabilities = frozenset(name.upper() for name in announced)
    return CheckResult(ok=True, problem=None, detail=_success(settings), capabilities=capabilities)


def _check_smtp(
    settings: ServerSettings, ca_file: str | None, resolver: Resolver | None
) -> CheckResult:
    client = open_smtp(settings, ca_file=ca_file, resolver=resolver)
    capabilities = frozenset(name.upper() for name in client.esmtp_features)
    _log_out(client.quit, client.close)
    return CheckResult(ok=True, problem=None, detail=_success(settings), capabilities=capabilities)


def _log_out(log_out: Callable[[], object], close: Callable[[], object]) -> None:
    # A failed LOGOUT/QUIT after a good session changes nothing for the user: just close.
    try:
        log_out()
    except TROUBLE as exc:
        logger.debug("logging out: %s", exc)
        _close_quietly(close)
