"""The calendar grid: one row per therapist (or room), one cell per day, each cell's appointments, working hours and
absence. The front-desk calendar page renders it; anything else that shows the clinic's days (the API) reads it here.

Only the appointments to show are read, in the database: live ones (booked, or held with an unexpired hold), and the
cancelled ones only when asked for. Expired and declined offers are never read. The window is bounded on both sides
(no appointment is busy longer than `MAX_BUSY_SPAN`), so the clinic's years of history are not scanned.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from django.db.models import Q, QuerySet
from django.urls import reverse

from backcare.clinic.models import Clinic
from backcare.scheduling.forms import rooms_of, therapists_of
from backcare.scheduling.models import (
    CANCELLED_STATUSES,
    VISIT_STATUSES,
    Absence,
    Appointment,
    WorkingHours,
    live_q,
)
from backcare.scheduling.services.availability import MAX_BUSY_SPAN, clinic_zone, day_bounds
from backcare.scheduling.services.holidays import closed_days


@dataclass
class Entry:
    appointment: Appointment
    starts: datetime
    ends: datetime
    kind: str  # booked, held, cancelled
    url: str


@dataclass
class Cell:
    day: date
    entries: list[Entry] = field(default_factory=list)
    hours: list[str] = field(default_factory=list)
    away: str = ""
    find_url: str = ""
    closed: str = ""  # the public holiday the clinic is closed for


@dataclass
class Row:
    label: str
    pk: int
    cells: list[Cell]
    inactive: bool = False


def query(**params: Any) -> str:
    return "?" + urlencode({k: v for k, v in params.items() if v not in (None, "")})


def appointments(
    clinic: Clinic, lo: datetime, hi: datetime, *, now: datetime, cancelled: bool = False
) -> QuerySet[Appointment]:
    """The clinic's appointments touching [lo, hi) that the calendar shows: live ones, and cancelled ones if asked."""
    window = Q(starts_at__lt=hi, ends_at__gt=lo, starts_at__gt=lo - MAX_BUSY_SPAN)
    if cancelled:
        shown = window & (live_q(now) | Q(status__in=CANCELLED_STATUSES))
    else:
        # The live rows' own index (clinic, busy_from, ...): busy_from is at or before starts_at.
        shown = window & live_q(now) & Q(busy_from__lt=hi, busy_from__gt=lo - MAX_BUSY_SPAN)
    return (
        Appointment.objects.filter(shown, clinic=clinic)
        .select_related("client", "therapist", "room", "service")
        .order_by("starts_at", "pk")
    )


def kind_of(appointment: Appointment) -> str:
    if appointment.is_cancelled:
        return "cancelled"
    # arrived, in treatment and completed visits are drawn as the booking they were
    return "booked" if appointment.status in VISIT_STATUSES else "held"


def grid(
    clinic: Clinic, days: list[date], *, group: str, now: datetime, today: date, cancelled: bool = False
) -> list[Row]:
    """The calendar's rows for `days`, per therapist (`group="therapist"`) or per room: a fixed number of queries."""
    zone = clinic_zone(clinic)
    lo, hi = day_bounds(days[0], days[-1], zone)
    shown = list(appointments(clinic, lo, hi, now=now, cancelled=cancelled))

    if group == "therapist":
        people = list(therapists_of(clinic))
        known = {t.pk for t in people}
        extra = {a.therapist_id: a.therapist for a in shown if a.therapist_id not in known}
        rows_of: list[tuple[int, str, bool]] = [(t.pk, t.display_name, False) for t in people]
        rows_of += [(pk, t.display_name, True) for pk, t in extra.items()]
    else:
        rooms = list(rooms_of(clinic))
        known = {r.pk for r in rooms}
        extra_rooms = {a.room_id: a.room for a in shown if a.room_id not in known}
        rows_of = [(r.pk, r.name, False) for r in rooms]
        rows_of += [(pk, r.name, True) for pk, r in extra_rooms.items()]

    by_cell: dict[tuple[int, date], list[Entry]] = defaultdict(list)
    for a in shown:
        starts, ends = a.starts_at.astimezone(zone), a.ends_at.astimezone(zone)
        key = a.therapist_id if group == "therapist" else a.room_id
        entry = Entry(a, starts, ends, kind_of(a), reverse("appointment_detail", args=[a.pk]))
        by_cell[(key, starts.date())].append(entry)

    hours: dict[tuple[int, int], list[str]] = defaultdict(list)
    away: dict[tuple[int, date], str] = {}
    if group == "therapist":
        ids = [pk for pk, _, _ in rows_of]
        for block in WorkingHours.objects.filter(therapist_id__in=ids).order_by("starts"):
            hours[(block.therapist_id, block.weekday)].append(f"{block.starts:%H:%M}-{block.ends:%H:%M}")
        for absence in Absence.objects.filter(therapist_id__in=ids, starts_at__lt=hi, ends_at__gt=lo):
            for d in days:
                d_lo, d_hi = day_bounds(d, d, zone)
                if absence.starts_at < d_hi and absence.ends_at > d_lo:
                    away[(absence.therapist_id, d)] = absence.get_kind_display()

    closed = closed_days(clinic, days[0], days[-1])
    search = reverse("slot_search")
    rows: list[Row] = []
    for pk, label, inactive in rows_of:
        cells = []
        for d in days:
            cell = Cell(d, by_cell.get((pk, d), []), closed=closed.get(d, ""))
            bookable = d >= today and not cell.closed  # no free times on a closed holiday
            if group == "therapist":
                cell.hours = hours.get((pk, d.weekday()), [])
                cell.away = away.get((pk, d), "")
                if bookable and not inactive:
                    cell.find_url = search + query(date_from=d.isoformat(), date_to=d.isoformat(), therapist=pk)
            elif bookable:
                cell.find_url = search + query(date_from=d.isoformat(), date_to=d.isoformat())
            cells.append(cell)
        rows.append(Row(label, pk, cells, inactive))
    return rows


__all__ = ["Cell", "Entry", "Row", "appointments", "grid", "kind_of", "query"]
