"""`backcare manage two_factor_reset USERNAME`: remove a user's authenticator app and recovery codes, for an owner
who lost both (staff are reset by the owner on the Staff sign-in security page). The user sets up a new app at the
next sign-in. The reset is in the audit trail."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "Remove a user's authenticator app and recovery codes (a lost phone and lost codes); they set up a new app "
        "at their next sign-in. Recorded in the audit trail."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="the user's sign-in name")

    def handle(self, *args: Any, **options: Any) -> None:
        from backcare.clinic.services import two_factor

        username = options["username"]
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"username: no user is called {username!r}")
        removed = two_factor.reset_by_operator(user)
        if removed:
            self.stdout.write(f"Removed {username}'s app and recovery codes; a new app is set up at next sign-in.")
        else:
            self.stdout.write(f"{username} had no app or recovery codes; nothing changed.")
