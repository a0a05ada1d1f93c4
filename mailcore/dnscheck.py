"""What DNS really says about a mail domain: MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT, SRV. No Django.

`check_domain` compares the records a domain publishes with what Courrier expects of it and
returns one `Check` per record (`kind`), with a problem code and `params` that the Django layer
turns into a translated message, and the exact records to publish (`fix`, BIND zone-file syntax).

Every name is asked of the configured resolver and, when it lies in the domain's zone, of the
zone's authoritative servers too: a record just published is there at once, while the resolver
may keep serving its cached predecessor for a TTL. The authoritative answer wins; a resolver that
says otherwise is reported in a note ("resolver-differs"), since that is what other mail servers
see until their caches expire.

Three outcomes of a question are kept apart: records; "missing" (NXDOMAIN, or the name has no
record of that type), which is a finding; and "timeout" (no server answered, or all failed with
SERVFAIL/REFUSED), which is not: a check that could not be made is a warning "timeout", never an
error "missing". Every query is bounded by `timeout`, a server that timed out twice is not asked
again in the same run, and answers are read up to `MAX_RECORDS` records. Never raises for DNS
trouble.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum

import dns.exception
import dns.name
import dns.nameserver
import dns.rdata
import dns.rdatatype
import dns.resolver
from dns.rdtypes.ANY.MX import MX
from dns.rdtypes.ANY.NS import NS
from dns.rdtypes.ANY.TXT import TXT
from dns.rdtypes.IN.SRV import SRV

from mailcore.dkimkeys import dns_value, record_matches, split_txt, zone_snippet

__all__ = [
    "Check",
    "DkimExpectation",
    "Expectations",
    "Note",
    "Problem",
    "Status",
    "check_domain",
    "parse_dmarc",
    "parse_spf",
    "txt_record",
]

TTL = 3600  # of the records proposed in `fix`
MAX_RECORDS = 20  # records read from one answer; a mail domain needs a handful
MAX_TXT_CHARS = 4096  # of one TXT record; the rest is cut
MAX_TIMEOUTS = 2  # a server that timed out this often is not asked again in the same run
MAX_NS_HOSTS = 4
MAX_MX_HOSTS = 10  # RFC 7208 §4.6.4 stops SPF's "mx" there too
SPF_LOOKUP_LIMIT = 10  # RFC 7208 §4.6.4
SPF_VOID_LIMIT = 2  # RFC 7208 §4.6.4
SPF_MAX_DEPTH = 10  # include/redirect nesting we follow
SPF_MAX_WALK = 30  # querying terms we visit at most; a count past the limit is all we need
IMAPS_PORT = 993
SUBMISSIONS_PORT = 465


class Status(StrEnum):
    OK = "ok"
    PENDING = "pending"  # a DKIM key created but not published yet: expected, not wrong
    WARNING = "warning"
    ERROR = "error"


SEVERITY = {Status.OK: 0, Status.PENDING: 1, Status.WARNING: 2, Status.ERROR: 3}


class Problem(StrEnum):
    """What is wrong; every Check's params has "name", the DNS name asked, and these add theirs."""

    MISSING = "missing"  # mx: host (proposed); srv: names
    TIMEOUT = "timeout"  # unchecked: the names no server answered for
    SEVERAL = "several"  # count
    SYNTAX = "syntax"  # spf: term; dmarc, mta-sts, tls-rpt: tag, value
    TOO_MANY_LOOKUPS = "too-many-lookups"  # lookups, limit
    VOID_LOOKUPS = "void-lookups"  # void, limit
    BROKEN_INCLUDE = "broken-include"  # include: a target without exactly one valid SPF record
    NOT_ALLOWED = "not-allowed"  # address (comma-separated), result (SPF result of the first)
    NO_ALL = "no-all"
    MISMATCH = "mismatch"  # (dkim: selector, as every DKIM check)
    UNRESOLVABLE_MX = "unresolvable-mx"  # hosts
    NULL_MX = "null-mx"  # host (proposed)
    UNRESOLVABLE_NS = "unresolvable-ns"  # hosts
    WEAK_POLICY = "weak-policy"  # spf: all ("+all"); dmarc: policy ("none")
    UNAUTHORISED_REPORTS = "unauthorised-reports"  # addresses, records (names to publish)


class Note(StrEnum):
    """Remarks beside a check's problem; secondary problems are listed here too."""

    RESOLVER_DIFFERS = "resolver-differs"  # params["resolver_answer"]
    RESOLVER_TIMEOUT = "resolver-timeout"  # the authoritative servers answered, the resolver not
    AUTHORITATIVE_TIMEOUT = "authoritative-timeout"  # the resolver's answer was used
    SOFTFAIL_ALL = "softfail-all"
    NEUTRAL_ALL = "neutral-all"
    UNEVALUATED_TERMS = "unevaluated-terms"  # params["unevaluated"]: ptr, exists, macros
    OUTGOING_UNKNOWN = "outgoing-unknown"  # no outgoing address to test against SPF
    FLATTENED = "flattened"  # the fix replaces a/mx terms by today's addresses
    GUESSED_HOST = "guessed-host"  # the fix names mail.<domain>: no host was given
    POLICY_NOT_CHECKED = "policy-not-checked"  # MTA-STS: the HTTPS policy file is not fetched
    PARTIAL_PCT = "partial-pct"  # DMARC pct below 100: params["pct"]


# What Courrier expects ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DkimExpectation:
    selector: str
    algorithm: str  # "rsa" or "ed25519"
    public_b64: str
    required: bool  # False while the key is only created: its absence is "pending"


@dataclass(frozen=True)
class Expectations:
    domain: str  # IDNA (punycode), lower case
    outgoing_addresses: tuple[str, ...] = ()  # the outgoing SMTP server's IPs: SPF must pass them
    outgoing_host: str = ""  # or its name, resolved into addresses
    incoming_host: str = ""  # the MX to propose, and the IMAP SRV target
    autoconfig_host: str = ""  # the web host serving autoconfig XML (Courrier), for the fix
    dkim: tuple[DkimExpectation, ...] = ()
    mta_sts: bool = False
    tls_rpt: bool = False
    client_srv: bool = True  # _imaps._tcp, _submissions._tcp (RFC 6186/8314), autoconfig.<domain>

    def __post_init__(self) -> None:
        # Built from model fields: nonsense fails here, not halfway through a check.
        object.__setattr__(self, "domain", self.domain.strip().rstrip(".").lower())
        if not _hostname(self.domain):
            raise ValueError(f"not a domain name: {self.domain!r}")
        addresses = tuple(str(ipaddress.ip_address(a.strip())) for a in self.outgoing_addresses)
        object.__setattr__(self, "outgoing_addresses", addresses)


