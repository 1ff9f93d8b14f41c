"""Booking from a free slot, moving and cancelling an appointment, and booking a whole course in one step.

Staff of every role may book (the front desk manages appointments). A time that is taken is refused by the booking
service with `BookingConflict`: the page says who or what is taken, keeps what was typed, and answers 409. Only the
owner sees the "overbook deliberately" choice, and must give a reason. A hidden one-time key makes a double
submission book nothing twice (`Appointment.submission_key`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from backcare.clinic import access, audit
from backcare.clinic.models import Course, Role, StaffMember
from backcare.common.forms import add_service_errors
from backcare.scheduling.forms import (
    BookingForm,
    CancelForm,
    CourseBookingForm,
    CourseProposalForm,
    MoveForm,
    SlotSearchForm,
    encode_slot,
    new_key,
    services_of,
)
from backcare.scheduling.locking import BookingConflict
from backcare.scheduling.models import Appointment
from backcare.scheduling.selectors.move import move_initial, move_search, move_slots
from backcare.scheduling.services import booking
from backcare.scheduling.services.availability import Slot, clinic_zone, find_slots, suggest_course
from backcare.scheduling.views import (
    client_picker,
    render_local,
    replace_gate_error,
    safe_json,
    staff_appointment,
    staff_gate_text,
)
from backcare.scheduling.views import treatment_gate as gate_for

MAX_SLOTS_SHOWN = 400
CONFLICT = 409


def _query(**params: Any) -> str:
    return "?" + urlencode({k: v for k, v in params.items() if v not in (None, "")})


def slot_days(slots: list[Slot], zone: ZoneInfo, link: Any) -> list[dict[str, Any]]:
    """Slots grouped by local day, each with the link that chooses it."""
    by_day: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for slot in slots[:MAX_SLOTS_SHOWN]:
        local = slot.local(zone)
        by_day[local.date()].append({"slot": slot, "local": local, "url": link(slot, local)})
    return [{"day": d, "slots": by_day[d]} for d in sorted(by_day)]


def _pk(value: Any) -> str:
    return str(value.pk) if hasattr(value, "pk") else str(value or "")


def _when(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%a %d %b %Y, %H:%M")


# --- finding a free time ----------------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET"])
def slot_search(request: HttpRequest) -> HttpResponse:
    staff = access.require_staff(request.user)
    clinic = staff.clinic
    zone = clinic_zone(clinic)
    today = timezone.localdate(timezone=zone)
    searched = "service" in request.GET
    if searched:
        form = SlotSearchForm(request.GET, clinic=clinic)
    else:
        first_service = services_of(clinic).filter(assessment=False).first() or services_of(clinic).first()
        date_from = request.GET.get("date_from") or today.isoformat()
        form = SlotSearchForm(
            clinic=clinic,
            initial={
                "service": first_service,
                "date_from": date_from,
                "date_to": request.GET.get("date_to") or (today + timedelta(days=6)).isoformat(),
                "therapist": request.GET.get("therapist"),
                "client": request.GET.get("client"),
            },
        )
    days: list[dict[str, Any]] = []
    total = 0
    gate_text = ""
    if searched and form.is_valid():
        data = form.cleaned_data
        client = data.get("client")
        slots = find_slots(
            data["service"],
            data["date_from"],
            data["date_to"],
            therapist=data.get("therapist"),
            technique=data.get("technique") or None,
            client=client,
        )
        total = len(slots)

        def link(slot: Slot, local: datetime) -> str:
            return reverse("appointment_book") + _query(
                service=slot.service.pk,
                therapist=slot.therapist_id,
                room=slot.room_id,
                day=local.date().isoformat(),
                time=local.strftime("%H:%M"),
                client=client.pk if client else None,
            )

        days = slot_days(slots, zone, link)
        if client is not None and not data["service"].assessment:
            gate_text = staff_gate_text(request.user, client, gate_for(client))
    context = {
        "form": form,
        "searched": searched,
        "days": days,
        "total": total,
        "limit": MAX_SLOTS_SHOWN,
        "gate_text": gate_text,
        "picker": client_picker(request, access.clients_for(request.user), form["client"].value()),
    }
    return render_local(request, "scheduling/slot_search.html", context, clinic)


# --- booking ----------------------------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def appointment_book(request: HttpRequest) -> HttpResponse:
    staff = access.require_staff(request.user)
    clinic = staff.clinic
    zone = clinic_zone(clinic)
    owner = staff.role == Role.OWNER
    status = 200
    conflicts: list[str] = []
    if request.method == "POST":
        form = BookingForm(request.POST, clinic=clinic, owner=owner)
        if form.is_valid():
            data = form.cleaned_data
            key = data.get("submission_key") or None
            earlier = Appointment.objects.filter(submission_key=key, clinic=clinic).first() if key else None
            if earlier is not None:
                messages.info(request, "This booking was already made (the form was sent twice); it is shown here.")
                return redirect("appointment_detail", pk=earlier.pk)
            client = data["client"]
            try:
                appointment = booking.book_appointment(
                    client,
                    data["service"],
                    data["starts_at"],
                    therapist=data["therapist"],
                    room=data["room"],
                    by=request.user,
                    override_reason=form.override_reason,
                    submission_key=key,
                    request=request,
                )
            except BookingConflict as conflict:
                conflicts = conflict.conflicts
                status = CONFLICT
            except ValidationError as error:
                error = replace_gate_error(error, staff_gate_text(request.user, client, gate_for(client)))
                add_service_errors(form, error, rename={"starts_at": "time"})
            else:
                what = "Overbooked" if appointment.override else "Booked"
                messages.success(
                    request,
                    f"{what}: {client.full_name}, {appointment.service.name}, {_when(appointment.starts_at, zone)} "
                    f"with {appointment.therapist.display_name} in {appointment.room.name}.",
                )
                return redirect("appointment_detail", pk=appointment.pk)
    else:
        initial = {k: request.GET.get(k) for k in ("client", "service", "therapist", "room", "day", "time")}
        initial = {k: v for k, v in initial.items() if v}
        initial["submission_key"] = new_key()
        form = BookingForm(clinic=clinic, owner=owner, initial=initial)
    search_url = reverse("slot_search") + _query(
        service=_pk(form["service"].value()),
        date_from=form["day"].value() or "",
        date_to=form["day"].value() or "",
        client=_pk(form["client"].value()),
    )
    context = {
        "form": form,
        "owner": owner,
        "conflicts": conflicts,
        "search_url": search_url if form["service"].value() and form["day"].value() else reverse("slot_search"),
        "picker": client_picker(request, access.clients_for(request.user), form["client"].value()),
    }
    return render_local(request, "scheduling/appointment_book.html", context, clinic, status=status)


# --- moving -----------------------------------------------------------------------------------------------------------


def _late(appointment: Appointment, now: datetime) -> bool:
    return appointment.starts_at - now < timedelta(hours=appointment.clinic.cancellation_hours)


@dataclass
class MoveOutcome:
    """What came of a move: the moved appointment, or what it conflicts with (409), or errors put on the form."""

    moved: Appointment | None = None
    conflicts: list[str] = field(default_factory=list)
    status: int = 200


def attempt_move(request: HttpRequest, appointment: Appointment, form: MoveForm) -> MoveOutcome:
    """Move as the (valid) form asks, with every check of the booking service; the move page and the calendar's
    drag both come here."""
    data = form.cleaned_data
    try:
        moved = booking.reschedule_appointment(
            appointment,
            data["starts_at"],
            by=request.user,
            therapist=data["therapist"],
            room=data["room"],
            late_reason=data.get("late_reason", ""),
            override_reason=form.override_reason,
            request=request,
        )
    except BookingConflict as conflict:
        return MoveOutcome(conflicts=conflict.conflicts, status=CONFLICT)
    except ValidationError as error:
        client = appointment.client
        error = replace_gate_error(error, staff_gate_text(request.user, client, gate_for(client)))
        add_service_errors(form, error, rename={"starts_at": "time"})
        return MoveOutcome()
    return MoveOutcome(moved=moved)


def _moved_text(moved: Appointment, zone: ZoneInfo) -> str:
    return f"Moved to {_when(moved.starts_at, zone)} with {moved.therapist.display_name} in {moved.room.name}."


NOT_MOVABLE = "Only a booked appointment that has not started can be moved."


@login_required
@require_http_methods(["GET", "POST"])
def appointment_move(request: HttpRequest, pk: int) -> HttpResponse:
    staff, appointment = staff_appointment(request.user, pk)
    clinic = appointment.clinic
    zone = clinic_zone(clinic)
    now = timezone.now()
    owner = staff.role == Role.OWNER
    movable = booking.is_movable(appointment, now)
    outcome = MoveOutcome()
    if request.method == "POST" and movable:
        form = MoveForm(request.POST, clinic=clinic, owner=owner)
        if form.is_valid():
            outcome = attempt_move(request, appointment, form)
        if outcome.moved is not None:
            messages.success(request, _moved_text(outcome.moved, zone))
            return redirect("appointment_detail", pk=outcome.moved.pk)
    else:
        if request.method == "POST":
            messages.error(request, NOT_MOVABLE)
            outcome.status = 400
        form = MoveForm(clinic=clinic, owner=owner, initial=move_initial(appointment, request.GET))
    today = timezone.localdate(timezone=zone)
    search = move_search(appointment, request.GET, today)
    slots, here = move_slots(appointment, search, today) if movable else ([], {})

    def link(slot: Slot, local_start: datetime) -> str:
        return reverse("appointment_move", args=[appointment.pk]) + _query(
            **here,
            day=local_start.date().isoformat(),
            time=local_start.strftime("%H:%M"),
            therapist_to=slot.therapist_id,
            room=slot.room_id,
        )

    context = {
        "appointment": appointment,
        "client": appointment.client,
        "form": form,
        "search": search,
        "days": slot_days(slots, zone, link),
        "movable": movable,
        "owner": owner,
        "late": movable and _late(appointment, now),
        "conflicts": outcome.conflicts,
        "hours": clinic.cancellation_hours,
    }
    return render_local(request, "scheduling/appointment_move.html", context, clinic, status=outcome.status)


@login_required
@require_POST
def appointment_drop(request: HttpRequest, pk: int) -> HttpResponse:
    """The calendar's drag: the move form's fields (day, time, therapist, room) sent by calendar-grid.js, checked as
    the move page checks them; the answer is JSON with a message to show (409 when the time is taken, 400 when
    anything else stops it, and the block goes back)."""
    _staff, appointment = staff_appointment(request.user, pk)
    if not booking.is_movable(appointment, timezone.now()):
        return safe_json({"message": NOT_MOVABLE}, status=400)
    form = MoveForm(request.POST, clinic=appointment.clinic)
    outcome = attempt_move(request, appointment, form) if form.is_valid() else MoveOutcome()
    if outcome.moved is not None:
        return safe_json({"message": _moved_text(outcome.moved, clinic_zone(appointment.clinic))})
    if outcome.conflicts:
        message = "Not moved: the time is taken. " + " ".join(outcome.conflicts)
        return safe_json({"message": message, "conflicts": outcome.conflicts}, status=CONFLICT)
    errors = [str(m) for messages_ in form.errors.values() for m in messages_]
    if "late_reason" in form.errors:
        errors.append("Use the appointment's Move page to give the reason.")
    return safe_json({"message": "Not moved: " + " ".join(errors), "errors": form.errors}, status=400)


# --- cancelling -------------------------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def appointment_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    staff, appointment = staff_appointment(request.user, pk)
    clinic = appointment.clinic
    now = timezone.now()
    status = 200
    if appointment.is_cancelled:
        messages.info(request, "This appointment is already cancelled.")
        return redirect("appointment_detail", pk=appointment.pk)
    cancellable = appointment.status == Appointment.Status.BOOKED and appointment.starts_at > now
    if request.method == "POST" and cancellable:
        form = CancelForm(request.POST)
        if form.is_valid():
            try:
                booking.cancel_appointment(
                    appointment,
                    by=request.user,
                    reason=form.cleaned_data["reason"],
                    late_reason=form.cleaned_data["late_reason"],
                    request=request,
                )
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                messages.success(request, "The appointment was cancelled. Its time is free again.")
                return redirect("appointment_detail", pk=appointment.pk)
    else:
        if request.method == "POST":
            messages.error(request, "Only a booked appointment that has not started can be cancelled.")
            status = 400
        form = CancelForm()
    context = {
        "appointment": appointment,
        "client": appointment.client,
        "form": form,
        "cancellable": cancellable,
        "late": cancellable and _late(appointment, now),
        "hours": clinic.cancellation_hours,
        "staff": staff,
    }
    return render_local(request, "scheduling/appointment_cancel.html", context, clinic, status=status)


# --- a whole course ---------------------------------------------------------------------------------------------------


def _course_for(user: Any, pk: int) -> tuple[StaffMember, Course]:
    """The course, if the user may book its client's appointments: the front desk (appointments are theirs), the owner,
    and therapists who may see the client's record."""
    staff = access.require_staff(user)
    try:
        course = Course.objects.select_related("client", "therapist").get(pk=pk, client__clinic=staff.clinic)
    except Course.DoesNotExist:
        raise Http404("No such course") from None
    access.get_client(user, course.client_id, clinical=staff.role != Role.FRONT_DESK)
    return staff, course


