"""mail.proxy and its view: remote images fetched by the server, never from a private address.

Everything stays on loopback: the "remote" server is an http.server thread on 127.0.0.1, which
the proxy may reach only when a test turns on IMAGE_PROXY_ALLOW_LOOPBACK.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from accounts.models import User
from mail import proxy, rendering
from mail.proxy import Policy, Refused
from mail.rendering import Purpose
from mailboxes.models import Folder, MailAccount, Message, MessageContent

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99"
    b"=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
LOOPBACK = Policy(allow_loopback=True)


# A "remote" image server on loopback, which records what it is asked ---------------------------


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


@dataclass
class ImageServer:
    """An HTTP server thread on 127.0.0.1; `requests` lists what reached it."""

    port: int = 0
    requests: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base}{path}"


def _handler(server: ImageServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server.requests.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}))
            path = self.path.split("?", 1)[0]
            if path.startswith("/redirect-to/"):
                self.answer(302, b"", "text/html", Location=path[len("/redirect-to") :])
            elif path == "/redirect-private":
                self.answer(302, b"", "text/html", Location="http://10.0.0.1/a.png")
            elif path == "/redirect-metadata":
                self.answer(301, b"", "text/html", Location="http://169.254.169.254/latest/")
            elif path == "/loop":
                self.answer(302, b"", "text/html", Location="/loop")
            elif path == "/page.html":
                self.answer(200, b"<html>not an image</html>", "text/html")
            elif path == "/drawing.svg":
                self.answer(200, SVG, "image/svg+xml")
            elif path == "/disguised.png":
                self.answer(200, SVG, "image/png")
            elif path == "/huge.png":
                self.answer(200, PNG, "image/png", **{"Content-Length": str(50 * 1024 * 1024)})
            elif path == "/endless.png":
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.end_headers()
                with contextlib.suppress(ConnectionError):  # the proxy hangs up, as it should
                    self.wfile.write(PNG)
                    for _ in range(200):
                        self.wfile.write(b"\0" * 65_536)
            elif path == "/slow.png":
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.end_headers()
                self.wfile.write(PNG[:8])
                self.wfile.flush()
                server.release.wait(10)
            else:  # any other path is an image: fixtures point at many of them
                self.answer(200, PNG, "image/png", **{"Set-Cookie": "tracker=1"})

        def answer(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            headers.setdefault("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def image_server() -> Iterator[ImageServer]:
    yield from serve_images()


def serve_images() -> Iterator[ImageServer]:
    """The server for a test's duration (shared with tests/test_browser_hostile.py)."""
    state = ImageServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()


# Refusals: nothing private, whatever the spelling ---------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/a.png",
        "http://127.1.2.3/a.png",
        "http://[::1]/a.png",
        "http://10.1.2.3/a.png",
        "http://172.16.0.1/a.png",
        "http://172.31.255.254/a.png",
        "http://192.168.1.1/a.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]/a.png",
        "http://[::ffff:169.254.169.254]/a.png",
        "http://[::ffff:a9fe:a9fe]/a.png",
        "http://[::127.0.0.1]/a.png",  # IPv4-compatible
        "http://[64:ff9b::a9fe:a9fe]/a.png",  # NAT64 of the metadata service
        "http://[2002:7f00:1::]/a.png",  # 6to4 of loopback
        "http://100.64.0.1/a.png",
        "http://100.127.255.255/a.png",
        "http://0.0.0.0/a.png",
        "http://[::]/a.png",
        "http://224.0.0.1/a.png",
        "http://[ff02::1]/a.png",
        "http://[fe80::1]/a.png",
        "http://[fd00::1]/a.png",
        "http://255.255.255.255/a.png",
        "http://2130706433/a.png",  # 127.0.0.1 as one number, read so by the resolver
        "http://0x7f.1/a.png",
        "http://localhost/a.png",  # a name that resolves to loopback
    ],
)
def test_private_and_special_addresses_are_refused(url: str) -> None:
    with pytest.raises(Refused) as refused:
        proxy.fetch_image(url, Policy())
    assert refused.value.code == "address"


