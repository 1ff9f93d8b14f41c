"""What the calendar page shows and what its time grid reads: the page's context (the HTML grid, which works without
JavaScript, its navigation, and the time grid's settings), and the grid's events for a visible range.

The events, per reader (`feed`):
- the owner and the front desk: every live appointment of the clinic with the client's name, the service, the
  therapist and the room (contact data, never anything clinical: the front desk reads it too), movable when booked
  and still to come; the owner also reads why a time was overbooked;
- a therapist: their own appointments in the same way, and the others' only as "Busy" blocks (therapist and room,
  no client, not movable, no link).
Closed public holidays come as all-day events and a shaded background; with one therapist chosen, their absences
shade the grid too. A fixed number of queries, whatever the number of appointments.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Q
from django.urls import reverse

from backcare.clinic.models import Clinic, Role, StaffMember
from backcare.scheduling.calendar_forms import CalendarQuery
from backcare.scheduling.forms import rooms_of, therapists_of
from backcare.scheduling.models import Absence, Appointment, Room
from backcare.scheduling.selectors.calendar import appointments, grid, kind_of, query
from backcare.scheduling.services.availability import clinic_zone, day_bounds
from backcare.scheduling.services.holidays import closed_days, public_holidays

LOCAL = "%Y-%m-%dT%H:%M:%S"  # local wall-clock time, as the time grid reads it in the clinic's zone


def page_context(clinic: Clinic, q: CalendarQuery, *, now: datetime, today: date) -> dict[str, Any]:
    """The calendar page: the rows of the HTML grid for the query and the links that move around it."""
    days = q.days
    rows = grid(clinic, days, group=q.group, now=now, today=today, cancelled=q.cancelled)
    shown = "1" if q.cancelled else ""
    here = {"view": q.view, "by": q.group, "cancelled": shown}
    on = q.day.isoformat()
    return {
        "view": q.view,
        "group": q.group,
        "day": q.day,
        "days": days,
        "today": today,
        "rows": rows,
        "count": sum(len(c.entries) for r in rows for c in r.cells),
        "show_cancelled": q.cancelled,
        "prev_url": query(**here, date=(q.day - q.step).isoformat()),
        "next_url": query(**here, date=(q.day + q.step).isoformat()),
        "today_url": query(**here, date=today.isoformat()),
        "day_url": query(view="day", by=q.group, date=on, cancelled=shown),
        "week_url": query(view="week", by=q.group, date=on, cancelled=shown),
        "therapist_url": query(view=q.view, by="therapist", date=on, cancelled=shown),
        "room_url": query(view=q.view, by="room", date=on, cancelled=shown),
        "cancelled_url": query(view=q.view, by=q.group, date=on, cancelled="" if q.cancelled else "1"),
        "find_url": reverse("slot_search") + query(date_from=max(q.day, today).isoformat()),
        "holidays": [{"day": d, "name": name} for d, name in sorted(closed_days(clinic, days[0], days[-1]).items())],
        "grid_config": grid_config(clinic, q),
    }


def grid_config(clinic: Clinic, q: CalendarQuery) -> dict[str, Any]:
    """The time grid's settings, handed to calendar-grid.js as JSON (`json_script`)."""
    return {
        "date": q.day.isoformat(),
        "view": q.view,
        "group": q.group,
        "cancelled": q.cancelled,
        "timeZone": clinic.time_zone,
        "eventsUrl": reverse("calendar_events"),
        "bookUrl": reverse("appointment_book"),
        "therapists": [{"id": t.pk, "name": t.display_name} for t in therapists_of(clinic)],
        "rooms": [{"id": r.pk, "name": r.name} for r in rooms_of(clinic)],
    }


@dataclass(frozen=True)
class Reader:
    """Who reads the feed, and so what each appointment shows."""

    staff: StaffMember

    @property
    def sees_all(self) -> bool:
        return self.staff.role in (Role.OWNER, Role.FRONT_DESK)

    def sees(self, appointment: Appointment) -> bool:
        return self.sees_all or appointment.therapist_id == self.staff.pk


