"""Reading one message: the panel, the sandboxed body, parts, source, print view, the sender."""

from __future__ import annotations

import re
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from mail import rendering, sender, services
from mail.models import Preferences, TrustedSender
from mail.rendering import Purpose
from mailboxes import indexing, sync
from mailboxes.models import Folder, MailAccount, Message, MessageContent

pytestmark = pytest.mark.django_db

BODY_POLICY = (
    "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; font-src 'none'; "
    "form-action 'none'; frame-ancestors 'self'; base-uri 'none'; "
    "sandbox allow-popups allow-popups-to-escape-sandbox"
)
PART_POLICY = "default-src 'none'; sandbox"
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99"
    b"=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)


# The cast: alice's mailbox, and messages delivered into it ------------------------------------


@pytest.fixture
def inbox(alice: User) -> Folder:
    account = MailAccount.objects.create(
        user=alice,
        email="alice@example.org",
        incoming_host="imap.example.org",
        username="alice@example.org",
        password="secret",
        smtp_host="smtp.example.org",
    )
    return Folder.objects.create(account=account, name="INBOX", role=Folder.Role.INBOX)


Deliver = Callable[..., Message]


@pytest.fixture
def deliver(inbox: Folder) -> Deliver:
    """Store raw bytes as the sync and the indexer do, and put a copy in alice's Inbox."""
    uids = iter(range(1, 10_000))

    def deliver(message: EmailMessage | bytes) -> Message:
        raw = message if isinstance(message, bytes) else message.as_bytes()
        content = sync.store_content(inbox.account, raw)
        indexing.index_account(inbox.account)
        content.refresh_from_db()
        return Message.objects.create(
            folder=inbox,
            content=content,
            uidvalidity=1,
            uid=next(uids),
            date=content.date or timezone.now(),
        )

    return deliver


def email(
    text: str | None = "Hello Alice.",
    html: str | None = None,
    *,
    sender_header: str = "Dave <dave@ecole.test>",
    subject: str = "A message",
    **headers: str,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender_header
    message["To"] = "alice@example.org"
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="ecole.test")
    message["Date"] = "Thu, 01 Jan 2026 10:00:00 +0100"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    if text is not None:
        message.set_content(text)
    if html is not None:
        if text is None:
            message.set_content(html, subtype="html")
        else:
            message.add_alternative(html, subtype="html")
    return message


def panel(client: Client, message: Message, **params: str) -> Any:
    return client.get(reverse("mail-message", args=[message.pk]), params, HTTP_HX_REQUEST="true")


def frame_src(response: Any) -> str:
    match = re.search(r'<iframe class="message-frame" sandbox="[^"]*" src="([^"]+)"', response.text)
    assert match is not None, "no body frame"
    return match.group(1).replace("&amp;", "&")


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["t"][0]


# Who may see what -----------------------------------------------------------------------------

# Every view of this issue, with the method it answers and the one it refuses.
VIEWS = [
    ("mail-message", "get", "post", {}),
    ("mail-message-body", "get", "post", {}),
    ("mail-message-part", "get", "post", {"part": "2"}),
    ("mail-image-proxy", "get", "post", {}),
    ("mail-message-raw", "get", "post", {}),
    ("mail-message-print", "get", "post", {}),
    ("mail-message-trust-sender", "post", "get", {}),
]


@pytest.fixture
def with_attachment(deliver: Deliver) -> Message:
    message = email("See the report.")
    message.add_attachment(
        b"%PDF-1.4 report", maintype="application", subtype="pdf", filename="report.pdf"
    )
    return deliver(message)


def url_for(name: str, message: Message, extra: dict[str, str]) -> str:
    args: list[object] = [message.pk, *extra.values()]
    return reverse(name, args=args)


@pytest.mark.parametrize(("name", "method", "_wrong", "extra"), VIEWS)
def test_another_user_gets_404_from_every_view(
    name: str,
    method: str,
    _wrong: str,
    extra: dict[str, str],
    with_attachment: Message,
    bob: User,
    client: Client,
) -> None:
    client.force_login(bob)
    response = getattr(client, method)(url_for(name, with_attachment, extra))
    assert response.status_code == 404


