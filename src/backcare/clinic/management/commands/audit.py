"""`backcare audit verify`: walk the audit trail's hash chain and name the first broken link."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from backcare.common import auditchain


class Command(BaseCommand):
    help = "Verify the audit trail: every event linked to the one before and signed with a known audit key."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("action", choices=["verify"], help="verify: check the whole chain")
        parser.add_argument(
            "--since-backup",
            metavar="DIR",
            help="a backup folder: the newest event its signed manifest recorded must still be in the chain",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        anchor = None
        if options["since_backup"]:
            from backcare.dataops import backup as ops

            try:
                manifest = ops.read_manifest(Path(options["since_backup"]), check_signature=True)
            except ops.BackupError as e:
                raise CommandError(str(e)) from None
            anchor = manifest.get("audit")
        keys = auditchain.keys_from_settings()
        with connection.cursor() as cursor:
            result = auditchain.verify_cursor(cursor, keys, anchor)
            guards = auditchain.database_guards(cursor, connection.vendor)
        problems = ([f"audit trail broken at {result.problem}"] if result.problem else []) + guards
        if problems:
            raise CommandError("; ".join(problems))
        if result.events:
            self.stdout.write(
                f"Audit trail verified: {result.events} events (the newest {result.head_id}), each linked and signed."
            )
        else:
            self.stdout.write("Audit trail verified: no events yet.")
