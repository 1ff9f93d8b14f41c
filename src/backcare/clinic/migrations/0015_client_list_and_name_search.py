"""The client lists' order from an index, and an index for name search (see backcare.clinic.search).

SQLite: an FTS5 table over the clients' names (external content: it stores only the index) and triggers that keep
it in step with every insert, change and delete, whoever writes (the services, bulk loads, raw SQL). A later
migration that makes Django rebuild the client table on SQLite drops these triggers with the old table: it must
create them again (tests/clinic/test_client_scale.py fails if it does not).

PostgreSQL: the extensions pg_trgm and unaccent (both in PostgreSQL's contrib), an immutable wrapper of unaccent
(an index may only use immutable functions) and a trigram GIN index on the accent-free lower-case full name.
Creating an extension needs a role allowed to (a superuser, or the database owner on PostgreSQL 13+ for these
trusted extensions); where the application's role may not, an administrator runs the two CREATE EXTENSION lines
first, and this migration then skips them.
"""

from typing import Any

from django.db import migrations, models

FTS_SQL = [
    """CREATE VIRTUAL TABLE clinic_client_name USING fts5(
        first_name, last_name, content='clinic_client', content_rowid='id',
        tokenize='unicode61 remove_diacritics 2')""",
    """CREATE TRIGGER clinic_client_name_insert AFTER INSERT ON clinic_client BEGIN
        INSERT INTO clinic_client_name(rowid, first_name, last_name) VALUES (new.id, new.first_name, new.last_name);
    END""",
    """CREATE TRIGGER clinic_client_name_delete AFTER DELETE ON clinic_client BEGIN
        INSERT INTO clinic_client_name(clinic_client_name, rowid, first_name, last_name)
        VALUES ('delete', old.id, old.first_name, old.last_name);
    END""",
    """CREATE TRIGGER clinic_client_name_update AFTER UPDATE OF first_name, last_name ON clinic_client BEGIN
        INSERT INTO clinic_client_name(clinic_client_name, rowid, first_name, last_name)
        VALUES ('delete', old.id, old.first_name, old.last_name);
        INSERT INTO clinic_client_name(rowid, first_name, last_name) VALUES (new.id, new.first_name, new.last_name);
    END""",
    "INSERT INTO clinic_client_name(clinic_client_name) VALUES ('rebuild')",
]
FTS_UNDO = [
    "DROP TRIGGER IF EXISTS clinic_client_name_update",
    "DROP TRIGGER IF EXISTS clinic_client_name_delete",
    "DROP TRIGGER IF EXISTS clinic_client_name_insert",
    "DROP TABLE IF EXISTS clinic_client_name",
]
PG_SQL = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE EXTENSION IF NOT EXISTS unaccent",
    """CREATE OR REPLACE FUNCTION backcare_unaccent(text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
        AS $$ SELECT public.unaccent('public.unaccent'::regdictionary, $1) $$""",
    """CREATE INDEX IF NOT EXISTS clinic_client_name_trgm ON clinic_client
        USING gin ((lower(backcare_unaccent("first_name" || ' ' || "last_name"))) gin_trgm_ops)""",
]
PG_UNDO = [
    "DROP INDEX IF EXISTS clinic_client_name_trgm",
    "DROP FUNCTION IF EXISTS backcare_unaccent(text)",
]


def _run(statements: dict[str, list[str]]) -> Any:
    def run(apps: Any, schema_editor: Any) -> None:
        for sql in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("clinic", "0014_clinic_emergency_numbers"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="client", name="clinic_clie_clinic__df744d_idx"),
        migrations.AddIndex(
            model_name="client",
            index=models.Index(fields=["clinic", "last_name", "first_name", "id"], name="client_clinic_name_order"),
        ),
        migrations.RunPython(
            _run({"sqlite": FTS_SQL, "postgresql": PG_SQL}), _run({"sqlite": FTS_UNDO, "postgresql": PG_UNDO})
        ),
    ]
