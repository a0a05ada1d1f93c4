from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("mailboxes", "0005_pop3_downloads")]

    operations = [
        # Rows stored before this were parsed in full: they are indexed.
        migrations.AddField(
            model_name="messagecontent",
            name="indexed",
            field=models.BooleanField(default=True),
        ),
        migrations.AlterField(
            model_name="messagecontent",
            name="indexed",
            field=models.BooleanField(default=False),
        ),
        migrations.AddIndex(
            model_name="messagecontent",
            index=models.Index(
                fields=["account", "-date"],
                condition=models.Q(indexed=False),
                name="mailboxes_content_unindexed",
            ),
        ),
    ]
