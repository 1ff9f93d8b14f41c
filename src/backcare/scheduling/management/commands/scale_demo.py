"""`backcare manage scale_demo`: fill the database with a chain-sized calendar for load tests and benchmarks."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from backcare.scheduling.scale import build_scale


class Command(BaseCommand):
    help = (
        "Build a chain-sized data set (default: 50 therapists, 20 rooms, 100,000 clients, 1,000,000 appointments over "
        "two years) with fictional people, for load tests and benchmarks. Applies migrations first. Adds new clinics "
        "beside any already there. The therapists have no password: this data is for measuring, not for logging in. "
        "Never runs in production."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--clinics", type=int, default=1)
        parser.add_argument("--therapists", type=int, default=50)
        parser.add_argument("--rooms", type=int, default=20)
        parser.add_argument("--clients", type=int, default=100_000)
        parser.add_argument("--appointments", type=int, default=1_000_000)
        parser.add_argument("--years", type=int, default=2)
        parser.add_argument("--weeks", type=int, help="a span in weeks instead of --years")
        parser.add_argument("--seed", type=int, default=2026, help="the same seed builds the same data")
        parser.add_argument(
            "--first-day",
            type=date.fromisoformat,
            help="first day of the calendar, YYYY-MM-DD (default: the Monday half the span ago)",
        )
        parser.add_argument("--json", action="store_true", help="print what was built as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError(
                "scale data is not built in production (BACKCARE_ENV=production): it would mix fictional clients with "
                "real ones. Use a development copy with its own BACKCARE_DATA_DIR or DATABASE_URL."
            )
        for name in ("clinics", "therapists", "rooms", "clients", "years"):
            if options[name] < 1:
                raise CommandError(f"--{name} must be 1 or more.")
        if options["appointments"] < 0:
            raise CommandError("--appointments must be 0 or more.")
        if options["first_day"] is not None and options["first_day"].weekday() != 0:
            raise CommandError(
                f"--first-day must be a Monday; {options['first_day']:%Y-%m-%d} is a {options['first_day']:%A}."
            )
        if options["weeks"] is not None and options["weeks"] < 1:
            raise CommandError("--weeks must be 1 or more.")
        call_command("migrate", interactive=False, verbosity=0)
        quiet = options["json"] or options["verbosity"] == 0
        try:
            report = build_scale(
                clinics=options["clinics"],
                therapists=options["therapists"],
                rooms=options["rooms"],
                clients=options["clients"],
                appointments=options["appointments"],
                years=options["years"],
                weeks=options["weeks"],
                seed=options["seed"],
                first_day=options["first_day"],
                progress=None if quiet else self.stdout.write,
            )
        except ValueError as e:
            raise CommandError(str(e)) from None
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
            return
        c = report.counts
        self.stdout.write(
            self.style.SUCCESS(
                f"Built {c['clinics']} clinic(s): {c['therapists']} therapists, {c['rooms']} rooms, {c['clients']:,} "
                f"clients, {c['appointments']:,} appointments ({c['live']:,} booked) from {report.first_day} to "
                f"{report.last_day}, in {report.seconds['total']:.0f} s."
            )
        )
