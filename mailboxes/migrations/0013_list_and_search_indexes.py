"""What the lists and searches of a big mailbox need (bench/README.md, "The web benchmark").

- Messages by date across folders: a search or Starred walks the newest first and stops after a
  page, instead of sorting every message of the user's folders.
- PostgreSQL: a conversation's senders and attachment flag beside its id in one index, so that
  the summary of a page's conversations (mail.listing) reads the index alone.
- PostgreSQL: statistics on the upper-cased sender name and address, which ``from:`` compares
  with LIKE: without them the planner guesses a match rate 50 times too low and reads every
  message that has the query's words instead of walking the newest first.
"""

from django.db import migrations, models

CREATE = [
    "CREATE INDEX IF NOT EXISTS mailboxes_content_conv_senders ON mailboxes_messagecontent"
    " (conversation_id) INCLUDE (id, from_name, from_email, has_attachments)",
    # As mailboxes.search writes them (Django's icontains): UPPER("from_name"::text).
    "CREATE STATISTICS IF NOT EXISTS mailboxes_content_from_name_stats"
    " ON (upper(from_name::text)) FROM mailboxes_messagecontent",
    "CREATE STATISTICS IF NOT EXISTS mailboxes_content_from_email_stats"
    " ON (upper(from_email::text)) FROM mailboxes_messagecontent",
]
DROP = [
    "DROP STATISTICS IF EXISTS mailboxes_content_from_email_stats",
    "DROP STATISTICS IF EXISTS mailboxes_content_from_name_stats",
    "DROP INDEX IF EXISTS mailboxes_content_conv_senders",
]


def create(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    for statement in CREATE:
        # Statistics on expressions came with PostgreSQL 14; before, the index is all there is.
        if "STATISTICS" not in statement or connection.get_database_version() >= (14,):
            schema_editor.execute(statement)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in DROP:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("mailboxes", "0012_stored_search_vector")]

    operations = [
        migrations.AddIndex(
            model_name="message",
            index=models.Index(fields=["-date", "-id"], name="mailboxes_msg_date"),
        ),
        migrations.RunPython(create, drop),
    ]
