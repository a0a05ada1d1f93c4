"""Precision and recall of the whole spam pipeline on a labelled corpus (mailcore.spamquality)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from mailcore.rules import RulesInvalid
from mailcore.spamquality import load_corpus, measure
from spam.models import RuleSet
from spam.pipeline import CLASSIFIER_RULES, DEFAULT_GLOBAL_RULES

DEFAULT_CORPUS = Path(settings.BASE_DIR) / "tests" / "fixtures" / "spam"


class Command(BaseCommand):
    help = (
        "Run sender authentication, the site's rules and the classifier (trained by k-fold "
        "cross-validation) over a corpus of spam/ and ham/ .eml files; print precision, "
        "recall, counts and the misclassified messages."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
        parser.add_argument("--folds", type=int, default=5)
        parser.add_argument(
            "--authserv-id",
            action="append",
            dest="authserv_ids",
            help="a trusted authserv-id (repeatable); the corpus's is mx.courrier.test",
        )
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        corpus: Path = options["corpus"]
        if not (corpus / "spam").is_dir() or not (corpus / "ham").is_dir():
            raise CommandError(f"{corpus} needs spam/ and ham/ folders of .eml files")
        messages = load_corpus(corpus)
        if not messages:
            raise CommandError(f"no .eml file in {corpus}/spam or {corpus}/ham")
        if options["folds"] < 1:
            raise CommandError("--folds must be 1 or more")
        rules, threshold = site_rules()
        try:
            quality = measure(
                messages,
                {"threshold": threshold, "rules": rules},
                folds=options["folds"],
                trusted_authserv_ids=tuple(options["authserv_ids"] or ["mx.courrier.test"]),
            )
        except RulesInvalid as exc:
            raise CommandError(f"the site's rules are not valid: {exc}") from exc
        if options["json"]:
            self.stdout.write(json.dumps(quality.to_dict(), indent=2))
            return
        spam = quality.true_positives + quality.false_negatives
        ham = quality.false_positives + quality.true_negatives
        self.stdout.write(f"corpus: {corpus} ({spam} spam, {ham} ham)")
        self.stdout.write(f"precision: {quality.precision:.3f}")
        self.stdout.write(f"recall: {quality.recall:.3f}")
        self.stdout.write(
            f"spam to Junk: {quality.true_positives}, spam missed: {quality.false_negatives}, "
            f"ham to Junk: {quality.false_positives}, ham kept: {quality.true_negatives}"
        )
        for name in quality.missed:
            self.stdout.write(f"missed spam: {name}")
        for name in quality.wrongly_junked:
            self.stdout.write(f"ham sent to Junk: {name}")


def site_rules() -> tuple[list[Any], float]:
    """Everyone's rules as the pipeline runs them (the defaults without a global rule set),
    with the classifier's; the global threshold."""
    row = RuleSet.objects.filter(scope=RuleSet.Scope.GLOBAL).first()
    if row is None:
        return [*DEFAULT_GLOBAL_RULES, *CLASSIFIER_RULES], 5.0
    own = list(row.rules) if row.enabled and isinstance(row.rules, list) else []
    return [*own, *CLASSIFIER_RULES], row.threshold if row.threshold is not None else 5.0
