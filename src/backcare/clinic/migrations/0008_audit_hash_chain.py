"""The audit trail becomes a hash chain (backcare.common.auditchain), and the database refuses more.

- Every event gets `prev_mac`, `mac` and `key_id`; the events already there are sealed in id order with the current
  audit key (what they say cannot be vouched for from before this migration, only from now on).
- The triggers of 0002 are replaced by a set that also refuses an insert whose id does not follow the last event's
  (a re-used id, as `REPLACE INTO` or `INSERT OR REPLACE` writes, or an event slipped in before others). SQLite
  connections also turn on `recursive_triggers` (settings), so REPLACE fires the delete trigger.

`add_triggers` and `drop_triggers` are also used by the browser tests around their flushes.
"""

from importlib import import_module

from django.apps.registry import Apps
from django.conf import settings
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

_0002 = import_module("backcare.clinic.migrations.0002_audit_append_only_and_consent")

SQLITE = [
    """CREATE TRIGGER clinic_auditevent_no_update BEFORE UPDATE ON clinic_auditevent
       BEGIN SELECT RAISE(ABORT, 'audit events cannot be changed'); END""",
    """CREATE TRIGGER clinic_auditevent_no_delete BEFORE DELETE ON clinic_auditevent
       BEGIN SELECT RAISE(ABORT, 'audit events cannot be deleted'); END""",
    # NEW.id is -1 here when the insert gives none: an event must come with the id after the last one.
    """CREATE TRIGGER clinic_auditevent_append_only_insert BEFORE INSERT ON clinic_auditevent
       WHEN NEW.id IS NULL OR NEW.id <= (SELECT coalesce(max(id), 0) FROM clinic_auditevent)
       BEGIN SELECT RAISE(ABORT, 'audit events are only appended: the id must follow the last event'); END""",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS clinic_auditevent_no_update",
    "DROP TRIGGER IF EXISTS clinic_auditevent_no_delete",
    "DROP TRIGGER IF EXISTS clinic_auditevent_append_only_insert",
]
POSTGRES = [
    """CREATE FUNCTION clinic_auditevent_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'audit events cannot be changed or deleted'; END $$""",
    """CREATE TRIGGER clinic_auditevent_append_only BEFORE UPDATE OR DELETE ON clinic_auditevent
       FOR EACH ROW EXECUTE FUNCTION clinic_auditevent_append_only()""",
    """CREATE FUNCTION clinic_auditevent_append_only_insert() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF NEW.id <= (SELECT coalesce(max(id), 0) FROM clinic_auditevent) THEN
           RAISE EXCEPTION USING MESSAGE =
             'audit events are only appended: event ' || NEW.id || ' does not follow the last event';
         END IF;
         RETURN NEW;
       END $$""",
    """CREATE TRIGGER clinic_auditevent_append_only_insert BEFORE INSERT ON clinic_auditevent
       FOR EACH ROW EXECUTE FUNCTION clinic_auditevent_append_only_insert()""",
]
POSTGRES_DROP = [
    "DROP TRIGGER IF EXISTS clinic_auditevent_append_only ON clinic_auditevent",
    "DROP FUNCTION IF EXISTS clinic_auditevent_append_only()",
    "DROP TRIGGER IF EXISTS clinic_auditevent_append_only_insert ON clinic_auditevent",
    "DROP FUNCTION IF EXISTS clinic_auditevent_append_only_insert()",
]


def add_triggers(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    for sql in {"sqlite": SQLITE, "postgresql": POSTGRES}.get(schema_editor.connection.vendor, []):
        schema_editor.execute(sql)


def drop_triggers(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    for sql in {"sqlite": SQLITE_DROP, "postgresql": POSTGRES_DROP}.get(schema_editor.connection.vendor, []):
        schema_editor.execute(sql)


def seal_existing(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    from backcare.common import auditchain

    secret = settings.AUDIT_KEYS[settings.AUDIT_KEY_ID]
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        cursor.execute(auditchain.SELECT)
        rows = cursor.fetchall()
        prev = auditchain.GENESIS
        for row in rows:
            row = list(row)
            row[1], row[3] = prev, settings.AUDIT_KEY_ID
            mac = auditchain.mac_of(row, secret)
            cursor.execute(
                "UPDATE clinic_auditevent SET prev_mac = %s, mac = %s, key_id = %s WHERE id = %s",
                [prev, mac, settings.AUDIT_KEY_ID, row[0]],
            )
            prev = mac


class Migration(migrations.Migration):
    dependencies = [("clinic", "0007_rate_limit_counts")]

    operations = [
        migrations.RunPython(drop_triggers, _0002.add_triggers),
        migrations.AddField(
            model_name="auditevent",
            name="prev_mac",
            field=models.CharField(default="", help_text="The MAC of the event before this one.", max_length=64),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="mac",
            field=models.CharField(
                default="", help_text="HMAC-SHA256 of this event and the link before it.", max_length=64
            ),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="key_id",
            field=models.CharField(default="", help_text="Which audit key signed this event.", max_length=40),
        ),
        migrations.RunPython(seal_existing, migrations.RunPython.noop),
        migrations.RunPython(add_triggers, drop_triggers),
    ]
