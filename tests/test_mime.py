"""mailcore.mime: every message in the broken-mail corpus parses, and decodes to what it says."""

from __future__ import annotations

import dataclasses
import email.parser
import email.utils
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailcore import mime, samples
from mailcore.mime import (
    MAX_ADDRESSES,
    MAX_DEPTH,
    MAX_FILENAME_CHARS,
    MAX_HEADER_BLOCK,
    MAX_ID_CHARS,
    MAX_NAME_CHARS,
    MAX_PARTS,
    MAX_REFERENCES,
    MAX_SNIPPET_CHARS,
    MAX_SUBJECT_CHARS,
    MAX_TEXT_CHARS,
    Address,
    Attachment,
    ParsedMessage,
    decode_header_value,
    html_to_text,
    parse_addresses,
    parse_headers,
    parse_message,
)

CORPUS = Path(__file__).parent / "fixtures" / "mail"
CORPUS_FILES = sorted(CORPUS.glob("*.eml"))

HEADERS = (
    b"From: Sender <sender@example.org>\r\n"
    b"To: reader@example.org\r\n"
    b"Date: Mon, 1 Jul 2024 12:00:00 +0000\r\n"
    b"Message-ID: <generated@example.org>\r\n"
)


def load(name: str) -> ParsedMessage:
    return parse_message((CORPUS / name).read_bytes())


def message(body: bytes, headers: bytes = b"") -> ParsedMessage:
    """A generated message: the usual headers, the given ones, then the body."""
    return parse_message(HEADERS + headers + b"\r\n" + body)


def strings(value: object) -> Iterator[str]:
    """Every string inside a parsed message, however nested."""
    if isinstance(value, str):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in dataclasses.fields(value):
            yield from strings(getattr(value, item.name))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings(item)


def assert_bounded(parsed: ParsedMessage) -> None:
    assert len(parsed.subject) <= MAX_SUBJECT_CHARS
    assert len(parsed.message_id) <= MAX_ID_CHARS
    assert len(parsed.references) <= MAX_REFERENCES
    assert len(parsed.text) <= MAX_TEXT_CHARS
    assert len(parsed.snippet) <= MAX_SNIPPET_CHARS
    assert len(parsed.attachments) <= MAX_PARTS
    for field in ("from_", "sender", "reply_to", "to", "cc", "bcc"):
        addresses = getattr(parsed, field)
        assert len(addresses) <= MAX_ADDRESSES
        assert all(len(a.name) <= MAX_NAME_CHARS for a in addresses)
    assert all(len(a.filename) <= MAX_FILENAME_CHARS for a in parsed.attachments)


# ---------------------------------------------------------------------------------------------
# The whole corpus


def test_the_corpus_holds_at_least_twenty_messages_each_listed_in_its_readme() -> None:
    readme = (CORPUS / "README.md").read_text()
    assert len(CORPUS_FILES) >= 20
    assert [p.name for p in CORPUS_FILES if f"`{p.name}`" not in readme] == []


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_every_corpus_message_parses_to_clean_bounded_text(path: Path) -> None:
    parsed = parse_message(path.read_bytes())

    assert isinstance(parsed, ParsedMessage)
    assert parsed.size == path.stat().st_size
    for text in strings(parsed):
        assert "\x00" not in text
        text.encode("utf-8")  # no lone surrogate: PostgreSQL and JSON would refuse it
    assert not [w for w in parsed.warnings if w.startswith("internal-error")]
    assert parsed.date is None or parsed.date.tzinfo is UTC
    assert_bounded(parsed)


HEADER_FIELDS = (
    "message_id",
    "in_reply_to",
    "references",
    "subject",
    "from_",
    "sender",
    "reply_to",
    "to",
    "cc",
    "bcc",
    "date",
    "date_offset_minutes",
    "auth_headers",
    "list_id",
)


def _generated() -> list[bytes]:
    return [m.data.replace(b"\n", b"\r\n") for m in samples.generate_messages(60, seed=3)]


