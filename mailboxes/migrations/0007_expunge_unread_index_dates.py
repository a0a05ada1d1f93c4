from django.db import migrations, models
from django.db.models.functions import Now


def date_undated_messages(apps, schema_editor):
    # Lists sort on the date; an undated copy now sorts as arriving when this ran.
    Message = apps.get_model("mailboxes", "Message")
    Message.objects.filter(date__isnull=True).update(date=Now())


class Migration(migrations.Migration):
    dependencies = [("mailboxes", "0006_content_indexed")]

    operations = [
        migrations.AlterField(
            model_name="pendingaction",
            name="kind",
            field=models.CharField(
                choices=[
                    ("add_flags", "Add Flags"),
                    ("remove_flags", "Remove Flags"),
                    ("move", "Move"),
                    ("expunge", "Expunge"),
                ],
                max_length=16,
            ),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                condition=models.Q(seen=False), fields=["folder"], name="mailboxes_msg_unread"
            ),
        ),
        migrations.RunPython(date_undated_messages, migrations.RunPython.noop),
    ]