def test_a_name_is_refused_when_any_of_its_addresses_is_private() -> None:
    def resolver(*_args: Any) -> list[tuple[Any, ...]]:
        return [
            (2, 1, 6, "", ("93.184.215.14", 80)),
            (2, 1, 6, "", ("10.0.0.7", 80)),
        ]

    with pytest.raises(Refused) as refused:
        proxy.fetch_image("http://images.example/a.png", Policy(), resolver=resolver)
    assert refused.value.code == "address"


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://93.184.215.14/a.png", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("gopher://93.184.215.14:70/", "scheme"),
        ("http://93.184.215.14:8080/a.png", "address"),  # a public address on another port
        ("http://93.184.215.14:22/", "address"),
        ("http:///a.png", "bad-url"),
        ("http://[::1/a.png", "bad-url"),
    ],
)
def test_only_http_and_https_on_their_ports(url: str, code: str) -> None:
    with pytest.raises(Refused) as refused:
        proxy.fetch_image(url, Policy())
    assert refused.value.code == code


def test_the_loopback_test_server_is_refused_without_the_test_policy(
    image_server: ImageServer,
) -> None:
    with pytest.raises(Refused) as refused:
        proxy.fetch_image(image_server.url("/a.png"), Policy())
    assert refused.value.code == "address"
    assert image_server.requests == []


# Fetching from the loopback server with the test policy ----------------------------------------


def test_an_image_is_fetched_without_cookie_or_referer(image_server: ImageServer) -> None:
    image = proxy.fetch_image(image_server.url("/photo.png?size=2"), LOOPBACK)

    assert (image.content_type, image.data) == ("image/png", PNG)
    [seen] = image_server.requests
    assert seen.path == "/photo.png?size=2"
    assert "cookie" not in seen.headers
    assert "referer" not in seen.headers
    assert seen.headers["user-agent"] == proxy.USER_AGENT
    assert seen.headers["accept-encoding"] == "identity"
    assert seen.headers["host"] == f"127.0.0.1:{image_server.port}"


def test_a_redirect_is_followed_and_checked_again(image_server: ImageServer) -> None:
    image = proxy.fetch_image(image_server.url("/redirect-to/final.png"), LOOPBACK)
    assert image.data == PNG
    assert [seen.path for seen in image_server.requests] == ["/redirect-to/final.png", "/final.png"]


@pytest.mark.parametrize("path", ["/redirect-private", "/redirect-metadata"])
def test_a_redirect_to_a_private_address_is_refused(image_server: ImageServer, path: str) -> None:
    with pytest.raises(Refused) as refused:
        proxy.fetch_image(image_server.url(path), LOOPBACK)
    assert refused.value.code == "address"


def test_redirects_stop_after_three(image_server: ImageServer) -> None:
    with pytest.raises(Refused) as refused:
        proxy.fetch_image(image_server.url("/loop"), LOOPBACK)
    assert refused.value.code == "too-many-redirects"
    assert len(image_server.requests) == proxy.MAX_REDIRECTS + 1


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/page.html", "not-image"),
        ("/drawing.svg", "svg"),
        ("/disguised.png", "not-image"),  # says PNG, is SVG
        ("/huge.png", "too-large"),  # says so in Content-Length
        ("/endless.png", "too-large"),  # says nothing and goes on
    ],
)
def test_what_is_not_a_small_raster_image_is_refused(
    image_server: ImageServer, path: str, code: str
) -> None:
    with pytest.raises(Refused) as refused:
        proxy.fetch_image(image_server.url(path), LOOPBACK)
    assert refused.value.code == code