@pytest.mark.parametrize(
    "raw",
    [p.read_bytes() for p in CORPUS_FILES] + _generated(),
    ids=[p.name for p in CORPUS_FILES] + [f"generated-{n}" for n in range(60)],
)
def test_the_header_parse_gives_the_header_fields_of_the_full_parse(raw: bytes) -> None:
    """The sync stores parse_headers' fields and the indexer never rewrites them: they must be
    what parse_message would have said, warnings of the header included."""
    full = parse_message(raw)
    headers = parse_headers(raw)

    for name in HEADER_FIELDS:
        assert getattr(headers, name) == getattr(full, name), name
    assert set(headers.warnings) <= set(full.warnings)
    assert (headers.text, headers.snippet, headers.attachments) == ("", "", [])


TRICKY_HEADER_BLOCKS = [
    b"From sender@example.org Mon Jan  1 00:00:00 2024\r\nSubject: a\r\n\r\nbody",
    b"Subject: a\r\nFrom nobody\r\nTo: b@example.org\r\n\r\n",
    b"Subject: a\r\nFrom the body's first line",
    b" continuation first\r\nSubject: a\r\n  folded\r\n\tand again\r\n\r\n",
    b"Subject: lone\rTo: cr@example.org\rFrom: x@example.org\r\rbody",
    b"Subject: mixed\nTo: lf@example.org\r\nCc: c@example.org\n\nbody",
    b":no name\r\nSubject: a\r\n\r\n",
    b"Subject: a\r\nthis is not a header\r\nTo: b@example.org\r\n\r\n",
    b"Subject: \x0cform feed\x0b and tab\x1c\r\nTo: v@example.org\r\n\r\n",
    b"Subject: caf\xc3\xa9 \xff\xfe raw\r\nFrom: \xe9l\xe8ve <e@example.org>\r\n\r\n",
    b"Subject: nul\x00byte\r\nX-Empty:\r\nX-Spaces:   \t \r\n\r\n",
    b"Subject:no space\r\nSUBJECT: twice\r\n",
    b"Subject: no end of line",
    b"",
    b"\r\n\r\nSubject: after a blank line",
    b"Subject: a\r\n \r\n\r\n",
    b"X-Weird name: value\r\nSubject: a\r\n\r\n",
    b"Subject: a\r\n\r",
]


def _header_blocks() -> list[bytes]:
    rng = random.Random(7)  # noqa: S311 - reproducible test data
    pieces = [
        b"Subject: x",
        b" folded",
        b"\tfolded",
        b"From ",
        b"From: a@b.example",
        b":v",
        b"bad line",
        b"To: \xc3\xa9 <t@example.org>",
        b"X-A:",
        b"",
        b"\x0c",
        b"Cc:c@d.example",
    ]
    endings = [b"\r\n", b"\n", b"\r", b""]
    fuzzed = [
        b"".join(rng.choice(pieces) + rng.choice(endings) for _ in range(rng.randint(1, 12)))
        for _ in range(300)
    ]
    corpus = [p.read_bytes() for p in CORPUS_FILES] + _generated()
    return TRICKY_HEADER_BLOCKS + fuzzed + corpus


def test_the_header_splitter_reads_what_the_stdlib_parser_reads() -> None:
    """parse_headers splits the header block itself; the full parse uses the stdlib's parser."""
    for block in _header_blocks():
        expected = email.parser.BytesHeaderParser(policy=mime._POLICY).parsebytes(block)
        assert mime._header_items(block) == list(expected.raw_items()), block


def _address_chunks() -> list[str]:
    rng = random.Random(11)  # noqa: S311 - reproducible test data
    alphabet = 'ab.@<> \t\r\n"(),:;[]\\=?éx\x0b\u00a0-_'
    fuzzed = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30))) for _ in range(3000)]
    shaped = [
        f"{name} <{local}@{domain}>"
        for name in (
            *("", "Jean", "J. R. Smith", "=?utf-8?q?=C3=89lodie?=", "a  b\r\n c", "x."),
            *("a (b)", "(c)", 'a"b', '"a b"', "a:b", "a;b", "a[b]", "a\\b", "a@b", "a\x0bb"),
        )
        for local in ("a", "a.b", ".a", "a..b", "a.", "é", "a(b)", 'a"b', "a b", "a\\b")
        for domain in ("example.org", "x", "example.org.", "[1.2.3.4]", "a(b).org", "a b")
    ]
    corpus = [
        value
        for raw in [p.read_bytes() for p in CORPUS_FILES] + _generated()
        for name, value in mime._header_items(raw[: mime._header_end(raw)])
        if name.lower() in ("from", "to", "cc", "reply-to", "sender")
    ]
    return fuzzed + shaped + corpus


