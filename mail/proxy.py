"""Fetch a remote image of a message on the user's behalf, and nothing else.

A message's sender chooses the URL, so the fetch is a server-side request the sender steers
(SSRF). `fetch_image` therefore:

- accepts http and https only, on ports 80 and 443;
- resolves the host once with the system resolver and refuses the whole fetch when any address
  it gives is not public: loopback, RFC 1918 and ULA private ranges, link-local (with the
  169.254.169.254 metadata service), CGNAT 100.64/10, multicast, unspecified, reserved and
  documentation ranges, and IPv6 forms that embed an IPv4 address (mapped ``::ffff:a.b.c.d``,
  compatible ``::a.b.c.d``, NAT64, 6to4, Teredo);
- connects to the address it checked, never resolving the name again (no DNS rebinding), and
  gives TLS the host name for SNI and certificate checks;
- follows at most `MAX_REDIRECTS` redirects, checking each new URL the same way;
- gives up after `TIMEOUT` seconds in all (a watchdog closes the socket) and `MAX_BYTES`;
- sends no cookie, no Referer, a neutral User-Agent, and asks for no compression;
- keeps only raster images whose bytes say what they are (`sniff_image_type`): PNG, JPEG, GIF,
  WebP, AVIF, BMP and ICO. Never SVG, which is a document that can carry script.

Tests run on loopback only: `Policy(allow_loopback=True)` (the ``IMAGE_PROXY_ALLOW_LOOPBACK``
setting, off unless a test turns it on) lets loopback addresses through, on any port.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from django.conf import settings

MAX_BYTES = 5 * 1024 * 1024
TIMEOUT = 5.0
MAX_REDIRECTS = 3
ALLOWED_PORTS = frozenset({80, 443})
USER_AGENT = "Mozilla/5.0 (compatible; Courrier-ImageProxy/1.0)"
ACCEPT = "image/avif,image/webp,image/png,image/jpeg,image/gif,image/*;q=0.8"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., list[tuple[Any, ...]]]

_BLOCKED_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in (
        # IPv4
        "0.0.0.0/8",  # "this network", 0.0.0.0 among them
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, with the cloud metadata service
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
        # IPv6
        "::/96",  # unspecified, loopback and the deprecated IPv4-compatible addresses
        "::ffff:0:0/96",  # IPv4-mapped (unwrapped and checked as IPv4 before this)
        "64:ff9b::/96",  # NAT64
        "64:ff9b:1::/48",
        "100::/64",  # discard
        "2001::/32",  # Teredo
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local, deprecated
        "ff00::/8",  # multicast
    )
)


class Refused(Exception):
    """The image is not fetched; `code` says why, for logs and tests."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code


@dataclass(frozen=True)
class Policy:
    allow_loopback: bool = False

    @classmethod
    def from_settings(cls) -> Policy:
        return cls(allow_loopback=bool(getattr(settings, "IMAGE_PROXY_ALLOW_LOOPBACK", False)))

    def allows(self, address: IPAddress, port: int) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if self.allow_loopback and address.is_loopback:
            return True  # any port: the test server listens on a free one
        if port not in ALLOWED_PORTS:
            return False
        return public_address(address)


def public_address(address: IPAddress) -> bool:
    """Whether an address is on the public internet (IPv4-mapped ones checked as IPv4)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    blocked = (n for n in _BLOCKED_NETWORKS if n.version == address.version)
    if any(address in network for network in blocked):
        return False
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class Image:
    content_type: str
    data: bytes


def fetch_image(
    url: str,
    policy: Policy | None = None,
    *,
    resolver: Resolver = socket.getaddrinfo,
    timeout: float = TIMEOUT,
    max_bytes: int = MAX_BYTES,
) -> Image:
    """The image at `url`, or `Refused`. See the module's docstring for what is checked."""
    policy = policy or Policy.from_settings()
    deadline = time.monotonic() + timeout
    for _hop in range(MAX_REDIRECTS + 1):
        scheme, host, port, target = _split(url)
        address = _resolve(host, port, policy, resolver, deadline)
        status, location, image = _get(scheme, host, port, target, address, deadline, max_bytes)
        if status in _REDIRECTS:
            if not location:
                raise Refused("bad-redirect")
            url = urllib.parse.urljoin(url, location)
            continue
        assert image is not None
        return image
    raise Refused("too-many-redirects")


def _split(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, request target) of an http(s) URL, or `Refused`."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise Refused("bad-url", str(error)) from error
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise Refused("scheme", scheme)
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise Refused("bad-url", "no host")
    port = port or (443 if scheme == "https" else 80)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    if any(c in target for c in "\r\n ") or len(target) > 8192:
        raise Refused("bad-url", "request target")
    return scheme, host, port, target


