"""The day's flow: an appointment is booked, arrives, is in treatment and completed (or is a no-show, or cancelled
late), and links the session note written for it.

Arrived, in treatment and completed keep the appointment's time (see `LIVE_STATUSES` in models.py), so the partial
busy indexes are rebuilt for the new list and, on PostgreSQL, the exclusion constraints of migration 0002 are
replaced by the same constraints over the new statuses (no-op on SQLite).
"""

import django.db.models.deletion
from django.apps.registry import Apps
from django.conf import settings
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

OLD_LIVE = "status IN ('booked', 'held') AND NOT override"
NEW_LIVE = "status IN ('arrived', 'booked', 'completed', 'held', 'in_treatment') AND NOT override"
CONSTRAINTS = (
    ("scheduling_no_therapist_overlap", "therapist_id WITH =, tstzrange(busy_from, busy_until, '[)') WITH &&"),
    ("scheduling_no_room_overlap", "room_id WITH =, tstzrange(busy_from, busy_until, '[)') WITH &&"),
    ("scheduling_no_client_overlap", "client_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&"),
)


def _replace(schema_editor: BaseDatabaseSchemaEditor, live: str) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, columns in CONSTRAINTS:
        schema_editor.execute(f"ALTER TABLE scheduling_appointment DROP CONSTRAINT {name}")
        schema_editor.execute(
            f"ALTER TABLE scheduling_appointment ADD CONSTRAINT {name} EXCLUDE USING gist ({columns}) WHERE ({live})"
        )


def widen(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _replace(schema_editor, NEW_LIVE)


def narrow(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _replace(schema_editor, OLD_LIVE)


class Migration(migrations.Migration):
    dependencies = [
        ("clinic", "0015_client_list_and_name_search"),
        ("scheduling", "0008_appointment_list_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="appointment",
            name="appt_busy_clinic",
        ),
        migrations.RemoveIndex(
            model_name="appointment",
            name="appt_busy_therapist",
        ),
        migrations.RemoveIndex(
            model_name="appointment",
            name="appt_busy_client",
        ),
        migrations.AddField(
            model_name="appointment",
            name="session",
            field=models.OneToOneField(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="appointment",
                to="clinic.treatmentsession",
            ),
        ),
        migrations.AddField(
            model_name="appointment",
            name="status_changed_at",
            field=models.DateTimeField(blank=True, help_text="When the status last changed.", null=True),
        ),
        migrations.AlterField(
            model_name="appointment",
            name="status",
            field=models.CharField(
                choices=[
                    ("held", "Offered (held for a waitlisted client)"),
                    ("booked", "Booked"),
                    ("arrived", "Arrived"),
                    ("in_treatment", "In treatment"),
                    ("completed", "Completed"),
                    ("no_show", "Did not come"),
                    ("cancelled", "Cancelled"),
                    ("late_cancelled", "Cancelled late (inside the cancellation window)"),
                    ("expired", "Offer expired"),
                    ("declined", "Offer declined"),
                ],
                default="booked",
                max_length=20,
            ),
        ),
        migrations.AddIndex(
            model_name="appointment",
            index=models.Index(
                condition=models.Q(("status__in", ("arrived", "booked", "completed", "held", "in_treatment"))),
                fields=[
                    "clinic",
                    "busy_from",
                    "busy_until",
                    "starts_at",
                    "ends_at",
                    "status",
                    "hold_expires_at",
                    "therapist",
                    "room",
                    "client",
                    "id",
                ],
                name="appt_busy_clinic",
            ),
        ),
        migrations.AddIndex(
            model_name="appointment",
            index=models.Index(
                condition=models.Q(("status__in", ("arrived", "booked", "completed", "held", "in_treatment"))),
                fields=[
                    "therapist",
                    "busy_from",
                    "busy_until",
                    "starts_at",
                    "ends_at",
                    "status",
                    "hold_expires_at",
                    "room",
                    "client",
                    "id",
                ],
                name="appt_busy_therapist",
            ),
        ),
        migrations.AddIndex(
            model_name="appointment",
            index=models.Index(
                condition=models.Q(("status__in", ("arrived", "booked", "completed", "held", "in_treatment"))),
                fields=[
                    "client",
                    "busy_from",
                    "busy_until",
                    "starts_at",
                    "ends_at",
                    "status",
                    "hold_expires_at",
                    "therapist",
                    "room",
                    "id",
                ],
                name="appt_busy_client",
            ),
        ),
        migrations.RunPython(widen, narrow),
    ]