@pytest.mark.parametrize("limit", [1, 2, 3, 1000])
def test_splitting_an_address_list_by_commas_agrees_with_the_scan(limit: int) -> None:
    lists = [*_address_chunks(), "a@b, c@d", "a@b,, c@d ,", "<a,b@c>, d@e", "a\\,b@c, d@e"]
    lists += ["<<a>b,c>", "x> <y>, z", "é=<-? <==>éb,,>]"]
    lists += [", ".join(lists[n : n + 4]) for n in range(0, 400, 4)]
    plain = 0
    for text in lists:
        assert mime._split_addresses(text, limit) == mime._scan_addresses(text, limit), text
        plain += mime._plain_list(text)
    assert plain > 100  # the plain path is taken


def test_the_address_fast_path_agrees_with_getaddresses() -> None:
    fast = 0
    for chunk in _address_chunks():
        found = mime._simple_address(chunk)
        if found is not None:
            fast += 1
            assert found == email.utils.getaddresses([chunk]), chunk
    assert fast > 100  # the fast path is taken: common shapes are common


def test_a_header_block_over_the_bound_is_cut_and_what_precedes_is_read() -> None:
    header = b"Subject: " + b"x" * 100 + b"\r\n"
    raw = b"From: a@example.org\r\n" + header * (MAX_HEADER_BLOCK // len(header) + 10)

    parsed = parse_headers(raw + b"\r\nbody")

    assert parsed.from_ == [Address("", "a@example.org")]
    assert parsed.size == len(raw) + 6


# ---------------------------------------------------------------------------------------------
# Headers, names and dates


def test_a_plain_message_gives_its_headers_text_and_a_utc_date_with_the_senders_offset() -> None:
    parsed = load("plain-ascii.eml")

    assert parsed.message_id == "20240514093000.4711@mail.example.org"
    assert parsed.subject == "Lunch on Thursday?"
    assert parsed.from_ == [Address("Alice Martin", "alice@example.org")]
    assert parsed.to == [Address("Bob", "bob@example.net")]
    assert parsed.date == datetime(2024, 5, 14, 7, 30, tzinfo=UTC)
    assert parsed.date_offset_minutes == 120
    assert parsed.text.startswith("Hi Bob,\n\nAre you free for lunch on Thursday?")
    assert parsed.html is None
    assert parsed.attachments == []
    assert not parsed.has_attachments
    assert parsed.warnings == []


def test_rfc2047_subjects_and_names_are_decoded_across_charsets() -> None:
    parsed = load("rfc2047-subject-and-names.eml")

    assert parsed.subject == "Réunion de l'équipe and café €"
    assert parsed.from_ == [Address("Günter Müller", "guenter@example.de")]
    assert parsed.to == [
        Address("Françoise Dupré", "francoise@example.fr"),
        Address("张伟", "zhang@example.cn"),
    ]
    assert parsed.cc == [Address("Привет", "privet@example.ru")]
    assert parsed.warnings == []


def test_malformed_encoded_words_are_decoded_as_far_as_they_go_and_reported() -> None:
    parsed = load("rfc2047-malformed.eml")

    assert parsed.subject == ("Bad base64 / =?utf-8?q?unterminated / =?utf-8?z?what?= ok")
    assert parsed.from_ == [Address("=?utf-8?q?Broken_Name", "broken@example.org")]
    assert parsed.to == [Address("Mystery", "mystery@example.org")]
    # A character split across two adjacent words is joined before decoding.
    assert parsed.cc == [Address("Split …", "split@example.org")]
    assert "bad-encoded-word" in parsed.warnings
    assert "bad-charset:x-bogus" in parsed.warnings


def test_raw_8bit_headers_are_decoded_as_utf8_else_windows_1252() -> None:
    parsed = load("subject-8bit-raw.eml")

    assert parsed.subject == "Résumé de la réunion"
    assert parsed.from_ == [Address("Béatrice", "beatrice@example.fr")]
    assert parsed.to == [Address("", "rené@example.fr")]
    assert "8bit-header" in parsed.warnings


def test_idna_domains_are_shown_in_unicode_and_smtputf8_addresses_kept() -> None:
    parsed = load("idna-smtputf8.eml")

    assert parsed.from_ == [Address("Müller", "info@müller.example")]
    assert parsed.to == [
        Address("用户", "用户@例子.广告"),
        Address("Bad Punycode", "x@xn--zz-!!.example"),
    ]
    assert "bad-idna:to" in parsed.warnings


def test_missing_from_date_and_message_id_are_reported() -> None:
    parsed = load("missing-headers.eml")

    assert (parsed.from_, parsed.date, parsed.message_id) == ([], None, "")
    assert parsed.warnings == [
        "missing-header:date",
        "missing-header:from",
        "missing-header:message-id",
    ]


def test_a_date_without_zone_is_taken_as_utc_with_no_offset() -> None:
    parsed = load("date-without-timezone.eml")

    assert parsed.date == datetime(2024, 5, 28, 15, 20, tzinfo=UTC)
    assert parsed.date_offset_minutes is None
    assert parsed.warnings == ["date-no-timezone"]


@pytest.mark.parametrize(
    ("name", "warning"),
    [("date-invalid.eml", "bad-date"), ("date-absurd-year.eml", "date-out-of-range")],
)
def test_an_unparseable_or_absurd_date_gives_none(name: str, warning: str) -> None:
    parsed = load(name)

    assert (parsed.date, parsed.date_offset_minutes) == (None, None)
    assert parsed.warnings == [warning]


def test_negative_and_half_hour_offsets_are_kept_in_minutes() -> None:
    assert load("utf8-8bit-body.eml").date_offset_minutes == -240
    parsed = load("rfc2231-filenames.eml")
    assert parsed.date == datetime(2024, 5, 21, 5, 41, 11, tzinfo=UTC)
    assert parsed.date_offset_minutes == 330


def test_nul_bytes_are_removed_from_headers_and_body() -> None:
    parsed = load("nul-bytes.eml")

    assert parsed.subject == "Nullbyte subject"
    assert parsed.message_id == "nul@example.org"
    assert parsed.text == "Body with a NUL in the middle and =00 that stays text.\n"
    assert parsed.warnings == ["nul-bytes"]


def test_references_are_deduplicated_and_trimmed_to_the_root_and_the_latest() -> None:
    parsed = load("references-500.eml")

    assert len(parsed.references) == MAX_REFERENCES
    assert parsed.references[0] == "ref000.000@lists.example.org"
    assert parsed.references[1].startswith("ref401.")
    assert parsed.references[-1] == "ref499.581@lists.example.org"
    assert parsed.in_reply_to == "ref499.581@lists.example.org"
    assert parsed.list_id == "discuss.lists.example.org"
    assert parsed.warnings == ["too-many-references"]


def test_duplicate_headers_use_the_first_and_merge_recipients() -> None:
    parsed = load("duplicate-headers.eml")

    assert parsed.subject == "First subject"
    assert parsed.from_ == [Address("First", "first@example.org")]
    assert [a.email for a in parsed.to] == ["one@example.org", "two@example.org"]
    assert parsed.warnings == [
        "duplicate-header:from",
        "duplicate-header:to",
        "duplicate-header:subject",
    ]


def test_auth_headers_are_kept_raw_with_their_folding() -> None:
    parsed = load("auth-headers.eml")

    assert sorted(parsed.auth_headers) == [
        "arc-authentication-results",
        "arc-seal",
        "authentication-results",
        "dkim-signature",
        "received-spf",
    ]
    assert parsed.auth_headers["dkim-signature"][0].startswith("v=1; a=rsa-sha256;")
    assert "\r\n h=from:to:subject:date:message-id;" in parsed.auth_headers["dkim-signature"][0]
    assert "dmarc=pass" in parsed.auth_headers["authentication-results"][0]
    assert parsed.list_id == "news.example.com"


# ---------------------------------------------------------------------------------------------
# Bodies and charsets


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "utf8-8bit-body.eml",
            "Zoë's naïve café serves crème brûlée, 日本語のメニュー and a €5 coffee.\n",
        ),
        ("latin1-body.eml", "Mañana a las diez en el café. ¿Vienes?\n"),
        ("windows-1252-body.eml", "“Smart quotes” cost €10 – that’s the deal.\n"),
    ],
)
def test_bodies_are_decoded_from_their_declared_charset(name: str, text: str) -> None:
    assert load(name).text == text