@login_required
@require_http_methods(["GET", "POST"])
def course_booking(request: HttpRequest, pk: int) -> HttpResponse:
    """Propose the course's remaining sessions (GET with a service and a first day) and book the proposal as shown
    (POST). The form reads the proposal back; `booking.course_booking_state` and `booking.book_course_proposal`
    decide and write."""
    _staff, course = _course_for(request.user, pk)
    client = course.client
    clinic = client.clinic
    zone = clinic_zone(clinic)
    audit.viewed(request, client, "course booking", obj=course)
    today = timezone.localdate(timezone=zone)
    gate = gate_for(client)
    gate_text = staff_gate_text(request.user, client, gate)
    state = booking.course_booking_state(course, gate_allowed=gate.allowed)
    status = 200
    conflicts: list[str] = []
    errors: list[str] = []
    proposal: list[dict[str, Any]] = []
    confirm: CourseBookingForm | None = None

    if request.method == "POST":
        confirm = CourseBookingForm(request.POST, clinic=clinic, auto_id="confirm_%s")
        valid = confirm.is_valid()
        key = (confirm.cleaned_data.get("submission_key") if valid else "") or None
        if booking.already_booked(course, key):
            messages.info(request, "These sessions were already booked (the form was sent twice).")
            return redirect("course_booking", pk=course.pk)
        if not state.bookable:
            errors.append("Nothing was booked: this course cannot be booked now (see above).")
            status = 400
        elif valid:
            try:
                made = booking.book_course_proposal(
                    course,
                    confirm.cleaned_data["service"],
                    confirm.cleaned_data["session"],
                    by=request.user,
                    submission_key=key,
                    request=request,
                )
            except BookingConflict as conflict:
                conflicts = conflict.conflicts
                status = CONFLICT
            except ValidationError as error:
                errors.extend(replace_gate_error(error, gate_text).messages)
            else:
                messages.success(request, f"All {len(made)} sessions are booked.")
                return redirect("course_booking", pk=course.pk)
        else:
            errors.extend(str(e) for field_errors in confirm.errors.values() for e in field_errors)
        form = CourseProposalForm(
            clinic=clinic,
            remaining=state.remaining,
            initial={"service": request.POST.get("service"), "start": today.isoformat(), "sessions": state.remaining},
        )
    elif "service" in request.GET:
        form = CourseProposalForm(request.GET, clinic=clinic, remaining=state.remaining)
    else:
        form = CourseProposalForm(
            clinic=clinic,
            remaining=state.remaining,
            initial={
                "service": services_of(clinic).filter(assessment=False).first(),
                "start": (today + timedelta(days=1)).isoformat(),
                "sessions": state.remaining,
            },
        )
    if request.method == "GET" and form.is_bound and form.is_valid() and state.bookable:
        data = form.cleaned_data
        try:
            slots = suggest_course(course, data["service"], data["start"], sessions=data["sessions"])
        except ValidationError as error:
            form.add_error(None, error.messages)
        else:
            proposal = [
                {
                    "number": number,
                    "local": slot.local(zone),
                    "slot": slot,
                    "same": course.therapist_id is not None and slot.therapist_id == course.therapist_id,
                }
                for number, slot in enumerate(slots, start=len(state.booked) + 1)
            ]
            confirm = CourseBookingForm(
                clinic=clinic,
                auto_id="confirm_%s",
                initial={
                    "service": data["service"].pk,
                    "session": [encode_slot(s.starts_at, s.therapist_id, s.room_id) for s in slots],
                    "submission_key": new_key(),
                },
            )
    context = {
        "course": course,
        "client": client,
        "booked": state.booked,
        "remaining": state.remaining,
        "active": state.active,
        "gate_text": gate_text,
        "form": form,
        "proposal": proposal,
        "confirm": confirm if proposal else None,
        "conflicts": conflicts,
        "errors": errors,
        "sees_course": access.can_see_clinical(request.user, client),
    }
    return render_local(request, "scheduling/course_booking.html", context, clinic, status=status)


urlpatterns = [
    path("appointments/find/", slot_search, name="slot_search"),
    path("appointments/book/", appointment_book, name="appointment_book"),
    path("appointments/<int:pk>/move/", appointment_move, name="appointment_move"),
    path("appointments/<int:pk>/drop/", appointment_drop, name="appointment_drop"),
    path("appointments/<int:pk>/cancel/", appointment_cancel, name="appointment_cancel"),
    path("courses/<int:pk>/book-sessions/", course_booking, name="course_booking"),
]
