from __future__ import annotations

import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from domains import services
from domains.models import DkimKey, Domain
from mailcore import autoconfig, dkimkeys

_ASCII_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
MAX_DOMAIN_LENGTH = 253
MAX_PEM_LENGTH = 20_000


# Names -------------------------------------------------------------------------------------------


def ascii_domain(text: str) -> str:
    """A domain as typed (Unicode or not) in lower-case IDNA; ValidationError when it isn't one."""
    name = text.strip().lower().removesuffix(".")
    labels = name.split(".")
    if len(labels) < 2:
        raise ValidationError(
            _("A mail domain has at least two labels, such as example.org."), code="labels"
        )
    encoded = [_ascii_label(label) for label in labels]
    if encoded[-1].isdigit():
        raise ValidationError(
            _("The last label cannot be all digits: that is an address, not a domain."),
            code="numeric",
        )
    result = ".".join(encoded)
    if len(result) > MAX_DOMAIN_LENGTH:
        raise ValidationError(
            _("A domain is at most 253 characters long once encoded."), code="length"
        )
    return result


def _ascii_label(label: str) -> str:
    invalid = ValidationError(
        _(
            "“%(label)s” is not a valid label: letters, digits and hyphens, at most 63, "
            "neither starting nor ending with a hyphen."
        ),
        code="label",
        params={"label": label},
    )
    if not label:
        raise ValidationError(_("The name has an empty label (two dots in a row)."), code="empty")
    try:
        # The standard library's IDNA 2003 codec, as mailcore.autoconfig uses to look names up.
        encoded = label.encode("idna").decode("ascii")
    except UnicodeError:
        raise invalid from None
    if not _ASCII_LABEL.fullmatch(encoded):
        raise invalid
    if encoded[2:4] == "--":
        # Reserved for encodings; only a well-formed punycode label ("xn--") may use it.
        try:
            if not encoded.startswith("xn--") or not encoded.encode().decode("idna"):
                raise invalid
        except UnicodeError:
            raise invalid from None
    return encoded


def clean_host(value: str) -> str:
    if not value.strip():
        return ""
    host = autoconfig.normalize_host(value)
    if host is None:
        raise ValidationError(_("This is not a valid host name or IP address."), code="host")
    return host


def clean_port(value: int | None) -> int | None:
    if value is not None and not 0 < value < 65536:
        raise ValidationError(_("A port is a number from 1 to 65535."), code="port")
    return value


# Domains -----------------------------------------------------------------------------------------


