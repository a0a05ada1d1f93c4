"""Pytest plugin: private dnsmasq servers with the zones of mailcore.dnscheck's test domains.

Load it with `pytest_plugins = ["tests.dnszones"]`. Each `DnsServer` runs its own dnsmasq
(Debian's binary, started as root: it drops to nobody itself) in the foreground, on a free port of
127.0.0.1 for UDP and TCP, from a config file in its own temporary directory. The mail stack's
dnsmasq and its config are never touched. `restart` rewrites the config and starts the process
again on the same port, so that a test can publish a new record mid-test; `stop` ends it and
checks that no process of that config is left.

The zones (`standard_zones`) put every test domain under `local=/<domain>/`: dnsmasq answers
them itself, NXDOMAIN for names it has no record of, and REFUSED for anything else. None of them
has NS records, as a real zone would.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.exception
import dns.message
import dns.nameserver
import dns.query
import dns.resolver
import pytest

from mailcore.dkimkeys import NewKey, dns_value, generate, split_txt

DNSMASQ = Path("/usr/sbin/dnsmasq")
HOST = "127.0.0.1"
OUTGOING_IP = "192.0.2.25"  # mail.<domain> of every test domain: the outgoing server
WEB_IP = "192.0.2.80"  # autoconfig.<domain>
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


@dataclass
class Zones:
    """The records a DnsServer serves, as dnsmasq options; `keys` are the DKIM keys, by name."""

    domains: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    keys: dict[str, NewKey] = field(default_factory=dict)

    def copy(self) -> Zones:
        return Zones(list(self.domains), list(self.lines), dict(self.keys))

    def domain(self, name: str) -> None:
        self.domains.append(name)

    def host(self, name: str, *addresses: str) -> None:
        self.lines.append(f"host-record={name},{','.join(addresses)}")

    def mx(self, domain: str, host: str, preference: int = 10) -> None:
        self.lines.append(f"mx-host={domain},{host},{preference}")

    def txt(self, name: str, value: str) -> None:
        # One quoted string of at most 255 bytes each: DNS character-strings.
        strings = ",".join('"' + part.replace('"', '\\"') + '"' for part in split_txt(value))
        self.lines.append(f"txt-record={name},{strings}")

    def srv(self, name: str, target: str, port: int) -> None:
        self.lines.append(f"srv-host={name},{target},{port},0,1")

    def dkim(self, selector: str, domain: str, key: NewKey) -> None:
        self.keys[f"{selector}._domainkey.{domain}"] = key
        self.txt(f"{selector}._domainkey.{domain}", dns_value(key.algorithm, key.public_b64))

    def delegate(self, zone: str, *name_servers: tuple[str, str]) -> None:
        """NS records for `zone` (dnsmasq's authoritative mode): (host, address) pairs."""
        first, *others = name_servers
        self.lines.append(f"auth-server={first[0]},{HOST}")
        self.lines.append(f"auth-zone={zone}")
        if others:
            self.lines.append(f"auth-sec-servers={','.join(host for host, _ in others)}")
        for host, address in name_servers:
            if address:
                self.host(host, address)

    def without(self, name: str) -> Zones:
        """A copy without the records of one name (a DKIM selector, say)."""
        copy = self.copy()
        copy.lines = [line for line in self.lines if line.partition("=")[2].split(",")[0] != name]
        copy.keys.pop(name, None)
        return copy

    def config(self, directory: Path) -> str:
        header = [
            "# A private dnsmasq of tests/dnszones.py; listening options are on its command line.",
            "no-poll",
            f"pid-file={directory / 'dnsmasq.pid'}",
            f"log-facility={directory / 'dnsmasq.log'}",
            "log-queries",
            "user=nobody",
            "group=nogroup",
        ]
        local = [f"local=/{domain}/" for domain in self.domains]
        return "\n".join([*header, *local, *self.lines]) + "\n"


def mail_domain(
    zones: Zones,
    domain: str,
    *,
    mx: bool = True,
    spf: tuple[str, ...] = ("v=spf1 mx -all",),
    dmarc: str | None = None,
    dkim: NewKey | None = None,
    client_srv: bool = True,
) -> None:
    """A domain with every record right, unless told otherwise; DKIM selector "s1"."""
    zones.domain(domain)
    zones.host(f"mail.{domain}", OUTGOING_IP)
    if mx:
        zones.mx(domain, f"mail.{domain}")
    for record in spf:
        zones.txt(domain, record)
    zones.txt(f"_dmarc.{domain}", dmarc or f"v=DMARC1; p=reject; rua=mailto:dmarc@{domain}")
    zones.dkim("s1", domain, dkim or generate("ed25519"))
    if client_srv:
        zones.host(f"autoconfig.{domain}", WEB_IP)
        zones.srv(f"_imaps._tcp.{domain}", f"mail.{domain}", 993)
        zones.srv(f"_submissions._tcp.{domain}", f"mail.{domain}", 465)


def standard_zones() -> Zones:
    """The test domains, each with at most one thing wrong; good.test has everything right."""
    zones = Zones()
    # good.test: an RSA key (a TXT record over 255 bytes) and an Ed25519 one; SPF through an
    # include and IPv6; DMARC reports also to another domain, which consents.
    mail_domain(
        zones,
        "good.test",
        spf=("v=spf1 mx ip4:198.51.100.0/24 include:_spf.good.test -all",),
        dmarc="v=DMARC1; p=reject; rua=mailto:dmarc@good.test,mailto:dmarc@reports.test",
        dkim=generate("rsa"),
    )
    zones.host("mail.good.test", "2001:db8::25")
    zones.txt("_spf.good.test", "v=spf1 ip6:2001:db8::/32 ~all")
    zones.dkim("s2", "good.test", generate("ed25519"))
    zones.txt("_mta-sts.good.test", "v=STSv1; id=20261129T000000")
    zones.txt("_smtp._tls.good.test", "v=TLSRPTv1; rua=mailto:tls-reports@good.test")
    zones.domain("reports.test")
    zones.txt("good.test._report._dmarc.reports.test", "v=DMARC1")

    mail_domain(zones, "nomx.test", mx=False, spf=("v=spf1 a:mail.nomx.test -all",))
    mail_domain(zones, "twospf.test", spf=("v=spf1 mx -all", f"v=spf1 ip4:{OUTGOING_IP} -all"))
    # 4 + 3 + 4 DNS-querying terms, every name of them existing: 11.
    mail_domain(
        zones,
        "spf11.test",
        spf=("v=spf1 a mx include:_a.spf11.test include:_b.spf11.test -all",),
    )
    zones.host("spf11.test", OUTGOING_IP)
    zones.txt(
        "_a.spf11.test", "v=spf1 a:mail.spf11.test mx:spf11.test a:spf11.test ip4:198.51.100.1 -all"
    )
    zones.txt(
        "_b.spf11.test",
        "v=spf1 a:mail.spf11.test a:spf11.test mx:spf11.test include:_c.spf11.test -all",
    )
    zones.txt("_c.spf11.test", "v=spf1 ip4:198.51.100.2 -all")

    mail_domain(zones, "staledkim.test")  # the tests expect another key than this one
    mail_domain(zones, "baddmarc.test", dmarc="v=DMARC1; p=maybe")
    mail_domain(zones, "nonedmarc.test", dmarc="v=DMARC1; p=none; rua=mailto:d@nonedmarc.test")
    mail_domain(zones, "notallowed.test", spf=("v=spf1 ip4:203.0.113.5 -all",))
    mail_domain(zones, "extreports.test", dmarc="v=DMARC1; p=reject; rua=mailto:d@reports.test")
    mail_domain(zones, "badmx.test", mx=False, spf=("v=spf1 a:mail.badmx.test -all",))
    zones.mx("badmx.test", "gone.badmx.test")
    mail_domain(zones, "nullmx.test", mx=False, spf=("v=spf1 a:mail.nullmx.test -all",))
    zones.mx("nullmx.test", ".", 0)
    mail_domain(zones, "redirect.test", spf=("v=spf1 redirect=_spf.redirect.test",))
    zones.txt("_spf.redirect.test", "v=spf1 a:mail.redirect.test -all")
    mail_domain(zones, "plusall.test", spf=("v=spf1 mx +all",))
    mail_domain(zones, "softall.test", spf=("v=spf1 mx ~all",))
    mail_domain(zones, "noall.test", spf=("v=spf1 mx",))
    mail_domain(zones, "badspf.test", spf=("v=spf1 mx ip4:192.0.2.300 -all",))
    mail_domain(zones, "ptrspf.test", spf=("v=spf1 ptr -all",))
    mail_domain(
        zones,
        "brokeninclude.test",
        spf=("v=spf1 mx include:_spf.brokeninclude.test -all",),
    )
    gone = " ".join(f"a:gone{n}.voidspf.test" for n in (1, 2, 3))
    mail_domain(zones, "voidspf.test", spf=(f"v=spf1 mx {gone} -all",))
    mail_domain(zones, "nosrv.test", client_srv=False)
    return zones


class DnsServer:
    """One private dnsmasq; `nameserver` is what `check_domain(authoritative=...)` takes."""

    def __init__(self, directory: Path, zones: Zones) -> None:
        self.directory = directory
        self.zones = zones
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def config_file(self) -> Path:
        return self.directory / "dnsmasq.conf"

    @property
    def nameserver(self) -> tuple[str, int]:
        return HOST, self.port

    def resolver(self) -> dns.resolver.Resolver:
        return resolver_for(self.nameserver)

    def start(self) -> None:
        self.config_file.write_text(self.zones.config(self.directory))
        for _attempt in range(3):
            port = self.port or free_port()
            if self._launch(port):
                self.port = port
                return
            if self.port:
                break  # a restart keeps its port: clients know it
        raise RuntimeError(f"dnsmasq did not start:\n{self._log()}")

    def restart(self, zones: Zones | None = None) -> None:
        """Stop, rewrite the config (with `zones` if given) and start again on the same port."""
        self.stop()
        if zones is not None:
            self.zones = zones
        self.start()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)
            self.process = None
        left = self.processes()
        assert not left, f"dnsmasq processes of {self.config_file} left running: {left}"

    def processes(self) -> list[int]:
        """Pids of every process started with our config file, found through /proc."""
        argument = f"--conf-file={self.config_file}".encode()
        pids = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                if argument in (proc / "cmdline").read_bytes().split(b"\0"):
                    pids.append(int(proc.name))
            except OSError:  # it ended while we looked
                continue
        return pids

    def _launch(self, port: int) -> bool:
        """Start dnsmasq on `port` and wait until it answers; False if it exited instead."""
        command = [
            str(DNSMASQ),
            f"--conf-file={self.config_file}",
            "--port",
            str(port),
            "--listen-address",
            HOST,
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--keep-in-foreground",
        ]
        with (self.directory / "start.log").open("wb") as output:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
            )
        probe = dns.message.make_query("ready.invalid.", "A")
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                return False
            try:
                dns.query.udp(probe, HOST, port=port, timeout=0.2)
            except dns.exception.Timeout:
                continue
            except OSError:  # refused: not listening yet
                time.sleep(0.01)
                continue
            return True
        self.stop()
        raise RuntimeError(f"dnsmasq did not answer within {START_TIMEOUT} s:\n{self._log()}")

    def _log(self) -> str:
        parts = []
        for name in ("start.log", "dnsmasq.log"):
            path = self.directory / name
            if path.exists():
                parts.append(path.read_text(errors="replace")[-2000:])
        return "\n".join(parts)


