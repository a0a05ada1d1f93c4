from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

CODE_WIDGET = forms.TextInput(
    attrs={"autocomplete": "one-time-code", "inputmode": "text", "autofocus": True, "size": 12}
)


class SecondFactorForm(forms.Form):
    code = forms.CharField(
        label=_("Code"),
        max_length=16,
        widget=CODE_WIDGET,
        help_text=_("The 6-digit code of your authenticator app, or one of your backup codes."),
    )


class TotpConfirmForm(forms.Form):
    name = forms.CharField(
        label=_("Name of this authenticator"),
        max_length=64,
        initial=_("Authenticator app"),
        help_text=_("To tell your devices apart, e.g. “Phone”."),
    )
    code = forms.RegexField(
        label=_("Code shown by the app"),
        regex=r"^\s*\d{3}\s?\d{3}\s*$",
        error_messages={"invalid": _("Type the 6 digits the app shows.")},
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def clean_code(self) -> str:
        return self.cleaned_data["code"].replace(" ", "").strip()


class RenameDeviceForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=64)


class FreshProofForm(forms.Form):
    proof = forms.CharField(
        label=_("Your password or a current code"),
        max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