def test_a_server_that_stalls_is_given_up_on(image_server: ImageServer) -> None:
    with pytest.raises(Refused) as refused:
        proxy.fetch_image(image_server.url("/slow.png"), LOOPBACK, timeout=0.5)
    assert refused.value.code == "timeout"


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (PNG, "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"GIF89a\x01\x00", "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00", "image/avif"),
        (b"BM" + b"\x00" * 30, "image/bmp"),
        (b"\x00\x00\x01\x00\x01\x00\x10\x10", "image/x-icon"),
        (SVG, None),
        (b"<html>", None),
        (b"%PDF-1.4", None),
        (b"", None),
    ],
)
def test_image_types_are_sniffed_from_the_bytes(head: bytes, kind: str | None) -> None:
    assert proxy.sniff_image_type(head) == kind


# The view --------------------------------------------------------------------------------------


@pytest.fixture
def message(alice: User) -> Message:
    account = MailAccount.objects.create(
        user=alice,
        email="alice@example.org",
        incoming_host="imap.example.org",
        username="alice@example.org",
        password="secret",
        smtp_host="smtp.example.org",
    )
    folder = Folder.objects.create(account=account, name="INBOX", role=Folder.Role.INBOX)
    content = MessageContent.objects.create(
        account=account, sha256="0" * 64, raw_path="mail/none.eml", size=0
    )
    return Message.objects.create(folder=folder, content=content, uidvalidity=1, uid=1)


def proxied(message: Message, url: str, user_id: int | None = None) -> str:
    user_id = user_id or message.folder.account.user_id
    token = rendering.sign(Purpose.IMAGE, user_id, message.pk, url)
    return f"{reverse('mail-image-proxy', args=[message.pk])}?t={token}"


@pytest.mark.django_db
@override_settings(IMAGE_PROXY_ALLOW_LOOPBACK=True)
def test_the_proxy_view_serves_the_image_with_strict_headers(
    image_server: ImageServer, message: Message, alice_client: Client
) -> None:
    alice_client.cookies["tracker"] = "mine"
    response = alice_client.get(proxied(message, image_server.url("/logo.png")))

    assert response.status_code == 200
    assert response.content == PNG
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert response["Cache-Control"] == "private, max-age=86400"
    assert "Set-Cookie" not in response.headers  # the remote server's cookie stays there
    [seen] = image_server.requests
    assert "cookie" not in seen.headers
    assert "referer" not in seen.headers


@pytest.mark.django_db
@override_settings(IMAGE_PROXY_ALLOW_LOOPBACK=True)
def test_the_proxy_view_needs_no_session_but_a_valid_token(
    image_server: ImageServer, message: Message, client: Client, bob: User
) -> None:
    url = proxied(message, image_server.url("/logo.png"))
    assert client.get(url).status_code == 200  # from the sandboxed frame: no cookie

    payload, _rest = url.split("?t=", 1)[1].split(":", 1)
    other = json.dumps([message.folder.account.user_id, message.pk, image_server.url("/b.png")])
    forged = base64.urlsafe_b64encode(other.replace(" ", "").encode()).decode().rstrip("=")
    assert client.get(url.replace(payload, forged)).status_code == 404
    assert client.get(url + "x").status_code == 404
    assert client.get(proxied(message, image_server.url("/a.png"), user_id=bob.pk)).status_code == (
        404
    )
    client.force_login(bob)
    assert client.get(url).status_code == 404  # alice's URL, bob signed in
    assert len(image_server.requests) == 1


@pytest.mark.django_db
def test_the_proxy_view_refuses_loopback_by_default(
    image_server: ImageServer, message: Message, alice_client: Client
) -> None:
    response = alice_client.get(proxied(message, image_server.url("/logo.png")))
    assert response.status_code == 403
    assert response.content == b""
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert image_server.requests == []


@pytest.mark.django_db
@override_settings(IMAGE_PROXY_ALLOW_LOOPBACK=True)
def test_the_proxy_view_refuses_what_is_not_an_image(
    image_server: ImageServer, message: Message, alice_client: Client
) -> None:
    response = alice_client.get(proxied(message, image_server.url("/drawing.svg")))
    assert response.status_code == 403
    assert b"svg" not in response.content
