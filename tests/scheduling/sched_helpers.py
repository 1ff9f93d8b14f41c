"""Shared set-up for the scheduling tests: a clinic with two rooms, two therapists working every day 09:00-17:00
(Europe/London), a treatment service with turnover, an assessment service, and screened clients."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays
from django.utils import timezone

LONDON = ZoneInfo("Europe/London")
GB_HOLIDAYS = holidays.country_holidays("GB")
NINE_TO_FIVE = {d: [(time(9), time(17))] for d in range(7)}
_names = itertools.count(1)


def future_day(days: int = 7, weekday: int | None = None) -> date:
    """A local date at least `days` ahead (on `weekday` if given): always outside the cancellation window, and never
    a public holiday of the clinics' country (GB), on which the clinic is closed for booking."""
    day = timezone.localdate(timezone=LONDON) + timedelta(days=days)
    while (weekday is not None and day.weekday() != weekday) or day in GB_HOLIDAYS:
        day += timedelta(days=1)
    return day


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A local wall-clock time in London, as an aware datetime."""
    return datetime.combine(day, time(hour, minute), tzinfo=LONDON)


def last_sunday(year: int, month: int) -> date:
    day = date(year, month + 1, 1) - timedelta(days=1)
    while day.weekday() != 6:
        day -= timedelta(days=1)
    return day


def next_transition(month: int) -> date:
    """The next last-Sunday-of-`month` (March: clocks go forward; October: back) at least two days ahead."""
    today = timezone.localdate(timezone=LONDON)
    for year in (today.year, today.year + 1):
        day = last_sunday(year, month)
        if day > today + timedelta(days=2):
            return day
    raise AssertionError("unreachable")


@dataclass
class World:
    clinic: Any
    owner: Any
    therapist: Any
    therapist2: Any
    front_desk: Any
    room1: Any
    room2: Any
    massage: Any
    assessment: Any
    cora: Any
    make_client: Any
    screen_client: Any
    extra: dict[str, Any] = field(default_factory=dict)

    def client(self, first_name: str | None = None, *, screened: bool = True, **fields: Any) -> Any:
        n = next(_names)
        c = self.make_client(
            self.therapist, first_name=first_name or f"Client{n}", last_name=f"Number{n}", email=f"c{n}@x.test"
        )
        if screened:
            self.screen_client(c, **fields)
        return c


def build_world(
    clinic: Any,
    owner: Any,
    therapist: Any,
    therapist2: Any,
    front_desk: Any,
    make_client: Any,
    screen_client: Any,
    client_record: Any,
) -> World:
    from backcare.scheduling.services import resources

    room1 = resources.create_room(clinic, "Room 1", by=owner.user)
    room2 = resources.create_room(clinic, "Room 2", by=owner.user)
    massage = resources.create_service(
        clinic,
        by=owner.user,
        name="Remedial massage",
        duration_minutes=60,
        turnover_before_minutes=5,
        turnover_after_minutes=10,
        techniques=["remedial"],
    )
    assessment = resources.create_service(
        clinic, by=owner.user, name="First assessment", duration_minutes=45, assessment=True
    )
    for t in (therapist, therapist2):
        resources.set_working_hours(t, NINE_TO_FIVE, by=owner.user)
    screen_client(client_record)
    return World(
        clinic,
        owner,
        therapist,
        therapist2,
        front_desk,
        room1,
        room2,
        massage,
        assessment,
        client_record,
        make_client,
        screen_client,
    )


def live_overlaps() -> list[str]:
    """Every pair of live appointments (overbooked ones included) that share a therapist, room or client in time."""
    from backcare.scheduling.models import Appointment, live_q

    rows = list(
        Appointment.objects.filter(live_q(timezone.now())).values(
            "pk", "therapist_id", "room_id", "client_id", "starts_at", "ends_at", "busy_from", "busy_until"
        )
    )
    found = []
    for a, b in itertools.combinations(rows, 2):
        busy = a["busy_from"] < b["busy_until"] and b["busy_from"] < a["busy_until"]
        span = a["starts_at"] < b["ends_at"] and b["starts_at"] < a["ends_at"]
        if busy and a["therapist_id"] == b["therapist_id"]:
            found.append(f"therapist {a['therapist_id']}: {a['pk']} and {b['pk']}")
        if busy and a["room_id"] == b["room_id"]:
            found.append(f"room {a['room_id']}: {a['pk']} and {b['pk']}")
        if span and a["client_id"] == b["client_id"]:
            found.append(f"client {a['client_id']}: {a['pk']} and {b['pk']}")
    return found
