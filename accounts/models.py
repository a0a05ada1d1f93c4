from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _


class EmailUserManager(UserManager["User"]):
    """Users are identified by their email address; there is no username."""

    def _create_user(  # type: ignore[override]  # no username argument
        self, email: str, password: str | None, **extra_fields: Any
    ) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(  # type: ignore[override]
        self, email: str, password: str | None = None, **extra_fields: Any
    ) -> User:
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(  # type: ignore[override]
        self, email: str, password: str | None = None, **extra_fields: Any
    ) -> User:
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        if not (extra_fields["is_staff"] and extra_fields["is_superuser"]):
            raise ValueError("A superuser must have is_staff and is_superuser set.")
        return self._create_user(email, password, **extra_fields)


class User(AbstractUser):
    """A person who signs in to Courrier. Their mail accounts live in ``mailboxes``."""

    username = None  # type: ignore[assignment]  # sign-in is by email address
    email = models.EmailField(_("email address"), max_length=254, unique=True)
    # Kept by accounts.services whenever a confirmed device is added or the last one removed, so
    # that the per-request policy check needs no query of the device tables.
    has_second_factor = models.BooleanField(_("has a second factor"), default=False)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = EmailUserManager()  # type: ignore[misc]  # the manager is typed for this model

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.email


class SecurityEvent(models.Model):
    """What happened to an account's security, for its owner and for admins. Never a secret."""

    class Kind(models.TextChoices):
        SIGNED_IN = "signed_in", _("Signed in")
        SIGN_IN_FAILED = "sign_in_failed", _("Sign-in failed")
        SIGNED_OUT = "signed_out", _("Signed out")
        SECOND_FACTOR_USED = "second_factor_used", _("Second factor used")
        SECOND_FACTOR_FAILED = "second_factor_failed", _("Second factor failed")
        DEVICE_ADDED = "device_added", _("Authenticator added")
        DEVICE_REMOVED = "device_removed", _("Authenticator removed")
        BACKUP_CODE_USED = "backup_code_used", _("Backup code used")
        BACKUP_CODES_REGENERATED = "backup_codes_regenerated", _("Backup codes regenerated")
        PASSWORD_CHANGED = "password_changed", _("Password changed")
        PASSWORD_RESET = "password_reset", _("Password reset")
        SESSIONS_ENDED = "sessions_ended", _("Other sessions signed out")
        RATE_LIMITED = "rate_limited", _("Too many attempts")

    user = models.ForeignKey(
        User, on_delete=models.CASCADE, null=True, blank=True, related_name="security_events"
    )
    kind = models.CharField(_("event"), max_length=32, choices=Kind.choices)
    # The address typed at a failed sign-in when no user matches it (bounded, never a password).
    attempted_email = models.CharField(_("address tried"), max_length=254, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("browser"), max_length=300, blank=True)
    detail = models.CharField(_("detail"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("security event")
        verbose_name_plural = _("security events")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="accounts_event_user_recent")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.user or self.attempted_email}"