def test_an_unknown_charset_falls_back_to_utf8_with_a_warning() -> None:
    parsed = load("unknown-charset.eml")

    assert parsed.text == "Grüße aus München.\n"
    assert parsed.warnings == ["bad-charset:x-unknown-charset"]


@pytest.mark.parametrize("charset", [b"zlib", b"base64", b"punycode", b"idna"])
def test_codecs_that_are_no_charset_are_refused(charset: bytes) -> None:
    parsed = message(b"plain words", b"Content-Type: text/plain; charset=" + charset + b"\r\n")

    assert parsed.text == "plain words"
    assert parsed.warnings == [f"bad-charset:{charset.decode()}"]


def test_lone_surrogates_from_utf7_never_reach_the_output() -> None:
    parsed = message(
        b"+2AA-", b"Subject: =?utf-7?q?+2AA-?=\r\nContent-Type: text/plain; charset=utf-7\r\n"
    )

    assert (parsed.subject, parsed.text) == ("\ufffd", "\ufffd")


def test_multipart_alternative_gives_the_plain_text_and_keeps_the_html() -> None:
    parsed = load("alternative-text-html.eml")

    assert parsed.text == "This is the plain version of the newsletter."
    assert parsed.html == "<html><body><p>This is the <b>HTML</b> version.</p></body></html>"
    assert parsed.attachments == []


