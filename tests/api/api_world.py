"""The data set of the API's permission matrix and bad-input tests: the project's shared matrix world
(tests/matrix_support.py: client X of therapist A, client Y of therapist B, each with every kind of record,
appointments and billing: invoices, a payment, a credit note, a fee and a package) plus a real API token for each
role, a read-only token and a revoked one."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from api_support import make_token

from matrix_support import build_world

ROLES = (
    "owner",
    "therapist",
    "other_therapist",
    "front_desk",
    "client",
    "other_client",
    "read_only",
    "revoked",
    "none",
)


@dataclass
class ApiWorld:
    world: Any
    tokens: dict[str, str | None]

    @property
    def x(self) -> dict[str, Any]:
        return self.world.x.ids

    @property
    def y(self) -> dict[str, Any]:
        return self.world.y.ids

    def day(self, days: int) -> dt.date:
        """The `days`-th day from today on which the matrix clinic is open: public holidays of its country are
        closed for booking and are not counted, so different offsets stay different days, in order."""
        import holidays
        from django.utils import timezone

        closed = holidays.country_holidays(self.world.clinic.country)
        day = timezone.localdate()
        for _ in range(days):
            day += dt.timedelta(days=1)
            while day in closed:
                day += dt.timedelta(days=1)
        return day

    def at(self, days: int, hour: int = 9) -> str:
        """An ISO time `days` ahead at `hour` UTC (the matrix clinic's zone), inside the therapists' hours."""
        return dt.datetime.combine(self.day(days), dt.time(hour), tzinfo=dt.UTC).isoformat()


def build_api_world() -> ApiWorld:
    from backcare.api import tokens as token_service
    from backcare.api.models import ApiToken

    world = build_world(billing=True)  # the billing operations need invoices, payments and packages
    users = {
        "owner": world.owner.user,
        "therapist": world.therapist_a.user,
        "other_therapist": world.therapist_b.user,
        "front_desk": world.front_desk.user,
        "client": world.x.client.user,
        "other_client": world.y.client.user,
    }
    made: dict[str, str | None] = {role: make_token(user, name=f"{role} token") for role, user in users.items()}
    made["read_only"] = make_token(world.owner.user, "read", name="read-only token")
    revoked = make_token(world.owner.user, name="revoked token")
    row = ApiToken.objects.get(token_hash=token_service.token_hash(revoked))
    token_service.revoke_token(row, by=world.owner.user)
    made["revoked"] = revoked
    made["none"] = None
    return ApiWorld(world, made)
