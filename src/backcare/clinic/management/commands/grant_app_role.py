"""`backcare manage grant_app_role`: give the application role its privileges (PostgreSQL with two roles)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from backcare.clinic.dbroles import grant_app_role


class Command(BaseCommand):
    help = "As the owner: let DATABASE_URL's role read and write the tables, and only read and add audit events."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--role", help="the application role (default: the user of DATABASE_URL)")

    def handle(self, *args: Any, **options: Any) -> None:
        role = options["role"] or settings.APP_DATABASE_ROLE
        if connection.vendor != "postgresql":
            raise CommandError("roles are for PostgreSQL; SQLite has one user, the clinic's")
        if not role:
            raise CommandError("set BACKCARE_MIGRATE_DATABASE_URL (the owner) and DATABASE_URL (the application role)")
        try:
            grant_app_role(connection, role)
        except RuntimeError as e:
            raise CommandError(str(e)) from None
        self.stdout.write(f"Granted {role}: read and write on the clinic's tables, only read and add audit events.")
