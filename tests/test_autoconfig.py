"""mailcore.autoconfig against the stack's real dnsmasq and a local HTTPS server.

courrier.test publishes SRV records (mailstack/dnsmasq.conf); ecole.test publishes none, so its
discovery falls through to autoconfig XML, served here by a small stdlib HTTPS server with the
stack's certificate (which names autoconfig.ecole.test and ecole.test, both pointed at 127.0.0.1 by
dnsmasq). The server listens on a random port: `discover(autoconfig_port=...)` puts it in the URLs.
"""

from __future__ import annotations

import http.server
import socket
import socketserver
import ssl
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.IN.SRV
import dns.resolver
import pytest

from mailcore.autoconfig import (
    MAX_XML_BYTES,
    ServerGuess,
    Source,
    Suggestion,
    best_srv_target,
    discover,
    fetch_https,
    parse_autoconfig_xml,
    srv_suggestion,
)
from mailcore.connect import Protocol, Security, ServerSettings, check_server, dnsmasq_resolver
from tests.mailstack import MailStack

pytestmark = [
    pytest.mark.mailstack,
    # A socket left open warns when collected; make that a failure of the test that leaked it.
    pytest.mark.filterwarnings("error::ResourceWarning"),
    pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"),
]

ALICE = "alice@courrier.test"
DAVE = "dave@ecole.test"
# Where a timeout is the point of the test; long enough for loopback to answer when it should.
SHORT = 1.0
CONFIG_PATH = "/mail/config-v1.1.xml"
WELL_KNOWN_PATH = "/.well-known/autoconfig/mail/config-v1.1.xml"


@pytest.fixture(autouse=True)
def _no_threads_left_behind() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    assert set(threading.enumerate()) <= before


@pytest.fixture
def resolver(mailstack: MailStack) -> dns.resolver.Resolver:
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [mailstack.host]
    resolver.port = mailstack.dns_port
    resolver.lifetime = 5
    return resolver


def never_fetch(url: str) -> bytes | None:
    raise AssertionError(f"autoconfig should not have been asked: {url}")


# Autoconfig documents ----------------------------------------------------------------------------


def server_xml(
    kind: str = "incomingServer",
    protocol: str = "imap",
    host: str = "mail.ecole.test",
    port: int | str = 993,
    socket_type: str = "SSL",
    username: str = "%EMAILADDRESS%",
    authentication: str = "password-cleartext",
) -> str:
    return f"""
    <{kind} type="{protocol}">
      <hostname>{host}</hostname>
      <port>{port}</port>
      <socketType>{socket_type}</socketType>
      <username>{username}</username>
      <authentication>{authentication}</authentication>
    </{kind}>"""


def config_xml(*servers: str, padding: int = 0) -> bytes:
    """A config-v1.1.xml as providers publish it; `padding` adds a comment of that many bytes."""
    comment = f"<!-- {'x' * padding} -->" if padding else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="ecole.test">
    <domain>ecole.test</domain>
    <displayName>École de test</displayName>
    <displayShortName>École</displayShortName>{"".join(servers)}
    <documentation url="https://ecole.test/aide/messagerie">
      <descr lang="fr">Configurer sa messagerie</descr>
    </documentation>
  </emailProvider>
  {comment}
</clientConfig>
""".encode()


def ecole_config(mailstack: MailStack) -> bytes:
    """ecole.test's real servers on the stack; POP3 over SSL listed first, as some providers do."""
    return config_xml(
        server_xml(protocol="pop3", port=mailstack.pop3s_port, socket_type="SSL"),
        server_xml(host="mail.%EMAILDOMAIN%", port=mailstack.imap_port, socket_type="STARTTLS"),
        server_xml(
            "outgoingServer", "smtp", port=mailstack.submission_port, socket_type="STARTTLS"
        ),
    )


# A local HTTPS server ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    declare_length: bool = True