def _resolve(
    host: str, port: int, policy: Policy, resolver: Resolver, deadline: float
) -> IPAddress:
    """The one address to connect to; every address the name has must be allowed."""
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        try:
            name = host.encode("idna").decode("ascii")
        except UnicodeError as error:
            raise Refused("bad-url", "host name") from error
        addresses = _lookup(name, port, resolver, deadline)
    if not addresses:
        raise Refused("dns", host)
    for address in addresses:
        if not policy.allows(address, port):
            raise Refused("address", f"{host} is {address}")
    return addresses[0]


# getaddrinfo has no timeout of its own: it runs here, and the fetch stops waiting at its deadline.
_lookups = ThreadPoolExecutor(max_workers=8, thread_name_prefix="image-proxy-dns")


def _lookup(name: str, port: int, resolver: Resolver, deadline: float) -> list[IPAddress]:
    future = _lookups.submit(resolver, name, port, 0, socket.SOCK_STREAM)
    try:
        infos = future.result(timeout=max(deadline - time.monotonic(), 0.01))
    except FutureTimeout as error:
        raise Refused("timeout", "resolving") from error
    except (OSError, UnicodeError) as error:
        raise Refused("dns", str(error)) from error
    found: list[IPAddress] = []
    for family, _type, _proto, _canonical, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        # An IPv6 sockaddr may carry a scope ("fe80::1%eth0"): the address is what counts.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    # IPv4 first: a host's IPv6 address is more often unreachable from a server than its IPv4.
    return sorted(found, key=lambda address: address.version)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to a given address; the Host header keeps the name."""

    def __init__(self, host: str, port: int, address: IPAddress, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((str(self.address), self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: IPAddress, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address = address

    def connect(self) -> None:
        raw = socket.create_connection((str(self.address), self.port), self.timeout)
        try:
            self.sock = self._context.wrap_socket(raw, server_hostname=self.host)  # type: ignore[attr-defined]
        except BaseException:
            raw.close()
            raise


def _get(
    scheme: str,
    host: str,
    port: int,
    target: str,
    address: IPAddress,
    deadline: float,
    max_bytes: int,
) -> tuple[int, str, Image | None]:
    """One GET: (status, Location, image). A redirect gives no image; any other answer than a
    200 with an acceptable image raises `Refused`."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise Refused("timeout")
    kind = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    connection = kind(host, port, address, timeout=remaining)
    # Per-operation socket timeouts let a server dribble bytes for ever; this bounds the total.
    watchdog = threading.Timer(remaining, _abort, [connection])
    watchdog.daemon = True
    watchdog.start()
    try:
        name = f"[{host}]" if ":" in host else host
        default_port = 443 if scheme == "https" else 80
        connection.putrequest("GET", target, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", name if port == default_port else f"{name}:{port}")
        connection.putheader("User-Agent", USER_AGENT)
        connection.putheader("Accept", ACCEPT)
        connection.putheader("Accept-Encoding", "identity")
        connection.putheader("Connection", "close")
        connection.endheaders()
        response = connection.getresponse()
        if response.status in _REDIRECTS:
            return response.status, response.getheader("Location", "") or "", None
        if response.status != 200:
            raise Refused("status", str(response.status))
        return response.status, "", _read_image(response, deadline, max_bytes)
    except (OSError, http.client.HTTPException, ValueError) as error:
        if time.monotonic() >= deadline:
            raise Refused("timeout") from error
        raise Refused("network", f"{type(error).__name__}: {error}") from error
    finally:
        watchdog.cancel()
        connection.close()


def _abort(connection: http.client.HTTPConnection) -> None:
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _read_image(response: http.client.HTTPResponse, deadline: float, max_bytes: int) -> Image:
    declared = (response.getheader("Content-Type") or "").split(";", 1)[0].strip().lower()
    if not declared.startswith("image/"):
        raise Refused("not-image", declared or "no content type")
    if "svg" in declared:
        raise Refused("svg")
    encoding = (response.getheader("Content-Encoding") or "identity").strip().lower()
    if encoding not in ("identity", ""):
        raise Refused("encoding", encoding)
    length = response.getheader("Content-Length")
    if length and length.strip().isdigit() and int(length) > max_bytes:
        raise Refused("too-large", length)
    data = bytearray()
    while True:
        if time.monotonic() >= deadline:
            raise Refused("timeout")
        chunk = response.read(_CHUNK)
        if not chunk:
            break
        data += chunk
        if len(data) > max_bytes:
            raise Refused("too-large")
    kind = sniff_image_type(bytes(data[:64]))
    if kind is None:
        raise Refused("not-image", f"declared {declared}, bytes unknown")
    return Image(kind, bytes(data))


def sniff_image_type(head: bytes) -> str | None:
    """The media type of a raster image from its first bytes, or None for anything else."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis"):
        return "image/avif"
    if head[:2] == b"BM" and len(head) >= 26:
        return "image/bmp"
    if head[:4] == b"\x00\x00\x01\x00" and len(head) >= 6 and head[4:6] != b"\x00\x00":
        return "image/x-icon"
    return None