def test_html_only_mail_gives_text_without_script_style_or_title() -> None:
    parsed = load("html-only-script-style.eml")

    assert parsed.text == (
        "Big sale\n\nEverything & more at half price.\n\nShoes 10€\n\nSee you soon"
    )
    assert parsed.html is not None
    assert "<script>alert(" in parsed.html  # kept as sent: sanitising is another layer's job
    assert parsed.snippet == "Big sale Everything & more at half price. Shoes 10€ See you soon"


def test_base64_with_junk_characters_decodes_what_it_can() -> None:
    parsed = load("base64-garbage.eml")

    assert parsed.text == "Hello world! Base64 with garbage."
    assert parsed.attachments == [
        Attachment("odd-length.bin", "application/octet-stream", 26, "", "attachment", "2")
    ]
    assert parsed.warnings == ["defect:InvalidBase64CharactersDefect"]


def test_broken_quoted_printable_keeps_its_text_and_repairs_soft_breaks() -> None:
    parsed = load("quoted-printable-broken.eml")

    assert parsed.text == (
        "Soft break with trailing space herecontinues. Bad escape =ZZ stays, café decodes,"
        " a lone = sign,\nand a line ending in a soft break"
    )


def test_a_message_with_only_headers_or_nothing_at_all_parses() -> None:
    headers_only = load("headers-only.eml")
    assert headers_only.subject == "No body at all"
    assert (headers_only.text, headers_only.html, headers_only.snippet) == ("", None, "")

    empty = load("empty.eml")
    assert (empty.size, empty.subject, empty.text) == (0, "", "")
    assert "missing-header:from" in empty.warnings


def test_the_snippet_skips_quotes_the_attribution_and_the_signature() -> None:
    parsed = load("reply-quoted.eml")

    assert "> Hi Bob," in parsed.text
    assert parsed.snippet == "Sounds good, see you at noon."


def test_a_snippet_of_nothing_but_quotes_uses_the_quotes() -> None:
    assert message(b"> only\r\n> quoted\r\n").snippet == "only quoted"


# ---------------------------------------------------------------------------------------------
# Structure and attachments


