"""Reproducible, realistic sample mail: the live demo (`manage.py demo`) and the sync benchmark.

`generate_mailbox(count, folders, seed)` returns the same messages for the same arguments: threads
with In-Reply-To and References, plain and HTML alternatives, newsletters, mailing lists,
attachments from a few KB to about 1 MB (most small), French, English, German, Japanese, Russian
and Chinese text in their usual charsets (ISO-8859-1, windows-1252, Shift_JIS, ISO-2022-JP,
KOI8-R, GB2312…), RFC 2047 subjects and names, and about 1.5 % malformed messages (raw 8-bit
headers, broken encoded words, bad dates, missing headers, unclosed multiparts…). Sizes follow
real mail: a median near 10 KB and a long tail. `write_maildir` stores them as Dovecot keeps
Maildir files (LF line endings, sizes in the file name), oldest first so that UIDs follow dates.

Run alone to look at a sample:
`.venv/bin/python -m mailcore.samples --messages 50 --eml /tmp/sample`.
No Django and no network here.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import math
import os
import random
import statistics
import textwrap
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

END = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)  # fixed, so that a seed always gives the same mail
SPAN = timedelta(days=3 * 365)
OWNER_NAME = "Bob Moreau"
OWNER = "bob@courrier.test"

# The Inbox first, then what a real account holds; beyond ten, yearly archives.
BASE_FOLDERS = (
    "INBOX",
    "Sent",
    "Archive",
    "Listes",
    "Projets",
    "Projets/2026",
    "Reçus",
    "Trash",
    "Junk",
    "Drafts",
)
# Created by Dovecot on first login (mailstack/dovecot.conf); the others are created by the caller.
SPECIAL_FOLDERS = frozenset({"INBOX", "Sent", "Archive", "Trash", "Junk", "Drafts"})

# Where each kind of mail lands, as relative weights; folders beyond the requested count drop out.
PLACEMENT: dict[str, dict[str, float]] = {
    "personal": {
        "INBOX": 45,
        "Archive": 20,
        "Projets": 9,
        "Projets/2026": 9,
        "Reçus": 3,
        "Trash": 4,
        "*": 6,
    },
    "newsletter": {"INBOX": 50, "Archive": 8, "Reçus": 12, "Trash": 15, "Junk": 15, "*": 2},
    "notification": {"INBOX": 60, "Archive": 15, "Projets": 10, "Trash": 10, "*": 3},
    "list": {"Listes": 85, "INBOX": 10, "Trash": 5},
}
KINDS = (("personal", 0.55), ("newsletter", 0.22), ("list", 0.15), ("notification", 0.08))
MALFORMED_RATE = 0.015
T = TypeVar("T")


@dataclass(frozen=True)
class GeneratedMessage:
    folder: str
    date: datetime  # arrival time: the INTERNALDATE and the order of UIDs
    flags: str  # Maildir info letters in ASCII order: D(raft) F(lagged) R(eplied) S(een)
    message_id: str  # "" when the message has none
    data: bytes  # LF line endings, as Dovecot stores Maildir files

    @property
    def size(self) -> int:
        """The RFC822.SIZE a server reports: with CRLF line endings."""
        return len(self.data) + self.data.count(b"\n")


def folder_names(count: int) -> list[str]:
    names = list(BASE_FOLDERS[: max(count, 1)])
    year = 2025
    while len(names) < count:
        names.append(f"Archive/{year}")
        year -= 1
    return names


def generate_messages(count: int, folders: int = 10, seed: int = 1) -> Iterator[GeneratedMessage]:
    """`count` messages over `folder_names(folders)`, oldest first, built one at a time."""
    return _Generator(seed, folder_names(folders)).generate(count)


def write_maildir(
    messages: Iterable[GeneratedMessage],
    directories: Mapping[str, Path],
    owner: tuple[int, int] | None = None,
) -> None:
    """Deliver into Maildirs the Maildir way (tmp/, then a rename into cur/).

    Names carry the arrival time, which Dovecot sorts new files by when it gives out UIDs, and
    S= (file size) and W= (size with CRLF), which spare it reading each file to learn them.
    """
    pid = os.getpid()
    for number, message in enumerate(messages):
        directory = directories[message.folder]
        seconds = int(message.date.timestamp())
        base = (
            f"{seconds}.M{message.date.microsecond}P{pid}Q{number}.mailgen"
            f",S={len(message.data)},W={message.size}"
        )
        temporary = directory / "tmp" / base
        temporary.write_bytes(message.data)
        os.utime(temporary, (seconds, seconds))
        if owner is not None:
            os.chown(temporary, *owner)
        temporary.rename(directory / "cur" / f"{base}:2,{message.flags}")


def size_summary(sizes: Iterable[int]) -> str:
    sizes = sorted(sizes)
    if not sizes:
        return "no messages"
    p90 = sizes[int(len(sizes) * 0.9)]
    return (
        f"{sum(sizes) / 1e6:.1f} MB, median {statistics.median(sizes) / 1e3:.1f} KB,"
        f" mean {statistics.fmean(sizes) / 1e3:.1f} KB, p90 {p90 / 1e3:.0f} KB,"
        f" max {sizes[-1] / 1e3:.0f} KB"
    )


# Languages ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Language:
    code: str
    words: tuple[str, ...]
    charsets: tuple[tuple[str, float], ...]
    greeting: str
    closing: str
    subjects: tuple[str, ...]
    attachment_names: tuple[str, ...]
    spaced: bool = True  # False: no spaces between words (Japanese, Chinese)
    stop: str = "."


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


LANGUAGES = {
    "fr": Language(
        "fr",
        _words(
            "bonjour merci projet réunion semaine prochaine dossier équipe année réponse question"
            " problème solution été déjà très être avoir faire pouvoir voir savoir venir devoir"
            " prendre trouver donner parler mettre passer comprendre rester penser suivre croire"
            " commencer attendre appeler permettre devenir partir décider arriver recevoir"
            " répondre présenter accepter expliquer ouvrir changer travailler essayer préparer"
            " écrire garder document budget calendrier rendez-vous vendredi lundi mardi mercredi"
            " jeudi matin après-midi soirée bureau client fournisseur contrat facture devis"
            " livraison retard délai étape début fin résumé pièce jointe version dernière"
            " nouvelle élève école cantine sortie parents conseil le la les un une des du de et"
            " pour avec dans sur nous vous ils elle notre votre leur ce cette qui que pas plus"
            " bien aussi encore toujours après avant déjà là où ça peut-être côté intérêt"
        ),
        (("utf-8", 0.6), ("iso-8859-1", 0.2), ("windows-1252", 0.15), ("iso-8859-15", 0.05)),
        "Bonjour {name},",
        "Bien cordialement,",
        (
            "Réunion de {day}",
            "Compte rendu du {date}",
            "Facture n°{number}",
            "Votre commande {number} a été expédiée",
            "Question à propos du dossier {number}",
            "Sortie scolaire du {date}",
            "Devis pour les travaux",
            "Ordre du jour — conseil d'école",
            "Relance : {words}",
            "{words}",
        ),
        ("facture-{number}", "compte rendu réunion", "présentation", "devis signé", "planning"),
    ),
    "en": Language(
        "en",
        _words(
            "hello thanks project meeting week next file team year answer question problem"
            " solution already very be have do can see know come must take find give talk put"
            " pass understand stay think follow believe start wait call allow become leave"
            " decide arrive receive reply present accept explain open change work try prepare"
            " write keep document budget calendar appointment friday monday tuesday wednesday"
            " thursday morning afternoon evening office customer supplier contract invoice quote"
            " delivery delay step start end summary attachment version last new the a an of and"
            " for with in on we you they she our your their this that which not more well also"
            " still always after before there where maybe side release review merge deploy"
        ),
        (("us-ascii", 0.5), ("utf-8", 0.5)),
        "Hi {name},",
        "Best regards,",
        (
            "Meeting on {day}",
            "Notes from {date}",
            "Invoice #{number}",
            "Your order {number} has shipped",
            "Question about ticket {number}",
            "Quick question",
            "Re-scheduling {day}'s call",
            "{words}",
        ),
        ("invoice-{number}", "report", "slides", "signed contract", "photo_{number}"),
    ),
    "de": Language(
        "de",
        _words(
            "Hallo danke Besprechung Projekt Woche Unterlagen Bericht Frage Antwort Vertrag"
            " Rechnung Zahlung Frist morgen heute Montag Dienstag Büro Kunde Mannschaft Aufgabe"
            " Lösung Problem Änderung Version Datei Arbeit Zeit Ort München Köln Firma bitte"
            " prüfen besprechen vorbereiten schicken erhalten Grüße schöne größer für über können"
            " müssen wäre natürlich der die das und mit auf wir Sie nicht noch schon später"
        ),
        (("utf-8", 0.6), ("iso-8859-1", 0.4)),
        "Hallo {name},",
        "Viele Grüße",
        ("Besprechung am {day}", "Rechnung Nr. {number}", "Änderungen am Vertrag", "{words}"),
        ("Rechnung-{number}", "Präsentation", "Übersicht"),
    ),
    "ja": Language(
        "ja",
        _words(
            "お世話 になって おります 会議 資料 確認 よろしく お願い します 来週 月曜日 打ち合わせ"
            " 予定 件 について ご連絡 いたします 見積 請求書 添付 ファイル 送付 担当 プロジェクト"
            " 進捗 報告 変更 対応 問題 質問 回答 本日 明日 午前 午後 時間 場所 東京 大阪 会社"
            " 部長 課長 メール 返信 ありがとう ございます 検討 修正 完了 開始 終了 事項 連絡 先日"
            " 以上 宜しく"
        ),
        (("iso-2022-jp", 0.4), ("shift_jis", 0.4), ("utf-8", 0.2)),
        "{name}様",
        "よろしくお願いいたします。",
        ("会議のご案内", "見積書送付の件", "{words}", "来週の打ち合わせについて"),
        ("見積書", "資料_{number}", "議事録"),
        spaced=False,
        stop="。",
    ),
    "ru": Language(
        "ru",
        _words(
            "привет спасибо встреча проект неделя документ отчёт вопрос ответ договор счёт"
            " оплата срок завтра сегодня понедельник вторник среда четверг пятница утром вечером"
            " офис клиент команда задача решение проблема изменение версия файл письмо работа"
            " время место город компания директор менеджер пожалуйста согласовать обсудить"
            " подготовить отправить получить проверить и в на с по для мы вы они не ещё уже"
        ),
        (("koi8-r", 0.4), ("utf-8", 0.4), ("windows-1251", 0.2)),
        "Здравствуйте, {name}!",
        "С уважением,",
        ("Встреча в {day}", "Счёт № {number}", "{words}", "Отчёт за неделю"),
        ("отчёт_{number}", "договор", "презентация"),
    ),
    "zh": Language(
        "zh",
        _words(
            "您好 谢谢 会议 项目 文件 报告 问题 回答 合同 发票 付款 时间 明天 今天 星期一 上午"
            " 下午 办公室 客户 团队 任务 解决 方案 修改 版本 附件 邮件 工作 地点 北京 上海 公司"
            " 经理 请 确认 讨论 准备 发送 收到 检查 安排 通知 计划 进度 完成 开始 结束 重要 需要"
            " 我们 你们 已经 可以 关于 以及"
        ),
        (("gb2312", 0.5), ("utf-8", 0.3), ("gbk", 0.2)),
        "{name}，您好：",
        "此致 敬礼",
        ("会议通知", "关于{words}的报告", "{words}", "发票 {number}"),
        ("报告_{number}", "合同", "发票"),
        spaced=False,
        stop="。",
    ),
}
LANGUAGE_WEIGHTS = (("fr", 0.45), ("en", 0.30), ("de", 0.05), ("ja", 0.08), ("ru", 0.06))
LANGUAGE_WEIGHTS += (("zh", 0.06),)
OFFSETS = {"fr": 60, "en": -300, "de": 60, "ja": 540, "ru": 180, "zh": 480}
DAYS = {
    "fr": ("lundi", "mardi", "jeudi", "vendredi"),
    "en": ("Monday", "Tuesday", "Thursday", "Friday"),
    "de": ("Montag", "Dienstag", "Freitag"),
    "ja": ("月曜日", "火曜日", "金曜日"),
    "ru": ("понедельник", "среду", "пятницу"),
    "zh": ("星期一", "星期三", "星期五"),
}
PEOPLE = {
    "fr": (
        "Marie Dupré",
        "François Lefèvre",
        "Élodie Garnier",
        "Jean Martin",
        "Chloé Bérenger",
        "Noël Côté",
        "Agnès Roux",
        "Thomas Petit",
    ),
    "en": ("Alice Walker", "John Smith", "Priya Patel", "Mike O'Brien", "Sarah Connor"),
    "de": ("Jürgen Müller", "Anna Schäfer", "Günther Weiß"),
    "ja": ("山田 太郎", "佐藤 花子", "鈴木 一郎"),
    "ru": ("Иван Петров", "Ольга Смирнова", "Дмитрий Козлов"),
    "zh": ("王伟", "李娜", "张敏"),
}
DOMAINS = {
    "fr": ("exemple.fr", "mairie-exemple.fr", "ecole.test", "laposte.example"),
    "en": ("example.com", "example.org", "corp.example"),
    "de": ("beispiel.de", "firma.example"),
    "ja": ("example.co.jp", "kaisha.example"),
    "ru": ("primer.example", "kompania.example"),
    "zh": ("example.cn", "gongsi.example"),
}
LISTS = (
    ("Python-Dev", "python-dev.python.org", "en"),
    ("debian-user-french", "debian-user-french.lists.debian.org", "fr"),
    ("parents-ce2", "parents-ce2.ecole.test", "fr"),
)
TYPOGRAPHY = str.maketrans({"’": "'", "“": '"', "”": '"', "…": "...", "€": "EUR", "œ": "oe"})
ATTACHMENT_TYPES = (
    ("application/pdf", "pdf", 0.40),
    ("image/jpeg", "jpg", 0.25),
    ("image/png", "png", 0.08),
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx", 0.10),
    ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx", 0.07),
    ("application/zip", "zip", 0.03),
    ("text/calendar", "ics", 0.04),
    ("text/csv", "csv", 0.03),
)
OUTLOOK_STYLE = (
    '<style><!--\n/* Font Definitions */\n@font-face\n\t{font-family:"Cambria Math";'
    "\n\tpanose-1:2 4 5 3 5 4 6 3 2 4;}\n@font-face\n\t{font-family:Calibri;\n\tpanose-1:2 15 5"
    " 2 2 2 4 3 2 4;}\n/* Style Definitions */\np.MsoNormal, li.MsoNormal, div.MsoNormal\n\t{"
    "margin:0cm;"
    '\n\tfont-size:11.0pt;\n\tfont-family:"Calibri",sans-serif;\n\tmso-fareast-language:EN-US;}\n'
    "a:link, span.MsoHyperlink\n\t{mso-style-priority:99;\n\tcolor:#0563C1;\n\ttext-decoration:"
    'underline;}\nspan.EmailStyle17\n\t{mso-style-type:personal-compose;\n\tfont-family:"Calibri"'
    ",sans-serif;\n\tcolor:windowtext;}\n.MsoChpDefault\n\t{mso-style-type:export-only;\n\tfont-"
    'family:"Calibri",sans-serif;\n\tmso-fareast-language:EN-US;}\n@page WordSection1\n\t{size:'
    "612.0pt 792.0pt;\n\tmargin:70.85pt 70.85pt 70.85pt 70.85pt;}\ndiv.WordSection1\n\t{page:"
    'WordSection1;}\n--></style><!--[if gte mso 9]><xml>\n<o:shapedefaults v:ext="edit" '
    'spidmax="1026" />\n</xml><![endif]--><!--[if gte mso 9]><xml>\n<o:shapelayout v:ext="edit'
    '">\n<o:idmap v:ext="edit" data="1" />\n</o:shapelayout></xml><![endif]-->\n'
) * 3


# MIME parts --------------------------------------------------------------------------------------


@dataclass
class Part:
    headers: list[tuple[str, bytes]]
    body: bytes = b""
    children: list[Part] = field(default_factory=list)
    boundary: str = ""

    def render(self, close: bool = True) -> bytes:
        out = [name.encode() + b": " + value + b"\n" for name, value in self.headers]
        out.append(b"\n")
        if not self.children:
            out.append(self.body)
            return b"".join(out)
        out.append(b"This is a multi-part message in MIME format.\n")
        for child in self.children:
            out.append(f"\n--{self.boundary}\n".encode())
            out.append(child.render())
        if close:
            out.append(f"\n--{self.boundary}--\n".encode())
        return b"".join(out)


def _qp(data: bytes) -> bytes:
    return binascii.b2a_qp(data, istext=True)


def _b64(data: bytes) -> bytes:
    return base64.encodebytes(data)


def _q_word(data: bytes) -> str:
    out = []
    for byte in data:
        char = chr(byte)
        if byte == 0x20:
            out.append("_")
        elif char.isalnum() and byte < 0x80:
            out.append(char)
        else:
            out.append(f"={byte:02X}")
    return "".join(out)


def encode_words(text: str, charset: str, encoding: str = "B") -> str:
    """RFC 2047 encoded words of at most 75 characters, split between characters."""
    words, chunk = [], ""
    overhead = len(charset) + 7
    for char in text:
        candidate = chunk + char
        raw = candidate.encode(charset)
        length = len(base64.b64encode(raw)) if encoding == "B" else len(_q_word(raw))
        if chunk and length + overhead > 75:
            words.append(chunk)
            chunk = char
        else:
            chunk = candidate
    if chunk:
        words.append(chunk)
    encoded = []
    for word in words:
        raw = word.encode(charset)
        payload = base64.b64encode(raw).decode() if encoding == "B" else _q_word(raw)
        encoded.append(f"=?{charset}?{encoding}?{payload}?=")
    return "\n ".join(encoded)


def _fold(name: str, items: Sequence[str], separator: str = " ") -> bytes:
    """A header value folded between items, lines kept under ~78 characters."""
    lines, line = [], ""
    width = len(name) + 2
    for item in items:
        if line and width + len(line) + len(separator) + len(item) > 78:
            lines.append(line + separator.rstrip())
            line, width = item, 1
        else:
            line = f"{line}{separator}{item}" if line else item
    lines.append(line)
    return "\n ".join(lines).encode()


# The generator -----------------------------------------------------------------------------------


@dataclass
class _Thread:
    kind: str
    language: Language
    charset: str
    subject: str
    correspondent: tuple[str, str]
    list_info: tuple[str, str, str] | None
    message_ids: list[str] = field(default_factory=list)
    last_text: str = ""
    last_sender: str = ""
    last_name: str = ""


@dataclass
class _Slot:
    date: datetime
    thread: int
    position: int


class _Generator:
    def __init__(self, seed: int, folders: Sequence[str]) -> None:
        self.rng = random.Random(seed)  # noqa: S311 -- test data, not secrets
        self.folders = list(folders)
        self.threads: list[_Thread] = []
        self.used_ids: list[str] = []
        self.counter = 0

    # Plan: threads, dates, folders.

    def generate(self, count: int) -> Iterator[GeneratedMessage]:
        slots: list[_Slot] = []
        while len(slots) < count:
            kind = self._weighted(KINDS)
            length = self._thread_length(kind)
            start = END - SPAN * self.rng.random()
            self.threads.append(self._new_thread(kind))
            moment = start
            for position in range(min(length, count - len(slots))):
                slots.append(_Slot(moment, len(self.threads) - 1, position))
                moment += timedelta(hours=self.rng.expovariate(1 / 7))
        slots.sort(key=lambda slot: slot.date)
        for slot in slots:
            yield self._message(slot)

    def _thread_length(self, kind: str) -> int:
        if kind == "newsletter" or self.rng.random() < 0.55:
            return 1
        return min(2 + int(self.rng.expovariate(1 / 2.5)), 25)

    def _new_thread(self, kind: str) -> _Thread:
        list_info = None
        if kind == "list":
            list_info = self.rng.choice(LISTS)
            language = LANGUAGES[list_info[2]]
        elif kind == "newsletter":
            language = LANGUAGES[self._weighted((("fr", 0.6), ("en", 0.3), ("zh", 0.1)))]
        else:
            language = LANGUAGES[self._weighted(LANGUAGE_WEIGHTS)]
        charset = self._weighted(language.charsets)
        if kind == "newsletter" and self.rng.random() < 0.8:
            charset = "utf-8"
        if kind in ("list", "notification") and charset not in ("us-ascii", "utf-8"):
            charset = "utf-8"  # list servers and bots write UTF-8
        correspondent = self._person(language.code)
        subject = self._subject(language)
        if kind == "list" and list_info is not None:
            subject = f"[{list_info[0]}] {subject}"
        elif kind == "notification":
            subject = f"[courrier/courrier] {subject} (#{self.rng.randint(100, 4000)})"
        return _Thread(kind, language, charset, subject, correspondent, list_info)

    def _folder(self, kind: str, from_owner: bool, draft: bool) -> str:
        if from_owner:
            wanted = "Drafts" if draft else "Sent"
            return wanted if wanted in self.folders else "INBOX"
        weights = PLACEMENT[kind]
        choices = []
        for name in self.folders:
            if name in ("Sent", "Drafts"):
                continue
            weight = weights.get(name, weights.get("*", 0) if name not in BASE_FOLDERS else 0)
            if weight:
                choices.append((name, weight))
        return self._weighted(choices) if choices else "INBOX"

    # One message.

    def _message(self, slot: _Slot) -> GeneratedMessage:
        thread = self.threads[slot.thread]
        rng = self.rng
        personal = thread.kind == "personal"
        if personal and slot.position > 0:
            from_owner = thread.last_sender != OWNER and rng.random() < 0.6
        else:
            from_owner = personal and rng.random() < 0.15  # Bob starts the conversation
        draft = from_owner and rng.random() < 0.04
        folder = self._folder(thread.kind, from_owner, draft)
        malformed = rng.choice(MALFORMATIONS) if rng.random() < MALFORMED_RATE else ""
        charset = "utf-8" if from_owner else thread.charset  # Bob's own mail client
        if malformed == "mislabelled-charset" and thread.language.code in ("fr", "de"):
            charset = "windows-1252"

        sender = (OWNER_NAME, OWNER) if from_owner else self._sender(thread)
        to = thread.correspondent if from_owner else (OWNER_NAME, OWNER)
        subject = thread.subject
        if slot.position > 0 and thread.kind != "notification":
            prefix = rng.choice(("Re: ", "Re: ", "RE: ", "Re : ", "AW: ", "TR: ", "Fwd: "))
            subject = (
                prefix + subject if prefix != "AW: " or thread.language.code == "de" else subject
            )
        self.counter += 1
        domain = sender[1].split("@")[1]
        message_id = f"{rng.getrandbits(64):016x}.{self.counter}@{domain}"
        if malformed == "duplicate-message-id" and self.used_ids:
            message_id = rng.choice(self.used_ids)
        self.used_ids.append(message_id)
        if len(self.used_ids) > 500:
            del self.used_ids[:250]

        text = self._body_text(thread, sender, to, slot.position)
        root = self._body(thread, charset, text, malformed)
        headers = self._headers(
            thread, slot, sender, to, subject, message_id, charset, from_owner, malformed
        )
        root.headers = headers + root.headers
        data = root.render(close=malformed != "unclosed-multipart")
        if malformed == "mislabelled-charset" and b"charset=" in data:
            data = data.replace(b'charset="windows-1252"', b'charset="iso-8859-1"')

        thread.message_ids.append(message_id)
        thread.last_text = text
        thread.last_sender = sender[1]
        thread.last_name = sender[0]
        arrival = slot.date + timedelta(seconds=rng.uniform(2, 90))
        flags = self._flags(folder, thread.kind, arrival, draft)
        has_id = malformed not in ("no-message-id",)
        return GeneratedMessage(folder, arrival, flags, message_id if has_id else "", data)

    def _flags(self, folder: str, kind: str, arrival: datetime, draft: bool) -> str:
        rng = self.rng
        letters = set()
        old = END - arrival > timedelta(days=14)
        if folder in ("Sent", "Drafts") or rng.random() < (0.97 if old else 0.6):
            letters.add("S")
        if folder == "Junk" and rng.random() < 0.8:
            letters.discard("S")
        if folder != "Junk" and rng.random() < 0.03:
            letters.add("F")
        if kind == "personal" and folder not in ("Sent", "Drafts") and rng.random() < 0.25:
            letters.add("R")
        if draft:
            letters.add("D")
        return "".join(sorted(letters))

    # Headers.

    def _headers(
        self,
        thread: _Thread,
        slot: _Slot,
        sender: tuple[str, str],
        to: tuple[str, str],
        subject: str,
        message_id: str,
        charset: str,
        from_owner: bool,
        malformed: str,
    ) -> list[tuple[str, bytes]]:
        rng = self.rng
        language = thread.language
        headers: list[tuple[str, bytes]] = []
        sender_domain = sender[1].split("@")[1]
        if not from_owner:
            bounce = f"<bounce+{rng.getrandbits(32):x}@{sender_domain}>"
            headers.append(("Return-Path", bounce.encode()))
            headers.append(("Delivered-To", OWNER.encode()))
            headers += self._received(sender_domain, slot.date)
            headers += self._authentication(sender_domain)
        offset = OFFSETS["fr" if from_owner else language.code]
        local = slot.date.astimezone(timezone(timedelta(minutes=offset)))
        date = format_datetime(local)
        if malformed == "bad-date":
            date = rng.choice(
                ("31/02/2024 25:61", "Lun, 3 Fév 2025 10:00:00 +0100", "yesterday", date[:16])
            )
        if malformed != "no-date":
            headers.append(("Date", date.encode()))
        name_charset = "utf-8" if charset == "us-ascii" else charset
        if malformed != "no-from":
            headers.append(("From", self._address(sender, name_charset, malformed)))
        if malformed == "many-recipients":
            crowd = [f"user{i}@{sender_domain}" for i in range(400)]
            headers.append(("To", ", ".join(crowd).encode()))  # one unfolded 9 KB line
        else:
            headers.append(("To", self._address(to, name_charset, "")))
        if rng.random() < 0.2:
            cc = [self._person(language.code) for _ in range(rng.randint(1, 4))]
            items = [self._address(person, name_charset, "").decode() for person in cc]
            headers.append(("Cc", _fold("Cc", [item + "," for item in items[:-1]] + items[-1:])))
        if thread.list_info is not None:
            name, list_id, _code = thread.list_info
            headers.append(("List-Id", f"{name} <{list_id}>".encode()))
            headers.append(("List-Unsubscribe", f"<mailto:{name}-leave@{list_id}>".encode()))
            headers.append(("List-Archive", f"<https://lists.example/{list_id}/>".encode()))
            headers.append(("Precedence", b"list"))
        if thread.kind == "newsletter":
            token = base64.urlsafe_b64encode(rng.randbytes(48)).decode()
            headers.append(("List-Unsubscribe", f"<https://news.example/u/{token}>".encode()))
            headers.append(("List-Unsubscribe-Post", b"List-Unsubscribe=One-Click"))
            headers.append(("Feedback-ID", f"{rng.randint(1, 99)}:campaign:news".encode()))
        headers.append(("Subject", self._subject_header(subject, charset, malformed)))
        if malformed == "duplicate-headers":
            headers.append(("Subject", b"Second subject header"))
            headers.append(("From", b"another@example.org"))
        if malformed != "no-message-id":
            headers.append(("Message-ID", f"<{message_id}>".encode()))
        if thread.message_ids:
            parent = thread.message_ids[-1]
            headers.append(("In-Reply-To", f"<{parent}>".encode()))
            references = [f"<{ref}>" for ref in thread.message_ids[-12:]]
            headers.append(("References", _fold("References", references)))
        agent = rng.choice(
            (
                ("User-Agent", "Mozilla Thunderbird 128.5.0"),
                ("X-Mailer", "Microsoft Outlook 16.0"),
                ("X-Mailer", "Apple Mail (2.3826.300.87.4.3)"),
                ("User-Agent", "Roundcube Webmail/1.6.9"),
                ("X-Mailer", "iPhone Mail (22B91)"),
            )
        )
        headers.append((agent[0], agent[1].encode()))
        headers.append(("MIME-Version", b"1.0"))
        return headers

    def _received(self, domain: str, date: datetime) -> list[tuple[str, bytes]]:
        rng = self.rng
        hops = []
        for hop in range(rng.randint(2, 5)):
            moment = format_datetime(date + timedelta(seconds=hop * 3))
            address = f"198.51.100.{rng.randint(1, 254)}"
            queue_id = f"{rng.getrandbits(40):010X}"
            hops.append(
                (
                    "Received",
                    (
                        f"from mx{hop}.{domain} (mx{hop}.{domain} [{address}])\n\tby"
                        f" mail.courrier.test (Postfix) with ESMTPS id {queue_id}\n\tfor"
                        f" <{OWNER}>; {moment}"
                    ).encode(),
                )
            )
        return hops[::-1]  # the last hop on top

    def _authentication(self, domain: str) -> list[tuple[str, bytes]]:
        rng = self.rng
        signature = base64.b64encode(rng.randbytes(256)).decode()
        body_hash = base64.b64encode(rng.randbytes(32)).decode()
        lines = [signature[i : i + 70] for i in range(0, len(signature), 70)]
        dkim = (
            f"v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain};\n\ts=s{rng.randint(1, 9)};"
            f" t={rng.randint(1_600_000_000, 1_780_000_000)};\n\th=from:to:subject:date:"
            f"message-id:mime-version:content-type;\n\tbh={body_hash};\n\tb=" + "\n\t ".join(lines)
        )
        headers = [
            (
                "Authentication-Results",
                (
                    f"mail.courrier.test;\n\tdkim=pass (2048-bit key) header.d={domain};\n\t"
                    f"spf=pass smtp.mailfrom={domain};\n\tdmarc=pass header.from={domain}"
                ).encode(),
            ),
            ("DKIM-Signature", dkim.encode()),
        ]
        if rng.random() < 0.25:  # forwarded through a provider that adds ARC sets
            seal = base64.b64encode(rng.randbytes(256)).decode()
            seal_lines = "\n\t ".join(seal[i : i + 70] for i in range(0, len(seal), 70))
            seal_value = f"i=1; a=rsa-sha256; cv=none; d={domain};\n\t b={seal_lines}"
            headers.insert(0, ("ARC-Seal", seal_value.encode()))
            headers.insert(1, ("ARC-Message-Signature", dkim.encode()))
        provider = rng.random()
        if provider < 0.3:  # sent from Microsoft 365: a few KB of anti-spam verdicts
            headers += self._blob_headers(
                (
                    ("X-MS-Exchange-Organization-SCL", 0),
                    ("X-Forefront-Antispam-Report", 400),
                    ("X-Microsoft-Antispam", 120),
                    ("X-Microsoft-Antispam-Message-Info", 1800),
                    ("X-MS-Exchange-CrossTenant-Network-Message-Id", 36),
                    ("X-MS-Exchange-Transport-CrossTenantHeadersStamped", 0),
                    ("X-MS-Office365-Filtering-Correlation-Id", 36),
                    ("X-MS-TrafficTypeDiagnostic", 60),
                )
            )
        elif provider < 0.6:  # sent from Gmail
            headers += self._blob_headers(
                (
                    ("X-Google-DKIM-Signature", 420),
                    ("X-Gm-Message-State", 160),
                    ("X-Google-Smtp-Source", 90),
                    ("X-Received", 140),
                    ("X-Gm-Gg", 220),
                )
            )
        return headers

    def _blob_headers(self, shapes: Sequence[tuple[str, int]]) -> list[tuple[str, bytes]]:
        """Headers with opaque base64 values of about the given lengths (0: a short word)."""
        headers = []
        for name, length in shapes:
            if not length:
                headers.append((name, b"0"))
                continue
            value = base64.b64encode(self.rng.randbytes(length * 3 // 4)).decode()
            lines = [value[i : i + 76] for i in range(0, len(value), 76)]
            headers.append((name, "\n\t".join(lines).encode()))
        return headers

    def _address(self, person: tuple[str, str], charset: str, malformed: str) -> bytes:
        name, address = person
        if name.isascii():
            quoted = f'"{name}"' if any(c in name for c in "'.,") else name
            return f"{quoted} <{address}>".encode()
        if malformed == "8bit-header":
            return name.encode("utf-8") + f" <{address}>".encode()
        try:
            name.encode(charset)
        except UnicodeEncodeError:
            charset = "utf-8"
        latin = charset.startswith(("iso-8859", "windows"))
        encoding = "Q" if latin and self.rng.random() < 0.5 else "B"
        return f"{encode_words(name, charset, encoding)} <{address}>".encode()

    def _subject_header(self, subject: str, charset: str, malformed: str) -> bytes:
        if malformed == "8bit-header" and not subject.isascii():
            return subject.encode("latin-1", errors="replace")
        if malformed == "bad-encoded-word":
            return self.rng.choice(
                (
                    b"=?utf-8?B?UsOpdW5pb24gZGUgbHVuZG?= (truncated)",
                    b"=?iso-8859-1?Q?caf=E9 au lait?=",
                    b"=?x-unknown?Q?r=E9union?=",
                    b"=?utf-8?Q?unterminated=C3=A9",
                )
            )
        if subject.isascii():
            return subject.encode()
        target = "utf-8" if charset == "us-ascii" else charset
        try:
            subject.encode(target)
        except UnicodeEncodeError:
            target = "utf-8"
        encoding = "Q" if target.startswith(("iso-8859", "windows")) else "B"
        return encode_words(subject, target, encoding).encode()

    # Bodies.

    def _body_text(
        self, thread: _Thread, sender: tuple[str, str], to: tuple[str, str], position: int
    ) -> str:
        rng = self.rng
        language = LANGUAGES["fr"] if sender[1] == OWNER else thread.language
        if thread.kind == "notification":
            paragraphs = [self._paragraph(language, 1, 3) for _ in range(rng.randint(1, 2))]
            url = f"https://git.example/courrier/courrier/issues/{rng.randint(100, 4000)}"
            return "\n\n".join([*paragraphs, f"—\nReply to this email directly or view it: {url}"])
        first = to[0].split()[0]
        lines = [language.greeting.format(name=first), ""]
        for _ in range(max(1, int(rng.lognormvariate(math.log(3.5), 0.6)))):
            lines += [self._paragraph(language, 2, 6), ""]
        lines += [language.closing, sender[0]]
        if sender[1] != OWNER and rng.random() < 0.5:
            lines += ["--", f"{sender[0]} | {sender[1]} | +33 1 23 45 67 {rng.randint(10, 99)}"]
        if thread.kind == "list" and thread.list_info is not None:
            name, list_id, _code = thread.list_info
            lines += ["_" * 47, f"{name} mailing list -- {name}@{list_id}"]
            lines.append(f"To unsubscribe send an email to {name}-leave@{list_id}")
        if position > 0 and thread.last_text and rng.random() < 0.8:
            quoted = thread.last_text[:6000].splitlines()
            lines += ["", f"{thread.last_name} a écrit :"] + [f"> {line}" for line in quoted]
        text = "\n".join(lines) + "\n"
        if thread.charset == "utf-8" and rng.random() < 0.1:
            text = text.replace("\n\n", f" {rng.choice('🙂👍🎉☀️')}\n\n", 1)
        return text

    def _paragraph(self, language: Language, low: int, high: int) -> str:
        rng = self.rng
        sentences = []
        for _ in range(rng.randint(low, high)):
            words = [rng.choice(language.words) for _ in range(rng.randint(5, 16))]
            if language.spaced:
                sentence = " ".join(words)
                sentence = sentence[0].upper() + sentence[1:]
                if language.code == "fr" and rng.random() < 0.3:
                    sentence += rng.choice((" à 10 € près", " c’est “urgent”…", " l’œuvre"))
            else:
                sentence = "".join(words)
            sentences.append(sentence + language.stop)
        if not language.spaced:
            text = "".join(sentences)
            return "\n".join(text[i : i + 38] for i in range(0, len(text), 38))
        return textwrap.fill(" ".join(sentences), 72, break_long_words=False)

    def _text_part(self, text: str, charset: str, subtype: str, malformed: str) -> Part:
        rng = self.rng
        try:
            data = text.encode(charset)
        except UnicodeEncodeError:
            data = text.translate(TYPOGRAPHY).encode(charset, errors="replace")
        label = "unknown-8bit" if malformed == "unknown-charset" else charset
        if charset == "us-ascii" or charset == "iso-2022-jp":
            encoding = "7bit"
        elif charset in ("shift_jis", "gb2312", "gbk"):
            encoding = "base64" if rng.random() < 0.8 else "8bit"
        elif subtype == "html":
            encoding = "quoted-printable" if rng.random() < 0.7 else "base64"
        else:
            encoding = self._weighted((("quoted-printable", 0.55), ("8bit", 0.25), ("base64", 0.2)))
        if encoding == "quoted-printable":
            body = _qp(data)
        elif encoding == "base64":
            body = _b64(data)
            if malformed == "garbage-base64":
                body = body[:40] + b"!!**not base64**!!\n" + body[40:]
        else:
            body = data if data.endswith(b"\n") else data + b"\n"
        headers = [
            ("Content-Type", f'text/{subtype}; charset="{label}"'.encode()),
            ("Content-Transfer-Encoding", encoding.encode()),
        ]
        return Part(headers, body)

    def _body(self, thread: _Thread, charset: str, text: str, malformed: str) -> Part:
        rng = self.rng
        kind = thread.kind
        if kind == "newsletter":
            html_text, plain = self._newsletter(thread)
            alternative = self._multipart(
                "alternative",
                [
                    self._text_part(plain, charset, "plain", malformed),
                    self._text_part(html_text, charset, "html", malformed),
                ],
            )
            if rng.random() < 0.25:
                images = [self._attachment(thread.language, inline=True) for _ in range(2)]
                return self._multipart("related", [alternative, *images])
            body = alternative
        elif (kind == "list" and rng.random() < 0.8) or (
            kind == "personal" and rng.random() < 0.25
        ):
            body = self._text_part(text, charset, "plain", malformed)
        else:
            html_text = self._personal_html(text, charset, outlook=rng.random() < 0.4)
            body = self._multipart(
                "alternative",
                [
                    self._text_part(text, charset, "plain", malformed),
                    self._text_part(html_text, charset, "html", malformed),
                ],
            )
        chance = {"personal": 0.2, "notification": 0.05, "list": 0.02}.get(kind, 0.0)
        if malformed in ("unclosed-multipart", "missing-boundary") and not body.children:
            chance = 1.0
        if rng.random() < chance:
            parts = [body]
            for _ in range(1 if rng.random() < 0.8 else rng.randint(2, 4)):
                if rng.random() < 0.05:
                    parts.append(self._forwarded(thread))
                else:
                    parts.append(self._attachment(thread.language, inline=False))
            body = self._multipart("mixed", parts)
        if malformed == "missing-boundary" and body.children:
            body.headers[0] = ("Content-Type", b'multipart/mixed; boundary="not-the-boundary"')
        return body

    def _multipart(self, subtype: str, children: list[Part]) -> Part:
        boundary = f"----=_Part_{self.rng.getrandbits(48):012x}"
        headers = [("Content-Type", f'multipart/{subtype};\n boundary="{boundary}"'.encode())]
        return Part(headers, children=children, boundary=boundary)

    def _personal_html(self, text: str, charset: str, outlook: bool) -> str:
        paragraphs = []
        for block in text.split("\n\n"):
            escaped = block.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            style = (
                ' class="MsoNormal"'
                if outlook
                else ' style="margin:0 0 12px 0;font-family:Arial,Helvetica,sans-serif;'
                'font-size:14px;line-height:1.4;color:#222222;background-color:#ffffff"'
            )
            paragraphs.append(f"<p{style}>{escaped.replace(chr(10), '<br>' + chr(10))}</p>")
        head = f'<meta http-equiv="Content-Type" content="text/html; charset={charset}">'
        if outlook:
            head += OUTLOOK_STYLE
            body = '<div class="WordSection1">' + "\n".join(paragraphs) + "</div>"
        else:
            body = '<div dir="ltr">' + "\n".join(paragraphs) + "</div>"
        return f"<html><head>{head}</head><body>{body}</body></html>\n"

    def _newsletter(self, thread: _Thread) -> tuple[str, str]:
        rng = self.rng
        language = thread.language
        blocks, plain = [], []
        for _ in range(rng.randint(3, 10)):
            title = self._subject(language)
            paragraph = self._paragraph(language, 1, 4)
            token = base64.urlsafe_b64encode(rng.randbytes(60)).decode()
            link = f"https://click.news.example/ls/click?upn={token}"
            image = f"https://cdn.news.example/img/{rng.getrandbits(64):x}.jpg"
            blocks.append(
                '<tr><td style="padding:24px 32px;font-family:Helvetica,Arial,sans-serif;'
                'font-size:16px;line-height:24px;color:#333333;background-color:#ffffff;">'
                f'<img src="{image}" width="536" alt="" style="display:block;border:0;'
                'width:100%;max-width:536px;height:auto;">'
                f'<h2 style="margin:16px 0 8px 0;font-size:22px;color:#111111;">{title}</h2>'
                f'<p style="margin:0 0 16px 0;">{paragraph}</p><table role="presentation" '
                'cellspacing="0" cellpadding="0" border="0"><tr><td style="border-radius:4px;'
                f'background:#0b5fff;"><a href="{link}" style="background:#0b5fff;border:1px solid'
                " #0b5fff;font-family:Helvetica,Arial,sans-serif;font-size:15px;line-height:15px;"
                "text-decoration:none;padding:13px 17px;color:#ffffff;display:block;"
                'border-radius:4px;">→ Lire la suite</a></td></tr></table></td></tr>\n'
            )
            plain.append(f"{title}\n{paragraph}\n{link}\n")
        pixel = f"https://open.news.example/o/{rng.getrandbits(128):x}.gif"
        html_text = (
            '<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><meta name="viewport"'
            ' content="width=device-width"><style>body{margin:0;padding:0}table,td{border-'
            "collapse:collapse}img{-ms-interpolation-mode:bicubic}@media screen and (max-width:"
            '600px){.container{width:100%!important}}</style></head><body style="margin:0;'
            'background-color:#f2f2f2;"><center><table role="presentation" class="container"'
            ' width="600" cellspacing="0" cellpadding="0" border="0" style="margin:auto;">'
            + "".join(blocks)
            + f'</table><img src="{pixel}" width="1" height="1" alt=""></center></body></html>\n'
        )
        return html_text, "\n".join(plain)

    def _attachment(self, language: Language, inline: bool) -> Part:
        rng = self.rng
        if inline:
            content_type, extension = "image/png", "png"
            size = rng.randint(2_000, 15_000)
        else:
            content_type, extension = self._weighted(
                tuple(((ct, ext), weight) for ct, ext, weight in ATTACHMENT_TYPES)
            )
            size = int(rng.lognormvariate(math.log(40_000), 1.3))
            size = max(1_500, min(size, 750_000))  # about 1 MB once in base64
        stem = rng.choice(language.attachment_names).format(number=rng.randint(1000, 9999))
        filename = f"{stem}.{extension}"
        if content_type.startswith("text/"):
            line = f"BEGIN:VEVENT;{self._paragraph(LANGUAGES['en'], 1, 1)}\n"
            payload = (line * (size // len(line) + 1)).encode()[:size]
        else:
            payload = rng.randbytes(size)
        if filename.isascii():
            disposition_name = f'filename="{filename}"'
            type_name = f'name="{filename}"'
        elif rng.random() < 0.6:  # RFC 2231, what the standard says
            disposition_name = f"filename*=utf-8''{quote(filename)}"
            type_name = f"name*=utf-8''{quote(filename)}"
        else:  # RFC 2047 inside quotes, what Outlook and many others send
            encoded = encode_words(filename, "utf-8").replace("\n ", "")
            disposition_name = f'filename="{encoded}"'
            type_name = f'name="{encoded}"'
        disposition = "inline" if inline else "attachment"
        headers = [
            ("Content-Type", f"{content_type};\n {type_name}".encode()),
            ("Content-Transfer-Encoding", b"base64"),
            ("Content-Disposition", f"{disposition};\n {disposition_name}".encode()),
        ]
        if inline:
            headers.append(("Content-ID", f"<img{rng.getrandbits(32):x}@news.example>".encode()))
        return Part(headers, _b64(payload))

    def _forwarded(self, thread: _Thread) -> Part:
        person = self._person(thread.language.code)
        inner = self._text_part(self._paragraph(thread.language, 2, 5) + "\n", "utf-8", "plain", "")
        date = format_datetime(END - SPAN * self.rng.random())
        name = encode_words(person[0], "utf-8") if not person[0].isascii() else person[0]
        inner.headers = [
            ("From", f"{name} <{person[1]}>".encode()),
            ("Subject", b"Message transfere"),
            ("Date", date.encode()),
            ("Message-ID", f"<{self.rng.getrandbits(64):x}@{person[1].split('@')[1]}>".encode()),
            ("MIME-Version", b"1.0"),
            *inner.headers,
        ]
        return Part(
            [
                ("Content-Type", b"message/rfc822"),
                ("Content-Disposition", b'attachment; filename="forwarded.eml"'),
            ],
            inner.render(),
        )

    # Small choices.

    def _sender(self, thread: _Thread) -> tuple[str, str]:
        if thread.kind == "newsletter":
            return ("La Lettre d'Exemple", "news@news.example")
        if thread.kind == "notification":
            return ("Forge Notifications", "notifications@git.example")
        if thread.kind == "list" and self.rng.random() < 0.7:
            return self._person(thread.language.code)
        return thread.correspondent

    def _person(self, code: str) -> tuple[str, str]:
        name = self.rng.choice(PEOPLE[code])
        local = f"user{zlib.crc32(name.encode()) % 10_000}" if not name.isascii() else name
        local = "".join(c for c in local.lower().replace(" ", ".") if c.isalnum() or c == ".")
        return name, f"{local}@{self.rng.choice(DOMAINS[code])}"

    def _subject(self, language: Language) -> str:
        rng = self.rng
        template = rng.choice(language.subjects)
        words = [rng.choice(language.words) for _ in range(rng.randint(2, 6))]
        phrase = (" " if language.spaced else "").join(words)
        return template.format(
            day=rng.choice(DAYS[language.code]),
            date=f"{rng.randint(1, 28)}/{rng.randint(1, 12)}",
            number=rng.randint(1000, 99999),
            words=phrase[:1].upper() + phrase[1:],
        )

    def _weighted(self, choices: Sequence[tuple[T, float]]) -> T:
        total = sum(weight for _value, weight in choices)
        point = self.rng.random() * total
        for value, weight in choices:
            point -= weight
            if point < 0:
                return value
        return choices[-1][0]


MALFORMATIONS = (
    "8bit-header",
    "bad-encoded-word",
    "bad-date",
    "no-date",
    "no-message-id",
    "no-from",
    "duplicate-message-id",
    "duplicate-headers",
    "unknown-charset",
    "mislabelled-charset",
    "unclosed-multipart",
    "missing-boundary",
    "garbage-base64",
    "many-recipients",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--folders", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--eml", type=Path, help="write each message to this folder as .eml")
    args = parser.parse_args()
    if args.eml:
        args.eml.mkdir(parents=True, exist_ok=True)
    sizes: list[int] = []
    counts = dict.fromkeys(folder_names(args.folders), 0)
    for number, message in enumerate(generate_messages(args.messages, args.folders, args.seed)):
        sizes.append(message.size)
        counts[message.folder] += 1
        if args.eml:
            slug = message.folder.replace("/", "_")
            (args.eml / f"{number:05d}-{slug}.eml").write_bytes(message.data)
    print(f"{len(sizes)} messages: {size_summary(sizes)}")
    print(", ".join(f"{name} {count}" for name, count in counts.items()))


if __name__ == "__main__":
    main()
