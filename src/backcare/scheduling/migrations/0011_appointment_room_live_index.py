# The set-up page counts each room's upcoming appointments from this index alone (issue 14).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("scheduling", "0010_opened_holidays"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="appointment",
            index=models.Index(
                condition=models.Q(("status__in", ("arrived", "booked", "completed", "held", "in_treatment"))),
                fields=["room", "ends_at", "status", "hold_expires_at"],
                name="appt_live_room_end",
            ),
        ),
    ]
