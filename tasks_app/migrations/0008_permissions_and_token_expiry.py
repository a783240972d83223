"""Permissions of their own for the destructive built-in jobs (cleanup deletes history,
send_email mails in the organisation's name), and an optional expiry on API tokens.

No group is given the new permissions: who may run them is a decision to make (in the admin,
Groups), not to inherit from the general launch permission."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("tasks_app", "0007_params_trigram_search")]

    operations = [
        migrations.AlterModelOptions(
            name="run",
            options={
                "ordering": ("-queued_at", "-id"),
                "permissions": [
                    ("launch_job", "Can launch jobs"),
                    ("retry_run", "Can retry runs"),
                    ("cancel_run", "Can cancel runs"),
                    ("manage_schedules", "Can manage schedules"),
                    ("run_cleanup", "Can run the cleanup job (deletes run history)"),
                    ("send_email", "Can send emails with the send-email job"),
                ],
            },
        ),
        migrations.AddField(
            model_name="apitoken",
            name="expires_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
