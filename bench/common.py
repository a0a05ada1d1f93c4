"""What the benchmarks share: their throwaway PostgreSQL databases, a mailbox check, figures."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql

POSTGRES = "postgresql://postgres@127.0.0.1:5432"


def create_database(name: str) -> str:
    """Create an empty database; returns its URL for DATABASE_URL."""
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"{POSTGRES}/{name}"


def drop_database(name: str, *, django_ready: bool = True) -> None:
    """Drop a benchmark's database, Django's connections to it closed first."""
    if django_ready:
        from django.db import connections

        connections.close_all()
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def mailbox_intact(stack: Any, address: str, counts: Mapping[str, int]) -> bool:
    """Whether every folder of the mailbox still holds what was generated (flags may have
    changed): the mail stack is shared, and something else may have emptied it."""
    with stack.imap(address) as client:
        for name, expected in counts.items():
            try:
                found = client.folder_status(name, [b"MESSAGES"])[b"MESSAGES"]
            except client.Error:
                found = None  # the folder is gone
            if found != expected:
                print(f"{name}: Dovecot has {found} messages, {expected} expected", flush=True)
                return False
    return True


def fmt(value: float | None) -> str:
    """A figure for the tables: three significant digits or so, a dash when not measured."""
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"