def test_attachments_have_decoded_sizes_part_paths_and_content_ids() -> None:
    parsed = load("mixed-attachments.eml")

    assert parsed.attachments == [
        Attachment("", "image/png", 48, "logo@example.org", "inline", "1.2"),
        Attachment("report.pdf", "application/pdf", 316, "", "attachment", "2"),
    ]
    assert parsed.html == '<p>Our logo: <img src="cid:logo@example.org"></p>'
    assert parsed.text == "Our logo:"
    assert parsed.has_attachments


def test_an_inline_image_referenced_by_content_id_alone_is_no_attachment_to_show() -> None:
    body = (
        b"--r\r\nContent-Type: text/html\r\n\r\n<img src='cid:a@b'>\r\n"
        b"--r\r\nContent-Type: image/gif\r\nContent-ID: <a@b>\r\n\r\nGIF89a\r\n--r--\r\n"
    )
    parsed = message(body, b'Content-Type: multipart/related; boundary="r"\r\n')

    assert [(a.disposition, a.part_path) for a in parsed.attachments] == [("inline", "2")]
    assert not parsed.has_attachments


def test_rfc2231_and_rfc2047_filenames_are_decoded() -> None:
    parsed = load("rfc2231-filenames.eml")

    assert [(a.filename, a.content_type, a.size, a.part_path) for a in parsed.attachments] == [
        ("résumé final.pdf", "application/pdf", 9, "2"),
        ("naïve notes.txt", "text/plain", 10, "3"),
        ("été photo.png", "image/png", 8, "4"),
    ]
    assert parsed.text == "Three attachments."


def test_a_filename_never_carries_a_directory() -> None:
    body = (
        b'--x\r\nContent-Disposition: attachment; filename="../../.ssh/authorized_keys"\r\n\r\n'
        b"key\r\n--x\r\nContent-Type: application/octet-stream;"
        b' name="C:\\Users\\eve\\evil.exe"\r\n\r\nMZ\r\n--x--'
    )
    parsed = message(body, b"Content-Type: multipart/mixed; boundary=x\r\n")

    assert [a.filename for a in parsed.attachments] == ["authorized_keys", "evil.exe"]


def test_a_forwarded_message_is_one_attachment_named_after_its_subject() -> None:
    parsed = load("forwarded-rfc822.eml")

    assert parsed.text == "See the message below."
    [forwarded] = parsed.attachments
    assert (forwarded.filename, forwarded.content_type) == ("Contract.eml", "message/rfc822")
    assert (forwarded.disposition, forwarded.part_path) == ("inline", "2")
    assert 450 < forwarded.size < 600  # the embedded message is about 520 bytes
    assert parsed.has_attachments


def test_digest_parts_are_attached_messages() -> None:
    parsed = load("digest.eml")

    assert [(a.filename, a.content_type) for a in parsed.attachments] == [
        ("First post.eml", "message/rfc822"),
        ("Second post.eml", "message/rfc822"),
    ]


def test_a_missing_end_boundary_keeps_the_parts_that_arrived() -> None:
    parsed = load("broken-missing-end-boundary.eml")

    assert parsed.text == "The first part arrived."
    assert [(a.filename, a.size) for a in parsed.attachments] == [("data.bin", 10)]
    assert parsed.warnings == ["defect:CloseBoundaryNotFoundDefect"]


def test_a_boundary_that_is_never_used_leaves_the_body_as_text() -> None:
    parsed = load("broken-boundary-never-used.eml")

    assert parsed.text == "This body never uses its boundary, so it is all preamble.\n"
    assert "defect:StartBoundaryNotFoundDefect" in parsed.warnings


def test_a_multipart_without_boundary_is_read_as_text() -> None:
    parsed = load("multipart-without-boundary.eml")

    assert parsed.text == "A multipart without a boundary parameter.\n"
    assert "defect:NoBoundaryInMultipartDefect" in parsed.warnings


def test_sixty_nested_multiparts_stop_at_the_depth_limit() -> None:
    parsed = load("deep-nesting-60.eml")

    assert parsed.subject == "Sixty levels deep"
    assert parsed.text == ""
    assert "too-deep" in parsed.warnings


