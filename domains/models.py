from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from core.crypto import EncryptedTextField


class Security(models.TextChoices):
    TLS = "tls", _("TLS (implicit)")
    STARTTLS = "starttls", _("STARTTLS")
    PLAIN = "plain", _("None (insecure)")


class Domain(models.Model):
    """A mail domain the organisation runs: its servers (which configure its users' accounts),
    its policies, its DKIM keys and what DNS says about it."""

    name = models.CharField(
        _("domain"), max_length=253, unique=True, help_text=_("Stored in IDNA (punycode).")
    )
    active = models.BooleanField(_("active"), default=True)
    incoming_protocol = models.CharField(
        _("incoming protocol"),
        max_length=4,
        choices=[("imap", "IMAP"), ("pop3", "POP3")],
        default="imap",
    )
    incoming_host = models.CharField(_("incoming server"), max_length=253, blank=True)
    incoming_port = models.PositiveIntegerField(_("incoming port"), default=993)
    incoming_security = models.CharField(
        _("incoming security"), max_length=8, choices=Security.choices, default=Security.TLS
    )
    smtp_host = models.CharField(_("outgoing server"), max_length=253, blank=True)
    smtp_port = models.PositiveIntegerField(_("outgoing port"), default=465)
    smtp_security = models.CharField(
        _("outgoing security"), max_length=8, choices=Security.choices, default=Security.TLS
    )
    mfa_required = models.BooleanField(_("second factor required for its users"), default=False)
    max_attachments_mb = models.PositiveIntegerField(
        _("largest attachments (MB)"), null=True, blank=True
    )
    signup_allowed = models.BooleanField(_("sign-up allowed for its addresses"), default=False)
    mta_sts = models.BooleanField(_("check MTA-STS"), default=False)
    tls_rpt = models.BooleanField(_("check TLS-RPT"), default=False)
    admins = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="administered_domains",
        verbose_name=_("domain administrators"),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("mail domain")
        verbose_name_plural = _("mail domains")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.unicode_name

    def save(self, *args: object, **kwargs: object) -> None:
        super().save(*args, **kwargs)  # type: ignore[arg-type]
        from domains.policies import forget_cached_policies

        forget_cached_policies()  # a policy change applies at once

    @property
    def unicode_name(self) -> str:
        try:
            return self.name.encode("ascii").decode("idna")
        except UnicodeError:
            return self.name


class DkimKey(models.Model):
    """One DKIM key of a domain, with its selector, through its life:

    created → published (DNS shows exactly this key) → active (signing) → retired (still in DNS
    for a grace period, no longer signing) → removed (its record may go; the private key is
    erased).
    """

    class Algorithm(models.TextChoices):
        RSA = "rsa", "RSA"
        ED25519 = "ed25519", "Ed25519"

    class State(models.TextChoices):
        CREATED = "created", _("created")
        PUBLISHED = "published", _("published")
        ACTIVE = "active", _("active")
        RETIRED = "retired", _("retired")
        REMOVED = "removed", _("removed")

    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="dkim_keys")
    selector = models.CharField(_("selector"), max_length=63)
    algorithm = models.CharField(
        _("algorithm"), max_length=8, choices=Algorithm.choices, default=Algorithm.RSA
    )
    bits = models.PositiveSmallIntegerField(_("bits"), default=2048)
    private_key = EncryptedTextField(blank=True)  # PEM; erased once removed
    public_key = models.TextField()  # the p= value
    state = models.CharField(
        _("state"), max_length=10, choices=State.choices, default=State.CREATED
    )
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    remove_after = models.DateTimeField(null=True, blank=True)
    # Rotation: this key activates once DNS shows it, and then retires `replaces`.
    replaces = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("DKIM key")
        verbose_name_plural = _("DKIM keys")
        ordering = ["domain", "-created_at"]
        constraints = [
            models.UniqueConstraint("domain", "selector", name="domains_dkimkey_selector_unique")
        ]

    def __str__(self) -> str:
        return f"{self.selector}._domainkey.{self.domain.name} ({self.algorithm})"


class DnsCheckResult(models.Model):
    """One check of a domain's DNS, kept with its time (the latest per kind is the state)."""

    class Status(models.TextChoices):
        OK = "ok", _("ok")
        WARNING = "warning", _("warning")
        ERROR = "error", _("error")
        PENDING = "pending", _("pending")

    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="dns_results")
    run = models.PositiveIntegerField()  # the checks of one pass share a number
    kind = models.CharField(max_length=80)
    status = models.CharField(max_length=8, choices=Status.choices)
    problem = models.CharField(max_length=40, blank=True)
    found = models.TextField(blank=True)
    expected = models.TextField(blank=True)
    fix = models.TextField(blank=True)
    params = models.JSONField(default=dict)
    checked_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["domain", "-run", "kind"]
        indexes = [models.Index(fields=["domain", "-run"], name="domains_dns_latest")]

    def __str__(self) -> str:
        return f"{self.domain} {self.kind}: {self.status}"


class AuditEntry(models.Model):
    """An administrator's action: who, as what, from where, what changed."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    user_email = models.CharField(max_length=320)
    role = models.CharField(max_length=40)  # "superuser", "staff", "domain admin"
    client_address = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=80)
    target = models.CharField(max_length=300)
    before = models.JSONField(default=dict)
    after = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit log")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.user_email} {self.action} {self.target}"
