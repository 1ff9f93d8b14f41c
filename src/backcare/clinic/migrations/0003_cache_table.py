"""The shared cache table (settings.CACHES), so `migrate` sets up everything a server needs."""

from django.apps.registry import Apps
from django.core.management import call_command
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor


def create_cache_table(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


def drop_cache_table(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    schema_editor.execute("DROP TABLE IF EXISTS backcare_cache")


class Migration(migrations.Migration):
    dependencies = [("clinic", "0002_audit_append_only_and_consent")]

    operations = [migrations.RunPython(create_cache_table, drop_cache_table)]
