"""Spam filtering's state: rule sets by scope, allow/block lists, the servers whose
Authentication-Results are trusted, one classifier per user and one verdict per message."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from mailboxes.models import MessageContent


class RuleSet(models.Model):
    """Rules (the JSON of `mailcore.rules`) for everyone, a domain's users or one user.

    Checked with `mailcore.rules.check_rules` by every form that writes one; the pipeline
    compiles them again and skips a set that no longer compiles (and says so in the verdict).
    """

    class Scope(models.TextChoices):
        GLOBAL = "global", _("Everyone")
        DOMAIN = "domain", _("A domain's users")
        USER = "user", _("One user")

    scope = models.CharField(_("applies to"), max_length=8, choices=Scope.choices)
    domain = models.ForeignKey(
        "domains.Domain",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="spam_rule_sets",
        verbose_name=_("domain"),
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="spam_rule_sets",
        verbose_name=_("user"),
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    rules = models.JSONField(_("rules"), default=list, blank=True)
    # The Junk threshold of the score; empty: the wider scope's (then 5).
    threshold = models.FloatField(_("Junk threshold"), null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("rule set")
        verbose_name_plural = _("rule sets")
        ordering = ["scope", "domain__name", "user__email"]
        constraints = [
            models.CheckConstraint(
                condition=Q(scope="global", domain__isnull=True, user__isnull=True)
                | Q(scope="domain", domain__isnull=False, user__isnull=True)
                | Q(scope="user", domain__isnull=True, user__isnull=False),
                name="spam_ruleset_scope_owner",
            ),
            models.UniqueConstraint(
                "scope", condition=Q(scope="global"), name="spam_ruleset_one_global"
            ),
            models.UniqueConstraint("domain", name="spam_ruleset_one_per_domain"),
            models.UniqueConstraint("user", name="spam_ruleset_one_per_user"),
        ]

    def __str__(self) -> str:
        if self.scope == self.Scope.DOMAIN and self.domain is not None:
            return f"{self.domain}"
        if self.scope == self.Scope.USER and self.user is not None:
            return f"{self.user}"
        return str(self.Scope(self.scope).label)


class SenderEntry(models.Model):
    """One line of a user's allow or block list: an address or a domain, with * and ?."""

    class Kind(models.TextChoices):
        ALLOW = "allow", _("Always accept")
        BLOCK = "block", _("Always send to Junk")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="spam_senders"
    )
    kind = models.CharField(_("list"), max_length=5, choices=Kind.choices)
    # Lower case. With "@": an address pattern; without: a domain pattern (and its subdomains).
    pattern = models.CharField(_("address or domain"), max_length=320)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("allowed or blocked sender")
        verbose_name_plural = _("allowed and blocked senders")
        ordering = ["kind", "pattern"]
        constraints = [
            models.UniqueConstraint("user", "pattern", name="spam_senderentry_user_pattern")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.pattern}"


class TrustedServer(models.Model):
    """A receiving server whose Authentication-Results headers are believed: its authserv-id
    and the host names it writes in Received headers. For one domain's users, or everyone's."""

    domain = models.ForeignKey(
        "domains.Domain",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="trusted_servers",
        verbose_name=_("domain"),
        help_text=_("Empty: trusted for every user."),
    )
    authserv_id = models.CharField(
        _("authserv-id"),
        max_length=253,
        help_text=_("The first word of the Authentication-Results headers it writes."),
    )
    hosts = models.TextField(
        _("host names"),
        blank=True,
        help_text=_(
            "One a line, as the server names itself in the “by” part of its Received headers. "
            "Empty: the authserv-id."
        ),
    )

    class Meta:
        verbose_name = _("trusted receiving server")
        verbose_name_plural = _("trusted receiving servers")
        ordering = ["authserv_id"]

    def __str__(self) -> str:
        return self.authserv_id

    def host_names(self) -> list[str]:
        names = [line.strip().lower() for line in self.hosts.splitlines() if line.strip()]
        return names or [self.authserv_id.lower()]


class ClassifierState(models.Model):
    """One user's Bayes classifier (`mailcore.bayes.Classifier.to_dict`), small and bounded."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="spam_classifier"
    )
    state = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"classifier of {self.user}"


class TrainedMessage(models.Model):
    """What a message was taught to its user's classifier as, so that changing one's mind
    untrains it first and training it twice the same way does nothing."""

    content = models.OneToOneField(
        MessageContent, on_delete=models.CASCADE, related_name="spam_training"
    )
    is_spam = models.BooleanField()

    def __str__(self) -> str:
        return f"{self.content_id} {'spam' if self.is_spam else 'ham'}"


class Verdict(models.Model):
    """What the filter found and did when the message arrived, and why."""

    class Action(models.TextChoices):
        INBOX = "inbox", _("Left in the Inbox")
        JUNK = "junk", _("Moved to Junk")
        TRASH = "trash", _("Moved to the Trash")
        FOLDER = "folder", _("Moved to a folder")
        ERROR = "error", _("Not filtered (error)")

    content = models.OneToOneField(
        MessageContent, on_delete=models.CASCADE, related_name="spam_verdict"
    )
    auth = models.JSONField(default=dict)  # mailcore.senderauth.SenderAuth.to_dict, flags included
    score = models.FloatField(default=0.0)
    threshold = models.FloatField(default=5.0)
    classifier_score = models.FloatField(null=True, blank=True)
    # mailcore.rules.Outcome.to_dict()["matches"], ["reason"] and ["errors"].
    matches = models.JSONField(default=list)
    reason = models.JSONField(null=True, blank=True)
    errors = models.JSONField(default=list)
    action = models.CharField(max_length=8, choices=Action.choices, default=Action.INBOX)
    folder = models.CharField(max_length=255, blank=True)
    marked_read = models.BooleanField(default=False)
    flagged = models.BooleanField(default=False)
    error = models.CharField(max_length=300, blank=True)  # why the message was not filtered
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("spam verdict")
        verbose_name_plural = _("spam verdicts")

    def __str__(self) -> str:
        return f"{self.content_id}: {self.action} ({self.score:g})"

    def outcome_dict(self) -> dict[str, Any]:
        return {"matches": self.matches, "reason": self.reason, "errors": self.errors}
