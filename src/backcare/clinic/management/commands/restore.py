"""`backcare restore`: replace the clinic's database and uploaded files with a backup."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from backcare.dataops import backup as ops


class Command(BaseCommand):
    help = "Restore a backup folder made by `backcare backup`. Stop the clinic's servers first."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("folder", help="the backup folder")
        parser.add_argument("--verify", action="store_true", help="compare the restored database with the manifest")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, *args: Any, **options: Any) -> None:
        folder = Path(options["folder"])
        try:
            manifest = ops.read_manifest(folder)
        except ops.BackupError as e:
            raise CommandError(str(e)) from None
        if manifest["vendor"] != connection.vendor:
            raise CommandError(
                f"this backup is of a {manifest['vendor']} database; the configured database is {connection.vendor}"
            )
        if not options["yes"]:
            if not sys.stdin.isatty():
                raise CommandError("restore replaces the whole database: confirm with --yes")
            answer = input("This replaces the whole database and uploaded files. Type 'restore' to go on: ")
            if answer.strip() != "restore":
                raise CommandError("not restored")
        try:
            if connection.vendor == "sqlite":
                connection.close()
                actual = ops.sqlite_restore(folder / "database.sqlite3", Path(settings.DATABASES["default"]["NAME"]))
            else:
                actual = ops.pg_restore(connection, folder / "database.dump")
        except ops.BackupError as e:
            raise CommandError(str(e)) from None
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
