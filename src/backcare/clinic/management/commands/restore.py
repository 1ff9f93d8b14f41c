"""`backcare restore`: replace the clinic's database and uploaded files with a backup.

Everything that can be checked is checked before anything is replaced: the manifest's signature (made with the
audit key), every file's checksum, and with --verify every table of the backup against the manifest and the
audit trail's hash chain in it. After the restore, --verify compares the restored database with the manifest."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from backcare.common import auditchain
from backcare.dataops import backup as ops


class Command(BaseCommand):
    help = "Restore a backup folder made by `backcare backup`. Stop the clinic's servers first."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("folder", help="the backup folder")
        parser.add_argument(
            "--verify", action="store_true", help="check the backup's tables and audit trail first, and compare after"
        )
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, *args: Any, **options: Any) -> None:
        folder = Path(options["folder"])
        keys = auditchain.keys_from_settings()
        try:
            manifest = ops.read_manifest(folder, check_signature=True, keys=keys)
        except ops.BackupError as e:
            raise CommandError(str(e)) from None
        if manifest["vendor"] != connection.vendor:
            raise CommandError(
                f"this backup is of a {manifest['vendor']} database; the configured database is {connection.vendor}"
            )
        problems = ops.check_files(folder, manifest)
        if problems:
            raise CommandError("the backup was changed after it was made, nothing restored: " + "; ".join(problems))
        if not options["yes"]:
            if not sys.stdin.isatty():
                raise CommandError("restore replaces the whole database: confirm with --yes")
            answer = input("This replaces the whole database and uploaded files. Type 'restore' to go on: ")
            if answer.strip() != "restore":
                raise CommandError("not restored")
        if options["verify"]:
            problems = self._check_backup(folder, manifest, keys)
            if problems:
                raise CommandError("verification failed, nothing restored: " + "; ".join(problems))
            self.stdout.write("Checked before restoring: the backup's tables and audit trail match its manifest.")
        try:
            if connection.vendor == "sqlite":
                connection.close()
                actual = ops.sqlite_restore(folder / "database.sqlite3", Path(settings.DATABASES["default"]["NAME"]))
            else:
                actual = ops.pg_restore(connection, folder / "database.dump")
        except ops.BackupError as e:
            raise CommandError(str(e)) from None
        if connection.vendor == "postgresql" and settings.APP_DATABASE_ROLE:
            from backcare.clinic.dbroles import grant_app_role

            grant_app_role(connection, settings.APP_DATABASE_ROLE)
        media_root = Path(settings.MEDIA_ROOT)
        if (folder / "media").is_dir():
            shutil.rmtree(media_root, ignore_errors=True)
            ops.copy_media(folder / "media", media_root)
        rows = sum(t["rows"] for t in actual.values())
        self.stdout.write(f"Restored {len(actual)} tables ({rows} rows) from {folder}")
        if options["verify"]:
            problems = ops.compare(manifest["tables"], actual)
            if problems:
                raise CommandError("verification failed: " + "; ".join(problems))
            self.stdout.write("Verified: every table's row count and checksum match the backup's manifest.")

    def _check_backup(self, folder: Path, manifest: dict[str, Any], keys: auditchain.Keys) -> list[str]:
        if connection.vendor == "sqlite":
            database = folder / "database.sqlite3"
            problems = ops.compare(manifest["tables"], ops.sqlite_current(database))
            if not problems:
                audit = ops.sqlite_audit(database, keys)
                if not audit.ok:
                    problems.append(f"the audit trail in the backup is broken at {audit.problem}")
            return problems
        return ops.pg_verify_dump(connection, folder / "database.dump", manifest["tables"], keys)
