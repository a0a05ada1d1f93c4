"""What users and administrators change in spam filtering: each call one transaction."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.models import User
from spam.models import RuleSet, SenderEntry


def own_rule_set(user: User) -> RuleSet:
    """The user's rule set, created empty on first use."""
    found, _created = RuleSet.objects.get_or_create(scope=RuleSet.Scope.USER, user=user)
    return found


@transaction.atomic
def add_sender(user: User, kind: str, pattern: str) -> SenderEntry:
    """Put an address or domain pattern on the allow or block list (moved from the other one
    if it was there)."""
    entry, _created = SenderEntry.objects.update_or_create(
        user=user, pattern=pattern.strip().lower()[:320], defaults={"kind": kind}
    )
    return entry


def remove_sender(entry: SenderEntry) -> None:
    entry.delete()


@transaction.atomic
def save_rules(user: User, rules: list[Any], threshold: float | None) -> RuleSet:
    """Replace the user's own rules (already checked by the form) and threshold."""
    found = RuleSet.objects.select_for_update().get(pk=own_rule_set(user).pk)
    found.rules = rules
    found.threshold = threshold
    found.save(update_fields=["rules", "threshold", "updated_at"])
    return found


@transaction.atomic
def add_rule(user: User, rule: dict[str, Any]) -> RuleSet:
    found = RuleSet.objects.select_for_update().get(pk=own_rule_set(user).pk)
    found.rules = [*(found.rules if isinstance(found.rules, list) else []), rule]
    found.save(update_fields=["rules", "updated_at"])
    return found


@transaction.atomic
def remove_rule(user: User, index: int) -> bool:
    found = RuleSet.objects.select_for_update().get(pk=own_rule_set(user).pk)
    rules = found.rules if isinstance(found.rules, list) else []
    if not 0 <= index < len(rules):
        return False
    found.rules = rules[:index] + rules[index + 1 :]
    found.save(update_fields=["rules", "updated_at"])
    return True
