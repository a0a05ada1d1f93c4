"""mailcore.compose: outgoing messages built with the email package, nothing injected."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime

import pytest

from mailcore.compose import (
    Attachment,
    BadAddress,
    HeaderInjection,
    Outgoing,
    build,
    envelope,
    needs_smtputf8,
    parse_recipients,
)

WHEN = datetime(2026, 11, 29, 10, 30, tzinfo=UTC)


def outgoing(**fields: object) -> Outgoing:
    values: dict[str, object] = {
        "from_email": "alice@courrier.test",
        "from_name": "Alice Martin",
        "message_id": "abc.123@courrier.test",
        "date": WHEN,
        "to": [("Bob", "bob@courrier.test")],
        "subject": "Bonjour",
        "text": "Salut Bob",
    }
    values.update(fields)
    return Outgoing(**values)  # type: ignore[arg-type]


def parsed(message: Outgoing) -> email.message.EmailMessage:
    raw = build(message).as_bytes()
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def test_a_reply_with_cc_bcc_an_accented_subject_and_an_attachment() -> None:
    message = outgoing(
        cc=[("Carol", "carol@ecole.test")],
        bcc=[("", "dave@ecole.test")],
        subject="Réunion à l’école",
        html="<p>Salut <b>Bob</b></p>",
        in_reply_to="parent@ecole.test",
        references=["root@ecole.test", "parent@ecole.test"],
        attachments=[Attachment("compte-rendu.pdf", "application/pdf", b"%PDF-1.4")],
    )

    raw = build(message).as_bytes()
    received = email.message_from_bytes(raw, policy=email.policy.default)

    assert b"Bcc" not in raw
    assert b"dave@ecole.test" not in raw
    assert raw.isascii()  # encoded words, quoted-printable: 7-bit clean
    assert str(received["Subject"]) == "Réunion à l’école"
    assert received["Message-ID"] == "<abc.123@courrier.test>"
    assert received["In-Reply-To"] == "<parent@ecole.test>"
    assert received["References"] == "<root@ecole.test> <parent@ecole.test>"
    assert received.get_content_type() == "multipart/mixed"
    body = received.get_body(("plain",))
    assert body is not None and body.get_content().strip() == "Salut Bob"  # noqa: PT018
    html = received.get_body(("html",))
    assert html is not None and "<b>Bob</b>" in html.get_content()  # noqa: PT018
    (attached,) = list(received.iter_attachments())
    assert attached.get_filename() == "compte-rendu.pdf"
    assert attached.get_content() == b"%PDF-1.4"
    sender, recipients = envelope(message)
    assert sender == "alice@courrier.test"
    assert recipients == ["bob@courrier.test", "carol@ecole.test", "dave@ecole.test"]


@pytest.mark.parametrize(
    "field_name",
    ["from_name", "from_email", "subject", "to", "cc", "bcc", "in_reply_to", "attachment"],
)
def test_a_line_break_in_any_field_is_refused(field_name: str) -> None:
    evil = "x\r\nBcc: victim@example.org"
    fields: dict[str, object] = {
        "from_name": {"from_name": evil},
        "from_email": {"from_email": "a@b.c\nBcc: v@e.org"},
        "subject": {"subject": evil},
        "to": {"to": [(evil, "bob@courrier.test")]},
        "cc": {"cc": [("", "carol@ecole.test\r\nX: y")]},
        "bcc": {"bcc": [("x\x00", "carol@ecole.test")]},
        "in_reply_to": {"in_reply_to": "a@b\r\nX-Evil: 1"},
        "attachment": {"attachments": [Attachment("a\r\nb.txt", "text/plain", b"x")]},
    }[field_name]

    with pytest.raises(HeaderInjection):
        build(outgoing(**fields))


def test_typed_recipients_are_split_and_checked() -> None:
    assert parse_recipients("Bob <bob@courrier.test>; carol@ecole.test,", "to") == [
        ("Bob", "bob@courrier.test"),
        ("", "carol@ecole.test"),
    ]
    with pytest.raises(BadAddress) as refused:
        parse_recipients("Bob <bob@courrier.test>, not an address", "cc")
    assert refused.value.field_name == "cc"
    with pytest.raises(HeaderInjection):
        parse_recipients("bob@courrier.test\r\nBcc: x@y.z", "to")


def test_idna_domains_and_utf8_local_parts() -> None:
    message = outgoing(to=[("", "élodie@école.test")])
    assert needs_smtputf8(message)
    assert envelope(message)[1] == ["élodie@xn--cole-9oa.test"]
    raw = build(message).as_bytes()
    assert "élodie@xn--cole-9oa.test".encode() in raw  # SMTPUTF8: the local part as it is

    ascii_only = outgoing(to=[("", "bob@école.test")])
    assert not needs_smtputf8(ascii_only)
    assert b"bob@xn--cole-9oa.test" in build(ascii_only).as_bytes()


def test_a_forwarded_message_is_attached_whole() -> None:
    original = b"From: dave@ecole.test\r\nSubject: Original\r\n\r\nHello\r\n"
    message = outgoing(attachments=[Attachment("Original.eml", "message/rfc822", original, True)])

    (attached,) = list(parsed(message).iter_attachments())

    assert attached.get_content_type() == "message/rfc822"
    assert attached.get_content()["Subject"] == "Original"


def test_a_half_typed_address_among_good_ones_is_reported_not_dropped() -> None:
    with pytest.raises(BadAddress) as refused:
        parse_recipients("bob@courrier.test, carol@", "to")
    assert refused.value.text == "carol@"
    assert parse_recipients('"Martin, Élodie" <e@ecole.test>; x@y.test', "cc") == [
        ("Martin, Élodie", "e@ecole.test"),
        ("", "x@y.test"),
    ]
