"""The API's list of a clinic's appointments, in order (starts_at, id), read from an index instead of sorted."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("scheduling", "0007_reminderlog_outbox"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="appointment",
            index=models.Index(fields=["clinic", "starts_at", "id"], name="appt_clinic_start"),
        ),
    ]