def resolver_for(server: tuple[str, int]) -> dns.resolver.Resolver:
    """A resolver asking only this server, without a cache."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [dns.nameserver.Do53Nameserver(*server)]
    return resolver


def free_port() -> int:
    """A port of 127.0.0.1 free for both UDP and TCP, as dnsmasq listens on both."""
    for _attempt in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((HOST, 0))
            port: int = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((HOST, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port for UDP and TCP on 127.0.0.1")


def _require_dnsmasq() -> None:
    if not DNSMASQ.exists():
        pytest.skip(f"{DNSMASQ} is missing: scripts/install-system-deps installs dnsmasq-base")
    if os.geteuid() != 0:
        pytest.skip("dnsmasq must start as root to switch to its own user")


@pytest.fixture(scope="session")
def mail_zones() -> Zones:
    """The standard zones, keys generated once a session."""
    return standard_zones()


DnsServerFactory = Callable[[Zones], DnsServer]


@pytest.fixture
def dns_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsServerFactory]:
    """Start private dnsmasq servers; each is stopped, and checked gone, after the test."""
    _require_dnsmasq()
    started: list[DnsServer] = []

    def start(zones: Zones) -> DnsServer:
        server = DnsServer(tmp_path_factory.mktemp("dnsmasq"), zones)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def dnszones(tmp_path_factory: pytest.TempPathFactory, mail_zones: Zones) -> Iterator[DnsServer]:
    """One dnsmasq serving `mail_zones` for a whole test module. Do not restart it."""
    _require_dnsmasq()
    server = DnsServer(tmp_path_factory.mktemp("dnszones"), mail_zones)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def app_uses_dnszones(dnszones: DnsServer, settings: Any) -> DnsServer:
    """The app's DNS questions (settings.DNS_RESOLVER: SPF, DKIM, DMARC…) go to `dnszones`."""
    host, port = dnszones.nameserver
    settings.DNS_RESOLVER = f"{host}:{port}"
    return dnszones


class BlackHole:
    """A UDP port where nothing ever answers: a DNS server that times out."""

    def __init__(self, sock: socket.socket) -> None:
        self.socket = sock
        self.address: tuple[str, int] = sock.getsockname()

    def received(self) -> int:
        """How many queries arrived (and were dropped) since the last call."""
        count = 0
        self.socket.setblocking(False)
        while True:
            try:
                self.socket.recv(4096)
            except BlockingIOError:
                return count
            count += 1


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        yield BlackHole(sock)