class _Handler(http.server.BaseHTTPRequestHandler):
    server: WebServer
    timeout = 5  # per socket operation: a stuck client cannot hold the serving thread

    def do_GET(self) -> None:
        host = (self.headers.get("Host") or "").rpartition(":")[0]
        self.server.requests.append(f"{host}{self.path}")
        path = urllib.parse.urlsplit(self.path).path
        reply = self.server.replies.get(f"{host}{path}", Reply(404, b"not here"))
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.declare_length:
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()  # HTTP/1.0: without a length, the body ends when we close
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests assert on `requests`, not on stderr


class WebServer(socketserver.TCPServer):
    """A one-thread HTTPS server on 127.0.0.1 answering from `replies`, keyed "host/path".

    socketserver.TCPServer rather than http.server.HTTPServer, whose server_bind does a reverse
    DNS lookup of 127.0.0.1.
    """

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.context = context
        self.replies: dict[str, Reply] = {}
        self.requests: list[str] = []
        self.connections = 0
        self.errors: list[BaseException] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def finish_request(self, request: Any, client_address: Any) -> None:
        # Counted before the handshake, hence before the client can have any answer.
        self.connections += 1
        request.settimeout(5)
        # The handshake here, in the request, not in accept(): a failed one is then one
        # failed request, bounded by the timeout, reported to handle_error.
        with self.context.wrap_socket(request, server_side=True) as tls:
            self.RequestHandlerClass(tls, client_address, self)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client refusing our certificate, or hanging up on a huge body: tests look here.
        self.errors.append(sys.exc_info()[1] or RuntimeError("unknown"))


@pytest.fixture(scope="session")
def server_context(mailstack: MailStack) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_dir = mailstack.state_dir / "tls"
    context.load_cert_chain(tls_dir / "server.pem", tls_dir / "server.key")
    return context


@contextmanager
def https_server(context: ssl.SSLContext) -> Iterator[WebServer]:
    server = WebServer(context)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="autoconfig-https"
    )
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()  # returns once serve_forever has
        server.server_close()
        thread.join(timeout=10)
        assert not thread.is_alive()


@pytest.fixture
def web(server_context: ssl.SSLContext) -> Iterator[WebServer]:
    with https_server(server_context) as server:
        yield server


def closed_port() -> int:
    """A loopback port nobody listens on (it was free a moment ago, and nothing reuses it fast)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def silent_dns() -> Iterator[dns.resolver.Resolver]:
    """A resolver whose one server receives queries and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = sink.getsockname()[1]
        yield resolver


def discover_dave(
    mailstack: MailStack,
    resolver: dns.resolver.Resolver,
    web: WebServer,
    *,
    trust_test_ca: bool = True,
) -> Suggestion | None:
    return discover(
        DAVE,
        resolver=resolver,
        ca_file=str(mailstack.ca_file) if trust_test_ca else None,
        timeout=SHORT,
        autoconfig_port=web.port,
    )


# DNS SRV -----------------------------------------------------------------------------------------


def test_srv_records_give_implicit_tls_imap_and_submission(
    mailstack: MailStack, resolver: dns.resolver.Resolver
) -> None:
    suggestion = discover(ALICE, resolver=resolver, https_get=never_fetch)
    assert suggestion == Suggestion(
        incoming=ServerGuess(
            Protocol.IMAP, "mail.courrier.test", mailstack.imaps_port, Security.TLS, ALICE
        ),
        outgoing=ServerGuess(
            Protocol.SMTP, "mail.courrier.test", mailstack.submissions_port, Security.TLS, ALICE
        ),
        source=Source.SRV,
    )
    assert suggestion.source == "srv"
    assert not suggestion.insecure


def test_srv_suggestion_can_be_asked_directly(
    mailstack: MailStack, resolver: dns.resolver.Resolver
) -> None:
    suggestion = srv_suggestion("courrier.test", ALICE, resolver)
    assert suggestion is not None
    assert (suggestion.incoming.host, suggestion.incoming.port) == (
        "mail.courrier.test",
        mailstack.imaps_port,
    )
    assert srv_suggestion("ecole.test", DAVE, resolver) is None


