"""Running the day: the "Today" page, and the buttons that move an appointment along (arrived, did not come,
completed) or start its session note.

Today: a therapist sees their own appointments, the front desk and the owner the whole clinic's, in the clinic's
time zone. What each still needs (intake, clearance, health update, note) is shown only to those who may open the
client's record; the front desk reads names, times, rooms and statuses. The buttons are the ones
`services.status.moves_for` allows the reader; the service checks again when they are pressed.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from backcare.clinic import access, audit
from backcare.clinic.models import Role
from backcare.clinic.services import sessions as session_service
from backcare.scheduling import today as day_selector
from backcare.scheduling.models import Appointment
from backcare.scheduling.services import status as status_service
from backcare.scheduling.services.availability import clinic_zone
from backcare.scheduling.views import render_local, staff_appointment
from backcare.scheduling.views.calendar import parse_date_param

DONE: dict[str, str] = {
    Appointment.Status.ARRIVED: "marked as arrived",
    Appointment.Status.NO_SHOW: "marked as not come",
    Appointment.Status.COMPLETED: "completed",
}


def _back(request: HttpRequest, appointment: Appointment) -> HttpResponse:
    """Back to the page the button was on: Today (same day), or the appointment."""
    if request.POST.get("back") == "today":
        day = parse_date_param(request.POST.get("date"))
        return redirect(reverse("today") + (f"?date={day.isoformat()}" if day else ""))
    return redirect("appointment_detail", pk=appointment.pk)


def _message(error: ValidationError) -> str:
    return " ".join(error.messages)


@login_required
@require_POST
def appointment_status(request: HttpRequest, pk: int) -> HttpResponse:
    """Move the appointment to the status of the pressed button (a `status` field)."""
    _staff, appointment = staff_appointment(request.user, pk)
    new = request.POST.get("status", "")
    try:
        appointment = status_service.change_status(appointment, new, by=request.user, request=request)
    except ValidationError as error:
        messages.error(request, f"Status: {_message(error)}")
    else:
        messages.success(request, f"{appointment.client.full_name}'s appointment was {DONE.get(new, new)}.")
    return _back(request, appointment)


@login_required
@require_POST
def appointment_start_note(request: HttpRequest, pk: int) -> HttpResponse:
    """The therapist starts the session note from the appointment: it moves to in treatment and the pre-session
    health update opens (then the note, which completes the appointment when it is saved)."""
    _staff, appointment = staff_appointment(request.user, pk)
    access.get_client(request.user, appointment.client_id, clinical=True)  # 403 front desk, 404 other therapists
    if appointment.session_id is not None:
        return redirect("session_detail", pk=appointment.session_id)
    try:
        course = status_service.start_note(appointment, by=request.user, request=request)
    except ValidationError as error:
        messages.error(request, f"The session note cannot start: {_message(error)}")
        return _back(request, appointment)
    return redirect("health_update", pk=course.pk)


@login_required
@require_GET
def today(request: HttpRequest) -> HttpResponse:
    staff = access.require_staff(request.user)
    clinic = staff.clinic
    zone = clinic_zone(clinic)
    now = timezone.now()
    this_day = timezone.localdate(timezone=zone)
    day = parse_date_param(request.GET.get("date")) or this_day
    rows = day_selector.day_rows(request.user, staff, day, now)
    notes_due = session_service.notes_due(staff) if staff.role != Role.FRONT_DESK else []
    clinical = [row.appointment.client for row in rows if row.clinical and row.needs]
    clinical += [s.course.client for s in notes_due]
    if clinical:
        audit.viewed_many(request, clinical, "today's appointments")  # what they need is read from the record
    context = {
        "staff": staff,
        "rows": rows,
        "day": day,
        "is_today": day == this_day,
        "own": staff.role == Role.THERAPIST,
        "shows_needs": staff.role != Role.FRONT_DESK,
        "calendar_url": reverse("calendar") + f"?date={day.isoformat()}",
        "notes_due": notes_due,
        "note_due_text": session_service.NOTE_DUE,
    }
    return render_local(request, "scheduling/today.html", context, clinic)


urlpatterns = [
    path("today/", today, name="today"),
    path("appointments/<int:pk>/status/", appointment_status, name="appointment_status"),
    path("appointments/<int:pk>/note/", appointment_start_note, name="appointment_start_note"),
]
