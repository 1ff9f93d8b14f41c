"""`backcare demo`: load the demo clinic (or, with --scale, the demo clinic at chain scale) into an empty database
and print its logins."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from backcare.clinic.models import Clinic
from backcare.demo.clinic import DEMO_CLINIC_NAME, build_demo, demo_clinic, format_logins, working_logins
from backcare.demo.scale import build_scale_demo


class Command(BaseCommand):
    help = (
        "Load the demo clinic (fictional staff and clients in every state) into an empty database, then print the "
        "demo logins. Applies migrations first. Refuses when the database already holds a clinic, unless "
        "--if-empty. Never runs in production: the demo passwords are public."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="when the database already holds a clinic, load nothing and succeed (print the demo logins if the "
            "demo clinic is there)",
        )
        parser.add_argument("--port", type=int, default=8000, help="port named in the address hint (default 8000)")
        parser.add_argument(
            "--scale",
            action="store_true",
            help="build the demo clinic at chain scale instead, for load tests: 50 therapists, 20 rooms, --clients "
            "clients with full clinical records and audit trail, --appointments appointments over two years; the "
            "demo logins owner, therapist1, therapist2, frontdesk and client work",
        )
        parser.add_argument("--clients", type=int, default=100_000, help="with --scale: clients (default 100,000)")
        parser.add_argument("--appointments", type=int, help="with --scale: appointments (default ten per client)")
        parser.add_argument("--therapists", type=int, default=50, help="with --scale: therapists (default 50)")
        parser.add_argument("--rooms", type=int, default=20, help="with --scale: rooms (default 20)")
        parser.add_argument("--seed", type=int, default=2026, help="with --scale: the same seed builds the same clinic")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError(
                "the demo clinic is not loaded in production (BACKCARE_ENV=production): its passwords are public. "
                "Try it on a development copy with its own BACKCARE_DATA_DIR."
            )
        if options["scale"]:
            self._check_sizes(options)
        call_command("migrate", interactive=False, verbosity=0)
        existing = Clinic.objects.count()
        if existing:
            if not options["if_empty"]:
                raise CommandError(
                    f"the database already holds {existing} clinic{'s' if existing > 1 else ''}, so the demo clinic "
                    f"was not loaded. The demo needs an empty database: point BACKCARE_DATA_DIR at a new folder "
                    f"(the database is {settings.DATABASES['default']['NAME']}), or add --if-empty to skip this "
                    "step without an error."
                )
            if demo_clinic() is not None:
                self.stdout.write(f"{DEMO_CLINIC_NAME} is already loaded; nothing to do.")
                self._logins(options["port"])
            else:
                self.stdout.write("The database already holds clinic data; the demo clinic was not loaded.")
            return
        if options["scale"]:
            self._scale(options)
        else:
            self.stdout.write(f"Loading {DEMO_CLINIC_NAME} (all people in it are fictional)...")
            build_demo(self.stdout)
        self.stdout.write(self.style.SUCCESS("Done."))
        self._logins(options["port"])

    def _check_sizes(self, options: dict[str, Any]) -> None:
        for name, least in (("clients", 1), ("therapists", 2), ("rooms", 1)):
            if options[name] < least:
                raise CommandError(f"--{name} must be {least} or more.")
        if options["appointments"] is not None and options["appointments"] < 0:
            raise CommandError("--appointments must be 0 or more.")

    def _scale(self, options: dict[str, Any]) -> None:
        appointments = options["appointments"]
        if appointments is None:
            appointments = options["clients"] * 10
        self.stdout.write(
            f"Building {DEMO_CLINIC_NAME} at scale: {options['clients']:,} clients with their clinical records, "
            f"{appointments:,} appointments (all people in it are fictional)..."
        )
        report = build_scale_demo(
            clients=options["clients"],
            appointments=appointments,
            therapists=options["therapists"],
            rooms=options["rooms"],
            seed=options["seed"],
            progress=self.stdout.write,
        )
        c = report.counts
        self.stdout.write(
            f"Built {c['clients']:,} clients, {c['screenings']:,} screenings, {c['courses']:,} courses, "
            f"{c['sessions']:,} sessions, {c['outcomes']:,} outcomes, {c['referrals']:,} referrals, "
            f"{c['audit_events']:,} audit events and {c['appointments']:,} appointments in "
            f"{report.seconds['total']:.0f} s."
        )

    def _logins(self, port: int) -> None:
        logins = working_logins()
        if logins:
            self.stdout.write("")
            self.stdout.write(format_logins(logins))
        self.stdout.write("")
        self.stdout.write(
            f"Start the server with `backcare serve --port {port}` (make run does it for you), then open "
            f"http://localhost:{port}/ and sign in."
        )