def srv(*lines: str) -> list[dns.rdtypes.IN.SRV.SRV]:
    records = [dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.SRV, line) for line in lines]
    return [record for record in records if isinstance(record, dns.rdtypes.IN.SRV.SRV)]


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        (["20 0 993 backup.example.", "10 0 993 primary.example."], ("primary.example", 993)),
        (["10 1 993 light.example.", "10 9 993 heavy.example."], ("heavy.example", 993)),
        (["0 0 0 ."], None),  # RFC 6186: the service is not offered
        ([r"10 0 993 bad\032name.example.", "20 0 993 good.example."], ("good.example", 993)),
        (["10 0 0 zero.example.", "20 0 993 good.example."], ("good.example", 993)),
        ([], None),
    ],
)
def test_srv_records_are_taken_by_priority_then_weight(
    records: list[str], expected: tuple[str, int] | None
) -> None:
    assert best_srv_target(srv(*records)) == expected


# Known domains -----------------------------------------------------------------------------------


def test_a_known_domain_wins_over_srv(resolver: dns.resolver.Resolver) -> None:
    managed = ServerGuess(Protocol.IMAP, "imap.courrier.test", 993, Security.TLS, ALICE)
    asked: list[str] = []

    def known(domain: str) -> Suggestion | None:
        asked.append(domain)
        return Suggestion(managed, None, Source.KNOWN)

    suggestion = discover(" Alice@Courrier.TEST ", known=known, resolver=resolver)
    assert asked == ["courrier.test"]
    assert suggestion == Suggestion(managed, None, Source.KNOWN)
    assert suggestion.source == "known"


def test_an_unknown_domain_falls_through_to_srv(resolver: dns.resolver.Resolver) -> None:
    suggestion = discover(ALICE, known=lambda domain: None, resolver=resolver)
    assert suggestion is not None
    assert suggestion.source is Source.SRV


# Autoconfig over HTTPS ---------------------------------------------------------------------------


def test_a_domain_without_srv_is_found_through_autoconfig(
    mailstack: MailStack, resolver: dns.resolver.Resolver, web: WebServer
) -> None:
    web.replies[f"autoconfig.ecole.test{CONFIG_PATH}"] = Reply(body=ecole_config(mailstack))
    suggestion = discover_dave(mailstack, resolver, web)
    assert suggestion == Suggestion(
        incoming=ServerGuess(
            Protocol.IMAP, "mail.ecole.test", mailstack.imap_port, Security.STARTTLS, DAVE
        ),
        outgoing=ServerGuess(
            Protocol.SMTP, "mail.ecole.test", mailstack.submission_port, Security.STARTTLS, DAVE
        ),
        source=Source.AUTOCONFIG,
    )
    assert web.requests == [f"autoconfig.ecole.test{CONFIG_PATH}?emailaddress=dave%40ecole.test"]
    assert web.errors == []


def test_the_autoconfig_suggestion_logs_in_to_the_real_server(
    mailstack: MailStack, resolver: dns.resolver.Resolver, web: WebServer
) -> None:
    web.replies[f"autoconfig.ecole.test{CONFIG_PATH}"] = Reply(body=ecole_config(mailstack))
    suggestion = discover_dave(mailstack, resolver, web)
    assert suggestion is not None
    guess = suggestion.incoming
    settings = ServerSettings(
        guess.protocol,
        guess.host,
        guess.port,
        guess.security,
        guess.username,
        mailstack.users[DAVE],
    )
    result = check_server(
        settings,
        ca_file=str(mailstack.ca_file),
        resolver=dnsmasq_resolver(mailstack.host, mailstack.dns_port),
    )
    assert result.ok, result.detail


