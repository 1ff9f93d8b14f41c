"""`backcare worker`: send the outbox's emails as they come, until stopped (SIGTERM or Ctrl+C finish the email in
hand first). Run it beside `backcare serve` under a service manager; any number may run at once."""

from __future__ import annotations

import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backcare.common import outbox


class Command(BaseCommand):
    help = "Send the outbox's emails, with retries, until stopped (SIGTERM or Ctrl+C)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--poll",
            type=float,
            default=None,
            metavar="SECONDS",
            help=f"look for due emails this often (default {outbox.DEFAULTS['POLL_SECONDS']}, or BACKCARE_OUTBOX_POLL)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        poll = options["poll"]
        if poll is not None and not 0 < poll <= 3600:
            raise CommandError(f"--poll must be more than 0 and at most 3600 seconds, not {poll:g}")
        worker = outbox.Worker(poll)

        def stop(signum: int, frame: Any) -> None:
            worker.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"Backcare outbox worker {worker.name} is running (every {worker.poll_seconds:g} s).")
        self.stdout.flush()
        worker.run()
        self.stdout.write(f"Backcare outbox worker has stopped: {worker.total.summary()}.")