# ---------------------------------------------------------------------------------------------
# Huge and hostile input, generated. These check bounds, not time: each would take the stdlib
# seconds to minutes unbounded, so the suite itself slows down visibly if a bound breaks.


def test_a_200_kb_subject_is_cut_to_its_bound() -> None:
    parsed = message(b"body", b"Subject: " + b"word " * 40_000 + b"\r\n")

    assert parsed.subject == ("word " * 200)[:MAX_SUBJECT_CHARS].rstrip()
    assert "header-too-long:subject" in parsed.warnings


def test_five_thousand_recipients_are_cut_to_the_address_limit() -> None:
    recipients = b",\r\n ".join(b"User %d <user%d@example.org>" % (i, i) for i in range(5000))
    parsed = parse_message(HEADERS.replace(b"To: reader@example.org", b"To: " + recipients))

    assert len(parsed.to) == MAX_ADDRESSES
    assert parsed.to[0] == Address("User 0", "user0@example.org")
    assert parsed.to[-1] == Address("User 999", "user999@example.org")
    assert "too-many-addresses:to" in parsed.warnings


def test_random_binary_garbage_parses() -> None:
    rng = random.Random(822)  # noqa: S311 - seeded noise for a repeatable test, not a secret
    parsed = parse_message(bytes(rng.getrandbits(8) for _ in range(200_000)))

    assert parsed.size == 200_000
    assert all("\x00" not in text for text in strings(parsed))
    assert not [w for w in parsed.warnings if w.startswith("internal-error")]


def nested_multiparts(levels: int, body_lines: int) -> bytes:
    nesting = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
        for i in range(levels)
    )
    return HEADERS + nesting + b"Content-Type: text/plain\r\n\r\n" + b"line\r\n" * body_lines


def test_a_thousand_nested_multiparts_are_cut_before_the_parser_sees_them() -> None:
    # Unbounded, the stdlib checks each line against every open boundary: minutes, then
    # RecursionError.
    parsed = parse_message(nested_multiparts(1000, 100_000))

    assert parsed.from_ == [Address("Sender", "sender@example.org")]
    assert "too-deep" in parsed.warnings


def test_nesting_just_within_the_limit_is_read_to_the_bottom() -> None:
    parsed = parse_message(nested_multiparts(MAX_DEPTH - 1, 1))

    assert parsed.text == "line"
    assert "too-deep" not in parsed.warnings


def test_a_boundary_mentioned_oddly_still_bounds_the_nesting() -> None:
    # An RFC 2231 style mention makes the pre-scan count every "--" line as a delimiter.
    raw = nested_multiparts(300, 10_000).replace(
        b"\r\n\r\n", b"\r\nX-Note: boundary*0=a\r\n\r\n", 1
    )

    assert "too-deep" in parse_message(raw).warnings


def test_patch_lines_starting_with_dashes_are_not_taken_for_boundaries() -> None:
    patch = b"--- a/file.c\r\n+++ b/file.c\r\n-- \r\n" * 3000
    body = b"--x\r\nContent-Type: text/plain\r\n\r\n" + patch + b"--x--\r\n"
    parsed = message(body, b"Content-Type: multipart/mixed; boundary=x\r\n")

    assert parsed.text.count("--- a/file.c") == 3000
    assert parsed.warnings == []


def test_a_thousand_nested_attached_messages_leave_the_headers_readable() -> None:
    # The stdlib parser recurses once a level and raises RecursionError.
    nested = b"Content-Type: message/rfc822\r\n\r\n" * 1500 + b"body\r\n"
    parsed = message(nested, b"Content-Type: message/rfc822\r\n")

    assert parsed.message_id == "generated@example.org"
    assert parsed.from_ == [Address("Sender", "sender@example.org")]
    assert "parse-failed" in parsed.warnings


def test_fifty_thousand_parts_are_cut_to_the_part_limit() -> None:
    body = b"--x\r\nContent-Type: application/octet-stream\r\n\r\nAA\r\n" * 50_000 + b"--x--\r\n"
    parsed = message(body, b"Content-Type: multipart/mixed; boundary=x\r\n")

    assert 0 < len(parsed.attachments) < MAX_PARTS
    assert "too-many-parts" in parsed.warnings


