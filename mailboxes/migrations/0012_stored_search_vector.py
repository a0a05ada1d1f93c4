"""The full-text vector of search_text, stored in a column PostgreSQL fills (a generated column)
and indexed, instead of an index on the expression.

A search that walks the messages by date checks each one against the query: with the vector
stored, that check reads it; with only the expression indexed, it recomputed
``to_tsvector(search_text)`` on every row (half a millisecond for a long message). The column is
the database's own: the model does not declare it, so no INSERT or UPDATE from Django or a COPY
names it, and PostgreSQL recomputes it whenever search_text changes (mailboxes.search reads it).
SQLite has no full-text vectors: nothing changes there.
"""

from django.db import migrations

ADD_COLUMN = (
    "ALTER TABLE mailboxes_messagecontent ADD COLUMN IF NOT EXISTS search_vector tsvector"
    " GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, COALESCE(search_text, ''))) STORED"
)
CREATE_INDEX = (
    "CREATE INDEX IF NOT EXISTS mailboxes_content_vector ON mailboxes_messagecontent"
    " USING gin (search_vector)"
)
# Migration 0004's index on the expression, which the column replaces.
OLD_INDEX = (
    "CREATE INDEX IF NOT EXISTS mailboxes_content_fts ON mailboxes_messagecontent "
    "USING gin (to_tsvector('simple'::regconfig, COALESCE(search_text, '')))"
)


def store_vector(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ADD_COLUMN)
        schema_editor.execute(CREATE_INDEX)
        schema_editor.execute("DROP INDEX IF EXISTS mailboxes_content_fts")


def drop_vector(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(OLD_INDEX)
        schema_editor.execute("DROP INDEX IF EXISTS mailboxes_content_vector")
        schema_editor.execute(
            "ALTER TABLE mailboxes_messagecontent DROP COLUMN IF EXISTS search_vector"
        )


class Migration(migrations.Migration):
    dependencies = [("mailboxes", "0011_content_raw_offset")]

    operations = [migrations.RunPython(store_vector, drop_vector)]
