"""Inserting a sync batch's rows: COPY on PostgreSQL, ``bulk_create`` elsewhere.

A batch is a few hundred rows of a dozen and more columns. ``bulk_create`` prepares every value
through its field and, on PostgreSQL, sends them as arrays that psycopg quotes in Python: about
0.4 ms of client work a message in the sync's profile, more than parsing its header. COPY sends
the same rows in psycopg's C code. The rows are the models' own: defaults, ``pre_save`` and JSON
encoding as Django does them, and a constraint violation raises ``IntegrityError`` as an INSERT
would.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from django.db import OperationalError, connection, models, transaction
from django.db.models import JSONField, Model

# Fields whose Python value psycopg sends as it is. Exact types: a subclass (an encrypted text
# field, say) may change the value on its way to the database.
_PLAIN = {
    models.BigIntegerField,
    models.BooleanField,
    models.CharField,
    models.DateTimeField,
    models.EmailField,
    models.ForeignKey,
    models.IntegerField,
    models.PositiveIntegerField,
    models.PositiveSmallIntegerField,
    models.SmallIntegerField,
    models.TextField,
}


def insert(rows: Sequence[Model], *, set_ids: bool = False) -> None:
    """Insert `rows`, all of one model, in one statement; with `set_ids`, their ``pk`` is set.

    Raises ``IntegrityError`` when a row breaks a constraint; nothing is inserted then.
    """
    if not rows:
        return
    model = type(rows[0])
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(rows)  # sets the ids where the backend returns them
        return
    meta = model._meta
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    if set_ids:
        for row, pk in zip(rows, _next_ids(meta.db_table, meta.pk.column, len(rows)), strict=True):
            row.pk = pk
        fields.insert(0, meta.pk)
    prepare = [_preparer(field) for field in fields]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    sql = f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN"
    # The Django cursor has no COPY; the psycopg cursor inside it has.
    with (
        connection.cursor() as cursor,
        connection.wrap_database_errors,
        cursor.cursor.copy(sql) as copy,
    ):
        for row in rows:
            copy.write_row([value(row) for value in prepare])
    for row in rows:
        row._state.adding = False
        row._state.db = connection.alias


def _preparer(field: Any) -> Callable[[Model], Any]:
    if isinstance(field, JSONField):
        dumps = json.JSONEncoder(cls=field.encoder).encode if field.encoder else json.dumps

        def json_text(row: Model) -> str | None:
            value = field.pre_save(row, True)
            return None if value is None else dumps(value)

        return json_text
    if type(field) in _PLAIN:
        return lambda row: field.pre_save(row, True)
    return lambda row: field.get_db_prep_save(field.pre_save(row, True), connection)


def _next_ids(table: str, column: str, count: int) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [table, column, count],
        )
        return sorted(pk for (pk,) in cursor.fetchall())


def refresh_statistics(columns: dict[type[Model], Sequence[str]]) -> bool:
    """Have PostgreSQL sample the tables again, for the columns its planner weighs in lookups.

    Until it does, a table that grew fast (an account's first sync) keeps the statistics of a
    smaller one, and the planner, thinking the account holds a few dozen rows, reads all of
    them and filters rather than probe an index for each of a batch's values: a batch's
    Message-ID lookup took 48 ms at 30,000 messages, 3.7 ms once analysed. Only the named
    columns are sampled (not the bodies' text). Gives up after a short wait for a table's lock
    (autovacuum may hold it) and returns False then; elsewhere than PostgreSQL, does nothing.
    """
    if connection.vendor != "postgresql":
        return False
    quote = connection.ops.quote_name
    targets = []
    for model, names in columns.items():
        listed = ", ".join(quote(model._meta.get_field(name).column) for name in names)
        targets.append(f"{quote(model._meta.db_table)} ({listed})")
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '2s'")
            cursor.execute(f"ANALYZE {', '.join(targets)}")
    except OperationalError:
        return False
    return True