def test_the_well_known_url_is_asked_second(
    mailstack: MailStack, resolver: dns.resolver.Resolver, web: WebServer
) -> None:
    web.replies[f"ecole.test{WELL_KNOWN_PATH}"] = Reply(body=ecole_config(mailstack))
    suggestion = discover_dave(mailstack, resolver, web)
    assert suggestion is not None
    assert suggestion.source is Source.AUTOCONFIG
    assert web.requests == [
        f"autoconfig.ecole.test{CONFIG_PATH}?emailaddress=dave%40ecole.test",
        f"ecole.test{WELL_KNOWN_PATH}",
    ]


def test_a_redirect_to_another_https_url_is_followed(
    mailstack: MailStack, resolver: dns.resolver.Resolver, web: WebServer
) -> None:
    target = f"https://ecole.test:{web.port}/moved.xml"
    web.replies[f"autoconfig.ecole.test{CONFIG_PATH}"] = Reply(301, headers={"Location": target})
    web.replies["ecole.test/moved.xml"] = Reply(body=ecole_config(mailstack))
    suggestion = discover_dave(mailstack, resolver, web)
    assert suggestion is not None
    assert web.requests[1] == "ecole.test/moved.xml"


def test_an_untrusted_certificate_is_refused(
    mailstack: MailStack, resolver: dns.resolver.Resolver, web: WebServer
) -> None:
    web.replies[f"autoconfig.ecole.test{CONFIG_PATH}"] = Reply(body=ecole_config(mailstack))
    # Without the test CA, the stack's certificate is as good as self-signed.
    assert discover_dave(mailstack, resolver, web, trust_test_ca=False) is None
    assert web.connections == 2  # both URLs tried...
    assert web.requests == []  # ...and neither got as far as a request
    assert all(isinstance(error, ssl.SSLError) for error in web.errors)


def test_only_https_urls_are_asked(resolver: dns.resolver.Resolver) -> None:
    asked: list[str] = []

    def record(url: str) -> bytes | None:
        asked.append(url)
        return None

    assert discover(DAVE, resolver=resolver, https_get=record) is None
    assert asked == [
        f"https://autoconfig.ecole.test{CONFIG_PATH}?emailaddress=dave%40ecole.test",
        f"https://ecole.test{WELL_KNOWN_PATH}",
    ]


def test_plain_http_is_never_fetched(
    mailstack: MailStack, resolver: dns.resolver.Resolver, web: WebServer
) -> None:
    url = f"http://autoconfig.ecole.test:{web.port}{CONFIG_PATH}"
    assert fetch_https(url, resolver=resolver, ca_file=str(mailstack.ca_file)) is None
    assert web.connections == 0


def test_a_redirect_to_plain_http_is_not_followed(
    mailstack: MailStack, resolver: dns.resolver.Resolver, web: WebServer
) -> None:
    # Pointed at our own TLS port: a client that followed it would show up as a connection.
    target = f"http://ecole.test:{web.port}/moved.xml"
    web.replies[f"autoconfig.ecole.test{CONFIG_PATH}"] = Reply(302, headers={"Location": target})
    url = f"https://autoconfig.ecole.test:{web.port}{CONFIG_PATH}"
    assert fetch_https(url, resolver=resolver, ca_file=str(mailstack.ca_file)) is None
    assert web.connections == 1
    assert web.requests == [f"autoconfig.ecole.test{CONFIG_PATH}"]


@pytest.mark.parametrize("declare_length", [True, False])
def test_a_huge_document_is_cut_off(
    mailstack: MailStack, resolver: dns.resolver.Resolver, web: WebServer, declare_length: bool
) -> None:
    huge = config_xml(server_xml(), padding=MAX_XML_BYTES + 1024)
    web.replies[f"autoconfig.ecole.test{CONFIG_PATH}"] = Reply(
        body=huge, declare_length=declare_length
    )
    url = f"https://autoconfig.ecole.test:{web.port}{CONFIG_PATH}"
    assert fetch_https(url, resolver=resolver, ca_file=str(mailstack.ca_file)) is None
    assert discover_dave(mailstack, resolver, web) is None


