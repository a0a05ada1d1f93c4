from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from zxcvbn import zxcvbn

# zxcvbn scores 0 (guessed in under a thousand tries) to 4; 3 means "safely unguessable" against
# an offline attack on a slow hash, which is what a leaked database with Django's hashers faces.
MINIMUM_SCORE = 3
# zxcvbn's cost grows with length; past this, a password is long enough to skip the check.
CHECKED_LENGTH = 100


class GuessablePasswordValidator:
    """Refuses passwords found in zxcvbn's bundled leak and word lists, or built from them."""

    def validate(self, password: str, user: Any = None) -> None:
        if len(password) > CHECKED_LENGTH:
            return
        hints = [
            str(getattr(user, name, "") or "") for name in ("email", "first_name", "last_name")
        ]
        if user is not None and getattr(user, "email", ""):
            hints.extend(user.email.replace("@", ".").split("."))
        result = zxcvbn(password, user_inputs=[hint for hint in hints if hint])
        if result["score"] < MINIMUM_SCORE:
            raise ValidationError(
                _(
                    "This password is too easy to guess: it is, or is built from, a common or "
                    "leaked one."
                ),
                code="password_guessable",
            )

    def get_help_text(self) -> str:
        return _("Your password can’t be a common or leaked password, or one easy to guess.")
