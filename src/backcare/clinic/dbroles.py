"""PostgreSQL with two roles: the owner runs migrations, backups and restores; the application role may read and
add audit events but never change, delete or truncate them, nor switch the trail's triggers off (only a table's
owner may). See README, Deploying.

`grant_app_role` runs as the owner after every `migrate` (post_migrate, when BACKCARE_MIGRATE_DATABASE_URL is set)
and after a restore; `backcare manage grant_app_role` runs it by hand."""

from __future__ import annotations

from typing import Any

from backcare.common.auditchain import TABLE

# Tables the application reads but never writes.
READ_ONLY = (TABLE, "django_migrations")


def grant_app_role(connection: Any, role: str) -> None:
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, current_schema()")
        user, schema = cursor.fetchone()
        if user == role:
            raise RuntimeError(
                f"connected as the application role {role!r}: the grants must be made by the owner "
                "(BACKCARE_MIGRATE_DATABASE_URL)"
            )
        cursor.execute(f"GRANT USAGE ON SCHEMA {q(schema)} TO {q(role)}")
        cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {q(schema)} TO {q(role)}")
        cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {q(schema)} TO {q(role)}")
        for table in READ_ONLY:
            cursor.execute(f"REVOKE ALL ON {q(table)} FROM {q(role)}")
            cursor.execute(f"GRANT SELECT ON {q(table)} TO {q(role)}")
        cursor.execute(f"GRANT INSERT ON {q(TABLE)} TO {q(role)}")


def after_migrate(sender: Any, using: str = "default", **kwargs: Any) -> None:
    from django.conf import settings
    from django.db import connections

    connection = connections[using]
    if connection.vendor != "postgresql" or not settings.APP_DATABASE_ROLE:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        if cursor.fetchone()[0] == settings.APP_DATABASE_ROLE:
            return  # the application checking for migrations (serve, demo): only the owner grants
    grant_app_role(connection, settings.APP_DATABASE_ROLE)
