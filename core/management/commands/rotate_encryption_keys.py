from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from core import crypto

BATCH = 500


class Command(BaseCommand):
    help = "Re-encrypt every stored secret with the first key of ENCRYPTION_KEYS."

    def handle(self, *args: Any, **options: Any) -> None:
        # Loading decrypts with whichever key fits; saving encrypts with the first one.
        for model, field_name in crypto.encrypted_fields():
            queryset = model._default_manager.exclude(**{field_name: ""}).only("pk", field_name)
            done = 0
            last_pk: Any = None
            while True:
                page = queryset.order_by("pk")
                if last_pk is not None:
                    page = page.filter(pk__gt=last_pk)
                rows = list(page[:BATCH])
                if not rows:
                    break
                with transaction.atomic():
                    model._default_manager.bulk_update(rows, [field_name])
                done += len(rows)
                last_pk = rows[-1].pk
            self.stdout.write(f"{model._meta.label}.{field_name}: {done} re-encrypted")