def test_an_entity_bomb_served_over_https_is_refused(
    mailstack: MailStack, resolver: dns.resolver.Resolver, web: WebServer
) -> None:
    web.replies[f"autoconfig.ecole.test{CONFIG_PATH}"] = Reply(body=BILLION_LAUGHS)
    assert discover_dave(mailstack, resolver, web) is None
    assert len(web.requests) == 2  # fetched, refused, and the next URL tried


# Nothing to be found -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "someone@gone.ecole.test",  # NXDOMAIN from dnsmasq
        "someone@elsewhere.example",  # dnsmasq refuses names outside its domains
    ],
)
def test_an_address_nobody_knows_gives_none(
    mailstack: MailStack, resolver: dns.resolver.Resolver, address: str
) -> None:
    found = discover(address, resolver=resolver, ca_file=str(mailstack.ca_file), timeout=SHORT)
    assert found is None


def test_a_domain_with_no_srv_and_no_web_server_gives_none(
    mailstack: MailStack, resolver: dns.resolver.Resolver
) -> None:
    found = discover(
        DAVE,
        resolver=resolver,
        ca_file=str(mailstack.ca_file),
        timeout=SHORT,
        autoconfig_port=closed_port(),
    )
    assert found is None


def test_a_silent_dns_server_gives_none_after_the_timeouts() -> None:
    with silent_dns() as resolver:
        assert discover(DAVE, resolver=resolver, timeout=SHORT) is None


@pytest.mark.parametrize("address", ["", "dave", "@ecole.test", "dave@", "dave@ecole test"])
def test_what_is_not_an_address_gives_none_without_asking(address: str) -> None:
    def known(domain: str) -> Suggestion | None:
        raise AssertionError("known domains should not have been asked")

    with silent_dns() as resolver:
        assert discover(address, known=known, resolver=resolver, https_get=never_fetch) is None


# Parsing hostile documents -----------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE clientConfig [
  <!ENTITY a "aaaaaaaaaa">
  <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
  <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
  <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
  <!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
  <!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
  <!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">
  <!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;">
]>
<clientConfig version="1.1"><emailProvider id="x">
  <incomingServer type="imap"><hostname>mail.ecole.test</hostname><port>993</port>
  <socketType>SSL</socketType><username>&h;</username></incomingServer>
</emailProvider></clientConfig>
"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE clientConfig [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<clientConfig version="1.1"><emailProvider id="x">
  <incomingServer type="imap"><hostname>mail.ecole.test</hostname><port>993</port>
  <socketType>SSL</socketType><username>&secret;</username></incomingServer>
