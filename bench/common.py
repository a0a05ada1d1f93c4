"""What the benchmarks share: their throwaway PostgreSQL databases."""

from __future__ import annotations

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
