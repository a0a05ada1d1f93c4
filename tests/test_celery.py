"""Tasks run eagerly in tests, but their arguments make the JSON round trip a broker imposes."""

from __future__ import annotations

import datetime as dt

import pytest
from celery import shared_task
from kombu.exceptions import EncodeError


@shared_task(name="tests.echo")
def echo(*args: object, **kwargs: object) -> list[object]:
    return [list(args), kwargs]


def test_eager_tasks_receive_arguments_as_a_broker_would_deliver_them() -> None:
    result = echo.delay((1, 2), when=dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)).get()
    # A tuple arrives as a list, exactly as it would from Redis.
    assert result[0] == [[1, 2]]
    assert result[1]["when"] == dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)


def test_a_task_handed_an_object_json_cannot_carry_fails_in_tests_too() -> None:
    with pytest.raises(EncodeError):
        echo.delay(object())


def test_every_scheduled_task_is_registered() -> None:
    """A name in the scheduler's table that no worker knows would be dropped at every beat."""
    from django.conf import settings

    from webmail.celery import app

    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "mailboxes.collect_orphan_files" in scheduled
    assert scheduled - set(app.tasks) == set()
