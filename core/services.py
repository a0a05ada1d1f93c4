"""System health: what the health endpoint and, later, the admin dashboard report."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from kombu import Connection

from core.models import Heartbeat, SiteSettings

BROKER_TIMEOUT_SECONDS = 2.0
SITE_SETTINGS_CACHE_KEY = "core:site-settings"


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str = ""


def record_heartbeat(name: str) -> None:
    Heartbeat.objects.update_or_create(name=name, defaults={"seen_at": timezone.now()})


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return Check(False, type(exc).__name__)
    return Check(True)


def check_broker() -> Check:
    """Open (and close) a connection to the Celery broker, bounded in time."""
    try:
        with Connection(
            settings.CELERY_BROKER_URL,
            connect_timeout=BROKER_TIMEOUT_SECONDS,
            transport_options=getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}),
        ) as conn:
            conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)
    except Exception as exc:  # noqa: BLE001 -- any failure means "unreachable"; the type is reported
        return Check(False, type(exc).__name__)
    return Check(True)


def worker_last_seen() -> dt.datetime | None:
    beat = Heartbeat.objects.filter(name="worker").first()
    return beat.seen_at if beat else None


def site_settings() -> SiteSettings:
    """The site policy, cached: the second-factor check reads it on many requests."""
    current = cache.get(SITE_SETTINGS_CACHE_KEY)
    if current is None:
        current = SiteSettings.load()
        cache.set(SITE_SETTINGS_CACHE_KEY, current, timeout=300)
    return current


def save_site_settings(changed: SiteSettings, fields: list[str]) -> None:
    changed.save(update_fields=fields)
    forget_site_settings_cache()
    # Again once committed: a reader between the two deletions may have cached the old row.
    transaction.on_commit(forget_site_settings_cache)


def forget_site_settings_cache() -> None:
    cache.delete(SITE_SETTINGS_CACHE_KEY)
