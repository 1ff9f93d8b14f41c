"""The append-only triggers let one thing through: deleting the ledger rows of a client named in
`billing_ledgerpurge`, which only the financial retention rule writes, once the records' retention period has
passed (docs/billing.md). UPDATE stays refused always."""

from typing import Any

from django.db import migrations, models

TABLES = ("billing_invoice", "billing_invoiceline", "billing_payment", "billing_redemption")
# How each table's row names its client.
CLIENT_OF = {
    "billing_invoice": "OLD.client_id",
    "billing_payment": "OLD.client_id",
    "billing_invoiceline": "(SELECT client_id FROM billing_invoice WHERE id = OLD.invoice_id)",
    "billing_redemption": "(SELECT client_id FROM billing_package WHERE id = OLD.package_id)",
}
MESSAGE = "rows are issued records: they cannot be changed or deleted"


def _sqlite_delete(table: str, *, purge: bool) -> str:
    when = (
        f"WHEN NOT EXISTS (SELECT 1 FROM billing_ledgerpurge p WHERE p.client_id = {CLIENT_OF[table]}) "
        if purge
        else ""
    )
    return (
        f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} {when}"
        f"BEGIN SELECT RAISE(ABORT, '{table} {MESSAGE}'); END"
    )


PG_FUNCTION = f"""CREATE OR REPLACE FUNCTION billing_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  owner_id bigint;
BEGIN
  IF TG_OP = 'DELETE' THEN
    IF TG_TABLE_NAME IN ('billing_invoice', 'billing_payment') THEN
      owner_id := OLD.client_id;
    ELSIF TG_TABLE_NAME = 'billing_invoiceline' THEN
      SELECT client_id INTO owner_id FROM billing_invoice WHERE id = OLD.invoice_id;
    ELSIF TG_TABLE_NAME = 'billing_redemption' THEN
      SELECT client_id INTO owner_id FROM billing_package WHERE id = OLD.package_id;
    END IF;
    IF EXISTS (SELECT 1 FROM billing_ledgerpurge WHERE client_id = owner_id) THEN
      RETURN OLD;
    END IF;
  END IF;
  RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' {MESSAGE}';
END $$"""
PG_OLD_FUNCTION = f"""CREATE OR REPLACE FUNCTION billing_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' {MESSAGE}';
END $$"""


def _swap(schema_editor: Any, *, purge: bool) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        for table in TABLES:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
            schema_editor.execute(_sqlite_delete(table, purge=purge))
    elif vendor == "postgresql":
        schema_editor.execute(PG_FUNCTION if purge else PG_OLD_FUNCTION)


def allow_purge(apps: Any, schema_editor: Any) -> None:
    _swap(schema_editor, purge=True)


def refuse_purge(apps: Any, schema_editor: Any) -> None:
    _swap(schema_editor, purge=False)


class Migration(migrations.Migration):
    dependencies = [("billing", "0002_ledger_append_only")]

    operations = [
        migrations.CreateModel(
            name="LedgerPurge",
            fields=[("client_id", models.BigIntegerField(primary_key=True, serialize=False))],
        ),
        migrations.RunPython(allow_purge, refuse_purge),
    ]
