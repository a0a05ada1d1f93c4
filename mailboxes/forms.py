from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from mailboxes.models import MailAccount, Security

PORT_VALIDATION = {"min_value": 1, "max_value": 65535}


class MailAccountForm(forms.ModelForm):
    password = forms.CharField(
        label=_("Password"), max_length=1024, widget=forms.PasswordInput(render_value=False)
    )
    smtp_password = forms.CharField(
        label=_("Password for sending"),
        max_length=1024,
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Leave empty to use the same as for receiving."),
    )
    incoming_port = forms.IntegerField(label=_("Port"), initial=993, **PORT_VALIDATION)
    smtp_port = forms.IntegerField(label=_("Port"), initial=465, **PORT_VALIDATION)

    class Meta:
        model = MailAccount
        fields = [
            "email",
            "display_name",
            "protocol",
            "incoming_host",
            "incoming_port",
            "incoming_security",
            "username",
            "password",
            "smtp_host",
            "smtp_port",
            "smtp_security",
            "smtp_username",
            "smtp_password",
            "allow_insecure",
            "pop3_leave_on_server",
            "pop3_delete_after_days",
            "pop3_delete_when_deleted",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        plain = Security.PLAIN.value
        if not data.get("allow_insecure"):
            for field in ("incoming_security", "smtp_security"):
                if data.get(field) == plain:
                    self.add_error(
                        field,
                        _(
                            "Without encryption your password and mail cross the network in "
                            "clear. Choose TLS or STARTTLS, or tick “allow unencrypted "
                            "connections” if you really must."
                        ),
                    )
        return data


class AddressForm(forms.Form):
    """The first step of adding an account: the address, from which settings are looked up."""

    email = forms.EmailField(label=_("Email address"), max_length=254)
