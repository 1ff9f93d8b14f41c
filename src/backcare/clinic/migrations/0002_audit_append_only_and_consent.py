"""The audit trail refuses UPDATE and DELETE in the database itself, and the first consent text is published."""

from importlib import resources

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

SQLITE = [
    """CREATE TRIGGER clinic_auditevent_no_update BEFORE UPDATE ON clinic_auditevent
       BEGIN SELECT RAISE(ABORT, 'audit events cannot be changed'); END""",
    """CREATE TRIGGER clinic_auditevent_no_delete BEFORE DELETE ON clinic_auditevent
       BEGIN SELECT RAISE(ABORT, 'audit events cannot be deleted'); END""",
]
SQLITE_DROP = ["DROP TRIGGER clinic_auditevent_no_update", "DROP TRIGGER clinic_auditevent_no_delete"]
POSTGRES = [
    """CREATE FUNCTION clinic_auditevent_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'audit events cannot be changed or deleted'; END $$""",
    """CREATE TRIGGER clinic_auditevent_append_only BEFORE UPDATE OR DELETE ON clinic_auditevent
       FOR EACH ROW EXECUTE FUNCTION clinic_auditevent_append_only()""",
]
POSTGRES_DROP = [
    "DROP TRIGGER clinic_auditevent_append_only ON clinic_auditevent",
    "DROP FUNCTION clinic_auditevent_append_only()",
]


def add_triggers(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    vendor = schema_editor.connection.vendor
    statements = {"sqlite": SQLITE, "postgresql": POSTGRES}.get(vendor, [])
    for sql in statements:
        schema_editor.execute(sql)


def drop_triggers(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    vendor = schema_editor.connection.vendor
    for sql in {"sqlite": SQLITE_DROP, "postgresql": POSTGRES_DROP}.get(vendor, []):
        schema_editor.execute(sql)


def publish_consent(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    ConsentText = apps.get_model("clinic", "ConsentText")
    body = (resources.files("backcare.clinic") / "knowledge" / "consent-1.md").read_text(encoding="utf-8")
    ConsentText.objects.get_or_create(version="1", defaults={"title": "Consent to massage therapy", "body": body})


class Migration(migrations.Migration):
    dependencies = [("clinic", "0001_initial")]

    operations = [
        migrations.RunPython(add_triggers, drop_triggers),
        migrations.RunPython(publish_consent, migrations.RunPython.noop),
    ]
