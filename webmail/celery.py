"""The Celery application. Configuration comes from Django settings (``CELERY_*``)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, Task
from kombu.serialization import dumps, loads

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webmail.settings")


class CourrierTask(Task):
    """Base task: when run eagerly (tests), arguments make the JSON round trip a broker imposes.

    Eager tasks would otherwise receive live Python objects, and a task that only works because it
    was handed a model instance instead of an ID would pass its tests and fail in production.
    """

    def apply(self, args: Any = None, kwargs: Any = None, *more: Any, **options: Any) -> Any:
        _content_type, _encoding, payload = dumps([args or (), kwargs or {}], serializer="json")
        args, kwargs = loads(payload, "application/json", "utf-8")
        return super().apply(args, kwargs, *more, **options)


app = Celery("webmail", task_cls=CourrierTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
