"""mailcore.connect against the real loopback stack, and tiny local servers for what it cannot do.

The stack's certificate names localhost, mail/imap/smtp.courrier.test, mail.ecole.test and
127.0.0.1 (mailstack/openssl.cnf). Its dnsmasq also resolves the bare `courrier.test` to 127.0.0.1,
which the certificate does not name: the wrong-host-name case.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pytest

from mailcore.connect import (
    AddrInfo,
    CheckResult,
    ConnectionFailed,
    Problem,
    Protocol,
    Resolver,
    Security,
    ServerSettings,
    check_server,
    dnsmasq_resolver,
    open_imap,
)
from tests.mailstack import MailStack

pytestmark = [
    pytest.mark.mailstack,
    # A socket left open warns when collected; make that a failure of the test that leaked it.
    pytest.mark.filterwarnings("error::ResourceWarning"),
    pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"),
]

ALICE = "alice@courrier.test"
WRONG_PASSWORD = "wrong-Zq9-password"
# Where a timeout is the point of the test; long enough for loopback to answer when it should.
SHORT = 1.0


@pytest.fixture(autouse=True)
def _no_threads_left_behind() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    assert set(threading.enumerate()) <= before


@pytest.fixture
def resolver(mailstack: MailStack) -> Resolver:
    return dnsmasq_resolver(mailstack.host, mailstack.dns_port)


def alice_settings(
    mailstack: MailStack,
    protocol: Protocol,
    port: int,
    security: Security,
    *,
    host: str = "mail.courrier.test",
    password: str | None = None,
    timeout: float = 5.0,
) -> ServerSettings:
    return ServerSettings(
        protocol=protocol,
        host=host,
        port=port,
        security=security,
        username=ALICE,
        password=mailstack.users[ALICE] if password is None else password,
        timeout=timeout,
    )


def check(
    settings: ServerSettings,
    mailstack: MailStack,
    resolver: Resolver | None,
    *,
    trust_test_ca: bool = True,
) -> CheckResult:
    """check_server with the stack's CA, and the secret-keeping every result must show."""
    ca_file = str(mailstack.ca_file) if trust_test_ca else None
    result = check_server(settings, ca_file=ca_file, resolver=resolver)
    assert settings.password not in result.detail
    assert settings.password not in repr(result)
    return result


def closed_port() -> int:
    """A loopback port nobody listens on (it was free a moment ago, and nothing reuses it fast)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word.

    The kernel completes the handshake for the listen backlog, so no thread needs to accept.
    """
    with socket.create_server(("127.0.0.1", 0), backlog=4) as listener:
        yield listener.getsockname()[1]