@pytest.mark.parametrize(("name", "method", "_wrong", "extra"), VIEWS)
def test_an_anonymous_visitor_is_sent_to_sign_in(
    name: str,
    method: str,
    _wrong: str,
    extra: dict[str, str],
    with_attachment: Message,
    client: Client,
) -> None:
    url = url_for(name, with_attachment, extra)
    response = getattr(client, method)(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize(("name", "_method", "wrong", "extra"), VIEWS)
def test_the_wrong_method_is_refused(
    name: str,
    _method: str,
    wrong: str,
    extra: dict[str, str],
    with_attachment: Message,
    alice_client: Client,
) -> None:
    response = getattr(alice_client, wrong)(url_for(name, with_attachment, extra))
    assert response.status_code == 405


def test_a_message_id_that_does_not_exist_is_404(alice_client: Client) -> None:
    assert alice_client.get(reverse("mail-message-body", args=[999_999])).status_code == 404


# The reading panel ----------------------------------------------------------------------------


def test_the_panel_shows_a_text_message_with_links_and_folded_quotes(
    deliver: Deliver, alice_client: Client
) -> None:
    message = deliver(
        email(
            "See https://example.org/page?utm_source=mail&id=7. Or write to mailto:a@b.test\n"
            "javascript:alert(1) <b>not bold</b>\n"
            "On Monday, Bob wrote:\n"
            "> the quoted line\n"
            ">> older still\n"
        )
    )
    response = panel(alice_client, message)

    assert response.status_code == 200
    html = response.text
    assert (
        '<a href="https://example.org/page?id=7" rel="noopener noreferrer" target="_blank">'
        "https://example.org/page?utm_source=mail&amp;id=7</a>." in html
    )
    assert '<a href="mailto:a@b.test"' in html
    assert "javascript:alert(1) &lt;b&gt;not bold&lt;/b&gt;" in html
    assert '<a href="javascript' not in html
    assert '<details class="quote"><summary>Quoted text (2 lines)</summary>' in html
    assert '<blockquote><div class="text">the quoted line</div><blockquote>' in html
    assert "<iframe" not in html  # text is shown in the page itself


def test_the_panel_without_htmx_goes_back_to_the_conversation(
    deliver: Deliver, alice_client: Client
) -> None:
    message = deliver(email())
    response = alice_client.get(reverse("mail-message", args=[message.pk]), {"images": "1"})
    conversation = message.content.conversation_id
    assert response.status_code == 302
    assert response["Location"] == (
        f"/mail/conversation/{conversation}/?images={message.pk}#message-{message.pk}"
    )


def test_the_conversation_page_loads_each_panel_when_it_comes_into_view(
    deliver: Deliver, alice_client: Client
) -> None:
    message = deliver(email())
    conversation = message.content.conversation_id
    response = alice_client.get(reverse("mail-conversation", args=[conversation]))
    assert response.status_code == 200
    assert (
        f'id="reading-{message.pk}" hx-get="/mail/message/{message.pk}/" '
        'hx-trigger="intersect once" hx-swap="outerHTML"' in response.text
    )


def test_an_html_message_is_shown_in_a_sandboxed_frame_without_scripts(
    deliver: Deliver, alice_client: Client
) -> None:
    message = deliver(email(html="<p>Hi<script>top.location='https://evil.test'</script></p>"))
    response = panel(alice_client, message)

    frame = re.search(r"<iframe[^>]*>", response.text)
    assert frame is not None
    tag = frame.group()
    sandbox = re.search(r'sandbox="([^"]*)"', tag)
    assert sandbox is not None
    # Links may open a new tab; nothing may run a script or reach the app's origin.
    assert sandbox.group(1).split() == ["allow-popups", "allow-popups-to-escape-sandbox"]
    assert 'referrerpolicy="no-referrer"' in tag
    assert 'loading="lazy"' in tag
    assert 'title="Message body"' in tag


def test_the_panel_reads_the_mail_tables_three_times(
    deliver: Deliver, alice_client: Client
) -> None:
    message = deliver(email(html="<p>Hi <img src='https://img.example/a.png'></p>"))
    panel(alice_client, message)  # preferences created, body cached
    with CaptureQueriesContext(connection) as captured:
        panel(alice_client, message)
    # Besides what every signed-in request costs (session, user, middleware): the message with
    # its content and account, the preferences, and whether the sender is trusted.
    tables = [re.findall(r'FROM "(\w+)"', q["sql"])[0] for q in captured.captured_queries]
    assert [table for table in tables if table.startswith(("mail_", "mailboxes_"))] == [
        "mailboxes_message",
        "mail_preferences",
        "mail_trustedsender",
    ]


# The body frame's document ---------------------------------------------------------------------


def test_the_body_document_has_its_own_strict_headers(
    deliver: Deliver, alice_client: Client
) -> None:
    message = deliver(email(html="<p style='color: red'>Hello <b>Alice</b></p>"))
    response = alice_client.get(frame_src(panel(alice_client, message)))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response["Content-Security-Policy"] == BODY_POLICY
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["Cache-Control"] == "private"
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert response.text.startswith("<!DOCTYPE html>")
    assert '<p style="color: red">Hello <b>Alice</b></p>' in response.text


def test_the_body_url_is_signed_and_works_without_a_session(
    deliver: Deliver, alice_client: Client, client: Client
) -> None:
    message = deliver(email(html="<p>Signed</p>"))
    url = frame_src(panel(alice_client, message))
    alice_client.logout()

    assert client.get(url).status_code == 200  # a sandboxed frame sends no cookie
    tampered = url.replace(f"/message/{message.pk}/", f"/message/{message.pk + 1}/")
    assert client.get(tampered).status_code == 404
    assert client.get(url[:-3] + "abc").status_code == 404


def test_remote_images_are_blocked_until_asked_for(deliver: Deliver, alice_client: Client) -> None:
    html = '<p>News<img src="https://images.example/photo.png" width="300" height="200"></p>'
    message = deliver(email(html=html))

    blocked = panel(alice_client, message)
    assert "Remote images are hidden to protect your privacy." in blocked.text
    assert ">Show images</a>" in blocked.text
    assert "Always show images from dave@ecole.test" in blocked.text
    document = alice_client.get(frame_src(blocked)).text
    assert "images.example" not in document
    assert "data-courrier-blocked" in document

    shown = panel(alice_client, message, images="1")
    assert "Remote images are hidden" not in shown.text
    src = frame_src(shown)
    assert "images=1" in src
    document = alice_client.get(src).text
    proxied = re.search(r'<img src="([^"]+)"', document)
    assert proxied is not None
    assert proxied.group(1).startswith(f"/mail/message/{message.pk}/image/?t=")
    assert "images.example" not in document  # the URL is inside the signed token


def test_always_showing_images_from_a_sender_trusts_the_messages_sender(
    deliver: Deliver, alice_client: Client, alice: User
) -> None:
    message = deliver(email(html='<img src="https://images.example/a.png" width="50">'))
    url = reverse("mail-message-trust-sender", args=[message.pk])

    response = alice_client.post(url, {"address": "someone@else.test"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert list(TrustedSender.objects.values_list("user", "address")) == [
        (alice.pk, "dave@ecole.test")
    ]
    assert "images=1" in frame_src(response)
    assert "images=1" in frame_src(panel(alice_client, message))  # from now on


def test_always_showing_images_without_htmx_goes_back_to_the_conversation(
    deliver: Deliver, alice_client: Client
) -> None:
    message = deliver(email(html='<img src="https://images.example/a.png" width="50">'))
    response = alice_client.post(reverse("mail-message-trust-sender", args=[message.pk]))
    assert response.status_code == 302
    assert response["Location"].endswith(f"#message-{message.pk}")


def test_the_always_preference_shows_images(
    deliver: Deliver, alice_client: Client, alice: User
) -> None:
    prefs = services.preferences(alice)
    prefs.images = Preferences.Images.ALWAYS
    prefs.save(update_fields=["images"])
    message = deliver(email(html='<img src="https://images.example/a.png" width="50">'))
    assert "Remote images are hidden" not in panel(alice_client, message).text
    assert "images=1" in frame_src(panel(alice_client, message))


def test_an_html_body_over_budget_is_shown_as_its_text_with_a_notice(
    deliver: Deliver, alice_client: Client
) -> None:
    html = "<p>Too many tags</p>" + "<b>x</b>" * 26_000
    message = deliver(email("The text version, with https://example.org/.", html=html))

    response = panel(alice_client, message)

    assert (
        "This message&#x27;s formatting was too complex to show safely; here is its text."
        in response.text
    )
    assert "The text version" in response.text
    assert '<a href="https://example.org/"' in response.text
    assert "<iframe" not in response.text


def test_a_body_is_sanitised_once_then_read_from_the_cache(
    deliver: Deliver, alice_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = rendering.sanitize_html

    def counting(html: str, **options: Any) -> Any:
        calls.append(html)
        return real(html, **options)

    monkeypatch.setattr(rendering, "sanitize_html", counting)
    message = deliver(email(html="<p>Cached</p>"))

    url = frame_src(panel(alice_client, message))
    alice_client.get(url)
    alice_client.get(url)
    assert len(calls) == 1
    panel(alice_client, message, images="1")  # the other mode is another entry
    assert len(calls) == 2


def test_inline_images_are_served_through_signed_part_urls(
    deliver: Deliver, alice_client: Client, client: Client
) -> None:
    message = email(html='<p>Logo: <img src="cid:logo@ecole.test"></p>')
    html_part = message.get_payload()[1]
    html_part.add_related(PNG, maintype="image", subtype="png", cid="<logo@ecole.test>")
    stored = deliver(message)

    document = alice_client.get(frame_src(panel(alice_client, stored))).text
    match = re.search(r'<img src="([^"]+)"', document)
    assert match is not None
    url = match.group(1).replace("&amp;", "&")
    assert url.startswith(f"/mail/message/{stored.pk}/part/2.2/?inline=1&t=")

    image = client.get(url)  # anonymous: the frame sends no cookie
    assert image.status_code == 200
    assert image["Content-Type"] == "image/png"
    assert image["Content-Disposition"].startswith("inline;")
    assert image.content == PNG
    assert "logo" not in panel(alice_client, stored).text  # shown in the body, not listed


# Signed URLs -----------------------------------------------------------------------------------


def test_a_signed_url_is_bound_to_its_message_part_and_user(
    deliver: Deliver, alice: User, bob: User, client: Client
) -> None:
    first = email("With a file")
    first.add_attachment(PNG, maintype="image", subtype="png", filename="a.png")
    message = deliver(first)
    other = deliver(email("Another"))
    token = rendering.sign(Purpose.PART, alice.pk, message.pk, "2")

    def get(message_id: int, part: str, token: str) -> int:
        url = reverse("mail-message-part", args=[message_id, part])
        return client.get(url, {"t": token}).status_code

    assert get(message.pk, "2", token) == 200
    assert get(other.pk, "2", token) == 404  # another message
    assert get(message.pk, "1", token) == 404  # another part
    assert get(message.pk, "2", rendering.sign(Purpose.BODY, alice.pk, message.pk, "2")) == 404
    assert get(message.pk, "2", rendering.sign(Purpose.PART, bob.pk, message.pk, "2")) == 404
    assert get(message.pk, "2", token.replace(":", ":x", 1)) == 404
    client.force_login(bob)
    assert get(message.pk, "2", token) == 404  # alice's URL, bob signed in


def test_a_signed_url_expires_after_a_day(
    deliver: Deliver, alice: User, client: Client, clock: Callable[[float], None]
) -> None:
    message = deliver(email(html="<p>Soon gone</p>"))
    token = rendering.sign(Purpose.BODY, alice.pk, message.pk)
    url = reverse("mail-message-body", args=[message.pk])

    clock(rendering.SIGNED_MAX_AGE - 60)
    assert client.get(url, {"t": token}).status_code == 200
    clock(120)
    assert client.get(url, {"t": token}).status_code == 404


def test_a_signed_url_stops_working_when_the_message_is_no_longer_the_users(
    deliver: Deliver, alice: User, bob: User, client: Client
) -> None:
    message = deliver(email(html="<p>Moved away</p>"))
    token = rendering.sign(Purpose.BODY, alice.pk, message.pk)
    MailAccount.objects.filter(pk=message.folder.account_id).update(user=bob)
    url = reverse("mail-message-body", args=[message.pk])
    assert client.get(url, {"t": token}).status_code == 404


# Attachments -----------------------------------------------------------------------------------


def test_attachments_are_listed_with_name_type_and_size(
    with_attachment: Message, alice_client: Client
) -> None:
    html = panel(alice_client, with_attachment).text
    assert '<bdi dir="ltr" class="filename">report.pdf</bdi>' in html
    assert '<span class="type">application/pdf</span>' in html
    assert '<span class="size">15\xa0bytes</span>' in html
    assert f'href="/mail/message/{with_attachment.pk}/part/2/?inline=1"' in html


def test_an_attachment_downloads_with_safe_headers(
    with_attachment: Message, alice_client: Client
) -> None:
    response = alice_client.get(reverse("mail-message-part", args=[with_attachment.pk, "2"]))
    assert response.status_code == 200
    assert response.content == b"%PDF-1.4 report"
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == (
        "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
    )
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == PART_POLICY


def test_a_pdf_previews_inline_with_its_sniffed_type(
    with_attachment: Message, alice_client: Client
) -> None:
    url = reverse("mail-message-part", args=[with_attachment.pk, "2"])
    response = alice_client.get(url, {"inline": "1"})
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith('inline; filename="report.pdf"')
    assert response["Content-Security-Policy"] == PART_POLICY


@pytest.mark.parametrize(
    ("payload", "maintype", "subtype"),
    [
        (b"<html><script>alert(1)</script></html>", "text", "html"),
        (b"<svg><script>alert(1)</script></svg>", "image", "svg+xml"),
        (b'<?xml version="1.0"?><x/>', "application", "xml"),
        (b"<html><script>alert(1)</script></html>", "image", "png"),  # a lie about its type
    ],
)
def test_html_svg_and_xml_are_never_shown_inline(
    payload: bytes, maintype: str, subtype: str, deliver: Deliver, alice_client: Client
) -> None:
    message = email("Open me")
    message.add_attachment(payload, maintype=maintype, subtype=subtype, filename="open.me")
    stored = deliver(message)

    url = reverse("mail-message-part", args=[stored.pk, "2"])
    response = alice_client.get(url, {"inline": "1"})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")


def test_the_body_and_unlisted_parts_are_not_served_as_parts(
    with_attachment: Message, alice_client: Client
) -> None:
    for part in ("1", "3", "2.1", "0", "1.0", "x", "2..1"):
        url = f"/mail/message/{with_attachment.pk}/part/{part}/"
        assert alice_client.get(url).status_code == 404, part


def test_a_filename_that_hides_its_type_is_cleaned_and_flagged(
    deliver: Deliver, alice_client: Client
) -> None:
    message = email("Invoice attached")
    # Shown right to left after U+202E, "invoice\u202efdp.exe" reads "invoiceexe.pdf".
    for filename in ("invoice\u202efdp.exe", "facture.pdf.exe"):
        message.add_attachment(
            b"MZ", maintype="application", subtype="octet-stream", filename=filename
        )
    stored = deliver(message)

    html = panel(alice_client, stored).text
    assert "\u202e" not in html
    assert '<bdi dir="ltr" class="filename">invoicefdp.exe</bdi>' in html
    assert "invisible or direction-changing characters" in html
    assert "This file ends in .exe after .pdf: it is a .exe file." in html
    assert html.count("can run programs on your computer") == 2

    response = alice_client.get(reverse("mail-message-part", args=[stored.pk, "2"]))
    assert response["Content-Disposition"] == (
        "attachment; filename=\"invoicefdp.exe\"; filename*=UTF-8''invoicefdp.exe"
    )


def test_a_non_ascii_filename_gets_an_ascii_fallback_and_its_utf8_form() -> None:
    header = rendering.content_disposition("attachment", 'Résumé "final"; v2.pdf')
    assert header == (
        'attachment; filename="Resume _final__ v2.pdf"; '
        "filename*=UTF-8''R%C3%A9sum%C3%A9%20%22final%22%3B%20v2.pdf"
    )
    assert unquote(header.split("''", 1)[1]) == 'Résumé "final"; v2.pdf'


@pytest.mark.parametrize(
    ("name", "shown", "double", "executable"),
    [
        ("report.pdf", "report.pdf", "", ""),
        ("archive.tar.gz", "archive.tar.gz", "", ""),
        ("photo.jpg.html", "photo.jpg.html", "jpg.html", "html"),
        ("notes.2026.exe", "notes.2026.exe", "", "exe"),
        ("a\u200bb\u2066c.txt", "abc.txt", "", ""),
        ("../../etc/passwd", "_.._etc_passwd", "", ""),
        ("\u202e", "attachment-3.pdf", "", ""),
    ],
)
def test_clean_filename(name: str, shown: str, double: str, executable: str) -> None:
    cleaned = rendering.clean_filename(name, "application/pdf", "3")
    assert (cleaned.text, cleaned.double_extension, cleaned.executable) == (
        shown,
        double,
        executable,
    )


# Source and print view -------------------------------------------------------------------------


def test_show_original_is_the_raw_text_with_bad_bytes_replaced(
    deliver: Deliver, alice_client: Client
) -> None:
    raw = (
        b"From: Dave <dave@ecole.test>\r\nTo: alice@example.org\r\nSubject: Raw\r\n"
        b"Message-ID: <raw@ecole.test>\r\n\r\nCaf\xe9 <script>\r\n"
    )
    message = deliver(raw)
    response = alice_client.get(reverse("mail-message-raw", args=[message.pk]))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == PART_POLICY
    assert response.content.decode() == raw.decode("utf-8", errors="replace")


def test_show_original_downloads_as_message_eml(deliver: Deliver, alice_client: Client) -> None:
    message = deliver(email())
    url = reverse("mail-message-raw", args=[message.pk])
    response = alice_client.get(url, {"download": "1"})
    assert response["Content-Disposition"] == (
        "attachment; filename=\"message.eml\"; filename*=UTF-8''message.eml"
    )
    assert response["Content-Type"] == "message/rfc822"
    assert response.content == rendering.read_raw(message.content)


def test_the_print_view_shows_headers_and_body_without_script(
    deliver: Deliver, alice_client: Client
) -> None:
    message = deliver(
        email(html="<h2>Agenda</h2><script>print()</script>", subject="Conseil d'école")
    )
    response = alice_client.get(reverse("mail-message-print", args=[message.pk]))

    assert response.status_code == 200
    assert response["Content-Security-Policy"] == BODY_POLICY
    html = response.text
    assert "<h1>Conseil d&#x27;école</h1>" in html
    assert "&lt;<bdi>dave@ecole.test</bdi>&gt;" in html
    assert "<h2>Agenda</h2>" in html
    assert "<script" not in html
    assert "@media print" in html


# The sender ------------------------------------------------------------------------------------


def codes(content: MessageContent) -> list[str]:
    return [warning.code for warning in sender.analyse(content).warnings]


def test_an_honest_sender_gets_no_warning(deliver: Deliver) -> None:
    message = deliver(email(sender_header="Dave <dave@ecole.test>", Reply_To="d@ecole.test"))
    assert codes(message.content) == []


def test_a_name_showing_another_address_is_flagged(deliver: Deliver) -> None:
    message = deliver(email(sender_header='"service@paypal.com" <robber@evil.test>'))
    assert codes(message.content) == ["name-address"]


def test_direction_changing_characters_are_removed_from_the_name_and_flagged(
    deliver: Deliver,
) -> None:
    message = deliver(email(sender_header="=?utf-8?q?moc=2Elapyap=E2=80=AE?= <x@evil.test>"))
    found = sender.analyse(message.content)
    assert found.name == "moc.lapyap"
    assert [w.code for w in found.warnings] == ["hidden-characters"]


def test_a_reply_to_at_another_domain_is_flagged(deliver: Deliver) -> None:
    message = deliver(email(Reply_To="Boss <boss@elsewhere.test>"))
    assert codes(message.content) == ["reply-to-domain"]
    same = deliver(email(sender_header="news@mail.ecole.test", Reply_To="help@ecole.test"))
    assert codes(same.content) == []


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("paypal.com", []),
        ("mail.google.com", []),
        ("paypa1.com", ["lookalike"]),
        ("rnicrosoft.com", ["lookalike"]),
        ("g00gle.com", ["lookalike"]),
        ("arnazon.com", ["lookalike"]),
        ("impots-gouv.fr", []),
        ("irnpots.gouv.fr", ["lookalike"]),
        ("paypal.com.secure-login.test", ["lookalike"]),
        ("p\u0430ypal.com", ["punycode", "mixed-script", "lookalike"]),  # Cyrillic a
        ("\u03b1pple.com", ["punycode", "mixed-script", "lookalike"]),  # Greek alpha
        ("école.fr", ["punycode"]),
    ],
)
def test_domain_warnings(domain: str, expected: list[str]) -> None:
    assert [w.code for w in sender.domain_warnings(domain)] == expected


def test_sender_warnings_and_unverified_badges_show_in_the_panel(
    deliver: Deliver, alice_client: Client
) -> None:
    message = deliver(
        email(
            sender_header="PayPal <service@xn--pypal-4ve.com>",
            Authentication_Results=(
                "mx.example.org; spf=pass (sender IP is 192.0.2.1) "
                "smtp.mailfrom=xn--pypal-4ve.com; dkim=fail header.d=paypal.com; "
                "dmarc=none (p=none) header.from=xn--pypal-4ve.com"
            ),
        )
    )
    html = panel(alice_client, message).text

    assert (
        '<bdi class="name">PayPal</bdi> <span class="address">&lt;<bdi>service@p\u0430ypal.com'
        in html
    )
    assert "(xn--pypal-4ve.com)" in html
    assert 'data-warning="lookalike"' in html
    assert "looks like paypal.com but is not it" in html
    assert html.count('<small class="unverified">unverified</small>') == 3
    assert 'data-method="spf" data-result="pass"' in html
    assert 'data-method="dkim" data-result="fail"' in html
    assert "As a header written by mx.example.org says; Courrier has not checked it." in html


def test_authentication_results_are_read_tolerantly() -> None:
    headers = {
        "authentication-results": [
            "mx.example.org;\r\n\tdkim=pass (2048-bit key; unprotected) header.d=ecole.test "
            'header.s=mail header.b="abc;def"; spf=softfail smtp.mailfrom=x@ecole.test;\r\n'
            "\tdmarc=pass (p=REJECT sp=REJECT) header.from=ecole.test; arc=none",
            "forged.example; spf=pass smtp.mailfrom=ecole.test; dmarc=pass",
            "garbage ((( without end",
        ],
    }
    found = [(b.method, b.result, b.domain, b.reporter) for b in sender.badges(headers)]
    assert found == [
        ("spf", "softfail", "ecole.test", "mx.example.org"),
        ("dkim", "pass", "ecole.test", "mx.example.org"),
        ("dmarc", "pass", "ecole.test", "mx.example.org"),
    ]
    assert sender.badges({"received-spf": ["Pass (mailfrom) identity=mailfrom;"]})[0].result == (
        "pass"
    )
    assert sender.badges({"authentication-results": ["x; none"]}) == []


# Plain text as HTML ----------------------------------------------------------------------------


def test_text_links_end_before_the_sentence_does() -> None:
    html = rendering.text_to_html("(see https://example.org/a_(b)), then http://x.test/.")
    assert '<a href="https://example.org/a_(b)"' in html
    assert "</a>), then " in html
    assert '<a href="http://x.test/"' in html


def test_deep_quotes_stop_folding_at_a_bound() -> None:
    html = rendering.text_to_html(">" * 500 + " deep")
    assert html.count("<blockquote>") == rendering.MAX_QUOTE_DEPTH
