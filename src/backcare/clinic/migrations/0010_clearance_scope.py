"""A clearance names the findings it clears, lapses, and carries the physician's restrictions.

Existing clearances are given the clearance findings of the screening they were recorded against (what they were
meant to clear) and lapse six months after they were given; pre-session health updates are tied to the intake
(episode) of the screening they started from."""

from __future__ import annotations

import datetime as dt

from django.apps.registry import Apps
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor


def name_findings(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    from backcare.clinic.services.clearances import finding_key

    Clearance = apps.get_model("clinic", "Clearance")
    Screening = apps.get_model("clinic", "Screening")
    Intake = apps.get_model("clinic", "Intake")
    for screening in Screening.objects.filter(kind="pre_session", intake__isnull=True).order_by("created_at", "id"):
        intake = (
            Intake.objects.filter(client_id=screening.client_id, started_at__lte=screening.created_at)
            .order_by("-started_at", "-id")
            .first()
        )
        if intake is not None:
            screening.intake = intake
            screening.save(update_fields=["intake"])
    for clearance in Clearance.objects.select_related("screening", "client__clinic"):
        screening = clearance.screening
        on = screening.created_at.date()
        clearance.findings = [
            finding_key(f, screening.document, on)
            for f in screening.result.get("findings", [])
            if f.get("decision") == "clearance_required"
        ]
        clearance.valid_until = clearance.given_on + dt.timedelta(days=clearance.client.clinic.clearance_valid_days)
        clearance.save(update_fields=["findings", "valid_until"])


class Migration(migrations.Migration):
    dependencies = [("clinic", "0009_sign_in_failures")]

    operations = [
        migrations.AddField(
            model_name="clinic",
            name="clearance_valid_days",
            field=models.PositiveSmallIntegerField(
                default=183,
                help_text=(
                    "How long a physician's clearance stands, in days (default 183, about six months: the conditions "
                    "that ask for clearance, such as cancer treatment, pregnancy, blood pressure or healing after an "
                    "operation, can change materially in that time, so the physician is asked again). A new episode "
                    "or a change in a cleared finding ends a clearance sooner."
                ),
            ),
        ),
        migrations.AddField(
            model_name="clearance",
            name="findings",
            field=models.JSONField(blank=True, default=list, help_text="The findings this clearance clears."),
        ),
        migrations.AddField(
            model_name="clearance",
            name="valid_until",
            field=models.DateField(blank=True, null=True, help_text="The clearance lapses after this day."),
        ),
        migrations.AddField(
            model_name="clearance",
            name="avoid_regions",
            field=models.JSONField(blank=True, default=list, help_text="Regions the physician said to avoid."),
        ),
        migrations.AddField(
            model_name="clearance",
            name="avoid_techniques",
            field=models.JSONField(blank=True, default=list, help_text="Techniques the physician ruled out."),
        ),
        migrations.AddField(
            model_name="clearance",
            name="max_pressure",
            field=models.PositiveSmallIntegerField(
                blank=True, null=True, help_text="The highest pressure (1-5) the physician allows."
            ),
        ),
        migrations.RunPython(name_findings, migrations.RunPython.noop),
    ]
