"""`backcare fhir_import`: bring clients in from FHIR R4 bundles (files, or folders of .json files).

All files are imported in one transaction: if any file has a problem, every problem of every file is printed
(`file: location: message`) and nothing at all is imported (exit status 1). `--dry-run` checks and imports, then
rolls everything back, to see what an import would do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from backcare.clinic import audit
from backcare.clinic.models import StaffMember
from backcare.interop.fhir.importer import BundleRejected, ImportResult, import_bundle
from backcare.interop.fhir.validation import MAX_BUNDLE_BYTES
from backcare.interop.management.commands._fhir_common import staff_user


class _DryRun(Exception):
    """Rolls the dry run back."""


class Command(BaseCommand):
    help = "Import clients (Patients and their questionnaire answers) from FHIR R4 bundles, all or nothing."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("paths", nargs="+", help="bundle files (.json) or folders of them")
        parser.add_argument("--user", required=True, help="user name of the owner or therapist importing (audited)")
        parser.add_argument("--therapist", default="", help="user name of the therapist the clients are assigned to")
        parser.add_argument("--dry-run", action="store_true", help="check and count, then roll everything back")

    def handle(self, *args: Any, **options: Any) -> None:
        user, staff = staff_user(options["user"])
        therapist = self._therapist(options["therapist"], staff) if options["therapist"] else None
        files = self._files(options["paths"])
        results: list[tuple[Path, ImportResult]] = []
        failed: list[tuple[Path, list[Any]]] = []
        try:
            with transaction.atomic():
                for path in files:
                    try:
                        data = self._read(path)
                        results.append((path, import_bundle(data, clinic=staff.clinic, user=user, therapist=therapist)))
                    except BundleRejected as e:
                        failed.append((path, e.problems))
                    except PermissionDenied as e:
                        raise CommandError(str(e)) from None
                if failed or options["dry_run"]:
                    raise _DryRun
        except _DryRun:
            pass
        if failed:
            for path, problems in failed:
                for p in problems:
                    self.stderr.write(f"{path}: {p.location}: {p.message}")
            audit.record(
                user,
                "import_fhir_rejected",
                detail={"files": [str(p) for p, _ in failed], "problems": sum(len(ps) for _, ps in failed)},
            )
            count = sum(len(ps) for _, ps in failed)
            raise CommandError(f"nothing imported: {count} problem(s) in {len(failed)} of {len(files)} file(s)")
        clients = sum(len(r.clients) for _, r in results)
        intakes = sum(len(r.intakes) for _, r in results)
        outcomes = sum(len(r.outcomes) for _, r in results)
        verb = "Would import" if options["dry_run"] else "Imported"
        self.stdout.write(
            f"{verb} {clients} clients, {intakes} intakes and {outcomes} outcome scores from {len(files)} file(s)"
            + (" (dry run: nothing saved)" if options["dry_run"] else "")
        )
        skipped: dict[str, int] = {}
        for _, r in results:
            for kind, n in r.not_imported.items():
                skipped[kind] = skipped.get(kind, 0) + n
        if skipped:
            listed = ", ".join(f"{n} {kind}" for kind, n in sorted(skipped.items()))
            self.stdout.write(f"Not imported (only patients and questionnaire answers are): {listed}")

    def _therapist(self, username: str, staff: StaffMember) -> StaffMember:
        user = get_user_model().objects.filter(username=username).first()
        therapist = StaffMember.objects.filter(user=user, clinic=staff.clinic, active=True).first() if user else None
        if therapist is None or therapist.role not in ("owner", "therapist"):
            raise CommandError(f"--therapist {username}: no active therapist of {staff.clinic} with this user name")
        return therapist

    def _files(self, paths: list[str]) -> list[Path]:
        files: list[Path] = []
        for name in paths:
            path = Path(name)
            if path.is_dir():
                found = sorted(path.glob("*.json"))
                if not found:
                    raise CommandError(f"{path}: a folder without .json files")
                files.extend(found)
            elif path.is_file():
                files.append(path)
            else:
                raise CommandError(f"{path}: no such file or folder")
        return files

    def _read(self, path: Path) -> bytes:
        size = path.stat().st_size
        if size > MAX_BUNDLE_BYTES:
            from backcare.interop.fhir.validation import Problem

            raise BundleRejected(
                [Problem("Bundle", f"{size:,} bytes; at most {MAX_BUNDLE_BYTES:,} in one bundle", "too-costly")]
            )
        try:
            return path.read_bytes()
        except OSError as e:
            raise CommandError(f"{path}: cannot read: {e.strerror or e}") from None
