"""The ledger refuses UPDATE and DELETE in the database itself: an issued invoice or credit note, its lines, a
payment or refund and a package redemption are corrected only by a new row (docs/billing.md)."""

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

TABLES = ("billing_invoice", "billing_invoiceline", "billing_payment", "billing_redemption")


def _sqlite() -> list[str]:
    statements = []
    for table in TABLES:
        for event in ("UPDATE", "DELETE"):
            statements.append(
                f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} rows are issued records: they cannot be changed or deleted'); END"
            )
    return statements


def _postgres() -> list[str]:
    statements = [
        """CREATE FUNCTION billing_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
             RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' rows are issued records: they cannot be changed or deleted';
           END $$"""
    ]
    for table in TABLES:
        statements.append(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION billing_append_only()"
        )
    return statements


def add_triggers(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    for sql in {"sqlite": _sqlite, "postgresql": _postgres}.get(schema_editor.connection.vendor, list)():
        schema_editor.execute(sql)


def drop_triggers(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    vendor = schema_editor.connection.vendor
    for table in TABLES:
        if vendor == "sqlite":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
        elif vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    if vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS billing_append_only()")


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_ledger")]

    operations = [migrations.RunPython(add_triggers, drop_triggers)]