@dataclass(frozen=True)
class Check:
    kind: str  # "ns", "mx", "spf", "dkim:<selector>", "dmarc", "mta-sts", "tls-rpt", "srv", …
    status: Status
    problem: str  # "" or a Problem
    found: str  # the records, one a line, or what the servers said instead
    expected: str
    fix: str  # records to publish, BIND syntax, one a line; "" when nothing to do
    params: dict[str, str | int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # Note codes, and the codes of lesser problems


# Asking DNS --------------------------------------------------------------------------------------

ANSWERED, MISSING, TIMEOUT = "answered", "missing", "timeout"
NO_ANSWER = "no answer: the DNS server did not answer"


@dataclass(frozen=True)
class Answer:
    state: str  # ANSWERED, MISSING or TIMEOUT
    records: tuple[str, ...] = ()  # sorted text: TXT strings joined, names without final dot
    detail: str = ""  # why MISSING or TIMEOUT, for `found`
    nxdomain: bool = False  # MISSING because the name does not exist at all
    alias: bool = False  # an authoritative server answered with a CNAME only
    resolver: Answer | None = None  # the resolver's, when the authoritative answer differs
    authoritative_timeout: bool = False

    def describe(self) -> str:
        return "\n".join(self.records) if self.state == ANSWERED else self.detail


class _Server:
    """A resolver, and how often it timed out in this run."""

    def __init__(self, resolver: dns.resolver.Resolver, timeout: float) -> None:
        self.resolver = resolver
        self.timeout = timeout
        self.timeouts = 0

    def ask(self, name: str, rdtype: str) -> Answer:
        if self.timeouts >= MAX_TIMEOUTS:
            return Answer(TIMEOUT, detail=NO_ANSWER)
        try:
            answer = self.resolver.resolve(name, rdtype, search=False, lifetime=self.timeout)
        except dns.resolver.NXDOMAIN:
            return Answer(MISSING, detail="no record: the name does not exist", nxdomain=True)
        except dns.resolver.NoAnswer as exc:
            return Answer(MISSING, detail=f"no {rdtype} record", alias=_is_alias(exc, rdtype))
        except dns.exception.Timeout:
            self.timeouts += 1
            return Answer(TIMEOUT, detail=NO_ANSWER)
        except dns.resolver.NoNameservers:
            return Answer(TIMEOUT, detail="no answer: the DNS server failed (SERVFAIL or REFUSED)")
        except (dns.name.EmptyLabel, dns.name.LabelTooLong, dns.name.NameTooLong):
            return Answer(MISSING, detail="no record: not a valid DNS name")
        except dns.exception.DNSException as exc:
            return Answer(TIMEOUT, detail=f"no answer: {type(exc).__name__}")
        texts = sorted(_text(rdata) for rdata in list(answer)[:MAX_RECORDS])
        return Answer(ANSWERED, tuple(texts))


def _is_alias(exc: dns.resolver.NoAnswer, rdtype: str) -> bool:
    """Whether the "no answer" is a CNAME to follow elsewhere (an authoritative server's)."""
    if rdtype == "CNAME":
        return False
    try:
        response = exc.response()
    except (KeyError, AttributeError):
        return False
    return any(rrset.rdtype == dns.rdatatype.CNAME for rrset in response.answer)


def _text(rdata: dns.rdata.Rdata) -> str:
    if isinstance(rdata, TXT):
        return b"".join(rdata.strings).decode("utf-8", "replace")[:MAX_TXT_CHARS]
    if isinstance(rdata, MX):
        return f"{rdata.preference} {_name(rdata.exchange)}"
    if isinstance(rdata, SRV):
        return f"{rdata.priority} {rdata.weight} {rdata.port} {_name(rdata.target)}"
    if isinstance(rdata, NS):
        return _name(rdata.target)
    return rdata.to_text()[:MAX_TXT_CHARS]


def _name(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower()


class _Dns:
    """Answers for one run: the authoritative servers' within their zone, else the resolver's."""

    def __init__(self, resolver: dns.resolver.Resolver, timeout: float) -> None:
        self.timeout = timeout
        self.resolver = _Server(resolver, timeout)
        self.authoritative: _Server | None = None
        self.zone = ""
        self._answers: dict[tuple[str, str], Answer] = {}

    def use_authoritative(self, servers: list[tuple[str, int]], zone: str) -> None:
        auth = dns.resolver.Resolver(configure=False)
        auth.nameservers = [dns.nameserver.Do53Nameserver(ip, port) for ip, port in servers]
        # Leave time for a second server when the first is silent.
        auth.timeout = self.timeout / 2 if len(servers) > 1 else self.timeout
        auth.lifetime = self.timeout
        self.authoritative = _Server(auth, self.timeout)
        self.zone = zone

    def ask(self, name: str, rdtype: str) -> Answer:
        key = (name.lower().rstrip("."), rdtype)
        if key not in self._answers:
            self._answers[key] = self._ask(*key)
        return self._answers[key]

    def _ask(self, name: str, rdtype: str) -> Answer:
        heard = self.resolver.ask(name, rdtype)
        if self.authoritative is None or not _within(name, self.zone):
            return heard
        told = self.authoritative.ask(name, rdtype)
        if told.state == TIMEOUT:
            return replace(heard, authoritative_timeout=True)
        if told.alias:  # the record lives elsewhere: only a resolver follows the alias
            return heard
        if (heard.state, heard.records) != (told.state, told.records):
            return replace(told, resolver=heard)
        return told


def _within(name: str, zone: str) -> bool:
    return name == zone or name.endswith("." + zone)


# Reports -----------------------------------------------------------------------------------------


@dataclass
class _Report:
    """What one check finds, gathered as it goes; `check()` makes the Check of it."""

    kind: str
    name: str
    expected: str = ""
    found: str = ""
    fix: str = ""
    issues: list[tuple[Status, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    params: dict[str, str | int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.params["name"] = self.name

    def issue(self, status: Status, problem: str, **params: str | int) -> None:
        self.issues.append((status, problem))
        self.params.update(params)

    def note(self, note: str, **params: str | int) -> None:
        if note not in self.notes:
            self.notes.append(note)
        self.params.update(params)

    def unchecked(self, names: Iterable[str]) -> None:
        """Names whose lookup timed out, so that the verdict cannot be made."""
        before = str(self.params.get("unchecked", ""))
        listed = dict.fromkeys([*filter(None, before.split(", ")), *names])
        self.issue(Status.WARNING, Problem.TIMEOUT, unchecked=", ".join(listed))

    def heard(self, answer: Answer, found: str | None = None) -> None:
        """The primary answer: `found` (its text by default), and where it came from."""
        self.found = answer.describe() if found is None else found
        if answer.resolver is not None:
            if answer.resolver.state == TIMEOUT:
                self.note(Note.RESOLVER_TIMEOUT)
            else:
                said = answer.resolver.describe()
                self.note(Note.RESOLVER_DIFFERS, resolver_answer=said)
                self.found += f"\n(the resolver still answers: {said})"
        if answer.authoritative_timeout:
            self.note(Note.AUTHORITATIVE_TIMEOUT)

    def check(self) -> Check:
        status, problem, notes = Status.OK, "", list(self.notes)
        if self.issues:
            status = max((s for s, _ in self.issues), key=SEVERITY.__getitem__)
            problem = next(p for s, p in self.issues if s == status)
            lesser = [p for _, p in self.issues if p != problem]
            notes = list(dict.fromkeys(lesser)) + notes
        return Check(
            kind=self.kind,
            status=status,
            problem=problem,
            found=self.found,
            expected=self.expected,
            fix=self.fix if status is not Status.OK else "",
            params=self.params,
            notes=tuple(notes),
        )


def txt_record(name: str, value: str, ttl: int = TTL) -> str:
    """A TXT record in BIND syntax, split into character-strings of at most 255 bytes."""
    strings = [_quote(part) for part in split_txt(value.encode("ascii", "replace").decode())]
    if len(strings) == 1:
        return f"{name}. {ttl} IN TXT {strings[0]}\n"
    joined = "\n    ".join(strings)
    return f"{name}. {ttl} IN TXT (\n    {joined} )\n"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _records_with(answer: Answer, pattern: re.Pattern[str]) -> list[str]:
    return [record for record in answer.records if pattern.match(record)]


# The entry point ---------------------------------------------------------------------------------


def check_domain(
    expect: Expectations,
    *,
    resolver: dns.resolver.Resolver,
    authoritative: list[tuple[str, int]] | None = None,
    timeout: float = 3.0,
) -> list[Check]:
    """Every check for the domain, "ns" first when its servers had to be found.

    `authoritative` gives the servers to ask directly, (address, port) pairs; by default they are
    the domain's NS, found through `resolver`. Each query waits `timeout` seconds at most.
    """
    domain = expect.domain
    dns_ = _Dns(resolver, timeout)
    checks: list[Check] = []
    if authoritative is None:
        servers, zone, ns_check = _find_authoritative(dns_, domain)
        checks.append(ns_check)
    else:
        servers, zone = list(authoritative), domain
    if servers:
        dns_.use_authoritative(servers, zone)
    checks.append(_check_mx(dns_, expect))
    checks.append(_check_spf(dns_, expect))
    checks.extend(_check_dkim(dns_, domain, key) for key in expect.dkim)
    checks.append(_check_dmarc(dns_, domain))
    if expect.mta_sts:
        checks.append(_check_mta_sts(dns_, domain))
    if expect.tls_rpt:
        checks.append(_check_tls_rpt(dns_, domain))
    if expect.client_srv:
        checks.append(_check_srv(dns_, expect))
        checks.append(_check_autoconfig(dns_, expect))
    return checks


def _find_authoritative(dns_: _Dns, domain: str) -> tuple[list[tuple[str, int]], str, Check]:
    """The zone's name servers: NS at the domain, else at its parents (a domain in a zone)."""
    report = _Report("ns", domain, expected="NS records whose hosts resolve")
    zone, answer = domain, Answer(MISSING, detail="no NS record")
    while zone.count(".") >= 1:
        answer = dns_.resolver.ask(zone, "NS")
        if answer.state != MISSING or answer.nxdomain:
            break
        zone = zone.partition(".")[2]
    if answer.state != ANSWERED:
        report.found = answer.describe() + "; only the resolver was asked"
        if answer.state == TIMEOUT:
            report.unchecked([zone])
        else:
            report.issue(Status.WARNING, Problem.MISSING)
        return [], domain, report.check()
    servers: list[tuple[str, int]] = []
    lines, silent, unresolved = [], [], []
    for host in answer.records[:MAX_NS_HOSTS]:
        addresses = []
        for rdtype in ("A", "AAAA"):
            found = dns_.resolver.ask(host, rdtype)
            addresses += found.records
            if found.state == TIMEOUT:
                silent.append(host)
        servers += [(address, 53) for address in addresses]
        lines.append(f"{host} ({', '.join(addresses) or 'no address'})")
        if not addresses and host not in silent:
            unresolved.append(host)
    report.found = "\n".join(lines)
    report.params.update(zone=zone, servers=", ".join(answer.records[:MAX_NS_HOSTS]))
    if not servers:
        report.found += "\nonly the resolver was asked"
        if unresolved:
            report.issue(Status.WARNING, Problem.UNRESOLVABLE_NS, hosts=", ".join(unresolved))
        else:
            report.unchecked(silent)
    # IPv4 first: hosts without IPv6 routes get an immediate error on IPv6, not an answer.
    servers.sort(key=lambda server: ":" in server[0])
    return servers, zone, report.check()


# MX ----------------------------------------------------------------------------------------------


def _incoming(expect: Expectations) -> tuple[str, bool]:
    """The host to propose for MX and IMAP, and whether it is a guess."""
    host = expect.incoming_host or expect.outgoing_host
    return (host.rstrip(".").lower(), False) if host else (f"mail.{expect.domain}", True)


def _check_mx(dns_: _Dns, expect: Expectations) -> Check:
    domain = expect.domain
    host, guessed = _incoming(expect)
    report = _Report("mx", domain, expected=f"10 {host}" if not guessed else "an MX record")
    answer = dns_.ask(domain, "MX")
    report.heard(answer)
    if answer.state == TIMEOUT:
        report.unchecked([domain])
        return report.check()
    exchangers = [record.split(" ", 1)[1] for record in answer.records]  # "10 mail.example.org"
    if answer.state == MISSING or exchangers == ["."]:  # "." (RFC 7505): no mail accepted
        report.issue(Status.ERROR, Problem.MISSING if answer.state == MISSING else Problem.NULL_MX)
        report.params["host"] = host
        report.fix = f"{domain}. {TTL} IN MX 10 {host}.\n"
        if guessed:
            report.note(Note.GUESSED_HOST)
        return report.check()
    unresolvable, silent = [], []
    for exchanger in exchangers[:MAX_MX_HOSTS]:
        states = {dns_.ask(exchanger, rdtype).state for rdtype in ("A", "AAAA")}
        if ANSWERED not in states:
            (silent if TIMEOUT in states else unresolvable).append(exchanger)
    if unresolvable:
        report.issue(Status.ERROR, Problem.UNRESOLVABLE_MX, hosts=", ".join(unresolvable))
        report.fix = "".join(_address_records(expect, unresolvable))
    if silent:
        report.unchecked(silent)
    return report.check()


def _address_records(expect: Expectations, hosts: list[str]) -> list[str]:
    """A/AAAA records for hosts we know the addresses of: the outgoing server's, if named."""
    outgoing = expect.outgoing_host.rstrip(".").lower()
    records = []
    for host in hosts:
        if host == outgoing:
            for address in expect.outgoing_addresses:
                rdtype = "AAAA" if ":" in address else "A"
                records.append(f"{host}. {TTL} IN {rdtype} {address}\n")
    return records


# SPF (RFC 7208) ----------------------------------------------------------------------------------

_SPF_RECORD = re.compile(r"v=spf1(?: |$)", re.IGNORECASE)
_SPF_MODIFIER = re.compile(r"([a-z][a-z0-9_.-]*)=(.*)", re.IGNORECASE | re.DOTALL)
_SPF_MECHANISM = re.compile(r"([-+~?]?)([a-z][a-z0-9]*)(.*)", re.IGNORECASE | re.DOTALL)
_SPF_DOMAIN_CIDR = re.compile(
    r"(?::(.+?))?(?:/(0|[1-9][0-9]?))?(?://(0|[1-9][0-9]{0,2}))?", re.DOTALL
)
_MACRO_STRING = re.compile(r"(?:%\{[slodiphcrtv][0-9]*r?[-.+,/_=]*\}|%[%_-]|[!-$&-~])*", re.I)
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?", re.IGNORECASE)
_TOPLABEL = re.compile(r"(?=[a-z0-9-]*[a-z])[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.I)
_SPF_QUERYING = frozenset({"include", "a", "mx", "ptr", "exists"})
_SPF_RESULT = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}


@dataclass(frozen=True)
class SpfTerm:
    text: str
    name: str  # the mechanism's or modifier's name, lower case
    qualifier: str  # "+", "-", "~" or "?" for a mechanism; "" for a modifier
    target: str = ""  # domain-spec, network, or modifier value
    cidr4: int | None = None
    cidr6: int | None = None

    @property
    def mechanism(self) -> bool:
        return self.qualifier != ""

    @property
    def has_macro(self) -> bool:
        return "%" in self.target


def parse_spf(record: str) -> tuple[list[SpfTerm], list[str]]:
    """The valid terms of a v=spf1 record (after the version), and the invalid ones."""
    terms: list[SpfTerm] = []
    bad: list[str] = []
    for text in record.split()[1:]:
        term = _spf_term(text)
        duplicate = term is not None and (
            term.name in ("redirect", "exp")
            and not term.mechanism
            and any(t.name == term.name and not t.mechanism for t in terms)
        )
        if term is None or duplicate:
            bad.append(text)
        else:
            terms.append(term)
    return terms, bad


def _spf_term(text: str) -> SpfTerm | None:
    modifier = _SPF_MODIFIER.fullmatch(text)
    if modifier:
        name, value = modifier.group(1).lower(), modifier.group(2)
        if name in ("redirect", "exp"):
            valid = _domain_spec(value)
        else:  # unknown modifiers are ignored, if well formed (RFC 7208 §6)
            valid = bool(_MACRO_STRING.fullmatch(value))
        return SpfTerm(text, name, "", value) if valid else None
    mechanism = _SPF_MECHANISM.fullmatch(text)
    if not mechanism:
        return None
    qualifier, name, rest = mechanism.group(1) or "+", mechanism.group(2).lower(), mechanism[3]
    if name == "all":
        return SpfTerm(text, name, qualifier) if rest == "" else None
    if name in ("include", "exists"):
        valid = rest.startswith(":") and _domain_spec(rest[1:])
        return SpfTerm(text, name, qualifier, rest[1:]) if valid else None
    if name == "ptr":
        if rest == "" or (rest.startswith(":") and _domain_spec(rest[1:])):
            return SpfTerm(text, name, qualifier, rest[1:])
        return None
    if name in ("a", "mx"):
        match = _SPF_DOMAIN_CIDR.fullmatch(rest)
        if not match or (match.group(1) is not None and not _domain_spec(match.group(1))):
            return None
        cidr4 = int(match.group(2)) if match.group(2) else None
        cidr6 = int(match.group(3)) if match.group(3) else None
        if (cidr4 or 0) > 32 or (cidr6 or 0) > 128:
            return None
        return SpfTerm(text, name, qualifier, match.group(1) or "", cidr4, cidr6)
    if name in ("ip4", "ip6") and rest.startswith(":"):
        try:
            network = ipaddress.ip_network(rest[1:], strict=False)
        except ValueError:
            return None
        if network.version != int(name[-1]) or rest.count("/") > 1:
            return None
        return SpfTerm(text, name, qualifier, str(network))
    return None


def _domain_spec(text: str) -> bool:
    """A domain name, or a macro string (RFC 7208 §7), which is tolerated without expanding it."""
    if "%" in text:
        return bool(text) and bool(_MACRO_STRING.fullmatch(text))
    return _hostname(text)


def _hostname(text: str) -> bool:
    labels = text[:-1].split(".") if text.endswith(".") else text.split(".")
    return (
        len(text) <= 253
        and len(labels) >= 2
        and all(_LABEL.fullmatch(label) for label in labels[:-1])
        and bool(_TOPLABEL.fullmatch(labels[-1]))
    )


class _SpfAbort(Exception):
    """Evaluation ends in "temperror" or "permerror"."""

    def __init__(self, result: str) -> None:
        super().__init__(result)
        self.result = result


class _Spf:
    """The SPF records reachable from a domain: walked once to count, then evaluated."""

    def __init__(self, dns_: _Dns) -> None:
        self.dns = dns_
        self.lookups = 0
        self.void = 0
        self.broken: list[str] = []  # include/redirect targets that make a permerror
        self.silent: list[str] = []  # names whose lookup timed out
        self.unevaluated: list[str] = []  # ptr, exists and macro terms met when evaluating
        self._records: dict[str, tuple[str, list[SpfTerm]]] = {}

    def ask(self, name: str, rdtype: str) -> Answer:
        answer = self.dns.ask(name, rdtype)
        if answer.state == TIMEOUT and name not in self.silent:
            self.silent.append(name)
        return answer

    def record(self, domain: str) -> tuple[str, list[SpfTerm]]:
        """("ok", terms), or a state: "missing", "several", "syntax" or "timeout"."""
        domain = domain.rstrip(".").lower()
        if domain not in self._records:
            answer = self.ask(domain, "TXT")
            records = _records_with(answer, _SPF_RECORD)
            if answer.state == TIMEOUT:
                found: tuple[str, list[SpfTerm]] = (TIMEOUT, [])
            elif not records:
                found = (MISSING, [])
            elif len(records) > 1:
                found = ("several", [])
            else:
                terms, bad = parse_spf(records[0])
                found = ("syntax", []) if bad else ("ok", terms)
            self._records[domain] = found
        return self._records[domain]

    def walk(self, domain: str, terms: list[SpfTerm], path: tuple[str, ...] = ()) -> None:
        """Count the querying terms and void lookups, following include and redirect."""
        has_all = any(t.name == "all" and t.mechanism for t in terms)
        for term in terms:
            follows = term.name == "redirect" and not term.mechanism and not has_all
            if not follows and not (term.mechanism and term.name in _SPF_QUERYING):
                continue
            self.lookups += 1
            if self.lookups > SPF_MAX_WALK or term.has_macro or term.name in ("ptr", "exists"):
                continue
            target = (term.target or domain).rstrip(".").lower()
            if term.name in ("include", "redirect"):
                state, sub = self.record(target)
                if state == MISSING:
                    self.void += 1
                if state == TIMEOUT:
                    continue
                if state != "ok" or target in (*path, domain) or len(path) >= SPF_MAX_DEPTH:
                    self.broken.append(target)
                else:
                    self.walk(target, sub, (*path, domain))
            else:
                rdtypes = ("A", "AAAA") if term.name == "a" else ("MX",)
                states = {self.ask(target, rdtype).state for rdtype in rdtypes}
                if states == {MISSING}:
                    self.void += 1

    def result(self, ip: str, domain: str, terms: list[SpfTerm], depth: int = 0) -> str:
        """check_host() for what we can evaluate; raises _SpfAbort for the error results."""
        if depth > SPF_MAX_DEPTH:
            raise _SpfAbort("permerror")
        for term in terms:
            if term.mechanism and self._matches(ip, domain, term, depth):
                return _SPF_RESULT[term.qualifier]
        redirect = next((t for t in terms if t.name == "redirect" and not t.mechanism), None)
        if redirect is None:
            return "neutral"
        if redirect.has_macro:
            self.unevaluated.append(redirect.text)
            return "neutral"
        return self.result(ip, redirect.target, self._usable(redirect.target), depth + 1)

    def _usable(self, target: str) -> list[SpfTerm]:
        state, terms = self.record(target)
        if state == TIMEOUT:
            raise _SpfAbort("temperror")
        if state != "ok":
            raise _SpfAbort("permerror")
        return terms

    def _matches(self, ip: str, domain: str, term: SpfTerm, depth: int) -> bool:
        if term.name == "all":
            return True
        address = ipaddress.ip_address(ip)
        if term.name in ("ip4", "ip6"):
            return address in ipaddress.ip_network(term.target)
        if term.name in ("ptr", "exists") or term.has_macro:
            self.unevaluated.append(term.text)
            return False
        target = (term.target or domain).rstrip(".").lower()
        if term.name == "include":
            sub = self._usable(target)
            return self.result(ip, target, sub, depth + 1) == "pass"
        if term.name == "a":
            return self._address_matches(address, target, term)
        answer = self.ask(target, "MX")
        if answer.state == TIMEOUT:
            raise _SpfAbort("temperror")
        return any(self._address_matches(address, h, term) for h in _mx_hosts(answer))

    def _address_matches(
        self, address: ipaddress.IPv4Address | ipaddress.IPv6Address, host: str, term: SpfTerm
    ) -> bool:
        rdtype, cidr = ("A", term.cidr4) if address.version == 4 else ("AAAA", term.cidr6)
        answer = self.ask(host, rdtype)
        if answer.state == TIMEOUT:
            raise _SpfAbort("temperror")
        length = cidr if cidr is not None else address.max_prefixlen
        return any(
            address in ipaddress.ip_network(f"{found}/{length}", strict=False)
            for found in answer.records
        )

    def effective_all(self, terms: list[SpfTerm], depth: int = 0) -> str | None:
        """The qualifier of the "all" that ends evaluation, following redirect; None if none."""
        for term in terms:
            if term.name == "all" and term.mechanism:
                return term.qualifier
        redirect = next((t for t in terms if t.name == "redirect" and not t.mechanism), None)
        if redirect is None or redirect.has_macro or depth >= SPF_MAX_DEPTH:
            return None
        state, sub = self.record(redirect.target)
        return self.effective_all(sub, depth + 1) if state == "ok" else None


def _mx_hosts(answer: Answer) -> list[str]:
    """The exchangers of an MX answer, without a null MX's "." (RFC 7505)."""
    hosts = [record.split(" ", 1)[1] for record in answer.records]
    return [host for host in hosts if host != "."][:MAX_MX_HOSTS]


def _ip_term(address: str, qualifier: str = "+") -> str:
    kind = "ip6" if ":" in address else "ip4"
    return f"{'' if qualifier == '+' else qualifier}{kind}:{address}"


def _spf_text(terms: list[str]) -> str:
    return " ".join(["v=spf1", *terms])


def _outgoing(dns_: _Dns, expect: Expectations, report: _Report) -> list[str]:
    addresses = list(expect.outgoing_addresses)
    if expect.outgoing_host:
        host = expect.outgoing_host.rstrip(".").lower()
        for rdtype in ("A", "AAAA"):
            answer = dns_.ask(host, rdtype)
            if answer.state == TIMEOUT:
                report.unchecked([host])
            addresses += answer.records
    return list(dict.fromkeys(addresses))


def _check_spf(dns_: _Dns, expect: Expectations) -> Check:
    domain = expect.domain
    report = _Report("spf", domain)
    addresses = _outgoing(dns_, expect, report)
    report.expected = "one v=spf1 record" + (
        f" giving pass to {', '.join(addresses)}" if addresses else ""
    )
    answer = dns_.ask(domain, "TXT")
    records = _records_with(answer, _SPF_RECORD)
    if answer.state == TIMEOUT:
        report.heard(answer)
        report.unchecked([domain])
        return report.check()
    if not records:
        report.heard(answer, "no v=spf1 record")
        report.issue(Status.ERROR, Problem.MISSING)
        proposal = ["mx", *(_ip_term(address) for address in addresses), "-all"]
        report.fix = txt_record(domain, _spf_text(proposal))
        return report.check()
    report.heard(answer, "\n".join(records))
    if len(records) > 1:  # RFC 7208 §4.5: a permerror
        report.issue(Status.ERROR, Problem.SEVERAL, count=len(records))
        report.fix = _merged_spf(domain, records)
        return report.check()
    terms, bad = parse_spf(records[0])
    kept = [term.text for term in terms]
    if bad:
        report.issue(Status.ERROR, Problem.SYNTAX, term=bad[0])
        report.fix = txt_record(domain, _spf_text(kept))
        return report.check()

    spf = _Spf(dns_)
    spf.walk(domain, terms)
    if spf.lookups > SPF_LOOKUP_LIMIT:
        report.issue(
            Status.ERROR, Problem.TOO_MANY_LOOKUPS, lookups=spf.lookups, limit=SPF_LOOKUP_LIMIT
        )
        flat = _flattened(spf, domain, terms)
        if flat is not None:
            report.fix = txt_record(domain, _spf_text(flat))
            report.note(Note.FLATTENED)
        return report.check()
    if spf.broken:
        report.issue(Status.ERROR, Problem.BROKEN_INCLUDE, include=spf.broken[0])
        return report.check()
    if spf.void > SPF_VOID_LIMIT:
        report.issue(Status.WARNING, Problem.VOID_LOOKUPS, void=spf.void, limit=SPF_VOID_LIMIT)

    fixed = list(kept)
    final = spf.effective_all(terms)
    if final == "+":
        report.issue(Status.ERROR, Problem.WEAK_POLICY, all="+all")
        fixed = ["~all" if term.name == "all" and term.mechanism else term.text for term in terms]
    elif final is None:
        report.issue(Status.WARNING, Problem.NO_ALL)
        if not any(term.name == "redirect" and not term.mechanism for term in terms):
            fixed.append("~all")
    elif final in ("~", "?"):
        report.note(Note.SOFTFAIL_ALL if final == "~" else Note.NEUTRAL_ALL, all=final + "all")

    refused: dict[str, str] = {}
    for address in addresses:
        try:
            result = spf.result(address, domain, terms)
        except _SpfAbort as abort:
            result = abort.result
        if result not in ("pass", "temperror"):
            refused[address] = result
    if not addresses:
        report.note(Note.OUTGOING_UNKNOWN)
    if spf.unevaluated:
        report.note(Note.UNEVALUATED_TERMS, unevaluated=", ".join(dict.fromkeys(spf.unevaluated)))
    if refused:
        report.issue(
            Status.ERROR,
            Problem.NOT_ALLOWED,
            address=", ".join(refused),
            result=next(iter(refused.values())),
        )
        fixed = [_ip_term(address) for address in refused] + fixed
    if spf.silent:
        report.unchecked(spf.silent)
    if fixed != kept:
        report.fix = txt_record(domain, _spf_text(fixed))
    return report.check()


def _merged_spf(domain: str, records: list[str]) -> str:
    """One record with the mechanisms of several, or "" when a redirect makes that unclear."""
    merged: list[str] = []
    strict = False
    for record in records:
        terms, _bad = parse_spf(record)
        if any(t.name == "redirect" and not t.mechanism for t in terms):
            return ""
        for term in terms:
            if term.name == "all" and term.mechanism:
                strict = strict or term.qualifier == "-"
            elif term.text not in merged:
                merged.append(term.text)
    return txt_record(domain, _spf_text([*merged, "-all" if strict else "~all"]))


def _flattened(spf: _Spf, domain: str, terms: list[SpfTerm]) -> list[str] | None:
    """The record with its own a and mx terms replaced by today's addresses, if that is enough."""
    flat: list[str] = []
    replaced = 0
    for term in terms:
        if term.name not in ("a", "mx") or not term.mechanism or term.has_macro:
            flat.append(term.text)
            continue
        target = (term.target or domain).rstrip(".").lower()
        hosts = [target]
        if term.name == "mx":
            answer = spf.dns.ask(target, "MX")
            if answer.state == TIMEOUT:
                return None
            hosts = _mx_hosts(answer)
        for host in hosts:
            for rdtype, cidr, longest in (("A", term.cidr4, 32), ("AAAA", term.cidr6, 128)):
                answer = spf.dns.ask(host, rdtype)
                if answer.state == TIMEOUT:
                    return None
                suffix = f"/{cidr}" if cidr is not None and cidr != longest else ""
                for address in answer.records:
                    text = _ip_term(address + suffix, term.qualifier)
                    if text not in flat:
                        flat.append(text)
        replaced += 1
    if spf.lookups > SPF_MAX_WALK or spf.lookups - replaced > SPF_LOOKUP_LIMIT:
        return None
    return flat


# DKIM (RFC 6376) ---------------------------------------------------------------------------------


def _check_dkim(dns_: _Dns, domain: str, key: DkimExpectation) -> Check:
    name = f"{key.selector}._domainkey.{domain}"
    value = dns_value(key.algorithm, key.public_b64)
    report = _Report(f"dkim:{key.selector}", name, expected=value)
    report.params["selector"] = key.selector
    answer = dns_.ask(name, "TXT")
    report.heard(answer)
    if answer.state == TIMEOUT:
        report.unchecked([name])
        return report.check()
    report.fix = zone_snippet(key.selector, domain, value)
    if answer.state == MISSING:
        status = Status.ERROR if key.required else Status.PENDING
        report.issue(status, Problem.MISSING)
    elif not any(record_matches(r, key.algorithm, key.public_b64) for r in answer.records):
        report.issue(Status.ERROR, Problem.MISMATCH)
    elif len(answer.records) > 1:  # RFC 6376 §3.6.2.2: which one a verifier uses is undefined
        report.issue(Status.WARNING, Problem.SEVERAL, count=len(answer.records))
    return report.check()


# DMARC (RFC 7489) --------------------------------------------------------------------------------

_DMARC_RECORD = re.compile(r"v\s*=\s*DMARC1\s*(?:;|$)")
_POLICIES = ("none", "quarantine", "reject")
_ADDRESS = re.compile(r"[^@\s\"(),:;<>\[\]\\]+@([^@\s]+)")
_MAILTO = re.compile(r"mailto:([^!]+)(?:![0-9]+[kmgt]?)?", re.IGNORECASE)


def _dmarc_value_ok(tag: str, value: str) -> bool:
    lowered = value.lower()
    if tag in ("p", "sp"):
        return lowered in _POLICIES
    if tag in ("adkim", "aspf"):
        return lowered in ("r", "s")
    if tag == "pct":
        return value.isdigit() and len(value) <= 3 and int(value) <= 100
    if tag in ("rua", "ruf"):
        return all(_report_address(uri) for uri in value.split(","))
    if tag == "fo":
        return all(option.strip() in ("0", "1", "d", "s") for option in value.split(":"))
    if tag == "ri":
        return value.isdigit() and len(value) <= 10
    if tag == "rf":
        return all(re.fullmatch(r"[a-z0-9]+", f.strip()) for f in lowered.split(":"))
    return True  # unknown tags are ignored (RFC 7489 §6.3)


def _report_address(uri: str) -> str:
    """The address of a mailto: URI, or "" when it is not a valid one."""
    match = _MAILTO.fullmatch(uri.strip())
    if not match:
        return ""
    address = match.group(1)
    domain = _ADDRESS.fullmatch(address)
    return address if domain and _hostname(domain.group(1)) else ""


def parse_dmarc(record: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """A DMARC record's (tag, value) pairs in order, and the invalid ones."""
    tags: list[tuple[str, str]] = []
    bad: list[tuple[str, str]] = []
    for position, item in enumerate(part.strip() for part in record.split(";")):
        if not item:
            continue
        tag, equals, value = (piece.strip() for piece in item.partition("="))
        tag = tag.lower()
        well_formed = bool(equals) and bool(re.fullmatch(r"[a-z0-9]+", tag))
        first = all(tag != name for name, _ in tags)
        if (
            well_formed
            and first
            and (tag == "v") == (position == 0)
            and _dmarc_value_ok(tag, value)
        ):
            tags.append((tag, value))
        else:
            bad.append((tag, value))
    if not any(tag == "p" for tag, _ in tags) and not any(tag == "p" for tag, _ in bad):
        bad.append(("p", ""))
    return tags, bad


def _dmarc_text(tags: list[tuple[str, str]]) -> str:
    return "; ".join(f"{tag}={value}" for tag, value in tags)


def _same_organisation(one: str, other: str) -> bool:
    """Without the public suffix list: one is the other, or a subdomain of it."""
    return one == other or one.endswith("." + other) or other.endswith("." + one)


def _check_dmarc(dns_: _Dns, domain: str) -> Check:
    name = f"_dmarc.{domain}"
    proposal = f"v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@{domain}"
    report = _Report("dmarc", name, expected="one v=DMARC1 record with p=quarantine or p=reject")
    answer = dns_.ask(name, "TXT")
    report.heard(answer)
    if answer.state == TIMEOUT:
        report.unchecked([name])
        return report.check()
    records = _records_with(answer, _DMARC_RECORD)
    if not records:
        report.issue(Status.ERROR, Problem.MISSING)
        report.fix = txt_record(name, proposal)
        return report.check()
    if len(records) > 1:
        report.issue(Status.ERROR, Problem.SEVERAL, count=len(records))
    tags, bad = parse_dmarc(records[0])
    values = dict(tags)
    fixed = [("v", "DMARC1"), ("p", values.get("p", "quarantine"))]
    fixed += [(tag, value) for tag, value in tags if tag not in ("v", "p")]
    if bad:
        tag, value = bad[0]
        report.issue(Status.ERROR, Problem.SYNTAX, tag=tag, value=value)
    if values.get("p", "").lower() == "none":
        report.issue(Status.WARNING, Problem.WEAK_POLICY, policy="none")
        fixed[1] = ("p", "quarantine")
    if values.get("pct", "100") != "100":
        report.note(Note.PARTIAL_PCT, pct=int(values["pct"]))
    if report.issues:
        report.fix = txt_record(name, _dmarc_text(fixed))
    report.fix += _report_authorisations(dns_, domain, values, report)
    return report.check()


def _report_authorisations(dns_: _Dns, domain: str, values: dict[str, str], report: _Report) -> str:
    """RFC 7489 §7.1: a report address at another domain needs that domain's consent."""
    addresses = [
        _report_address(uri) for tag in ("rua", "ruf") for uri in values.get(tag, "").split(",")
    ]
    missing: dict[str, str] = {}
    silent = []
    for address in dict.fromkeys(a for a in addresses if a):
        receiver = address.rpartition("@")[2].rstrip(".").lower()
        if _same_organisation(receiver, domain):
            continue
        name = f"{domain}._report._dmarc.{receiver}"
        answer = dns_.ask(name, "TXT")
        if answer.state == TIMEOUT:
            silent.append(name)
        elif not _records_with(answer, _DMARC_RECORD):
            missing[address] = name
    if silent:
        report.unchecked(silent)
    if not missing:
        return ""
    report.issue(
        Status.WARNING,
        Problem.UNAUTHORISED_REPORTS,
        addresses=", ".join(missing),
        records=", ".join(dict.fromkeys(missing.values())),
    )
    return "".join(txt_record(name, "v=DMARC1") for name in dict.fromkeys(missing.values()))


# MTA-STS (RFC 8461) and TLS-RPT (RFC 8460) -------------------------------------------------------

_STS_RECORD = re.compile(r"v\s*=\s*STSv1\s*(?:;|$)")
_TLSRPT_RECORD = re.compile(r"v\s*=\s*TLSRPTv1\s*(?:;|$)")


def _tags(record: str) -> dict[str, str]:
    tags = {}
    for item in record.split(";"):
        tag, _, value = item.partition("=")
        if tag.strip():
            tags.setdefault(tag.strip(), value.strip())
    return tags


def _check_tagged(
    dns_: _Dns,
    kind: str,
    name: str,
    pattern: re.Pattern[str],
    proposal: str,
    valid: dict[str, re.Pattern[str]],
) -> _Report:
    """One TXT record matching `pattern` at `name`, whose tags in `valid` are all present."""
    report = _Report(kind, name, expected=proposal)
    answer = dns_.ask(name, "TXT")
    report.heard(answer)
    if answer.state == TIMEOUT:
        report.unchecked([name])
        return report
    records = _records_with(answer, pattern)
    report.fix = txt_record(name, proposal)
    if not records:
        report.issue(Status.ERROR, Problem.MISSING)
    elif len(records) > 1:
        report.issue(Status.ERROR, Problem.SEVERAL, count=len(records))
    else:
        tags = _tags(records[0])
        for tag, rule in valid.items():
            if not rule.fullmatch(tags.get(tag, "")):
                report.issue(Status.ERROR, Problem.SYNTAX, tag=tag, value=tags.get(tag, ""))
                break
    return report


def _check_mta_sts(dns_: _Dns, domain: str) -> Check:
    report = _check_tagged(
        dns_,
        "mta-sts",
        f"_mta-sts.{domain}",
        _STS_RECORD,
        "v=STSv1; id=1",
        {"id": re.compile(r"[A-Za-z0-9]{1,32}")},
    )
    # The policy itself is at https://mta-sts.<domain>/.well-known/mta-sts.txt: not fetched here.
    report.note(Note.POLICY_NOT_CHECKED)
    return report.check()


_TLSRPT_URI = r"(?:mailto:[^@\s,;!]+@[^@\s,;!]+(?:![0-9]+[kmgt]?)?|https://[^\s,;]+)"


def _check_tls_rpt(dns_: _Dns, domain: str) -> Check:
    rua = re.compile(rf"{_TLSRPT_URI}(?:\s*,\s*{_TLSRPT_URI})*", re.IGNORECASE)
    report = _check_tagged(
        dns_,
        "tls-rpt",
        f"_smtp._tls.{domain}",
        _TLSRPT_RECORD,
        f"v=TLSRPTv1; rua=mailto:tls-reports@{domain}",
        {"rua": rua},
    )
    return report.check()


# Client discovery: SRV (RFC 6186, RFC 8314) and autoconfig ---------------------------------------


def _check_srv(dns_: _Dns, expect: Expectations) -> Check:
    domain = expect.domain
    imap_host, guessed = _incoming(expect)
    outgoing = (expect.outgoing_host or expect.incoming_host).rstrip(".").lower()
    imaps, submissions = f"_imaps._tcp.{domain}", f"_submissions._tcp.{domain}"
    wanted = {
        imaps: f"0 1 {IMAPS_PORT} {imap_host}",
        submissions: f"0 1 {SUBMISSIONS_PORT} {outgoing or imap_host}",
    }
    report = _Report("srv", domain, expected="\n".join(f"{n}: {r}" for n, r in wanted.items()))
    answers = {name: [dns_.ask(name, "SRV")] for name in wanted}
    if answers[submissions][0].state != ANSWERED:
        # STARTTLS submission (port 587) lets clients find a server too (RFC 6186).
        answers[submissions].append(dns_.ask(f"_submission._tcp.{domain}", "SRV"))
    every = [answer for found in answers.values() for answer in found]
    lines = []
    for name, found in answers.items():
        for answer in found:
            lines += [f"{name}: {r}" for r in answer.records] or [f"{name}: {answer.detail}"]
    report.heard(_representative(every), "\n".join(lines))
    missing, silent = [], []
    for name, found in answers.items():
        states = {answer.state for answer in found}
        if ANSWERED not in states:
            (silent if TIMEOUT in states else missing).append(name)
    if missing:
        report.issue(Status.WARNING, Problem.MISSING, names=", ".join(missing))
        report.fix = "".join(f"{name}. {TTL} IN SRV {wanted[name]}.\n" for name in missing)
        if guessed:
            report.note(Note.GUESSED_HOST)
    if silent:
        report.unchecked(silent)
    return report.check()


def _representative(answers: list[Answer]) -> Answer:
    """Of several answers, one whose source is worth a note, else the first."""
    return next((a for a in answers if a.resolver or a.authoritative_timeout), answers[0])


def _check_autoconfig(dns_: _Dns, expect: Expectations) -> Check:
    name = f"autoconfig.{expect.domain}"
    report = _Report("autoconfig", name, expected=f"an address (A or AAAA) for {name}")
    answers = [dns_.ask(name, rdtype) for rdtype in ("A", "AAAA")]
    addresses = "\n".join(r for answer in answers for r in answer.records)
    report.heard(_representative(answers), addresses or answers[0].detail)
    states = {answer.state for answer in answers}
    if ANSWERED in states:
        return report.check()
    if TIMEOUT in states:
        report.unchecked([name])
    else:
        report.issue(Status.WARNING, Problem.MISSING)
        if expect.autoconfig_host:
            report.fix = f"{name}. {TTL} IN CNAME {expect.autoconfig_host.rstrip('.')}.\n"
    return report.check()
