"""`backcare backup`: a consistent copy of the clinic's database and uploaded files, safe while it runs."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from backcare.common import auditchain
from backcare.dataops import backup as ops


class Command(BaseCommand):
    help = "Back up the database (SQLite online backup or pg_dump) and uploaded files into a new folder."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--out", help="backup folder to create (default: <data dir>/backups/backcare-<time>)")
        parser.add_argument("--verify", action="store_true", help="re-read the backup and compare it with the manifest")

    def handle(self, *args: Any, **options: Any) -> None:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        folder = Path(options["out"] or settings.DATA_DIR / "backups" / f"backcare-{stamp}")
        if folder.exists() and any(folder.iterdir()):
            raise CommandError(f"{folder}: already exists and is not empty; choose a new folder")
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        ops.private(folder)
        if folder.parent == settings.DATA_DIR / "backups":
            ops.private(folder.parent)
        keys = auditchain.keys_from_settings()
        try:
            if connection.vendor == "sqlite":
                database = folder / "database.sqlite3"
                tables = ops.sqlite_backup(Path(settings.DATABASES["default"]["NAME"]), database)
                audit = ops.sqlite_audit(database, keys)
            elif connection.vendor == "postgresql":
                database = folder / "database.dump"
                tables, audit = ops.pg_backup(connection, database, keys)
            else:
                raise CommandError(f"backups of {connection.vendor} databases are not supported")
            media = ops.copy_media(Path(settings.MEDIA_ROOT), folder / "media")
            head = {"events": audit.events, "id": audit.head_id, "mac": audit.head_mac, "ok": audit.ok}
            head["at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            ops.write_manifest(folder, connection.vendor, tables, media, keys, head)
            if options["verify"]:
                self._verify(folder, database, tables, keys)
        except ops.BackupError as e:
            shutil.rmtree(folder, ignore_errors=True)
            raise CommandError(str(e)) from None
        rows = sum(t["rows"] for t in tables.values())
        self.stdout.write(f"Backed up {len(tables)} tables ({rows} rows) and {media} files to {folder}")
        if not audit.ok:
            # The copy is kept (it is evidence), but whoever runs backups must hear of it.
            raise CommandError(f"the audit trail is broken at {audit.problem}; the backup in {folder} keeps it so")
        self.stdout.write(f"Audit trail verified: {audit.events} events, each linked and signed.")

    def _verify(self, folder: Path, database: Path, tables: dict[str, Any], keys: auditchain.Keys) -> None:
        if connection.vendor == "sqlite":
            problems = ops.compare(tables, ops.sqlite_current(database))
        else:
            problems = ops.pg_verify_dump(connection, database, tables)
        problems += ops.check_files(folder, ops.read_manifest(folder, check_signature=True, keys=keys))
        if problems:
            raise ops.BackupError("verification failed: " + "; ".join(problems))
        self.stdout.write("Verified: every table's row count and checksum match the manifest.")