def test_hostile_content_type_parameters_are_parsed_in_bounded_time() -> None:
    # Quotes and semicolons are quadratic for the stdlib's parameter parsers; nested comments
    # make email.policy.default raise RecursionError.
    part = (
        b'--x\r\nContent-Type: text/plain; name="' + b";" * 4000 + b'"\r\n'
        b"Content-Disposition: attachment; " + b'"' * 4000 + b"\r\n\r\nhi\r\n"
    )
    body = part * 200 + b"--x\r\nContent-Type: text/plain; charset=utf-8 " + b"(" * 3000
    parsed = message(
        body + b"\r\n\r\nthe end\r\n--x--\r\n", b"Content-Type: multipart/mixed; boundary=x\r\n"
    )

    assert len(parsed.attachments) == 200
    assert parsed.text == "the end"


def test_unterminated_html_constructs_are_dropped_as_browsers_do() -> None:
    # HTMLParser.close() is quadratic on these before Python 3.11.13: minutes for 500 KB.
    assert html_to_text("<p>kept</p>" + "x <y " * 100_000) == "kept\nx"
    assert html_to_text("<p>kept</p>" + "<!--" * 100_000) == "kept"
    # ">" inside quotes: parsing resumes after it, within a bounded number of passes.
    text = html_to_text("<p>kept</p>" + '<a b=">" ' * 50_000)
    assert text.startswith("kept")
    assert len(text) < 100


def test_a_huge_html_body_is_cut_and_its_text_bounded() -> None:
    parsed = message(b"<p>" + b"word " * 500_000, b"Content-Type: text/html\r\n")

    assert parsed.html is not None
    assert len(parsed.html) == 1_000_000
    assert "html-truncated" in parsed.warnings
    assert len(parsed.text) <= MAX_TEXT_CHARS


def test_nested_comments_and_groups_in_addresses_are_dropped_with_a_warning() -> None:
    parsed = message(
        b"body", b"Cc: " + b"(" * 5000 + b"a@example.org\r\nBcc: " + b"g:" * 3000 + b"\r\n"
    )

    assert (parsed.cc, parsed.bcc) == ([], [])
    assert {"bad-address:cc", "bad-address:bcc"} <= set(parsed.warnings)


# ---------------------------------------------------------------------------------------------
# The helpers, alone


def test_parse_addresses_decodes_names_lowers_domains_and_drops_garbage() -> None:
    addresses = parse_addresses(
        '"Doe, John" <John@Example.COM>, =?utf-8?q?J=C3=B6rg?= <j@XN--BCHER-KVA.ch>,'
        " undisclosed-recipients:;, garbage, <>, Team: a@example.org, b@example.org;"
    )

    assert addresses == [
        Address("Doe, John", "John@example.com"),
        Address("Jörg", "j@bücher.ch"),
        Address("", "a@example.org"),
        Address("", "b@example.org"),
    ]


def test_a_comma_inside_an_encoded_name_does_not_split_the_address() -> None:
    assert parse_addresses("=?utf-8?q?Doe=2C_Jane?= <jane@example.org>") == [
        Address("Doe, Jane", "jane@example.org")
    ]


def test_decode_header_value_takes_bytes_or_str() -> None:
    assert decode_header_value(b"=?utf-8?q?caf=C3=A9?= \xe9t\xe9\x00") == "café été"
    assert decode_header_value("  a \r\n\t b =?iso-8859-1?q?=E9?=") == "a b é"
    assert decode_header_value("=?utf-8?b?w6k=?=\x01\x7f") == "é"


def test_html_to_text_keeps_blocks_and_entities_and_skips_bogus_declarations() -> None:
    html = "<p>one<br>two &amp; three</p><![foo[ x ]]><!DOCTYPE x [ % ]><div>four&nbsp;five</div>"

    assert html_to_text(html) == "one\ntwo & three\n\nfour five"


def test_an_unclosed_head_ends_where_the_body_starts() -> None:
    assert html_to_text("<head><style>p{}</style><body>visible") == "visible"
