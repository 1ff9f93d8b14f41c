"""The front-desk calendar (a day or a week, per therapist or per room) and an appointment's own page.

Every member of staff sees the whole clinic's calendar, with names only: time, client, service, room or therapist,
never anything clinical (the front desk reads it too). An appointment's page follows the client's contact-details
permission: all staff of the clinic; a link to the client's record, which checks its own permissions. It carries the
status buttons the reader may press (`services.status.moves_for`) and, for the client's therapist, the session note.
"""

from __future__ import annotations

from datetime import date, timedelta

from csp.constants import NONCE
from csp.decorators import csp_update
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_GET

from backcare.clinic import access, audit
from backcare.scheduling.calendar_forms import CalendarForm, FeedForm
from backcare.scheduling.models import Appointment
from backcare.scheduling.selectors.calendar import query
from backcare.scheduling.selectors.calendar_page import feed, page_context
from backcare.scheduling.services import status as status_service
from backcare.scheduling.services.availability import clinic_zone
from backcare.scheduling.views import render_local, safe_json, staff_appointment


@login_required
@require_GET
# The time grid's own styles, injected with the page's nonce (see calendar.html), and its icon font, a data: URL.
@csp_update({"style-src": [NONCE], "font-src": ["'self'", "data:"]})
def calendar(request: HttpRequest) -> HttpResponse:
    staff = access.require_staff(request.user)
    clinic = staff.clinic
    today = timezone.localdate(timezone=clinic_zone(clinic))
    q = CalendarForm(request.GET).query(today)
    context = {"staff": staff, **page_context(clinic, q, now=timezone.now(), today=today)}
    return render_local(request, "scheduling/calendar.html", context, clinic)


@login_required
@require_GET
def calendar_events(request: HttpRequest) -> HttpResponse:
    """The time grid's events for the visible range, as JSON (see `selectors.calendar_page.feed`)."""
    staff = access.require_staff(request.user)
    form = FeedForm(request.GET, clinic=staff.clinic)
    if not form.is_valid():
        return safe_json({"errors": {k: list(v) for k, v in form.errors.items()}}, status=400)
    data = form.cleaned_data
    events = feed(
        staff,
        data["start"],
        form.last_day,
        now=timezone.now(),
        therapist=data.get("therapist"),
        room=data.get("room"),
        cancelled=data.get("cancelled") == "1",
    )
    return safe_json(events)


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
    path("calendar/events/", calendar_events, name="calendar_events"),
    path("appointments/<int:pk>/", appointment_detail, name="appointment_detail"),
]
