"""DatabaseWrapper for ENGINE = "backcare.testing.postgresql" (see the package's docstring)."""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base, creation


class DatabaseCreation(creation.DatabaseCreation):
    def _destroy_test_db(self, test_database_name: str, verbosity: int) -> None:
        django_creation: Any = super()
        with self.connection._nodb_cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [test_database_name],
            )
        django_creation._destroy_test_db(test_database_name, verbosity)


class DatabaseWrapper(base.DatabaseWrapper):
    creation_class: Any = DatabaseCreation
