"""What the compose pages accept: the message form (autosave and send share it), when to send,
attachments, and the contacts' forms. Every text that can reach a header is refused with a line
break in it here, before any service sees it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import RegexValidator
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from compose.models import Identity
from mailboxes.models import MailAccount
from mailcore import compose as mime_out
from mailcore.sanitize import MAX_HTML_CHARS

MAX_RECIPIENT_CHARS = 20000  # as Draft.to/cc/bcc
MAX_SCHEDULE_AHEAD = timedelta(days=366)

no_line_breaks = RegexValidator(
    r"[\r\n\x00]", inverse_match=True, message=_("Line breaks are not allowed here.")
)


def sender_choices(user: User) -> dict[str, tuple[str, MailAccount, Identity | None]]:
    """The addresses the user may send as, by form value: ``a<id>`` for an account's own
    address, ``i<id>`` for an identity (an alias). An account whose default identity speaks for
    it is listed through that identity only."""
    accounts = MailAccount.objects.filter(user=user).prefetch_related("identities")
    found: dict[str, tuple[str, MailAccount, Identity | None]] = {}
    for account in accounts.order_by("email", "pk"):
        identities = sorted(account.identities.all(), key=lambda i: (not i.is_default, i.email))
        if not any(identity.is_default for identity in identities):
            name = account.display_name
            label = f"{name} <{account.email}>" if name else account.email
            found[f"a{account.pk}"] = (label, account, None)
        for identity in identities:
            found[f"i{identity.pk}"] = (str(identity), account, identity)
    return found


def sender_value(account_id: int, identity_id: int | None) -> str:
    return f"i{identity_id}" if identity_id else f"a{account_id}"


class ComposeForm(forms.Form):
    """The message as typed: what autosave stores and what Send checks first."""

    sender = forms.ChoiceField(
        label=_("From"),
        error_messages={
            "invalid_choice": _("Choose one of your own addresses."),
            "required": _("Choose the address to send from."),
        },
    )
    to = forms.CharField(
        label=_("To"), required=False, max_length=MAX_RECIPIENT_CHARS, validators=[no_line_breaks]
    )
    cc = forms.CharField(
        label=_("Cc"), required=False, max_length=MAX_RECIPIENT_CHARS, validators=[no_line_breaks]
    )
    bcc = forms.CharField(
        label=_("Bcc"), required=False, max_length=MAX_RECIPIENT_CHARS, validators=[no_line_breaks]
    )
    subject = forms.CharField(
        label=_("Subject"),
        required=False,
        max_length=mime_out.MAX_SUBJECT_CHARS,
        validators=[no_line_breaks],
    )
    # The editor's HTML, copied here by compose.js; drafts.save sanitises it.
    html = forms.CharField(
        label=_("Message"),
        required=False,
        strip=False,
        max_length=MAX_HTML_CHARS,
        widget=forms.HiddenInput,
        error_messages={"max_length": _("The message is too long.")},
    )

    def __init__(self, user: User, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.senders = sender_choices(user)
        self.fields["sender"].choices = [(value, s[0]) for value, s in self.senders.items()]
        for name in ("to", "cc", "bcc"):
            self.fields[name].widget.attrs.update(
                {"autocomplete": "off", "spellcheck": "false", "data-recipients": ""}
            )
        self.fields["subject"].widget.attrs["autocomplete"] = "off"

    def clean_sender(self) -> tuple[MailAccount, Identity | None]:
        _label, account, identity = self.senders[self.cleaned_data["sender"]]
        return account, identity


class SendForm(forms.Form):
    """Send now (after the undo window) or at a time the user picks, in their time zone."""

    action = forms.ChoiceField(choices=[("send", "send"), ("schedule", "schedule")], required=False)
    send_at = forms.DateTimeField(
        label=_("Send at"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        error_messages={"invalid": _("Enter a date and a time.")},
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("action") != "schedule":
            cleaned["send_at"] = None
            return cleaned
        when: datetime | None = cleaned.get("send_at")
        if "send_at" in self.errors:
            return cleaned
        now = timezone.now()
        if when is None:
            self.add_error("send_at", _("Choose when to send it."))
        elif when <= now:
            self.add_error("send_at", _("Choose a time in the future."))
        elif when > now + MAX_SCHEDULE_AHEAD:
            self.add_error("send_at", _("Choose a time within a year."))
        return cleaned


class StartForm(forms.Form):
    """/compose/new/?account=…: which account to write from (the first one by default)."""

    account = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)


class ReplyForm(forms.Form):
    all = forms.BooleanField(required=False)


class ForwardForm(forms.Form):
    attachment = forms.BooleanField(required=False)


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class FilesField(forms.FileField):
    """One or more files from one <input type=file multiple>."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput)
        super().__init__(**kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[UploadedFile]:
        files = data if isinstance(data, list | tuple) else [data]
        return [super(FilesField, self).clean(one, initial) for one in files]


class AttachForm(forms.Form):
    file = FilesField(
        label=_("Attach files"),
        max_length=255,
        error_messages={
            "required": _("Choose a file to attach."),
            "empty": _("This file is empty."),
            "max_length": _("The file name is too long (at most 255 characters)."),
        },
    )


# Contacts ---------------------------------------------------------------------------------------


class ContactQueryForm(forms.Form):
    """The autocomplete's query string."""

    q = forms.CharField(required=False, max_length=200)


class ContactListForm(forms.Form):
    q = forms.CharField(label=_("Find a contact"), required=False, max_length=200)
    page = forms.IntegerField(required=False, min_value=1, max_value=100000)


class ContactForm(forms.Form):
    email = forms.EmailField(label=_("Address"), max_length=320)
    name = forms.CharField(
        label=_("Name"), required=False, max_length=200, validators=[no_line_breaks]
    )

    def clean_email(self) -> str:
        return str(self.cleaned_data["email"]).lower()


class ContactNameForm(forms.Form):
    name = forms.CharField(
        label=_("Name"), required=False, max_length=200, validators=[no_line_breaks]
    )


class ContactImportForm(forms.Form):
    file = forms.FileField(
        label=_("vCard file (.vcf)"),
        error_messages={
            "required": _("Choose a .vcf file to import."),
            "empty": _("This file is empty."),
        },
    )
