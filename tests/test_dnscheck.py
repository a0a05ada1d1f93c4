"""mailcore.dnscheck against private dnsmasq servers (tests/dnszones.py), one per module or test.

The test domains and what is wrong with each are in `tests.dnszones.standard_zones`. Their
dnsmasq has no NS records, so most tests name it as the authoritative server; a black hole (a UDP
port that never answers) stands for a resolver that times out.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from mailcore.dkimkeys import dns_value, generate, zone_snippet
from mailcore.dnscheck import (
    MAX_TIMEOUTS,
    Check,
    DkimExpectation,
    Expectations,
    check_domain,
    parse_dmarc,
    parse_spf,
)

# Fixtures come from tests.dnszones (pytest_plugins below), but so do names imported here, and a
# plugin imported before pytest sees it would not have its asserts rewritten.
pytest.register_assert_rewrite("tests.dnszones")
from tests.dnszones import (  # noqa: E402 -- after register_assert_rewrite, on purpose
    OUTGOING_IP,
    BlackHole,
    DnsServer,
    DnsServerFactory,
    Zones,
    mail_domain,
    resolver_for,
)

pytest_plugins = ["tests.dnszones"]

# good.test's checks, in order, with MTA-STS and TLS-RPT expected.
GOOD_KINDS = ["mx", "spf", "dkim:s1", "dkim:s2", "dmarc", "mta-sts", "tls-rpt", "srv", "autoconfig"]


def expectations(zones: Zones, domain: str, **changes: object) -> Expectations:
    """What Courrier expects of a test domain: its outgoing server, and the keys it publishes."""
    keys = tuple(
        DkimExpectation(name.partition(".")[0], key.algorithm, key.public_b64, required=True)
        for name, key in zones.keys.items()
        if name.endswith(f"._domainkey.{domain}")
    )
    base = Expectations(
        domain, outgoing_addresses=(OUTGOING_IP,), incoming_host=f"mail.{domain}", dkim=keys
    )
    return replace(base, **changes)


def check(server: DnsServer, expect: Expectations) -> dict[str, Check]:
    """The checks by kind, the server asked as resolver and as authoritative server."""
    checks = check_domain(expect, resolver=server.resolver(), authoritative=[server.nameserver])
    by_kind = {c.kind: c for c in checks}
    assert len(by_kind) == len(checks), "one check per kind"
    return by_kind


# A well-configured domain ------------------------------------------------------------------------


def test_a_well_configured_domain_passes_every_check(
    dnszones: DnsServer, mail_zones: Zones
) -> None:
    expect = expectations(
        mail_zones,
        "good.test",
        outgoing_addresses=(),
        outgoing_host="mail.good.test",  # 192.0.2.25 and 2001:db8::25: both must pass SPF
        mta_sts=True,
        tls_rpt=True,
    )

    checks = check(dnszones, expect)

    assert list(checks) == GOOD_KINDS
    assert {(c.status, c.problem, c.fix) for c in checks.values()} == {("ok", "", "")}
    rsa = mail_zones.keys["s1._domainkey.good.test"]
    assert checks["dkim:s1"].found == dns_value("rsa", rsa.public_b64)  # 2 strings, joined
    assert checks["spf"].found == "v=spf1 mx ip4:198.51.100.0/24 include:_spf.good.test -all"
    assert checks["mx"].found == "10 mail.good.test"
    assert checks["mta-sts"].notes == ("policy-not-checked",)  # the HTTPS policy is not fetched
    assert all(c.notes == () for kind, c in checks.items() if kind != "mta-sts")


def test_without_name_servers_only_the_resolver_is_asked_and_that_is_said(
    dnszones: DnsServer, mail_zones: Zones
) -> None:
    expect = expectations(mail_zones, "good.test", mta_sts=True, tls_rpt=True)

    checks = check_domain(expect, resolver=dnszones.resolver())

    ns = checks[0]
    assert (ns.kind, ns.status, ns.problem) == ("ns", "warning", "missing")
    assert ns.found == "no NS record; only the resolver was asked"
    assert [c.kind for c in checks[1:]] == GOOD_KINDS
    assert {c.status for c in checks[1:]} == {"ok"}


def test_the_domains_name_servers_are_found_through_the_resolver_and_asked(
    dns_servers: DnsServerFactory,
) -> None:
    zones = Zones()
    mail_domain(zones, "delegated.test")
    mail_domain(zones, "sub.delegated.test")  # a mail domain inside its parent's zone
    # Nothing answers at 192.0.2.53 (TEST-NET-1); ns2 has no address at all.
    zones.delegate(
        "delegated.test", ("ns1.delegated.test", "192.0.2.53"), ("ns2.delegated.test", "")
    )
    server = dns_servers(zones)

    for domain in ("delegated.test", "sub.delegated.test"):
        expect = Expectations(domain, outgoing_addresses=(OUTGOING_IP,), client_srv=False)
        checks = check_domain(expect, resolver=server.resolver(), timeout=0.3)

        ns = checks[0]
        assert (ns.kind, ns.status, ns.problem) == ("ns", "ok", "")
        assert ns.params == {
            "name": domain,
            "zone": "delegated.test",
            "servers": "ns1.delegated.test, ns2.delegated.test",
        }
        assert ns.found == "ns1.delegated.test (192.0.2.53)\nns2.delegated.test (no address)"
        # The silent authoritative server is noted; the resolver's answers stand.
        assert [(c.kind, c.status) for c in checks[1:]] == [
            ("mx", "ok"),
            ("spf", "ok"),
            ("dmarc", "ok"),
        ]
        assert all("authoritative-timeout" in c.notes for c in checks[1:])


# Broken domains ----------------------------------------------------------------------------------

BROKEN = [
    pytest.param(
        "nomx.test",
        "mx",
        ("error", "missing", {"host": "mail.nomx.test"}),
        "nomx.test. 3600 IN MX 10 mail.nomx.test.\n",
        id="no MX",
    ),
    pytest.param(
        "badmx.test",
        "mx",
        ("error", "unresolvable-mx", {"hosts": "gone.badmx.test"}),
        "",  # not a host of ours: we do not know its address
        id="MX host without address",
    ),
    pytest.param(
        "nullmx.test",
        "mx",
        ("error", "null-mx", {"host": "mail.nullmx.test"}),
        "nullmx.test. 3600 IN MX 10 mail.nullmx.test.\n",  # in place of "0 ."
        id="null MX",
    ),
    pytest.param(
        "twospf.test",
        "spf",
        ("error", "several", {"count": 2}),
        'twospf.test. 3600 IN TXT "v=spf1 ip4:192.0.2.25 mx -all"\n',
        id="two SPF records",
    ),
    pytest.param(
        "spf11.test",
        "spf",
        ("error", "too-many-lookups", {"lookups": 11, "limit": 10}),
        'spf11.test. 3600 IN TXT "v=spf1 ip4:192.0.2.25 include:_a.spf11.test'
        ' include:_b.spf11.test -all"\n',
        id="11 DNS lookups",
    ),
    pytest.param(
        "badspf.test",
        "spf",
        ("error", "syntax", {"term": "ip4:192.0.2.300"}),
        'badspf.test. 3600 IN TXT "v=spf1 mx -all"\n',
        id="SPF syntax",
    ),
    pytest.param(
        "brokeninclude.test",
        "spf",
        ("error", "broken-include", {"include": "_spf.brokeninclude.test"}),
        "",
        id="SPF include of nothing",
    ),
    pytest.param(
        "notallowed.test",
        "spf",
        ("error", "not-allowed", {"address": OUTGOING_IP, "result": "fail"}),
        'notallowed.test. 3600 IN TXT "v=spf1 ip4:192.0.2.25 ip4:203.0.113.5 -all"\n',
        id="outgoing server not in SPF",
    ),
    pytest.param(
        "plusall.test",
        "spf",
        ("error", "weak-policy", {"all": "+all"}),
        'plusall.test. 3600 IN TXT "v=spf1 mx ~all"\n',
        id="SPF +all",
    ),
    pytest.param(
        "noall.test",
        "spf",
        ("warning", "no-all", {}),
        'noall.test. 3600 IN TXT "v=spf1 mx ~all"\n',
        id="SPF without all",
    ),
    pytest.param(
        "voidspf.test",
        "spf",
        ("warning", "void-lookups", {"void": 3, "limit": 2}),
        "",
        id="SPF void lookups",
    ),
    pytest.param(
        "baddmarc.test",
        "dmarc",
        ("error", "syntax", {"tag": "p", "value": "maybe"}),
        '_dmarc.baddmarc.test. 3600 IN TXT "v=DMARC1; p=quarantine"\n',
        id="DMARC p=maybe",
    ),
    pytest.param(
        "nonedmarc.test",
        "dmarc",
        ("warning", "weak-policy", {"policy": "none"}),
        "_dmarc.nonedmarc.test. 3600 IN TXT"
        ' "v=DMARC1; p=quarantine; rua=mailto:d@nonedmarc.test"\n',
        id="DMARC p=none",
    ),
    pytest.param(
        "extreports.test",
        "dmarc",
        (
            "warning",
            "unauthorised-reports",
            {
                "addresses": "d@reports.test",
                "records": "extreports.test._report._dmarc.reports.test",
            },
        ),
        'extreports.test._report._dmarc.reports.test. 3600 IN TXT "v=DMARC1"\n',
        id="DMARC reports to a domain that did not consent",
    ),
]


@pytest.mark.parametrize(("domain", "kind", "verdict", "fix"), BROKEN)
def test_a_broken_domain_is_reported_with_the_record_to_publish(
    dnszones: DnsServer,
    mail_zones: Zones,
    domain: str,
    kind: str,
    verdict: tuple[str, str, dict[str, object]],
    fix: str,
) -> None:
    checks = check(dnszones, expectations(mail_zones, domain))

    broken = checks.pop(kind)
    status, problem, params = verdict
    assert (broken.status, broken.problem, broken.fix) == (status, problem, fix)
    assert params.items() <= broken.params.items()
    assert {c.status for c in checks.values()} == {"ok"}, "only that one thing is wrong"


def test_a_missing_record_is_named_and_found_says_so(
    dnszones: DnsServer, mail_zones: Zones
) -> None:
    mx = check(dnszones, expectations(mail_zones, "nomx.test"))["mx"]

    assert mx.found == "no MX record"
    assert mx.params == {"name": "nomx.test", "host": "mail.nomx.test"}
    assert mx.expected == "10 mail.nomx.test"


def test_too_many_lookups_is_fixed_by_flattening_the_domains_own_a_and_mx(
    dnszones: DnsServer, mail_zones: Zones
) -> None:
    spf = check(dnszones, expectations(mail_zones, "spf11.test"))["spf"]

    assert spf.notes == ("flattened",)  # the UI says: update it when these addresses change


def test_softfail_all_is_fine_but_noted(dnszones: DnsServer, mail_zones: Zones) -> None:
    spf = check(dnszones, expectations(mail_zones, "softall.test"))["spf"]

    assert (spf.status, spf.problem, spf.fix) == ("ok", "", "")
    assert spf.notes == ("softfail-all",)
    assert spf.params["all"] == "~all"


def test_spf_redirect_is_followed_to_evaluate_and_to_find_the_final_all(
    dnszones: DnsServer, mail_zones: Zones
) -> None:
    spf = check(dnszones, expectations(mail_zones, "redirect.test"))["spf"]

    assert (spf.status, spf.problem, spf.notes) == ("ok", "", ())


def test_ptr_is_not_evaluated_and_the_report_says_so(
    dnszones: DnsServer, mail_zones: Zones
) -> None:
    spf = check(dnszones, expectations(mail_zones, "ptrspf.test"))["spf"]

    assert (spf.status, spf.problem) == ("error", "not-allowed")
    assert spf.params["result"] == "fail"
    assert spf.notes == ("unevaluated-terms",)
    assert spf.params["unevaluated"] == "ptr"
    assert spf.fix == 'ptrspf.test. 3600 IN TXT "v=spf1 ip4:192.0.2.25 ptr -all"\n'


def test_missing_client_records_are_warnings_with_their_records(
    dnszones: DnsServer, mail_zones: Zones
) -> None:
    expect = expectations(
        mail_zones, "nosrv.test", mta_sts=True, tls_rpt=True, autoconfig_host="web.nosrv.test"
    )

    checks = check(dnszones, expect)

    srv, autoconfig = checks["srv"], checks["autoconfig"]
    assert (srv.status, srv.problem) == ("warning", "missing")
    assert srv.params["names"] == "_imaps._tcp.nosrv.test, _submissions._tcp.nosrv.test"
    assert srv.fix == (
        "_imaps._tcp.nosrv.test. 3600 IN SRV 0 1 993 mail.nosrv.test.\n"
        "_submissions._tcp.nosrv.test. 3600 IN SRV 0 1 465 mail.nosrv.test.\n"
    )
    assert (autoconfig.status, autoconfig.problem) == ("warning", "missing")
    assert autoconfig.fix == "autoconfig.nosrv.test. 3600 IN CNAME web.nosrv.test.\n"
    # MTA-STS and TLS-RPT were asked for: their absence is an error.
    assert (checks["mta-sts"].status, checks["mta-sts"].problem) == ("error", "missing")
    assert checks["mta-sts"].fix == '_mta-sts.nosrv.test. 3600 IN TXT "v=STSv1; id=1"\n'
    assert checks["tls-rpt"].fix == (
        '_smtp._tls.nosrv.test. 3600 IN TXT "v=TLSRPTv1; rua=mailto:tls-reports@nosrv.test"\n'
    )


# DKIM --------------------------------------------------------------------------------------------


def test_dkim_a_stale_key_is_a_mismatch_and_an_unpublished_one_pending_or_missing(
    dnszones: DnsServer, mail_zones: Zones
) -> None:
    current, created, lost = generate("ed25519"), generate("ed25519"), generate("ed25519")
    expect = expectations(
        mail_zones,
        "staledkim.test",
        dkim=(
            DkimExpectation("s1", "ed25519", current.public_b64, required=True),
            DkimExpectation("s2", "ed25519", created.public_b64, required=False),
            DkimExpectation("s3", "ed25519", lost.public_b64, required=True),
        ),
    )

    checks = check(dnszones, expect)

    stale, pending, missing = checks["dkim:s1"], checks["dkim:s2"], checks["dkim:s3"]
    published = mail_zones.keys["s1._domainkey.staledkim.test"]
    assert (stale.status, stale.problem) == ("error", "mismatch")
    assert stale.found == dns_value("ed25519", published.public_b64)
    assert stale.expected == dns_value("ed25519", current.public_b64)
    assert stale.fix == zone_snippet(
        "s1", "staledkim.test", dns_value("ed25519", current.public_b64)
    )
    assert (pending.status, pending.problem) == ("pending", "missing")
    assert pending.fix == zone_snippet(
        "s2", "staledkim.test", dns_value("ed25519", created.public_b64)
    )
    assert (missing.status, missing.problem) == ("error", "missing")
    assert missing.params == {"name": "s3._domainkey.staledkim.test", "selector": "s3"}


# Timeouts and authoritative servers --------------------------------------------------------------


def test_a_silent_resolver_makes_every_check_a_timeout_never_a_missing_record(
    black_hole: BlackHole, mail_zones: Zones
) -> None:
    expect = expectations(
        mail_zones, "good.test", outgoing_host="mail.good.test", mta_sts=True, tls_rpt=True
    )

    checks = check_domain(expect, resolver=resolver_for(black_hole.address), timeout=0.3)

    assert [c.kind for c in checks] == ["ns", *GOOD_KINDS]
    for timed_out in checks:
        assert (timed_out.status, timed_out.problem, timed_out.fix) == ("warning", "timeout", "")
        assert "did not answer" in timed_out.found
        assert timed_out.params["unchecked"]
    assert checks[1].params["unchecked"] == "good.test"
    # A server that timed out twice is not asked again: the whole run takes two timeouts.
    assert black_hole.received() == MAX_TIMEOUTS


def test_when_the_resolver_is_silent_the_authoritative_servers_answer(
    black_hole: BlackHole, dnszones: DnsServer, mail_zones: Zones
) -> None:
    expect = expectations(mail_zones, "good.test")

    checks = check_domain(
        expect,
        resolver=resolver_for(black_hole.address),
        authoritative=[dnszones.nameserver],
        timeout=0.3,
    )

    by_kind = {c.kind: c for c in checks}
    dmarc = by_kind.pop("dmarc")
    for answered in by_kind.values():
        assert (answered.kind, answered.status) == (answered.kind, "ok")
        assert "resolver-timeout" in answered.notes
    assert by_kind["mx"].found == "10 mail.good.test"
    # The consent of reports.test lies outside the zone: only the resolver could say.
    assert (dmarc.status, dmarc.problem) == ("warning", "timeout")
    assert dmarc.params["unchecked"] == "good.test._report._dmarc.reports.test"


def test_a_new_key_is_seen_at_the_authoritative_server_before_the_resolver(
    dns_servers: DnsServerFactory,
) -> None:
    old, new = generate("ed25519"), generate("ed25519")
    zones = Zones()
    mail_domain(zones, "fresh.test", dkim=old)
    resolver = dns_servers(zones)  # stands for a resolver that cached the old record
    authority = dns_servers(zones.copy())
    expect = Expectations(
        "fresh.test",
        outgoing_addresses=(OUTGOING_IP,),
        dkim=(DkimExpectation("s1", "ed25519", new.public_b64, required=False),),
    )

    def dkim() -> Check:
        checks = check_domain(
            expect, resolver=resolver.resolver(), authoritative=[authority.nameserver]
        )
        return next(c for c in checks if c.kind == "dkim:s1")

    before = dkim()
    assert (before.status, before.problem, before.notes) == ("error", "mismatch", ())
    new_zones = zones.without("s1._domainkey.fresh.test")
    new_zones.dkim("s1", "fresh.test", new)
    port = authority.port

    authority.restart(new_zones)
    after = dkim()

    assert authority.port == port
    assert (after.status, after.problem, after.fix) == ("ok", "", "")
    assert after.notes == ("resolver-differs",)
    old_record = dns_value("ed25519", old.public_b64)
    assert after.params["resolver_answer"] == old_record
    assert after.found == (
        f"{dns_value('ed25519', new.public_b64)}\n(the resolver still answers: {old_record})"
    )


def test_a_stopped_server_leaves_no_process(dns_servers: DnsServerFactory) -> None:
    zones = Zones()
    zones.domain("alone.test")
    server = dns_servers(zones)
    assert server.process is not None
    pid = server.process.pid
    assert server.processes() == [pid]

    server.stop()

    assert server.processes() == []
    assert not Path(f"/proc/{pid}").exists()


# Parsers -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "record",
    [
        "v=spf1 -all",
        "v=spf1 a mx/24 a:mail.example.org/28//64 ip4:192.0.2.0/24 ip6:2001:db8::/32 ~all",
        "v=spf1 include:_spf.example.org ?exists:%{i}._spf.%{d} ptr -all",
        "v=spf1 redirect=_spf.example.org",
        "v=spf1 a:%{l1r-}.example.org exp=explain.%{d} unknown=anything -all",
        "V=SPF1 MX -ALL",
    ],
)
def test_valid_spf_records_parse_whole(record: str) -> None:
    terms, bad = parse_spf(record)

    assert bad == []
    assert len(terms) == len(record.split()) - 1


@pytest.mark.parametrize(
    ("record", "bad"),
    [
        ("v=spf1 ip4:192.0.2.300 -all", "ip4:192.0.2.300"),
        ("v=spf1 ip4:192.0.2.0/33 -all", "ip4:192.0.2.0/33"),
        ("v=spf1 ip6:192.0.2.1 -all", "ip6:192.0.2.1"),
        ("v=spf1 a/33 -all", "a/33"),
        ("v=spf1 mx//129 -all", "mx//129"),
        ("v=spf1 include -all", "include"),
        ("v=spf1 include:nodot -all", "include:nodot"),
        ("v=spf1 all:x", "all:x"),
        ("v=spf1 mxx -all", "mxx"),
        ("v=spf1 !mx -all", "!mx"),
        ("v=spf1 a:%{z}.example.org -all", "a:%{z}.example.org"),
        ("v=spf1 redirect=a.example.org redirect=b.example.org", "redirect=b.example.org"),
    ],
)
def test_invalid_spf_terms_are_named(record: str, bad: str) -> None:
    assert parse_spf(record)[1] == [bad]


@pytest.mark.parametrize(
    ("record", "bad"),
    [
        ("v=DMARC1", ("p", "")),
        ("v=DMARC1; p=maybe", ("p", "maybe")),
        ("v=DMARC1; p=reject; sp=always", ("sp", "always")),
        ("v=DMARC1; p=reject; adkim=x", ("adkim", "x")),
        ("v=DMARC1; p=reject; pct=101", ("pct", "101")),
        ("v=DMARC1; p=reject; rua=https://example.org/r", ("rua", "https://example.org/r")),
        ("v=DMARC1; p=reject; rua=mailto:nobody", ("rua", "mailto:nobody")),
        ("v=DMARC1; p=reject; ruf=mailto:a@b.org,mailto:c@", ("ruf", "mailto:a@b.org,mailto:c@")),
        ("v=DMARC1; p=reject; p=none", ("p", "none")),
    ],
)
def test_invalid_dmarc_tags_are_named(record: str, bad: tuple[str, str]) -> None:
    assert parse_dmarc(record)[1] == [bad]


def test_a_valid_dmarc_record_keeps_its_tags_in_order() -> None:
    record = "v=DMARC1; p=Reject; sp=none; adkim=s; aspf=r; pct=50; rua=mailto:a@b.org!10m; fo=1:d"

    tags, bad = parse_dmarc(record)

    assert bad == []
    assert [tag for tag, _ in tags] == ["v", "p", "sp", "adkim", "aspf", "pct", "rua", "fo"]