def _local(moment: datetime, zone: Any) -> str:
    return moment.astimezone(zone).strftime(LOCAL)


def _event(a: Appointment, reader: Reader, zone: Any, now: datetime) -> dict[str, Any]:
    kind = kind_of(a)
    movable = a.status == Appointment.Status.BOOKED and a.starts_at > now
    common = {
        "id": str(a.pk),
        "start": _local(a.starts_at, zone),
        "end": _local(a.ends_at, zone),
        "classNames": [f"appt-{kind}", *(["appt-overbooked"] if a.override and kind != "cancelled" else [])],
    }
    place = {"therapist": a.therapist.display_name, "therapistId": a.therapist_id, "room": a.room.name}
    if not reader.sees(a):
        return {**common, "title": "Busy", "editable": False, "extendedProps": {**place, "kind": "busy"}}
    props: dict[str, Any] = {
        **place,
        "roomId": a.room_id,
        "kind": kind,
        "client": a.client.full_name,
        "service": a.service.name,
        "moveUrl": reverse("appointment_drop", args=[a.pk]) if movable else "",
    }
    if kind == "held" and a.hold_expires_at is not None:
        props["holdUntil"] = a.hold_expires_at.astimezone(zone).strftime("%H:%M")
    if kind == "cancelled":
        props["cancelReason"] = a.cancel_reason
    if a.override and reader.staff.role == Role.OWNER:
        props["overbookReason"] = a.override_reason
    return {
        **common,
        "title": f"{a.client.full_name} · {a.service.name}",
        "url": reverse("appointment_detail", args=[a.pk]),
        "editable": movable,
        "extendedProps": props,
    }


def _closed_events(clinic: Clinic, first: date, last: date) -> list[dict[str, Any]]:
    closed = closed_days(clinic, first, last)
    events: list[dict[str, Any]] = []
    for day, name in sorted(public_holidays(clinic, first, last).items()):
        end = (day + timedelta(days=1)).isoformat()
        shut = day in closed
        title = f"Closed: {name}" if shut else f"{name} (open for booking)"
        base = {"start": day.isoformat(), "end": end, "allDay": True, "editable": False}
        events.append({**base, "title": title, "classNames": ["cal-holiday"], "extendedProps": {"kind": "holiday"}})
        if shut:
            events.append({**base, "display": "background", "classNames": ["cal-closed"]})
    return events


def _absence_events(therapist: StaffMember, lo: datetime, hi: datetime, zone: Any) -> list[dict[str, Any]]:
    return [
        {
            "start": _local(max(a.starts_at, lo), zone),
            "end": _local(min(a.ends_at, hi), zone),
            "display": "background",
            "title": f"Away ({a.get_kind_display().lower()})",
            "classNames": ["cal-away"],
        }
        for a in Absence.objects.filter(therapist=therapist, starts_at__lt=hi, ends_at__gt=lo)
    ]


def feed(
    reader: StaffMember,
    first: date,
    last: date,
    *,
    now: datetime,
    therapist: StaffMember | None = None,
    room: Room | None = None,
    cancelled: bool = False,
) -> list[dict[str, Any]]:
    """The time grid's events on the local days `first`..`last` for `reader` (see the module's docstring)."""
    clinic = reader.clinic
    zone = clinic_zone(clinic)
    lo, hi = day_bounds(first, last, zone)
    shown = appointments(clinic, lo, hi, now=now, cancelled=cancelled)
    if therapist is not None:
        shown = shown.filter(Q(therapist=therapist))
    if room is not None:
        shown = shown.filter(room=room)
    who = Reader(reader)
    events = [_event(a, who, zone, now) for a in shown]
    events += _closed_events(clinic, first, last)
    if therapist is not None:
        events += _absence_events(therapist, lo, hi, zone)
    return events


__all__ = ["LOCAL", "Reader", "feed", "grid_config", "page_context"]
