"""Smoke tests of the loopback mail stack: each protocol and port, real TLS checks, DNS records.

Every test makes its own message (unique Message-ID) and removes it, so the tests do not depend
on one another nor on what earlier runs left in the mailboxes.
"""

from __future__ import annotations

import base64
import poplib
import smtplib
import socket
import ssl
import subprocess
import uuid
from email import message_from_bytes
from email.message import EmailMessage
from email.utils import make_msgid

import dns.resolver
import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from tests.mailstack import MailStack

pytestmark = pytest.mark.mailstack

ALICE = "alice@courrier.test"
BOB = "bob@courrier.test"
DAVE = "dave@ecole.test"
DOMAINS = ["courrier.test", "ecole.test"]


def new_message(sender: str, recipient: str, subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = f"{subject} {uuid.uuid4()}"
    message["Message-ID"] = make_msgid(domain="courrier.test")
    message.set_content("Sent by tests/test_mailstack.py.\n")
    return message


def pop3_take(client: poplib.POP3, message_id: str) -> bytes:
    """Find the message by Message-ID (newest first), delete it, and return it."""
    count, _size = client.stat()
    for number in range(count, 0, -1):
        _response, header_lines, _octets = client.top(number, 0)
        if message_from_bytes(b"\r\n".join(header_lines))["Message-ID"] == message_id:
            _response, lines, _octets = client.retr(number)
            client.dele(number)
            return b"\r\n".join(lines)
    raise AssertionError(f"{message_id} is not in the POP3 mailbox")


# IMAP and POP3 ----------------------------------------------------------------------------------


def test_alice_logs_in_over_imaps_with_a_verified_certificate(mailstack: MailStack) -> None:
    context = mailstack.ssl_context()
    with IMAPClient(mailstack.host, port=mailstack.imaps_port, ssl_context=context) as client:
        client.login(ALICE, mailstack.users[ALICE])
        assert client.select_folder("INBOX", readonly=True)[b"UIDVALIDITY"]


def test_alice_logs_in_over_imap_after_starttls(mailstack: MailStack) -> None:
    with IMAPClient(mailstack.host, port=mailstack.imap_port, ssl=False) as client:
        client.starttls(mailstack.ssl_context())
        client.login(ALICE, mailstack.users[ALICE])
        assert client.folder_exists("INBOX")


def test_imap_refuses_a_login_before_starttls(mailstack: MailStack) -> None:
    with (
        IMAPClient(mailstack.host, port=mailstack.imap_port, ssl=False) as client,
        pytest.raises(LoginError),
    ):
        client.login(ALICE, mailstack.users[ALICE])


def test_pop3_refuses_a_login_before_stls(mailstack: MailStack) -> None:
    client = poplib.POP3(mailstack.host, mailstack.pop3_port, timeout=10)
    try:
        client.user(ALICE)
        with pytest.raises(poplib.error_proto):
            client.pass_(mailstack.users[ALICE])
    finally:
        client.close()


def test_imap_offers_condstore_qresync_idle_and_special_use(mailstack: MailStack) -> None:
    with mailstack.imap(ALICE) as client:
        capabilities = set(client.capabilities())
    assert {b"CONDSTORE", b"QRESYNC", b"IDLE", b"SPECIAL-USE", b"MOVE", b"UIDPLUS"} <= capabilities


def test_special_use_folders_exist_with_their_flags(mailstack: MailStack) -> None:
    with mailstack.imap(ALICE) as client:
        flags_by_name = {name: set(flags) for flags, _delimiter, name in client.list_folders()}
        subscribed = {name for _flags, _delimiter, name in client.list_sub_folders()}

    for name in ["Drafts", "Sent", "Trash", "Junk", "Archive"]:
        assert f"\\{name}".encode() in flags_by_name[name]
    assert {"INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"} <= subscribed


# SMTP -------------------------------------------------------------------------------------------


def test_alice_sends_to_bob_through_submission_with_starttls_and_auth(
    mailstack: MailStack,
) -> None:
    message = new_message(ALICE, BOB, "Submission with STARTTLS")

    with smtplib.SMTP(mailstack.host, mailstack.submission_port, timeout=10) as smtp:
        smtp.starttls(context=mailstack.ssl_context())
        smtp.login(ALICE, mailstack.users[ALICE])
        smtp.send_message(message)

    raw = mailstack.wait_for_message(BOB, message["Message-ID"], delete=True)
    assert message_from_bytes(raw)["Subject"] == message["Subject"]


def test_alice_sends_to_bob_through_submissions_with_implicit_tls(mailstack: MailStack) -> None:
    message = new_message(ALICE, BOB, "Submissions with implicit TLS")
    context = mailstack.ssl_context()

    with smtplib.SMTP_SSL(mailstack.host, mailstack.submissions_port, context=context) as smtp:
        smtp.login(ALICE, mailstack.users[ALICE])
        smtp.send_message(message)

    raw = mailstack.wait_for_message(BOB, message["Message-ID"], delete=True)
    assert message_from_bytes(raw)["Subject"] == message["Subject"]


def test_submission_offers_auth_only_after_starttls(mailstack: MailStack) -> None:
    with smtplib.SMTP(mailstack.host, mailstack.submission_port, timeout=10) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("starttls")
        assert not smtp.has_extn("auth")
        smtp.starttls(context=mailstack.ssl_context())
        smtp.ehlo()
        assert smtp.has_extn("auth")


def test_submission_without_auth_cannot_send_to_bob(mailstack: MailStack) -> None:
    message = new_message(ALICE, BOB, "Unauthenticated submission")

    with smtplib.SMTP(mailstack.host, mailstack.submission_port, timeout=10) as smtp:
        smtp.starttls(context=mailstack.ssl_context())
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            smtp.send_message(message)

    code, _reason = refused.value.recipients[BOB]
    assert code == 554


def test_submission_keeps_mail_for_other_domains_on_the_machine(mailstack: MailStack) -> None:
    recipient = "someone@example.org"
    message = new_message(ALICE, recipient, "Outbound")

    with smtplib.SMTP(mailstack.host, mailstack.submission_port, timeout=10) as smtp:
        smtp.starttls(context=mailstack.ssl_context())
        smtp.login(ALICE, mailstack.users[ALICE])
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            smtp.send_message(message)

    assert refused.value.recipients[recipient][0] == 550


def test_submission_refuses_a_wrong_password(mailstack: MailStack) -> None:
    with smtplib.SMTP(mailstack.host, mailstack.submission_port, timeout=10) as smtp:
        smtp.starttls(context=mailstack.ssl_context())
        with pytest.raises(smtplib.SMTPAuthenticationError):
            smtp.login(ALICE, "not-alice-password")


def test_inbound_smtp_accepts_mail_for_bob_without_auth(mailstack: MailStack) -> None:
    message = new_message("someone@example.org", BOB, "Inbound")

    with smtplib.SMTP(mailstack.host, mailstack.smtp_port, timeout=10) as smtp:
        smtp.starttls(context=mailstack.ssl_context())
        smtp.send_message(message)

    raw = mailstack.wait_for_message(BOB, message["Message-ID"], delete=True)
    assert message_from_bytes(raw)["Subject"] == message["Subject"]


@pytest.mark.parametrize(
    ("recipient", "code"),
    [("someone@example.org", 554), ("nobody@courrier.test", 550)],
    ids=["other-domain", "unknown-user"],
)
def test_inbound_smtp_refuses_relaying_and_unknown_users(
    mailstack: MailStack, recipient: str, code: int
) -> None:
    message = new_message("someone@example.net", recipient, "Inbound refused")

    with (
        smtplib.SMTP(mailstack.host, mailstack.smtp_port, timeout=10) as smtp,
        pytest.raises(smtplib.SMTPRecipientsRefused) as refused,
    ):
        smtp.send_message(message)

    assert refused.value.recipients[recipient][0] == code


# Reading what was sent -------------------------------------------------------------------------


def test_bob_reads_submitted_mail_over_pop3s(mailstack: MailStack) -> None:
    message = new_message(ALICE, BOB, "Read over POP3S")
    context = mailstack.ssl_context()
    with smtplib.SMTP_SSL(mailstack.host, mailstack.submissions_port, context=context) as smtp:
        smtp.login(ALICE, mailstack.users[ALICE])
        smtp.send_message(message)
    mailstack.wait_for_message(BOB, message["Message-ID"])

    client = poplib.POP3_SSL(mailstack.host, mailstack.pop3s_port, context=context, timeout=10)
    client.user(BOB)
    client.pass_(mailstack.users[BOB])
    raw = pop3_take(client, message["Message-ID"])
    client.quit()

    assert message_from_bytes(raw)["Subject"] == message["Subject"]


def test_bob_reads_delivered_mail_over_pop3_after_stls(mailstack: MailStack) -> None:
    message = new_message(ALICE, BOB, "Read over POP3 with STLS")
    mailstack.deliver(message, BOB)  # LMTP: stored when this returns

    client = poplib.POP3(mailstack.host, mailstack.pop3_port, timeout=10)
    client.stls(mailstack.ssl_context())
    client.user(BOB)
    client.pass_(mailstack.users[BOB])
    raw = pop3_take(client, message["Message-ID"])
    client.quit()

    assert message_from_bytes(raw)["Subject"] == message["Subject"]


def test_clear_mailbox_empties_folders_and_removes_extra_ones(mailstack: MailStack) -> None:
    mailstack.deliver(new_message(ALICE, DAVE, "To be cleared"), DAVE)
    with mailstack.imap(DAVE) as client:
        client.create_folder("Projects/2024")
        client.append("Sent", new_message(DAVE, ALICE, "Sent copy").as_bytes())

    mailstack.clear_mailbox(DAVE)

    with mailstack.imap(DAVE) as client:
        names = {name for _flags, _delimiter, name in client.list_folders()}
        counts = {name: client.folder_status(name, [b"MESSAGES"])[b"MESSAGES"] for name in names}
    assert names == {"INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"}
    assert set(counts.values()) == {0}


# TLS --------------------------------------------------------------------------------------------

IMPLICIT_TLS_PORTS = ["imaps_port", "pop3s_port", "submissions_port"]


@pytest.mark.parametrize("port_name", IMPLICIT_TLS_PORTS)
def test_a_client_trusting_only_the_system_cas_rejects_the_server(
    mailstack: MailStack, port_name: str
) -> None:
    system_context = ssl.create_default_context()
    with (
        socket.create_connection((mailstack.host, getattr(mailstack, port_name))) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        system_context.wrap_socket(raw, server_hostname="mail.courrier.test")


@pytest.mark.parametrize(
    "server_name",
    [
        "localhost",
        "mail.courrier.test",
        "imap.courrier.test",
        "smtp.courrier.test",
        "mail.ecole.test",
        "127.0.0.1",
    ],
)
def test_the_certificate_is_valid_for_each_of_its_names(
    mailstack: MailStack, server_name: str
) -> None:
    context = mailstack.ssl_context()
    with (
        socket.create_connection((mailstack.host, mailstack.imaps_port)) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        assert tls.getpeercert()


def test_the_certificate_is_refused_for_another_host_name(mailstack: MailStack) -> None:
    context = mailstack.ssl_context()
    with (
        socket.create_connection((mailstack.host, mailstack.imaps_port)) as raw,
        pytest.raises(ssl.SSLCertVerificationError, match="mismatch"),
    ):
        context.wrap_socket(raw, server_hostname="mail.example.org")


# DNS --------------------------------------------------------------------------------------------


@pytest.fixture
def resolver(mailstack: MailStack) -> dns.resolver.Resolver:
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [mailstack.host]
    resolver.port = mailstack.dns_port
    resolver.lifetime = 5
    return resolver


def txt_values(resolver: dns.resolver.Resolver, name: str) -> list[str]:
    """Each TXT record of `name`, its character-strings joined as RFC 7208/6376 say."""
    return [b"".join(record.strings).decode() for record in resolver.resolve(name, "TXT")]


@pytest.mark.parametrize("domain", DOMAINS)
def test_dns_gives_each_domain_an_mx_and_spf_and_dmarc(
    resolver: dns.resolver.Resolver, domain: str
) -> None:
    [mx] = resolver.resolve(domain, "MX")
    assert (mx.preference, mx.exchange.to_text()) == (10, f"mail.{domain}.")
    assert txt_values(resolver, domain) == ["v=spf1 ip4:127.0.0.1 -all"]
    assert txt_values(resolver, f"_dmarc.{domain}") == [
        f"v=DMARC1; p=quarantine; rua=mailto:dmarc@{domain}"
    ]


@pytest.mark.parametrize(
    "name",
    [
        "courrier.test",
        "mail.courrier.test",
        "imap.courrier.test",
        "smtp.courrier.test",
        "ecole.test",
        "mail.ecole.test",
    ],
)
def test_dns_points_the_mail_hosts_at_loopback(resolver: dns.resolver.Resolver, name: str) -> None:
    assert [record.address for record in resolver.resolve(name, "A")] == ["127.0.0.1"]


def test_dns_publishes_the_public_half_of_the_dkim_key(
    mailstack: MailStack, resolver: dns.resolver.Resolver
) -> None:
    name = f"{mailstack.dkim_selector}._domainkey.{mailstack.dkim_domain}"
    [record] = resolver.resolve(name, "TXT")
    assert len(record.strings) > 1  # a 2048-bit key does not fit one 255-byte string
    tags = dict(tag.strip().split("=", 1) for tag in b"".join(record.strings).decode().split(";"))
    public_key = subprocess.run(
        ["openssl", "pkey", "-in", str(mailstack.dkim_private_key), "-pubout", "-outform", "DER"],
        capture_output=True,
        check=True,
    ).stdout

    assert tags["v"] == "DKIM1"
    assert tags["k"] == "rsa"
    assert base64.b64decode(tags["p"]) == public_key


@pytest.mark.parametrize(
    ("service", "port_name"),
    [
        ("_imaps._tcp", "imaps_port"),
        ("_imap._tcp", "imap_port"),
        ("_pop3s._tcp", "pop3s_port"),
        ("_submissions._tcp", "submissions_port"),
        ("_submission._tcp", "submission_port"),
    ],
)
def test_dns_lets_clients_discover_the_mail_services(
    mailstack: MailStack, resolver: dns.resolver.Resolver, service: str, port_name: str
) -> None:
    [record] = resolver.resolve(f"{service}.courrier.test", "SRV")
    assert record.target.to_text() == "mail.courrier.test."
    assert record.port == getattr(mailstack, port_name)


def test_dns_answers_nxdomain_for_unknown_names_in_the_test_domains(
    resolver: dns.resolver.Resolver,
) -> None:
    with pytest.raises(dns.resolver.NXDOMAIN):
        resolver.resolve("nothing-here.courrier.test", "A")


def test_dns_does_not_forward_other_names(resolver: dns.resolver.Resolver) -> None:
    # With no upstream at all, dnsmasq answers REFUSED, which dnspython reports as no nameserver.
    with pytest.raises((dns.resolver.NXDOMAIN, dns.resolver.NoNameservers)):
        resolver.resolve("example.org", "A")
