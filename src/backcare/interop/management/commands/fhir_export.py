"""`backcare fhir_export`: clients' records as FHIR R4 bundles (one JSON file per client), e.g. to move a clinic.

The user given with --user decides what may be exported (the owner: every client of the clinic; a therapist: their
own clients and those shared with them) and is named in the audit trail for every client exported.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from backcare.clinic import audit
from backcare.clinic.access import clinical_clients_for
from backcare.clinic.documents import slug
from backcare.interop.fhir.export import BUNDLE_TYPES, patient_bundle
from backcare.interop.management.commands._fhir_common import staff_user


class Command(BaseCommand):
    help = (
        "Export clients' records as FHIR R4 bundles: one JSON file per client in a folder, or one to standard output."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--user", required=True, help="user name of the owner or therapist exporting (audited)")
        parser.add_argument(
            "--client", type=int, action="append", default=[], help="client id (repeatable); default all"
        )
        parser.add_argument("--out", default="", help="folder to write into, or - for standard output (one client)")
        parser.add_argument("--type", default="collection", choices=BUNDLE_TYPES, help="Bundle.type (collection)")

    def handle(self, *args: Any, **options: Any) -> None:
        user, staff = staff_user(options["user"])
        clients = clinical_clients_for(user).select_related("clinic").order_by("pk")
        wanted = options["client"]
        if wanted:
            clients = clients.filter(pk__in=wanted)
            missing = sorted(set(wanted) - set(clients.values_list("pk", flat=True)))
            if missing:
                raise CommandError(f"--client {', '.join(map(str, missing))}: no such client that {staff} may see")
        chosen = list(clients)
        if not chosen:
            raise CommandError("no clients to export")
        out = options["out"]
        if out == "-":
            if len(chosen) != 1:
                raise CommandError("--out - writes one bundle: choose one client with --client")
        elif not out:
            raise CommandError("--out: give a folder to write the bundles into (or - with one --client)")
        else:
            folder = Path(out)
            if folder.exists() and not folder.is_dir():
                raise CommandError(f"--out {out}: is a file, not a folder")
            folder.mkdir(parents=True, exist_ok=True)
        for client in chosen:
            bundle = patient_bundle(client, bundle_type=options["type"])
            text = json.dumps(bundle, ensure_ascii=False, indent=2) + "\n"
            if out == "-":
                sys.stdout.write(text)
            else:
                name = f"client-{client.pk}-{slug(client.last_name)}-{slug(client.first_name)}.json"
                (Path(out) / name).write_text(text, encoding="utf-8")
            audit.record(
                user, "export", client=client, obj=client, detail={"document": "fhir_bundle", "via": "command line"}
            )
        if out != "-":
            self.stdout.write(f"Exported {len(chosen)} client{'s' if len(chosen) != 1 else ''} to {out}")