class DomainForm(forms.ModelForm):
    """The admin's domain form: the name typed in Unicode or not, stored in IDNA."""

    class Meta:
        model = Domain
        fields = [
            "name",
            "active",
            "incoming_protocol",
            "incoming_host",
            "incoming_port",
            "incoming_security",
            "smtp_host",
            "smtp_port",
            "smtp_security",
            "mfa_required",
            "max_attachments_mb",
            "signup_allowed",
            "mta_sts",
            "tls_rpt",
            "admins",
        ]
        help_texts = {
            "name": _("As people write it (café.example works); stored in IDNA (punycode)."),
            "admins": _(
                "Staff members who administer this domain: they see and change only the "
                "domains they are named on."
            ),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The state before this edit, for the audit log (the admin saves many-to-many later).
        self.before = services.domain_state(self.instance) if self.instance.pk else {}
        if self.instance.pk and "name" in self.fields:
            self.initial["name"] = self.instance.unicode_name

    def clean_name(self) -> str:
        return ascii_domain(self.cleaned_data["name"])

    def clean_incoming_host(self) -> str:
        return clean_host(self.cleaned_data["incoming_host"])

    def clean_smtp_host(self) -> str:
        return clean_host(self.cleaned_data["smtp_host"])

    def clean_incoming_port(self) -> int | None:
        return clean_port(self.cleaned_data["incoming_port"])

    def clean_smtp_port(self) -> int | None:
        return clean_port(self.cleaned_data["smtp_port"])


# DKIM keys ---------------------------------------------------------------------------------------


def key_problem_message(problem: dkimkeys.KeyProblem) -> str:
    """What an administrator reads about a key mailcore.dkimkeys refused."""
    detail = str(problem).partition(": ")[2]
    if problem.code == "weak-rsa":
        return str(
            _(
                "This RSA key has %(bits)s bits. Keys under 2048 bits are refused: a 1024-bit "
                "key can be broken for a modest sum, and receivers ignore signatures made with "
                "one (RFC 8301). Generate a new 2048-bit key instead."
            )
            % {"bits": detail or "?"}
        )
    messages = {
        "rsa-size": _("RSA keys are made with 2048, 3072 or 4096 bits."),
        "not-a-key": _(
            "This is not an unencrypted private key in PEM form. It should begin with "
            "“-----BEGIN PRIVATE KEY-----” or “-----BEGIN RSA PRIVATE KEY-----”."
        ),
        "unknown-algorithm": _("Only RSA and Ed25519 keys can sign DKIM."),
        "bad-selector": _(
            "A selector is made of lower-case letters, digits and hyphens, with dots between "
            "parts, at most 63 characters."
        ),
        "selector-taken": _("This domain already has a key with this selector."),
    }
    return str(messages.get(problem.code, _("This key cannot be used.")))


class SelectorField(forms.CharField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            label=_("Selector"),
            required=False,
            max_length=63,
            help_text=_("Leave blank for a dated one, such as rsa202611."),
            **kwargs,
        )


class _KeyForm(forms.Form):
    selector = SelectorField()

    def __init__(self, *args: Any, domain: Domain, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.domain = domain

    def clean_selector(self) -> str:
        selector = self.cleaned_data["selector"].strip().lower()
        if not selector:
            return ""
        if not dkimkeys.valid_selector(selector):
            raise ValidationError(key_problem_message(dkimkeys.KeyProblem("bad-selector")))
        if self.domain.dkim_keys.filter(selector=selector).exists():
            raise ValidationError(key_problem_message(dkimkeys.KeyProblem("selector-taken")))
        return selector


KEY_KINDS = {
    "rsa-2048": ("rsa", 2048),
    "rsa-4096": ("rsa", 4096),
    "ed25519": ("ed25519", 256),
}


class GenerateKeyForm(_KeyForm):
    kind = forms.ChoiceField(
        label=_("Kind of key"),
        choices=[
            ("rsa-2048", _("RSA, 2048 bits (recommended)")),
            ("rsa-4096", _("RSA, 4096 bits (a longer record; some DNS hosts refuse it)")),
            ("ed25519", _("Ed25519, in addition to an RSA key")),
        ],
        initial="rsa-2048",
        widget=forms.RadioSelect,
        help_text=_(
            "Not every receiver checks Ed25519 signatures yet: a domain signs with one beside "
            "an RSA key, never alone. RSA keys under 2048 bits are not offered: they can be "
            "broken."
        ),
    )
    field_order = ["kind", "selector"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        rsa_keys = self.domain.dkim_keys.filter(
            algorithm=DkimKey.Algorithm.RSA,
            state__in=[DkimKey.State.CREATED, DkimKey.State.PUBLISHED, DkimKey.State.ACTIVE],
        )
        if cleaned.get("kind") == "ed25519" and not rsa_keys.exists():
            raise ValidationError(
                _("Add an RSA key first: an Ed25519 key comes in addition to one."),
                code="ed25519-alone",
            )
        return cleaned

    @property
    def algorithm_and_bits(self) -> tuple[str, int]:
        return KEY_KINDS[self.cleaned_data["kind"]]


class PemTextarea(forms.Textarea):
    """A private key is never sent back to the browser, even to correct a typo."""

    def format_value(self, value: Any) -> None:
        return None


class ImportKeyForm(_KeyForm):
    pem = forms.CharField(
        label=_("Private key (PEM)"),
        max_length=MAX_PEM_LENGTH,
        strip=True,
        widget=PemTextarea(attrs={"rows": 12, "cols": 72, "spellcheck": "false"}),
        help_text=_(
            "An unencrypted RSA (2048 bits or more) or Ed25519 private key, PKCS#1 or PKCS#8. "
            "It is stored encrypted and never shown again."
        ),
    )
    field_order = ["pem", "selector"]

    def clean_pem(self) -> str:
        pem = self.cleaned_data["pem"]
        try:
            dkimkeys.load(pem)
        except dkimkeys.KeyProblem as problem:
            raise ValidationError(key_problem_message(problem), code=problem.code) from None
        return pem


class ExportKeyForm(forms.Form):
    password = forms.CharField(
        label=_("Your password"),
        strip=False,
        max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
        help_text=_("Exporting a private key asks for your password again."),
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise ValidationError(_("This is not your password."), code="wrong-password")
        return password


class ReportForm(forms.Form):
    """The DNS report's query string: which kept run to show."""

    run = forms.IntegerField(required=False, min_value=1)
