"""PostgreSQL: exclusion constraints so no therapist, room or client is in two live appointments at once.

See backcare.scheduling.locking for the whole policy. On SQLite this migration does nothing: bookings there take the
database's write lock (BEGIN IMMEDIATE) and check for overlaps inside it.
"""

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

LIVE = "status IN ('booked', 'held') AND NOT override"
POSTGRES = [
    "CREATE EXTENSION IF NOT EXISTS btree_gist",
    f"""ALTER TABLE scheduling_appointment ADD CONSTRAINT scheduling_no_therapist_overlap
        EXCLUDE USING gist (therapist_id WITH =, tstzrange(busy_from, busy_until, '[)') WITH &&) WHERE ({LIVE})""",
    f"""ALTER TABLE scheduling_appointment ADD CONSTRAINT scheduling_no_room_overlap
        EXCLUDE USING gist (room_id WITH =, tstzrange(busy_from, busy_until, '[)') WITH &&) WHERE ({LIVE})""",
    f"""ALTER TABLE scheduling_appointment ADD CONSTRAINT scheduling_no_client_overlap
        EXCLUDE USING gist (client_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&) WHERE ({LIVE})""",
]
POSTGRES_DROP = [
    "ALTER TABLE scheduling_appointment DROP CONSTRAINT scheduling_no_therapist_overlap",
    "ALTER TABLE scheduling_appointment DROP CONSTRAINT scheduling_no_room_overlap",
    "ALTER TABLE scheduling_appointment DROP CONSTRAINT scheduling_no_client_overlap",
]


def add_constraints(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        for sql in POSTGRES:
            schema_editor.execute(sql)


def drop_constraints(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        for sql in POSTGRES_DROP:
            schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0001_initial")]

    operations = [migrations.RunPython(add_constraints, drop_constraints)]
