"""`backcare demo`: load the demo clinic into an empty database and print its logins."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from backcare.clinic.demo import DEMO_CLINIC_NAME, build_demo, demo_clinic, format_logins, working_logins
from backcare.clinic.models import Clinic


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
            help="instead of the demo clinic, build a chain-sized data set for load tests (50 therapists, 20 rooms, "
            "100,000 clients, 1,000,000 appointments over two years); `backcare manage scale_demo --help` sets sizes",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError(
                "the demo clinic is not loaded in production (BACKCARE_ENV=production): its passwords are public. "
                "Try it on a development copy with its own BACKCARE_DATA_DIR."
            )
        if options["scale"]:
            call_command("scale_demo", stdout=self.stdout)
            return
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
        self.stdout.write(f"Loading {DEMO_CLINIC_NAME} (all people in it are fictional)...")
        build_demo(self.stdout)
        self.stdout.write(self.style.SUCCESS("Done."))
        self._logins(options["port"])

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