@contextmanager
def fake_imap_server(capabilities: str) -> Iterator[int]:
    """A one-connection plain IMAP server announcing `capabilities`; accepts any LOGIN."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)  # bounded even if the client never comes

    def reply(conn: socket.socket, line: bytes) -> bool:
        tag, _, rest = line.decode("ascii").strip().partition(" ")
        command = rest.split(" ", 1)[0].upper()
        if command == "CAPABILITY":
            conn.sendall(f"* CAPABILITY {capabilities}\r\n{tag} OK done\r\n".encode())
        elif command == "LOGIN":
            conn.sendall(f"{tag} OK logged in\r\n".encode())
        elif command == "LOGOUT":
            conn.sendall(f"* BYE fake\r\n{tag} OK bye\r\n".encode())
            return False
        else:
            conn.sendall(f"{tag} BAD not in this fake\r\n".encode())
        return True

    def serve() -> None:
        try:
            conn, _address = listener.accept()
            with conn, conn.makefile("rb") as lines:
                conn.settimeout(5)
                conn.sendall(b"* OK fake IMAP ready\r\n")
                for line in lines:  # ends when the client closes the connection
                    if not reply(conn, line):
                        break
        except OSError:
            pass  # the listener shut down with no client, or the client went away: done

    thread = threading.Thread(target=serve, name="fake-imap")
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        # shutdown() wakes a blocked accept() on Linux; close() alone would not.
        with suppress(OSError):  # ENOTCONN when no accept() was waiting
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join(timeout=10)
        assert not thread.is_alive()


# It works ----------------------------------------------------------------------------------------


def test_imaps_logs_in_by_name_and_reads_the_capabilities(
    mailstack: MailStack, resolver: Resolver
) -> None:
    settings = alice_settings(mailstack, Protocol.IMAP, mailstack.imaps_port, Security.TLS)
    result = check(settings, mailstack, resolver)
    assert result.ok, result.detail
    assert result.problem is None
    assert {"IMAP4REV1", "IDLE", "CONDSTORE", "QRESYNC", "SPECIAL-USE", "UIDPLUS"} <= (
        result.capabilities
    )
    assert result.notes == ()


def test_imap_with_starttls_logs_in(mailstack: MailStack) -> None:
    settings = alice_settings(
        mailstack, Protocol.IMAP, mailstack.imap_port, Security.STARTTLS, host=mailstack.host
    )
    result = check(settings, mailstack, None)
    assert result.ok, result.detail
    assert "IMAP4REV1" in result.capabilities


def test_pop3s_logs_in(mailstack: MailStack, resolver: Resolver) -> None:
    settings = alice_settings(mailstack, Protocol.POP3, mailstack.pop3s_port, Security.TLS)
    result = check(settings, mailstack, resolver)
    assert result.ok, result.detail
    assert "UIDL" in result.capabilities


def test_pop3_with_stls_logs_in(mailstack: MailStack, resolver: Resolver) -> None:
    settings = alice_settings(mailstack, Protocol.POP3, mailstack.pop3_port, Security.STARTTLS)
    result = check(settings, mailstack, resolver)
    assert result.ok, result.detail


def test_smtp_submissions_with_implicit_tls_logs_in(
    mailstack: MailStack, resolver: Resolver
) -> None:
    settings = alice_settings(mailstack, Protocol.SMTP, mailstack.submissions_port, Security.TLS)
    result = check(settings, mailstack, resolver)
    assert result.ok, result.detail
    assert "AUTH" in result.capabilities


def test_smtp_submission_with_starttls_logs_in(mailstack: MailStack, resolver: Resolver) -> None:
    settings = alice_settings(
        mailstack, Protocol.SMTP, mailstack.submission_port, Security.STARTTLS
    )
    result = check(settings, mailstack, resolver)
    assert result.ok, result.detail
    assert "AUTH" in result.capabilities


def test_open_imap_returns_a_logged_in_client(mailstack: MailStack, resolver: Resolver) -> None:
    settings = alice_settings(mailstack, Protocol.IMAP, mailstack.imaps_port, Security.TLS)
    with open_imap(settings, ca_file=str(mailstack.ca_file), resolver=resolver) as client:
        assert client.folder_exists("INBOX")


def test_imaplib_formats_no_debug_lines_unless_they_are_logged(
    mailstack: MailStack, resolver: Resolver, caplog: pytest.LogCaptureFixture
) -> None:
    """IMAPClient turns imaplib's debug output on, and imaplib then formats whole message
    bodies for a logger that drops them (half the CPU of a FETCH)."""
    settings = alice_settings(mailstack, Protocol.IMAP, mailstack.imaps_port, Security.TLS)
    with open_imap(settings, ca_file=str(mailstack.ca_file), resolver=resolver) as client:
        assert client._imap.debug == 0
    with (
        caplog.at_level(logging.DEBUG, logger="imapclient.imaplib"),
        open_imap(settings, ca_file=str(mailstack.ca_file), resolver=resolver) as client,
    ):
        client.noop()
    assert any("NOOP" in record.getMessage() for record in caplog.records)


def test_settings_accept_the_stored_strings_and_hide_the_password() -> None:
    # Strings, as a model's CharFields hold them; the annotations ask for the enums on purpose.
    settings = ServerSettings(
        "imap",  # type: ignore[arg-type]  # a stored string, coerced to Protocol
        "mail.courrier.test",
        993,
        "tls",  # type: ignore[arg-type]  # a stored string, coerced to Security
        ALICE,
        "s3cret-Zq9",
    )
    assert settings.protocol is Protocol.IMAP
    assert settings.security is Security.TLS
    assert "s3cret-Zq9" not in repr(settings)
    assert "s3cret-Zq9" not in str(settings)


def test_an_imap_server_without_the_optional_extensions_passes_with_notes(
    mailstack: MailStack,
) -> None:
    with fake_imap_server("IMAP4rev1 AUTH=PLAIN") as port:
        settings = alice_settings(mailstack, Protocol.IMAP, port, Security.PLAIN, host="127.0.0.1")
        result = check(settings, mailstack, None)
    assert result.ok, result.detail
    assert result.capabilities == {"IMAP4REV1", "AUTH=PLAIN"}
    assert "no IDLE: push will fall back to polling" in result.notes
    assert len(result.notes) == 5


# What the user got wrong -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "port_name", "security"),
    [
        (Protocol.IMAP, "imaps_port", Security.TLS),
        (Protocol.IMAP, "imap_port", Security.STARTTLS),
        (Protocol.POP3, "pop3s_port", Security.TLS),
        (Protocol.POP3, "pop3_port", Security.STARTTLS),
        (Protocol.SMTP, "submissions_port", Security.TLS),
        (Protocol.SMTP, "submission_port", Security.STARTTLS),
    ],
)
def test_a_wrong_password_is_an_authentication_problem(
    mailstack: MailStack,
    resolver: Resolver,
    protocol: Protocol,
    port_name: str,
    security: Security,
) -> None:
    port = getattr(mailstack, port_name)
    settings = alice_settings(mailstack, protocol, port, security, password=WRONG_PASSWORD)
    result = check(settings, mailstack, resolver)
    assert not result.ok
    assert result.problem is Problem.AUTHENTICATION, result.detail


def test_open_imap_raises_the_classified_failure(mailstack: MailStack, resolver: Resolver) -> None:
    settings = alice_settings(
        mailstack, Protocol.IMAP, mailstack.imaps_port, Security.TLS, password=WRONG_PASSWORD
    )
    with pytest.raises(ConnectionFailed) as failure:
        open_imap(settings, ca_file=str(mailstack.ca_file), resolver=resolver)
    assert failure.value.problem is Problem.AUTHENTICATION


def test_an_unknown_host_is_a_dns_problem(mailstack: MailStack, resolver: Resolver) -> None:
    settings = alice_settings(
        mailstack, Protocol.IMAP, mailstack.imaps_port, Security.TLS, host="nope.courrier.test"
    )
    result = check(settings, mailstack, resolver)
    assert result.problem is Problem.DNS
    assert "nope.courrier.test" in result.detail


def test_the_dnsmasq_resolver_answers_like_getaddrinfo(
    mailstack: MailStack, resolver: Resolver
) -> None:
    assert [info[4] for info in resolver("mail.courrier.test", 993)] == [("127.0.0.1", 993)]
    assert resolver("127.0.0.1", 25)[0][4] == ("127.0.0.1", 25)
    with pytest.raises(socket.gaierror):
        resolver("nope.courrier.test", 993)


def test_a_closed_port_is_refused(mailstack: MailStack) -> None:
    settings = alice_settings(
        mailstack, Protocol.IMAP, closed_port(), Security.TLS, host=mailstack.host
    )
    result = check(settings, mailstack, None)
    assert result.problem is Problem.REFUSED


def test_an_address_with_no_route_is_unreachable(mailstack: MailStack) -> None:
    def broadcast(host: str, port: int) -> list[AddrInfo]:
        # Linux refuses TCP to the broadcast address with ENETUNREACH, at once and offline.
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("255.255.255.255", port))]

    settings = alice_settings(mailstack, Protocol.IMAP, mailstack.imaps_port, Security.TLS)
    result = check(settings, mailstack, broadcast)
    assert result.problem is Problem.UNREACHABLE


@pytest.mark.parametrize(
    ("protocol", "security"),
    [(Protocol.IMAP, Security.TLS), (Protocol.SMTP, Security.STARTTLS)],
)
def test_a_server_that_never_speaks_is_a_timeout(
    mailstack: MailStack, protocol: Protocol, security: Security
) -> None:
    with silent_server() as port:
        settings = alice_settings(
            mailstack, protocol, port, security, host=mailstack.host, timeout=SHORT
        )
        result = check(settings, mailstack, None)
    assert result.problem is Problem.TIMEOUT, result.detail


def test_a_certificate_from_a_ca_we_do_not_trust_is_a_certificate_problem(
    mailstack: MailStack, resolver: Resolver
) -> None:
    settings = alice_settings(mailstack, Protocol.IMAP, mailstack.imaps_port, Security.TLS)
    result = check(settings, mailstack, resolver, trust_test_ca=False)  # system CAs only
    assert result.problem is Problem.TLS_CERTIFICATE
    assert "untrusted" in result.detail


def test_a_name_the_certificate_does_not_cover_is_a_certificate_problem(
    mailstack: MailStack, resolver: Resolver
) -> None:
    # courrier.test resolves to 127.0.0.1, which the certificate does name: the check is on the
    # name the user typed, not on the address it resolved to.
    for protocol, port, security in [
        (Protocol.IMAP, mailstack.imaps_port, Security.TLS),
        (Protocol.SMTP, mailstack.submission_port, Security.STARTTLS),
    ]:
        settings = alice_settings(mailstack, protocol, port, security, host="courrier.test")
        result = check(settings, mailstack, resolver)
        assert result.problem is Problem.TLS_CERTIFICATE, result.detail
        assert "wrong host name" in result.detail
        assert "courrier.test" in result.detail


def test_tls_against_a_plain_port_is_a_handshake_problem(
    mailstack: MailStack, resolver: Resolver
) -> None:
    # The server's plain-text greeting arrives where a TLS record should: OpenSSL's "wrong
    # version number". The detail suggests STARTTLS.
    settings = alice_settings(mailstack, Protocol.POP3, mailstack.pop3_port, Security.TLS)
    result = check(settings, mailstack, resolver)
    assert result.problem is Problem.TLS_HANDSHAKE
    assert "STARTTLS" in result.detail


def test_starttls_against_an_implicit_tls_port_is_a_timeout_with_a_hint(
    mailstack: MailStack, resolver: Resolver
) -> None:
    # Honestly a timeout: the server waits for our TLS hello, we wait for its greeting, and
    # nothing tells them apart from a hung server. The detail says what it likely is.
    settings = alice_settings(
        mailstack, Protocol.IMAP, mailstack.imaps_port, Security.STARTTLS, timeout=SHORT
    )
    result = check(settings, mailstack, resolver)
    assert result.problem is Problem.TIMEOUT
    assert "implicit-TLS" in result.detail


def test_imap_settings_on_the_smtp_port_are_a_protocol_problem(
    mailstack: MailStack, resolver: Resolver
) -> None:
    settings = alice_settings(
        mailstack, Protocol.IMAP, mailstack.submission_port, Security.STARTTLS
    )
    result = check(settings, mailstack, resolver)
    assert result.problem is Problem.PROTOCOL
    assert "220" in result.detail  # the SMTP greeting, quoted for the admin


def test_smtp_settings_on_the_imap_port_are_a_protocol_problem(
    mailstack: MailStack, resolver: Resolver
) -> None:
    settings = alice_settings(mailstack, Protocol.SMTP, mailstack.imap_port, Security.STARTTLS)
    result = check(settings, mailstack, resolver)
    assert result.problem is Problem.PROTOCOL


def test_a_server_without_starttls_is_reported_as_such(mailstack: MailStack) -> None:
    with fake_imap_server("IMAP4rev1 IDLE AUTH=PLAIN") as port:
        settings = alice_settings(
            mailstack, Protocol.IMAP, port, Security.STARTTLS, host="127.0.0.1"
        )
        result = check(settings, mailstack, None)
    assert result.problem is Problem.STARTTLS_UNSUPPORTED


def test_an_imap_server_without_imap4rev1_is_a_capability_problem(mailstack: MailStack) -> None:
    with fake_imap_server("IMAP4 AUTH=PLAIN") as port:
        settings = alice_settings(mailstack, Protocol.IMAP, port, Security.PLAIN, host="127.0.0.1")
        result = check(settings, mailstack, None)
    assert result.problem is Problem.CAPABILITY
    assert result.capabilities == {"IMAP4", "AUTH=PLAIN"}


def test_smtp_without_auth_before_tls_is_a_capability_problem(mailstack: MailStack) -> None:
    settings = alice_settings(
        mailstack, Protocol.SMTP, mailstack.submission_port, Security.PLAIN, host=mailstack.host
    )
    result = check(settings, mailstack, None)
    assert result.problem is Problem.CAPABILITY


# Secrets -----------------------------------------------------------------------------------------


def test_the_password_reaches_no_detail_repr_or_log(
    mailstack: MailStack, resolver: Resolver, caplog: pytest.LogCaptureFixture
) -> None:
    # Every check() above already asserts this of its result; here the logs too, at DEBUG, for
    # a good and a refused login of each protocol and the failures that happen before login.
    caplog.set_level(logging.DEBUG)
    secret = mailstack.users[ALICE]
    cases = [
        (Protocol.IMAP, mailstack.imaps_port, Security.TLS, "mail.courrier.test"),
        (Protocol.POP3, mailstack.pop3_port, Security.STARTTLS, "mail.courrier.test"),
        (Protocol.SMTP, mailstack.submission_port, Security.STARTTLS, "mail.courrier.test"),
        (Protocol.IMAP, mailstack.imaps_port, Security.TLS, "courrier.test"),
        (Protocol.IMAP, mailstack.imaps_port, Security.TLS, "nope.courrier.test"),
        (Protocol.IMAP, mailstack.submission_port, Security.STARTTLS, "mail.courrier.test"),
    ]
    details = []
    for protocol, port, security, host in cases:
        for password in (secret, WRONG_PASSWORD):
            settings = alice_settings(
                mailstack, protocol, port, security, host=host, password=password
            )
            assert password not in repr(settings)
            details.append(check(settings, mailstack, resolver).detail)
    assert len(set(details)) > 3  # the cases did fail in different ways
    for secret_text in (secret, WRONG_PASSWORD):
        assert secret_text not in caplog.text
        assert not any(secret_text in detail for detail in details)
