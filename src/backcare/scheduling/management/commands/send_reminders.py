"""`backcare manage send_reminders [--hours-ahead 24]`: queue the reminders that are due in the outbox (its worker
sends them) and release expired waitlist holds. Safe to run from cron or a systemd timer as often as you like, even
overlapping."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backcare.scheduling.reminders import DEFAULT_HOURS_AHEAD, queue_due_reminders

MAX_HOURS_AHEAD = 24 * 14


class Command(BaseCommand):
    help = (
        "Queue an email reminding clients of each booked appointment that starts within the next HOURS hours (once "
        "per appointment and start time); the outbox worker sends them (`backcare worker` or `send_outbox`)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--hours-ahead",
            type=float,
            default=DEFAULT_HOURS_AHEAD,
            metavar="HOURS",
            help=f"remind appointments starting within this many hours (default {DEFAULT_HOURS_AHEAD})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        hours = options["hours_ahead"]
        if not 0 < hours <= MAX_HOURS_AHEAD:
            raise CommandError(f"--hours-ahead must be more than 0 and at most {MAX_HOURS_AHEAD}, not {hours:g}")
        from backcare.scheduling.services.waitlist import release_expired_holds

        released = release_expired_holds()
        if released:
            self.stdout.write(f"Released {len(released)} expired waitlist hold(s) and offered them on.")
        run = queue_due_reminders(hours_ahead=hours)
        self.stdout.write(run.summary())
