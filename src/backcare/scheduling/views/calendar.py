"""The front-desk calendar (a day or a week, per therapist or per room) and an appointment's own page.

Every member of staff sees the whole clinic's calendar, with names only: time, client, service, room or therapist,
never anything clinical (the front desk reads it too). An appointment's page follows the client's contact-details
permission: all staff of the clinic; a link to the client's record, which checks its own permissions. It carries the
status buttons the reader may press (`services.status.moves_for`) and, for the client's therapist, the session note.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_GET

from backcare.clinic import access, audit
from backcare.scheduling.models import Appointment
from backcare.scheduling.selectors.calendar import grid, query
from backcare.scheduling.services import status as status_service
from backcare.scheduling.services.availability import clinic_zone
from backcare.scheduling.views import render_local, staff_appointment


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
    show_cancelled = request.GET.get("cancelled") == "1"  # cancelled appointments only when asked for
    first = day - timedelta(days=day.weekday()) if view == "week" else day
    days = [first + timedelta(days=i) for i in range(7 if view == "week" else 1)]

    rows = grid(clinic, days, group=group, now=now, today=today, cancelled=show_cancelled)

    step = timedelta(days=7 if view == "week" else 1)
    here = {"view": view, "by": group, "cancelled": "1" if show_cancelled else ""}
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
        "prev_url": query(**here, date=(day - step).isoformat()),
        "next_url": query(**here, date=(day + step).isoformat()),
        "today_url": query(**here, date=today.isoformat()),
        "day_url": query(view="day", by=group, date=day.isoformat(), cancelled=here["cancelled"]),
        "week_url": query(view="week", by=group, date=day.isoformat(), cancelled=here["cancelled"]),
        "therapist_url": query(view=view, by="therapist", date=day.isoformat(), cancelled=here["cancelled"]),
        "room_url": query(view=view, by="room", date=day.isoformat(), cancelled=here["cancelled"]),
        "cancelled_url": query(view=view, by=group, date=day.isoformat(), cancelled="" if show_cancelled else "1"),
        "find_url": reverse("slot_search") + query(date_from=max(day, today).isoformat()),
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
        "sees_course": appointment.course_id is not None and clinical,
        "calendar_url": reverse("calendar")
        + query(date=appointment.starts_at.astimezone(clinic_zone(clinic)).date().isoformat()),
    }
    return render_local(request, "scheduling/appointment_detail.html", context, clinic)


urlpatterns = [
    path("calendar/", calendar, name="calendar"),
    path("appointments/<int:pk>/", appointment_detail, name="appointment_detail"),
]
