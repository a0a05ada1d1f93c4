"""The conversation id on each message too, so that a list's conversation summaries
(mail.listing) read the message table alone instead of joining every message of the listed
conversations to its content (bench/README.md, "The web benchmark").

Filled from the content in one UPDATE. On PostgreSQL the index also holds what the summaries
read of a message, so that they are answered from the index.
"""

from django.db import migrations, models
from django.db.models import OuterRef, Subquery

# What mail.listing._summaries reads of a message besides its conversation and folder.
COVERING = (
    "CREATE INDEX mailboxes_msg_conversation ON mailboxes_message"
    " (conversation_id, folder_id) INCLUDE (id, content_id, seen, flagged, date, keywords)"
)
PLAIN = "CREATE INDEX mailboxes_msg_conversation ON mailboxes_message (conversation_id, folder_id)"


def backfill(apps, schema_editor):
    Message = apps.get_model("mailboxes", "Message")
    MessageContent = apps.get_model("mailboxes", "MessageContent")
    content = MessageContent.objects.filter(pk=OuterRef("content_id"))
    Message.objects.update(conversation_id=Subquery(content.values("conversation_id")[:1]))


def create_index(apps, schema_editor):
    postgresql = schema_editor.connection.vendor == "postgresql"
    schema_editor.execute(COVERING if postgresql else PLAIN)


def drop_index(apps, schema_editor):
    schema_editor.execute("DROP INDEX mailboxes_msg_conversation")


class Migration(migrations.Migration):
    dependencies = [
        ("mailboxes", "0013_list_and_search_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="conversation",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=models.deletion.SET_NULL,
                related_name="messages",
                to="mailboxes.conversation",
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(
                    model_name="message",
                    index=models.Index(
                        fields=["conversation", "folder"], name="mailboxes_msg_conversation"
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(create_index, drop_index)],
        ),
    ]
