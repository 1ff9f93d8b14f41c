"""The front-desk calendar (a day or a week, per therapist or per room) and an appointment's own page.

Every member of staff sees the whole clinic's calendar, with names only: time, client, service, room or therapist,
never anything clinical (the front desk reads it too). An appointment's page follows the client's contact-details
permission: all staff of the clinic; a link to the client's record, which checks its own permissions. It carries the
status buttons the reader may press (`services.status.moves_for`) and, for the client's therapist, the session note.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_GET

from backcare.clinic import access, audit
from backcare.scheduling.forms import rooms_of, therapists_of
from backcare.scheduling.models import (
    CANCELLED_STATUSES,
    VISIT_STATUSES,
    Absence,
    Appointment,
    WorkingHours,
    live_q,
)
from backcare.scheduling.services import status as status_service
from backcare.scheduling.services.availability import clinic_zone, day_bounds
from backcare.scheduling.views import render_local, staff_appointment


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


@dataclass
class Row:
    label: str
    pk: int
    cells: list[Cell]
    inactive: bool = False


def _kind(appointment: Appointment, now: datetime) -> str | None:
    if appointment.is_cancelled:
        return "cancelled"
    if appointment.status in VISIT_STATUSES:
        return "booked"  # arrived, in treatment and completed visits are drawn as the booking they were
    if appointment.is_live(now):
        return "held"
    return None  # expired or declined offers are not shown


def _query(**params: Any) -> str:
    return "?" + urlencode({k: v for k, v in params.items() if v not in (None, "")})


@login_required
@require_GET
def calendar(request: HttpRequest) -> HttpResponse:
    staff = access.require_staff(request.user)
    clinic = staff.clinic
    zone = clinic_zone(clinic)
    now = timezone.now()
    today = timezone.localdate(timezone=zone)
    day = parse_date_param(request.GET.get("date")) or today
    view = "week" if request.GET.get("view") == "week" else "day"
    group = "room" if request.GET.get("by") == "room" else "therapist"
    show_cancelled = request.GET.get("cancelled", "1") != "0"
    first = day - timedelta(days=day.weekday()) if view == "week" else day
    days = [first + timedelta(days=i) for i in range(7 if view == "week" else 1)]
    lo, hi = day_bounds(days[0], days[-1], zone)

    shown = live_q(now) | Q(status__in=CANCELLED_STATUSES) if show_cancelled else live_q(now)
    appointments = list(
        Appointment.objects.filter(shown, clinic=clinic, starts_at__lt=hi, ends_at__gt=lo)
        .select_related("client", "therapist", "room", "service")
        .order_by("starts_at", "pk")
    )

    if group == "therapist":
        people = list(therapists_of(clinic))
        known = {t.pk for t in people}
        extra = {a.therapist_id: a.therapist for a in appointments if a.therapist_id not in known}
        rows_of: list[tuple[int, str, bool]] = [(t.pk, t.display_name, False) for t in people]
        rows_of += [(pk, t.display_name, True) for pk, t in extra.items()]
    else:
        rooms = list(rooms_of(clinic))
        known = {r.pk for r in rooms}
        extra_rooms = {a.room_id: a.room for a in appointments if a.room_id not in known}
        rows_of = [(r.pk, r.name, False) for r in rooms]
        rows_of += [(pk, r.name, True) for pk, r in extra_rooms.items()]

    by_cell: dict[tuple[int, date], list[Entry]] = defaultdict(list)
    for a in appointments:
        kind = _kind(a, now)
        if kind is None:
            continue
        starts, ends = a.starts_at.astimezone(zone), a.ends_at.astimezone(zone)
        key = a.therapist_id if group == "therapist" else a.room_id
        entry = Entry(a, starts, ends, kind, reverse("appointment_detail", args=[a.pk]))
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

    search = reverse("slot_search")
    rows: list[Row] = []
    for pk, label, inactive in rows_of:
        cells = []
        for d in days:
            cell = Cell(d, by_cell.get((pk, d), []))
            if group == "therapist":
                cell.hours = hours.get((pk, d.weekday()), [])
                cell.away = away.get((pk, d), "")
                if d >= today and not inactive:
                    cell.find_url = search + _query(date_from=d.isoformat(), date_to=d.isoformat(), therapist=pk)
            elif d >= today:
                cell.find_url = search + _query(date_from=d.isoformat(), date_to=d.isoformat())
            cells.append(cell)
        rows.append(Row(label, pk, cells, inactive))

    step = timedelta(days=7 if view == "week" else 1)
    here = {"view": view, "by": group, "cancelled": "" if show_cancelled else "0"}
    context = {
        "staff": staff,
        "view": view,
        "group": group,
        "day": day,
        "days": days,
        "today": today,
        "rows": rows,
        "count": sum(len(c.entries) for r in rows for c in r.cells),
        "show_cancelled": show_cancelled,
        "prev_url": _query(**here, date=(day - step).isoformat()),
        "next_url": _query(**here, date=(day + step).isoformat()),
        "today_url": _query(**here, date=today.isoformat()),
        "day_url": _query(view="day", by=group, date=day.isoformat(), cancelled=here["cancelled"]),
        "week_url": _query(view="week", by=group, date=day.isoformat(), cancelled=here["cancelled"]),
        "therapist_url": _query(view=view, by="therapist", date=day.isoformat(), cancelled=here["cancelled"]),
        "room_url": _query(view=view, by="room", date=day.isoformat(), cancelled=here["cancelled"]),
        "cancelled_url": _query(view=view, by=group, date=day.isoformat(), cancelled="0" if show_cancelled else ""),
        "find_url": search + _query(date_from=max(day, today).isoformat()),
    }
    return render_local(request, "scheduling/calendar.html", context, clinic)


def parse_date_param(value: str | None) -> date | None:
    try:
        return parse_date(value or "")
    except ValueError:
        return None


@login_required
@require_GET
def appointment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    staff, appointment = staff_appointment(request.user, pk)
    audit.viewed(request, appointment.client, "appointment", obj=appointment)
    now = timezone.now()
    clinic = appointment.clinic
    clinical = access.can_see_clinical(request.user, appointment.client)
    moves = status_service.moves_for(appointment, staff=staff, clinical=clinical, now=now)
    context = {
        "staff": staff,
        "appointment": appointment,
        "moves": [(new, status_service.BUTTONS[new]) for new in moves],
        # A visit that has begun (or was completed) without its note: the therapist writes it from here.
        "note_due": clinical
        and appointment.session_id is None
        and appointment.status in (Appointment.Status.IN_TREATMENT, Appointment.Status.COMPLETED)
        and not appointment.service.assessment,
        "sees_note": clinical and appointment.session_id is not None,
        "client": appointment.client,
        "is_live": appointment.is_live(now),
        "changeable": appointment.status == Appointment.Status.BOOKED and appointment.starts_at > now,
        "late": appointment.starts_at - now < timedelta(hours=clinic.cancellation_hours),
        "sees_course": appointment.course_id is not None and access.can_see_clinical(request.user, appointment.client),
        "calendar_url": reverse("calendar")
        + _query(date=appointment.starts_at.astimezone(clinic_zone(clinic)).date().isoformat()),
    }
    return render_local(request, "scheduling/appointment_detail.html", context, clinic)


urlpatterns = [
    path("calendar/", calendar, name="calendar"),
    path("appointments/<int:pk>/", appointment_detail, name="appointment_detail"),
]
