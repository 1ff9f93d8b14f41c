"""`backcare manage send_outbox`: send every email in the outbox that is due, once, and stop. For cron or a systemd
timer every minute when no `backcare worker` runs; safe to overlap with other runs and workers."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from backcare.common import outbox


class Command(BaseCommand):
    help = (
        "Send the emails in the outbox that are due (new ones, and failed ones whose next attempt has come), then "
        "stop. Exit status 1 when an email failed for good (the owner sees it on the outbox page)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        result = outbox.send_due()
        self.stdout.write(result.summary())
        outbox.prune()
        if result.failed:
            raise CommandError(
                f"{result.failed} email(s) failed after their last attempt; see the outbox page", returncode=1
            )
