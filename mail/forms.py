from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from mail.listing import Cursor
from mail.models import TIME_ZONES, Preferences
from mail.services import Action


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
        if cleaned.get("action") == Action.MOVE and not cleaned.get("target"):
            raise forms.ValidationError(_("Choose the folder to move to."))
        if len(cleaned.get("conversation") or []) + len(cleaned.get("message") or []) > 1000:
            raise forms.ValidationError(_("Select at most 1,000 conversations at a time."))
        return cleaned


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
        ]
        widgets = {"signature": forms.Textarea(attrs={"rows": 4})}
