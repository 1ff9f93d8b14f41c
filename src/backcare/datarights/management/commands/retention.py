"""`backcare retention [--dry-run] [--now WHEN]`: step 2 of an erasure request. Deletes the clinical record of every
client whose erasure the owner confirmed and whose retention period has ended; the audit trail keeps an event for
each. Safe to run from cron as often as you like (daily is plenty): a record already deleted is not found again.

It also counts, per clinic, the records that have outlived their retention period with no erasure request; it does
not delete those (the owner checks each on the Data rights page), but says so, so the owner hears of them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone


def _moment(text: str) -> dt.datetime:
    """An ISO 8601 date or date and time; a date means the start of that day, and no zone means UTC."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--now: {text!r} is not a date or time like 2034-05-01 or 2034-05-01T09:00") from None
    return value if timezone.is_aware(value) else value.replace(tzinfo=dt.UTC)


class Command(BaseCommand):
    help = (
        "Delete the clinical records whose retention period has ended after a confirmed erasure request (the audit "
        "trail stays). --dry-run lists what would be deleted and changes nothing. Exit status 1 when a record could "
        "not be deleted. Also counts, per clinic, the records past their retention period that nobody asked to erase; "
        "the owner deletes those after checking, on the Data rights page."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="list what would be deleted; change nothing")
        parser.add_argument(
            "--now",
            metavar="WHEN",
            help="act as if it were this day or time (ISO 8601, e.g. 2034-05-01); default: now",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from backcare.clinic.models import Clinic
        from backcare.datarights.erasure import past_retention_query, run_retention

        now = _moment(options["now"]) if options["now"] else timezone.now()
        run = run_retention(now=now, dry_run=options["dry_run"])
        verb = "Would delete" if run.dry_run else "Deleted"
        for item in run.items:
            if item.error:
                self.stderr.write(f"Client {item.client_id} ({item.clinic}): {item.error}")
            elif item.due:
                counts = ", ".join(f"{n} {label}" for label, n in sorted(item.counts.items()))
                self.stdout.write(
                    f"{verb} the record of client {item.client_id} ({item.clinic}), kept until "
                    f"{item.keep_until:%Y-%m-%d}: {counts}"
                )
            elif options["verbosity"] > 1 or run.dry_run:
                self.stdout.write(f"Keeping client {item.client_id} ({item.clinic}) until {item.keep_until:%Y-%m-%d}")
        done = len(run.due) - len(run.failed)
        self.stdout.write(
            f"{'Dry run: ' if run.dry_run else ''}{done} record(s) {'due' if run.dry_run else 'deleted'}, "
            f"{len(run.items) - len(run.due)} still within their retention period."
        )
        for clinic in Clinic.objects.order_by("name", "pk"):
            past = past_retention_query(clinic, now=now).count()
            if past:
                self.stdout.write(
                    f"{clinic.name}: {past} record(s) past their retention period with no erasure request; the "
                    "owner reviews and deletes them on the Data rights page (/data-rights/)."
                )
        if run.failed:
            raise CommandError(f"{len(run.failed)} record(s) could not be deleted (see above)", returncode=1)