</emailProvider></clientConfig>
"""


def test_a_document_is_parsed_with_its_placeholders_filled_in() -> None:
    document = config_xml(
        server_xml(host="imap.%EMAILDOMAIN%", username="%EMAILLOCALPART%"),
        server_xml("outgoingServer", "smtp", host="smtp.ecole.test", port=465),
    )
    assert parse_autoconfig_xml(document, DAVE) == Suggestion(
        ServerGuess(Protocol.IMAP, "imap.ecole.test", 993, Security.TLS, "dave"),
        ServerGuess(Protocol.SMTP, "smtp.ecole.test", 465, Security.TLS, DAVE),
        Source.AUTOCONFIG,
    )


def test_imap_over_ssl_is_preferred_to_starttls_and_to_pop3() -> None:
    document = config_xml(
        server_xml(protocol="pop3", port=995, socket_type="SSL"),
        server_xml(port=143, socket_type="STARTTLS"),
        server_xml(port=993, socket_type="SSL"),
        server_xml("outgoingServer", "smtp", port=587, socket_type="STARTTLS"),
        server_xml("outgoingServer", "smtp", port=465, socket_type="SSL"),
    )
    suggestion = parse_autoconfig_xml(document, DAVE)
    assert suggestion is not None
    assert (suggestion.incoming.protocol, suggestion.incoming.port) == (Protocol.IMAP, 993)
    assert suggestion.outgoing is not None
    assert suggestion.outgoing.port == 465


def test_pop3_is_proposed_when_there_is_no_imap() -> None:
    suggestion = parse_autoconfig_xml(config_xml(server_xml(protocol="pop3", port=995)), DAVE)
    assert suggestion is not None
    assert suggestion.incoming.protocol is Protocol.POP3
    assert suggestion.outgoing is None


def test_a_server_without_tls_is_proposed_only_when_nothing_else_is_and_marked() -> None:
    plain = server_xml(port=143, socket_type="plain")
    starttls = server_xml(port=143, socket_type="STARTTLS")
    with_tls = parse_autoconfig_xml(config_xml(plain, starttls), DAVE)
    assert with_tls is not None
    assert with_tls.incoming.security is Security.STARTTLS
    assert not with_tls.insecure

    only_plain = parse_autoconfig_xml(config_xml(plain), DAVE)
    assert only_plain is not None
    assert only_plain.incoming.security is Security.PLAIN
    assert only_plain.insecure


def test_a_server_that_takes_no_password_is_skipped() -> None:
    oauth_only = server_xml(authentication="OAuth2")
    assert parse_autoconfig_xml(config_xml(oauth_only), DAVE) is None


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(BILLION_LAUGHS, id="entity-bomb"),
        pytest.param(EXTERNAL_ENTITY, id="external-entity"),
        # Even a harmless DTD: refusing them all is what keeps the parser safe.
        pytest.param(
            config_xml(server_xml()).replace(
                b"<clientConfig", b"<!DOCTYPE clientConfig>\n<clientConfig", 1
            ),
            id="any-doctype",
        ),
        # UTF-16 would hide "<!DOCTYPE" from a search of the bytes.
        pytest.param(config_xml(server_xml()).decode().encode("utf-16"), id="utf-16"),
        pytest.param(config_xml(server_xml(), padding=MAX_XML_BYTES), id="huge"),
    ],
)
def test_dangerous_documents_are_refused(document: bytes) -> None:
    assert parse_autoconfig_xml(document, DAVE) is None


def test_the_size_limit_is_what_refuses_the_huge_document() -> None:
    assert parse_autoconfig_xml(config_xml(server_xml(), padding=MAX_XML_BYTES // 2), DAVE)


@pytest.mark.parametrize(
    "document",
    [
        b"",
        b"\xff\xfe\x00garbage\x00",
        b"<html><body><h1>404 Not Found</h1></body></html>",
        b'{"imap": "mail.ecole.test"}',
        config_xml(server_xml())[:200],  # cut off mid-document
    ],
)
def test_garbage_gives_none(document: bytes) -> None:
    assert parse_autoconfig_xml(document, DAVE) is None


@pytest.mark.parametrize(
    "server",
    [
        server_xml(port=0),
        server_xml(port=70000),
        server_xml(port="993abc"),
        server_xml(port="-1"),
        server_xml(port=""),
        server_xml(host="mail ecole.test"),
        server_xml(host=""),
        server_xml(host="a" * 254),
        server_xml(host="-mail.ecole.test"),
        server_xml(socket_type="QUANTUM"),
        server_xml(protocol="exchange"),
        server_xml(username="dave&#10;injected"),
    ],
)
def test_an_unusable_server_is_rejected(server: str) -> None:
    assert parse_autoconfig_xml(config_xml(server), DAVE) is None


def test_guesses_check_their_own_ports_and_host_names() -> None:
    with pytest.raises(ValueError, match="port"):
        ServerGuess(Protocol.IMAP, "mail.ecole.test", 0, Security.TLS, DAVE)
    with pytest.raises(ValueError, match="host"):
        ServerGuess(Protocol.IMAP, "mail ecole.test", 993, Security.TLS, DAVE)
    guess = ServerGuess(Protocol.IMAP, "Mail.Ecole.Test.", 993, Security.TLS, DAVE)
    assert guess.host == "mail.ecole.test"
