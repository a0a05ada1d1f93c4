from __future__ import annotations

from datetime import datetime, timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mail.listing import Cursor
from mail.models import TIME_ZONES, Preferences
from mail.services import Action
from mailboxes.actions import valid_keyword


class ListForm(forms.Form):
    """The query string of a list page."""

    after = forms.CharField(required=False, max_length=100)

    def clean_after(self) -> Cursor | None:
        value = self.cleaned_data["after"]
        if not value:
            return None
        cursor = Cursor.parse(value)
        if cursor is None:
            raise forms.ValidationError(_("This page link is not valid."))
        return cursor


class SearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=500, strip=True)
    after = ListForm.base_fields["after"]

    clean_after = ListForm.clean_after


class ActionForm(forms.Form):
    """An action on a selection: conversations and single messages, from a view."""

    action = forms.ChoiceField(choices=[(a.value, a.value) for a in Action])
    view = forms.CharField(max_length=40)
    q = forms.CharField(required=False, max_length=500)
    conversation = forms.TypedMultipleChoiceField(coerce=int, required=False, choices=())
    message = forms.TypedMultipleChoiceField(coerce=int, required=False, choices=())
    target = forms.IntegerField(required=False, min_value=1)
    label = forms.CharField(required=False, max_length=64, strip=True)
    snooze = forms.ChoiceField(
        required=False,
        choices=[
            ("", ""),
            ("later", _("Later today")),
            ("tomorrow", _("Tomorrow")),
            ("next_week", _("Next week")),
            ("custom", _("Pick a date and time")),
        ],
    )
    until = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    next = forms.CharField(required=False, max_length=2000)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        # Ids are checked against the user's own mail by the service, not listed here.
        for name in ("conversation", "message"):
            self.fields[name].valid_value = _is_id  # type: ignore[attr-defined]

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        if not cleaned.get("conversation") and not cleaned.get("message"):
            raise forms.ValidationError(_("Select at least one conversation."))
        action = cleaned.get("action")
        if action == Action.MOVE and not cleaned.get("target"):
            raise forms.ValidationError(_("Choose the folder to move to."))
        if action in (Action.LABEL, Action.UNLABEL) and not valid_keyword(
            cleaned.get("label") or ""
        ):
            raise forms.ValidationError(
                _(
                    "A label is one word of at most 64 letters (without accents), digits "
                    "and - _ . / + &."
                )
            )
        if action == Action.SNOOZE:
            cleaned["until"] = snooze_until(cleaned.get("snooze") or "", cleaned.get("until"))
            if cleaned["until"] is None or cleaned["until"] <= timezone.now():
                raise forms.ValidationError(_("Choose when the conversation comes back."))
        if len(cleaned.get("conversation") or []) + len(cleaned.get("message") or []) > 1000:
            raise forms.ValidationError(_("Select at most 1,000 conversations at a time."))
        return cleaned


def snooze_until(choice: str, custom: datetime | None) -> datetime | None:
    """When a snooze ends, in the current (the user's) time zone: 8:00 for days to come."""
    now = timezone.localtime()
    morning = now.replace(hour=8, minute=0, second=0, microsecond=0)
    if choice == "later":
        return now + timedelta(hours=3)
    if choice == "tomorrow":
        return morning + timedelta(days=1)
    if choice == "next_week":
        return morning + timedelta(days=7 - now.weekday())  # Monday
    if choice == "custom":
        return custom
    return None


def _is_id(value: object) -> bool:
    return str(value).isdigit() and 0 < int(str(value)) < 2**63


class PreferencesForm(forms.ModelForm):
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=[(z, z) for z in TIME_ZONES])

    class Meta:
        model = Preferences
        fields = [
            "display_name",
            "language",
            "time_zone",
            "conversation_view",
            "page_size",
            "images",
            "signature",
            "shortcuts",
            "undo_send_seconds",
        ]
        widgets = {"signature": forms.Textarea(attrs={"rows": 4})}
