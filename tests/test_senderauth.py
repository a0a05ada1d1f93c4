"""mailcore.senderauth: trusted Authentication-Results, DKIM, DMARC and SPF checked against a
private dnsmasq (tests/dnszones.py) serving this module's zones, and lookalike warnings.

The trusted receiving server is mx.courrier.test: it writes "Authentication-Results:
mx.courrier.test; …" and "Received: from … by mx.courrier.test". The signing domains:

- signed.test: DKIM key s1, DMARC p=reject (sp=quarantine), SPF allows 192.0.2.25;
- strict.test: DKIM key s1, DMARC with strict alignment (adkim=s, aspf=s), SPF as above, also on
  news.strict.test;
- other.test: DKIM key s1, no DMARC: a third party signing for others;
- nodmarc.test: SPF "~all" for everyone, no DMARC.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.resolver
import pytest

from mailcore.dkimkeys import NewKey, generate, sign
from mailcore.mime import Address
from mailcore.senderauth import (
    Connection,
    Flag,
    SenderAuth,
    Verdict,
    authenticate,
    header_fields,
    lookalike_flags,
    organisational_domain,
    parse_received,
    skeleton,
    trust_boundary,
    trusted_connection,
)

pytest.register_assert_rewrite("tests.dnszones")
from tests.dnszones import (  # noqa: E402 -- after register_assert_rewrite, on purpose
    DNSMASQ,
    BlackHole,
    DnsServer,
    Zones,
    resolver_for,
)

pytest_plugins = ["tests.dnszones"]

MX = "mx.courrier.test"
SENDER_IP = "192.0.2.25"
TRUSTED_RECEIVED = (
    f"Received: from mail.signed.test (mail.signed.test [{SENDER_IP}])\r\n"
    f" by {MX} (Postfix) with ESMTPS id 4Xy1;\r\n Mon, 3 Jun 2024 10:00:00 +0000\r\n"
)


@dataclass
class AuthDns:
    server: DnsServer
    keys: dict[str, NewKey]

    def resolver(self) -> dns.resolver.Resolver:
        return self.server.resolver()


@pytest.fixture(scope="module")
def auth_dns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthDns]:
    import os

    if not DNSMASQ.exists() or os.geteuid() != 0:
        pytest.skip("needs Debian's dnsmasq, started as root (see tests/dnszones.py)")
    zones = Zones()
    keys = {domain: generate("ed25519") for domain in ("signed.test", "strict.test", "other.test")}
    keys["rsa.test"] = generate("rsa")
    for domain, key in keys.items():
        zones.domain(domain)
        zones.dkim("s1", domain, key)
    zones.txt("_dmarc.signed.test", "v=DMARC1; p=reject; sp=quarantine")
    zones.txt("signed.test", f"v=spf1 ip4:{SENDER_IP} -all")
    zones.txt("_dmarc.strict.test", "v=DMARC1; p=quarantine; adkim=s; aspf=s")
    zones.txt("strict.test", f"v=spf1 ip4:{SENDER_IP} -all")
    zones.txt("news.strict.test", f"v=spf1 ip4:{SENDER_IP} -all")
    zones.txt("_dmarc.rsa.test", "v=DMARC1; p=none")
    zones.domain("nodmarc.test")
    zones.txt("nodmarc.test", "v=spf1 ~all")
    server = DnsServer(tmp_path_factory.mktemp("senderauth-dns"), zones)
    server.start()
    yield AuthDns(server, keys)
    server.stop()


def message(
    sender: str = "Alice <alice@signed.test>",
    *,
    subject: str = "Quarterly figures",
    body: str = "Hello,\r\nthe figures are attached.\r\n",
    extra: str = "",
) -> bytes:
    return (
        f"{extra}From: {sender}\r\nTo: bob@example.com\r\nSubject: {subject}\r\n"
        f"Date: Mon, 3 Jun 2024 09:59:00 +0000\r\nMessage-ID: <m1@signed.test>\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    ).encode()


def signed(dns_: AuthDns, raw: bytes, domain: str) -> bytes:
    return sign(raw, domain=domain, selector="s1", private_pem=dns_.keys[domain].private_pem)


def delivered(raw: bytes, *, on_top: str = "") -> bytes:
    """As our server stores it: its Received header (and what it adds above) on top."""
    return (on_top + TRUSTED_RECEIVED).encode() + raw


def check(dns_: AuthDns, raw: bytes, **options: object) -> SenderAuth:
    return authenticate(raw, trusted_authserv_ids=[MX], resolver=dns_.resolver(), **options)  # type: ignore[arg-type]  # options are keyword arguments of authenticate


# DKIM --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("domain", ["signed.test", "rsa.test"], ids=["ed25519", "rsa"])
def test_a_message_signed_with_a_published_key_passes_dkim_and_dmarc(
    auth_dns: AuthDns, domain: str
) -> None:
    raw = delivered(signed(auth_dns, message(f"Alice <alice@{domain}>"), domain))

    result = check(auth_dns, raw)

    assert result.dkim == Verdict("pass", "signature-verified", (domain,), "verified")
    assert result.dmarc == Verdict("pass", "aligned-dkim", (domain, domain), "verified")
    assert result.dmarc_policy == ("reject" if domain == "signed.test" else "none")
    assert result.from_domain == domain
    assert result.spf.result == "none"  # no connection given: SPF is not checked
    assert result.spf.reason == "no-connection"


def test_a_tampered_body_fails_dkim_and_so_dmarc(auth_dns: AuthDns) -> None:
    raw = delivered(signed(auth_dns, message(), "signed.test"))
    tampered = raw.replace(b"the figures are attached", b"pay the invoice to IBAN X")

    result = check(auth_dns, tampered)

    assert result.dkim == Verdict("fail", "body-hash-mismatch", ("signed.test",), "verified")
    assert result.dmarc.result == "fail"
    assert result.dmarc.reason == "not-authenticated"


def test_a_tampered_header_fails_dkim(auth_dns: AuthDns) -> None:
    raw = delivered(signed(auth_dns, message(), "signed.test"))
    tampered = raw.replace(b"Subject: Quarterly figures", b"Subject: Urgent transfer")

    result = check(auth_dns, tampered)

    assert (result.dkim.result, result.dkim.reason) == ("fail", "bad-signature")


def test_a_signature_whose_key_is_not_published_is_a_permanent_error(auth_dns: AuthDns) -> None:
    unpublished = generate("ed25519")
    raw = sign(
        message(), domain="signed.test", selector="gone", private_pem=unpublished.private_pem
    )

    result = check(auth_dns, delivered(raw))

    assert (result.dkim.result, result.dkim.reason) == ("permerror", "no-key")


def test_an_unsigned_message_has_no_dkim_result(auth_dns: AuthDns) -> None:
    result = check(auth_dns, delivered(message()))

    assert (result.dkim.result, result.dkim.reason) == ("none", "no-signature")
    assert (result.dmarc.result, result.dmarc.reason) == ("fail", "not-authenticated")


def test_a_silent_resolver_is_a_temporary_error(black_hole: BlackHole) -> None:
    silent = resolver_for(black_hole.address)
    silent.lifetime = 0.3
    key = generate("ed25519")
    raw = sign(message(), domain="signed.test", selector="s1", private_pem=key.private_pem)

    result = authenticate(delivered(raw), trusted_authserv_ids=[MX], resolver=silent)

    assert (result.dkim.result, result.dkim.reason) == ("temperror", "dns-error")
    assert (result.dmarc.result, result.dmarc.reason) == ("temperror", "dns-error")
    assert black_hole.received() >= 2


# Trusted and forged Authentication-Results -------------------------------------------------------

FORGED = (
    f"Authentication-Results: {MX}; dkim=pass header.d=signed.test;\r\n"
    " spf=pass smtp.mailfrom=signed.test; dmarc=pass header.from=signed.test\r\n"
)


def test_a_forged_pass_from_a_stranger_is_ignored(auth_dns: AuthDns) -> None:
    stranger = (
        "Authentication-Results: evil.test; dkim=pass header.d=signed.test;"
        " dmarc=pass header.from=signed.test\r\n"
    )
    raw = delivered(message(), on_top=stranger)  # even on top: not our authserv-id

    result = check(auth_dns, raw)

    assert result.dkim == Verdict("none", "no-signature", (), "verified")
    assert result.dmarc.result == "fail"
    assert result.authserv_id == ""
    assert "ignored-authentication-results:evil.test" in result.notes


def test_a_forged_pass_with_our_authserv_id_below_our_received_is_ignored(
    auth_dns: AuthDns,
) -> None:
    # The sender wrote it into the message before our server received it.
    raw = delivered(FORGED.encode() + message())

    result = check(auth_dns, raw)

    assert result.dkim.source == "verified"
    assert result.dkim.result == "none"
    assert result.dmarc.result == "fail"
    assert f"ignored-authentication-results-below-trusted-hop:{MX}" in result.notes


def test_a_forged_received_of_ours_does_not_extend_the_trusted_zone(auth_dns: AuthDns) -> None:
    # A fake "by mx.courrier.test" hop below the real one: the real hop came from outside, so
    # nothing below it is ours.
    fake_hop = f"Received: from localhost ([127.0.0.1]) by {MX} with LMTP id x;\r\n"
    raw = delivered((FORGED + fake_hop).encode() + message())

    result = check(auth_dns, raw)

    assert result.dkim.result == "none"
    assert result.authserv_id == ""


def test_without_any_received_header_no_authentication_results_is_trusted() -> None:
    result = authenticate(FORGED.encode() + message(), trusted_authserv_ids=[MX])

    assert result.dkim == Verdict()
    assert "no-trusted-hop" in result.notes


def test_our_servers_results_are_read_and_dmarc_computed_from_them(auth_dns: AuthDns) -> None:
    ours = f"Authentication-Results: {MX}; dkim=pass header.d=signed.test header.s=s1\r\n"
    raw = delivered(message(), on_top=ours)  # unsigned: only the header says pass

    result = check(auth_dns, raw)

    assert result.dkim == Verdict("pass", "header", ("signed.test",), "header")
    assert result.authserv_id == MX
    assert result.dmarc == Verdict("pass", "aligned-dkim", ("signed.test",) * 2, "verified")


def test_results_of_internal_hops_are_trusted_down_to_the_entry_hop() -> None:
    lmtp = f"Received: from {MX} (localhost [127.0.0.1]) by imap.courrier.test with LMTP;\r\n"
    ours = f"Authentication-Results: {MX}; spf=fail smtp.mailfrom=x@signed.test; dmarc=fail\r\n"
    raw = (lmtp + ours + TRUSTED_RECEIVED).encode() + message()

    result = authenticate(raw, trusted_authserv_ids=[MX], trusted_hosts=[MX, "imap.courrier.test"])

    assert result.spf == Verdict("fail", "header", ("signed.test",), "header")
    assert result.dmarc.result == "fail"
    assert result.dmarc.source == "header"


def test_a_microsoft_style_header_that_authres_rejects_is_read_leniently() -> None:
    ours = (
        f"Authentication-Results: {MX}; dkim=pass (signature was verified)"
        " header.d=signed.test;dmarc=pass action=none header.from=signed.test;compauth=pass"
        " reason=100\r\n"
    )
    result = authenticate(delivered(message(), on_top=ours), trusted_authserv_ids=[MX])

    assert result.dkim.result == "pass"
    assert result.dmarc == Verdict("pass", "header", ("signed.test",), "header")


# DMARC alignment ---------------------------------------------------------------------------------


def test_relaxed_alignment_accepts_a_subdomain_and_uses_the_organisations_policy(
    auth_dns: AuthDns,
) -> None:
    raw = delivered(signed(auth_dns, message("News <news@news.signed.test>"), "signed.test"))

    result = check(auth_dns, raw)

    assert result.dmarc == Verdict(
        "pass", "aligned-dkim", ("news.signed.test", "signed.test"), "verified"
    )
    assert result.dmarc_policy == "quarantine"  # sp= of signed.test, for its subdomains


def test_strict_alignment_refuses_a_subdomain(auth_dns: AuthDns) -> None:
    raw = delivered(signed(auth_dns, message("News <news@news.strict.test>"), "strict.test"))

    result = check(auth_dns, raw)

    assert result.dkim.result == "pass"
    assert result.dmarc == Verdict(
        "fail", "not-aligned", ("news.strict.test", "strict.test"), "verified"
    )
    assert result.dmarc_policy == "quarantine"


def test_a_third_party_signature_does_not_align(auth_dns: AuthDns) -> None:
    raw = delivered(signed(auth_dns, message(), "other.test"))

    result = check(auth_dns, raw)

    assert result.dkim == Verdict("pass", "signature-verified", ("other.test",), "verified")
    assert result.dmarc == Verdict("fail", "not-aligned", ("signed.test", "other.test"), "verified")


def test_a_domain_without_dmarc_record_has_no_dmarc_result(auth_dns: AuthDns) -> None:
    result = check(auth_dns, delivered(message("Nina <nina@nodmarc.test>")))

    assert result.dmarc == Verdict("none", "no-policy", ("nodmarc.test",), "verified")


def test_two_from_domains_are_a_dmarc_error(auth_dns: AuthDns) -> None:
    raw = delivered(message("a@signed.test, b@other.test"))

    result = check(auth_dns, raw)

    assert (result.dmarc.result, result.dmarc.reason) == ("permerror", "multiple-from-domains")


def test_organisational_domains_come_from_the_public_suffix_list() -> None:
    assert organisational_domain("mail.example.co.uk") == "example.co.uk"
    assert organisational_domain("a.b.signed.test") == "signed.test"
    assert organisational_domain("co.uk") == "co.uk"


# SPF ---------------------------------------------------------------------------------------------


def test_spf_passes_for_an_allowed_ip_and_aligns_dmarc(auth_dns: AuthDns) -> None:
    raw = delivered(message())
    connection = trusted_connection(raw, [MX])
    assert connection == Connection(SENDER_IP, "mail.signed.test", "")

    result = check(
        auth_dns, raw, connection=Connection(SENDER_IP, "mail.signed.test", "b@signed.test")
    )

    assert result.spf == Verdict("pass", "spf-pass", ("signed.test",), "verified")
    assert result.dmarc == Verdict("pass", "aligned-spf", ("signed.test",) * 2, "verified")


def test_spf_fails_for_another_ip(auth_dns: AuthDns) -> None:
    connection = Connection("203.0.113.9", "mail.signed.test", "b@signed.test")

    result = check(auth_dns, delivered(message()), connection=connection)

    assert result.spf == Verdict("fail", "spf-fail", ("signed.test",), "verified")
    assert result.dmarc.result == "fail"


def test_spf_softfail_and_a_bounce_checked_on_the_helo(auth_dns: AuthDns) -> None:
    softfail = check(
        auth_dns,
        delivered(message("n@nodmarc.test")),
        connection=Connection("203.0.113.9", "mx.nodmarc.test", "n@nodmarc.test"),
    )
    bounce = check(
        auth_dns,
        delivered(message()),
        connection=Connection(SENDER_IP, "signed.test", ""),
    )

    assert softfail.spf.result == "softfail"
    assert bounce.spf == Verdict("pass", "spf-pass", ("signed.test",), "verified")


def test_strict_spf_alignment_refuses_a_subdomain_envelope(auth_dns: AuthDns) -> None:
    connection = Connection(SENDER_IP, "mail.strict.test", "bounce@news.strict.test")

    result = check(auth_dns, delivered(message("a@strict.test")), connection=connection)

    assert result.spf.result == "pass"
    assert result.dmarc.result == "fail"


def test_the_connection_comes_from_the_trusted_hop_only() -> None:
    exim = (
        f"Received: from [198.51.100.7] (helo=relay.example.net)\r\n by {MX} with esmtps;"
        " Mon, 3 Jun 2024 10:00:00 +0000\r\n"
    )
    forged = "Received: from x (x [203.0.113.66]) by mx.elsewhere.test; Mon, 3 Jun 2024\r\n"
    raw = (f"Return-Path: <bounce@relay.example.net>\r\n{exim}{forged}").encode() + message()

    assert trusted_connection(raw, [MX]) == Connection(
        "198.51.100.7", "relay.example.net", "bounce@relay.example.net"
    )
    assert trusted_connection(forged.encode() + message(), [MX]) is None
    assert trusted_connection(message(), [MX]) is None


def test_received_headers_of_common_servers_are_read() -> None:
    postfix = parse_received(
        "from helo.example (rdns.example [IPv6:2001:db8::1]) by mx.example (Postfix) with ESMTPS"
    )
    unknown = parse_received("from helo.example (unknown [192.0.2.9]) by mx.example")
    dovecot = parse_received("from mx.example ([127.0.0.1]) by imap (Dovecot) with LMTP id a")

    assert (postfix.helo, postfix.rdns, postfix.ip, postfix.by_host) == (
        "helo.example",
        "rdns.example",
        "2001:db8::1",
        "mx.example",
    )
    assert (unknown.rdns, unknown.ip) == ("", "192.0.2.9")
    assert (dovecot.ip, dovecot.by_host) == ("127.0.0.1", "imap")


# Lookalikes --------------------------------------------------------------------------------------


def flags(sender: Address, reply_to: list[Address] | None = None) -> set[str]:
    found = lookalike_flags([sender], reply_to or [], ["paypal.com", "bank.example.fr"])
    return {flag.code for flag in found}


def test_a_display_name_holding_another_address_is_flagged() -> None:
    found = lookalike_flags([Address("service@paypal.com", "x@random.test")], [])

    assert found == (Flag("display-name-address", "service@paypal.com"),)
    assert flags(Address("alice@signed.test", "alice@signed.test")) == set()


def test_a_reply_to_of_another_organisation_is_flagged() -> None:
    sender = Address("Bank", "info@bank.example.fr")

    assert flags(sender, [Address("", "refunds@mail.bank.example.fr")]) == set()
    assert flags(sender, [Address("", "refunds@collect.test")]) == {"reply-to-domain"}


@pytest.mark.parametrize(
    "domain",
    ["xn--pypal-4ve.com", "paypa1.com", "secure.paypal.com.xn--pypal-4ve.com", "bank-example.fr"],
)
def test_domains_imitating_a_known_one(domain: str) -> None:
    found = flags(Address("", f"service@{domain}"))

    if domain == "bank-example.fr":  # a different name, not a lookalike of bank.example.fr
        assert found == set()
    else:
        assert "confusable-domain" in found


def test_the_known_domain_itself_and_its_subdomains_are_not_lookalikes() -> None:
    assert flags(Address("", "service@paypal.com")) == set()
    assert flags(Address("", "service@mail.paypal.com")) == set()


def test_a_domain_mixing_scripts_is_flagged_even_when_unknown() -> None:
    # "banque" with a Cyrillic "a" (U+0430).
    assert "mixed-script-domain" in flags(Address("", "x@xn--bnque-4ve.test"))


def test_skeletons_fold_lookalike_characters() -> None:
    assert skeleton("pаypal.com") == skeleton("paypal.com")  # a Cyrillic "a" (U+0430)
    assert skeleton("rnicrosoft") == skeleton("microsoft")
    assert skeleton("ｇｏｏｇｌｅ") == skeleton("google")
    assert skeleton("banque") != skeleton("banane")


# Serialisation and hostile input ---------------------------------------------------------------


def test_results_survive_a_json_round_trip(auth_dns: AuthDns) -> None:
    raw = delivered(
        signed(auth_dns, message('"service@paypal.com" <x@signed.test>'), "signed.test")
    )
    result = check(auth_dns, raw)
    assert result.flags  # something to carry

    again = SenderAuth.from_dict(json.loads(json.dumps(result.to_dict())))

    assert again == result


def test_malformed_stored_results_give_defaults() -> None:
    assert SenderAuth.from_dict("nonsense") == SenderAuth()
    assert SenderAuth.from_dict({"spf": {"result": "great"}}).spf.result == "none"


HOSTILE = [
    pytest.param(b"", id="empty"),
    pytest.param(b"\x00\xff\xfe garbage \r\n\r\n", id="binary"),
    pytest.param(b"Subject: no sender\r\n\r\nbody", id="no From"),
    pytest.param(b"From: " + b"a" * 3_000_000 + b"@x.test\r\n\r\nbody", id="huge From"),
    pytest.param(
        f"Authentication-Results: {MX}; dkim=pass ".encode() + b"(" * 50_000 + b"\r\n" + message(),
        id="deep comments",
    ),
    pytest.param(
        b"".join(b"Received: from a (b [192.0.2.1]) by mx\r\n" for _ in range(5000)) + message(),
        id="5000 Received",
    ),
    pytest.param(
        b"DKIM-Signature: v=1; a=rsa-sha256; d=signed.test; s=s1; b=; bh=@@@\r\n" + message(),
        id="broken signature",
    ),
    pytest.param(message("=?utf-8?b?////?= <@@@>"), id="broken From"),
]


@pytest.mark.parametrize("raw", HOSTILE)
def test_hostile_messages_give_verdicts_without_raising(auth_dns: AuthDns, raw: bytes) -> None:
    result = check(auth_dns, raw, known_domains=["paypal.com"])

    assert isinstance(result, SenderAuth)
    assert not [note for note in result.notes if note.startswith("internal-error")]
    assert {result.spf.result, result.dkim.result, result.dmarc.result} <= {
        "none",
        "fail",
        "permerror",
    }


def test_header_fields_are_unfolded_and_bounded() -> None:
    raw = b"Subject: one\r\n two\r\nX-Bad header\r\n: empty name\r\nTo: b\r\n\r\nBody: no\r\n"
    assert header_fields(raw) == [("subject", "one two"), ("to", "b")]
    boundary = trust_boundary(header_fields(delivered(message())), [MX])
    assert boundary is not None
    assert boundary[0] == 0


def test_the_broken_mail_corpus_never_makes_it_raise() -> None:
    for path in sorted(Path("tests/fixtures/mail").glob("*.eml")):
        result = authenticate(path.read_bytes(), trusted_authserv_ids=["mx.example.org"])
        assert not [n for n in result.notes if n.startswith("internal-error")], path.name
