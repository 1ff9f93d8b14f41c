"""The client's own appointments in the portal: what is coming up, booking a free time (with their own therapist
first), cancelling outside the cancellation window, the waitlist, and accepting or declining an offered time.

A client only ever reaches their own appointments: the client comes from the signed-in user, never from the URL.
Booking is possible only when the screening allows it (the booking service enforces `treatment_gate`); the page says
why not in plain language.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from backcare.common.forms import add_service_errors
from backcare.scheduling.forms import (
    CancelForm,
    PortalBookForm,
    PortalMoveForm,
    PortalMoveSearchForm,
    PortalSearchForm,
    WaitlistForm,
    new_key,
)
from backcare.scheduling.locking import BookingConflict
from backcare.scheduling.models import Appointment, WaitlistEntry
from backcare.scheduling.services import booking, waitlist
from backcare.scheduling.services.availability import Slot, clinic_zone, find_slots
from backcare.scheduling.views import (
    client_appointment,
    client_gate_text,
    client_services,
    portal_client,
    render_local,
    replace_gate_error,
)
from backcare.scheduling.views import treatment_gate as gate_for
from backcare.scheduling.views.booking import CONFLICT, slot_days


def _window(client: Any) -> timedelta:
    return timedelta(hours=client.clinic.cancellation_hours)


@login_required
@never_cache
@require_http_methods(["GET"])
def portal_appointments(request: HttpRequest) -> HttpResponse:
    client = portal_client(request.user)
    clinic = client.clinic
    now = timezone.now()
    gate = gate_for(client)
    upcoming = [
        {"appointment": a, "cancellable": a.starts_at - now >= _window(client)}
        for a in client.appointments.filter(status=Appointment.Status.BOOKED, ends_at__gt=now)
        .select_related("therapist", "service", "room")
        .order_by("starts_at")
    ]
    offers = list(
        client.appointments.filter(status=Appointment.Status.HELD, hold_expires_at__gt=now)
        .select_related("therapist", "service", "room")
        .order_by("starts_at")
    )
    entries = list(
        client.waitlist_entries.filter(status__in=[WaitlistEntry.Status.WAITING, WaitlistEntry.Status.OFFERED])
        .select_related("service", "therapist")
        .order_by("earliest")
    )
    context = {
        "client": client,
        "upcoming": upcoming,
        "offers": offers,
        "entries": entries,
        "gate_text": client_gate_text(gate),
        # The latest screening stops treatment: the booked appointments are held (see scheduling.reminders).
        "on_hold": gate.screening is not None and gate.screening.blocks_treatment,
        "can_book": client_services(client, gate).exists(),
        "hours": clinic.cancellation_hours,
    }
    return render_local(request, "scheduling/portal_appointments.html", context, clinic)


@login_required
@never_cache
@require_http_methods(["GET"])
def portal_book(request: HttpRequest) -> HttpResponse:
    client = portal_client(request.user)
    clinic = client.clinic
    zone = clinic_zone(clinic)
    gate = gate_for(client)
    services = client_services(client, gate)
    today = timezone.localdate(timezone=zone)
    searched = "service" in request.GET
    if searched:
        form = PortalSearchForm(request.GET, clinic=clinic, services=services)
    else:
        own = client.therapist if client.therapist and client.therapist.role == "therapist" else None
        form = PortalSearchForm(
            clinic=clinic,
            services=services,
            initial={
                "service": services.filter(assessment=False).first() or services.first(),
                "therapist": own.pk if own and own.active else None,
                "date_from": (today + timedelta(days=1)).isoformat(),
                "date_to": (today + timedelta(days=14)).isoformat(),
            },
        )
    days: list[dict[str, Any]] = []
    any_url = ""
    if searched and services.exists() and form.is_valid():
        data = form.cleaned_data

        def link(slot: Slot, local: datetime) -> str:
            return (
                reverse("portal_book_confirm")
                + "?"
                + urlencode(
                    {
                        "service": slot.service.pk,
                        "therapist": slot.therapist_id,
                        "room": slot.room_id,
                        "starts": int(slot.starts_at.timestamp()),
                    }
                )
            )

        slots = find_slots(
            data["service"], data["date_from"], data["date_to"], therapist=data.get("therapist"), client=client
        )
        days = slot_days(slots, zone, link)
        if not slots and data.get("therapist") is not None:
            params = request.GET.copy()
            params["therapist"] = ""
            any_url = reverse("portal_book") + "?" + params.urlencode()
    context = {
        "client": client,
        "form": form,
        "searched": searched,
        "days": days,
        "any_url": any_url,
        "gate_text": client_gate_text(gate),
        "can_book": services.exists(),
    }
    return render_local(request, "scheduling/portal_book.html", context, clinic)


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def portal_book_confirm(request: HttpRequest) -> HttpResponse:
    client = portal_client(request.user)
    clinic = client.clinic
    zone = clinic_zone(clinic)
    gate = gate_for(client)
    services = client_services(client, gate)
    status = 200
    conflicts: list[str] = []
    errors: list[str] = []
    if request.method == "POST":
        form = PortalBookForm(request.POST, clinic=clinic, services=services)
    else:
        query = request.GET.copy()
        query["submission_key"] = new_key()
        form = PortalBookForm(query, clinic=clinic, services=services)
    valid = form.is_valid()
    if not valid:
        status = 400 if request.method == "POST" else 200
        if not services.exists():
            errors.append(client_gate_text(gate))
        else:
            errors.append("This time could not be found any more. Please choose a time again.")
    elif request.method == "POST":
        data = form.cleaned_data
        key = data.get("submission_key") or None
        earlier = Appointment.objects.filter(submission_key=key, client=client).first() if key else None
        if earlier is not None:
            messages.info(request, "Your appointment was already booked (the form was sent twice).")
            return redirect("portal_appointments")
        try:
            appointment = booking.book_appointment(
                client,
                data["service"],
                data["starts"],
                therapist=data["therapist"],
                room=data["room"],
                by=request.user,
                submission_key=key,
                request=request,
            )
        except BookingConflict as conflict:
            conflicts = conflict.conflicts
            status = CONFLICT
        except ValidationError as error:
            errors.extend(replace_gate_error(error, client_gate_text(gate)).messages)
        else:
            local = appointment.starts_at.astimezone(zone)
            messages.success(
                request,
                f"Your appointment is booked: {appointment.service.name} on {local:%A %d %B at %H:%M} with "
                f"{appointment.therapist.display_name}.",
            )
            return redirect("portal_appointments")
    context = {
        "client": client,
        "form": form,
        "valid": valid,
        "details": form.cleaned_data if valid else None,
        "conflicts": conflicts,
        "errors": errors,
    }
    return render_local(request, "scheduling/portal_book_confirm.html", context, clinic, status=status)


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def portal_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    client = portal_client(request.user)
    appointment = client_appointment(client, pk)
    now = timezone.now()
    if appointment.is_cancelled:
        messages.info(request, "This appointment is already cancelled.")
        return redirect("portal_appointments")
    in_time = appointment.status == Appointment.Status.BOOKED and appointment.starts_at - now >= _window(client)
    form = CancelForm(request.POST if request.method == "POST" else None, reason_required=False)
    errors: list[str] = []
    status = 200
    if request.method == "POST":
        if not in_time:
            status = 400
        elif form.is_valid():
            try:
                booking.cancel_appointment(
                    appointment, by=request.user, reason=form.cleaned_data["reason"], request=request
                )
            except ValidationError as error:
                errors.extend(error.messages)
            else:
                messages.success(request, "Your appointment is cancelled.")
                return redirect("portal_appointments")
    context = {
        "client": client,
        "appointment": appointment,
        "form": form,
        "in_time": in_time,
        "errors": errors,
        "hours": client.clinic.cancellation_hours,
        "phone": client.clinic.phone,
    }
    return render_local(request, "scheduling/portal_cancel.html", context, client.clinic, status=status)


def _movable(appointment: Appointment, now: datetime) -> str:
    """Why the client cannot move this appointment online, or "" when they can (the booking service decides again)."""
    clinic = appointment.clinic
    phone = f" on {clinic.phone}" if clinic.phone else ""
    if appointment.status != Appointment.Status.BOOKED or appointment.starts_at <= now:
        return f"This appointment is no longer booked, so it cannot be moved. Please phone the clinic{phone}."
    if appointment.starts_at - now < timedelta(hours=clinic.cancellation_hours):
        return (
            f"Appointments cannot be moved online less than {clinic.cancellation_hours} hours before they start. "
            f"Please phone the clinic{phone}."
        )
    return ""


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def portal_reschedule(request: HttpRequest, pk: int) -> HttpResponse:
    """Move one's own appointment to another free time: the same search as booking online (this service, this
    client free, the appointment's own time left out), outside the cancellation window only."""
    client = portal_client(request.user)
    appointment = client_appointment(client, pk)
    clinic = client.clinic
    zone = clinic_zone(clinic)
    now = timezone.now()
    refusal = _movable(appointment, now)
    status = 200
    conflicts: list[str] = []
    errors: list[str] = []
    choice: PortalMoveForm | None = None
    if request.method == "POST":
        choice = PortalMoveForm(request.POST, clinic=clinic)
        if refusal:
            errors.append(refusal)
            status = 400
        elif choice.is_valid():
            data = choice.cleaned_data
            try:
                moved = booking.reschedule_appointment(
                    appointment,
                    data["starts"],
                    by=request.user,
                    therapist=data["therapist"],
                    room=data["room"],
                    request=request,
                )
            except BookingConflict as conflict:
                conflicts = conflict.conflicts
                status = CONFLICT
            except ValidationError as error:
                errors.extend(replace_gate_error(error, client_gate_text(gate_for(client))).messages)
                status = 400
            else:
                local = moved.starts_at.astimezone(zone)
                messages.success(
                    request,
                    f"Your appointment is moved: {moved.service.name} on {local:%A %d %B at %H:%M} with "
                    f"{moved.therapist.display_name}. We have sent you a confirmation.",
                )
                return redirect("portal_appointments")
        else:
            errors.append("This time could not be found any more. Please choose a time again.")
            status = 400
    elif "starts" in request.GET and not refusal:
        choice = PortalMoveForm(request.GET, clinic=clinic)
        if not choice.is_valid():
            errors.append("This time could not be found any more. Please choose a time again.")
    local = appointment.starts_at.astimezone(zone)
    today = timezone.localdate(timezone=zone)
    start_day = max(today + timedelta(days=1), local.date() - timedelta(days=3))
    if "date_from" in request.GET:
        search = PortalMoveSearchForm(request.GET, clinic=clinic)
    else:
        search = PortalMoveSearchForm(
            clinic=clinic,
            initial={
                "therapist": appointment.therapist_id,
                "date_from": start_day.isoformat(),
                "date_to": (start_day + timedelta(days=13)).isoformat(),
            },
        )
    days: list[dict[str, Any]] = []
    if not refusal and (not search.is_bound or search.is_valid()):
        params: dict[str, Any] = (
            search.cleaned_data
            if search.is_bound
            else {
                "date_from": start_day,
                "date_to": start_day + timedelta(days=13),
                "therapist": appointment.therapist,
            }
        )
        here = {
            "date_from": params["date_from"].isoformat(),
            "date_to": params["date_to"].isoformat(),
            "therapist": params["therapist"].pk if params.get("therapist") else "",
        }

        def link(slot: Slot, local_start: datetime) -> str:
            query = {**here, "starts": int(slot.starts_at.timestamp()), "room": slot.room_id}
            query["therapist"] = slot.therapist_id
            return reverse("portal_reschedule", args=[appointment.pk]) + "?" + urlencode(query)

        slots = find_slots(
            appointment.service,
            params["date_from"],
            params["date_to"],
            therapist=params.get("therapist"),
            client=client,
            course=appointment.course,
            exclude=appointment,
        )
        # Its own time is not a move; a time inside the cancellation window could not be moved away from online.
        offered = [s for s in slots if s.starts_at != appointment.starts_at and s.starts_at - now >= _window(client)]
        days = slot_days(offered, zone, link)
    context = {
        "client": client,
        "appointment": appointment,
        "refusal": refusal,
        "search": search,
        "days": days,
        "choice": choice if choice is not None and choice.is_valid() and not conflicts else None,
        "conflicts": conflicts,
        "errors": errors,
        "hours": clinic.cancellation_hours,
    }
    return render_local(request, "scheduling/portal_reschedule.html", context, clinic, status=status)


@login_required
@require_POST
def portal_offer(request: HttpRequest, pk: int) -> HttpResponse:
    client = portal_client(request.user)
    hold = client_appointment(client, pk)
    answer = request.POST.get("answer")
    try:
        if answer == "accept":
            if hold.status == Appointment.Status.BOOKED:
                messages.info(request, "You have already accepted this time.")
                return redirect("portal_appointments")
            waitlist.accept_hold(hold, by=request.user, request=request)
            messages.success(request, "Thank you: the time is booked for you.")
        elif answer == "decline":
            if hold.status == Appointment.Status.DECLINED:
                messages.info(request, "You have already declined this time.")
                return redirect("portal_appointments")
            waitlist.decline_hold(hold, by=request.user, request=request)
            messages.success(request, "You declined the offered time. You stay on the waitlist.")
        else:
            messages.error(request, "Choose whether to accept or decline the offered time.")
    except ValidationError as error:
        gate = gate_for(client)
        messages.error(request, " ".join(replace_gate_error(error, client_gate_text(gate)).messages))
    return redirect("portal_appointments")


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def portal_waitlist(request: HttpRequest) -> HttpResponse:
    client = portal_client(request.user)
    clinic = client.clinic
    zone = clinic_zone(clinic)
    gate = gate_for(client)
    services = client_services(client, gate)
    today = timezone.localdate(timezone=zone)
    if request.method == "POST" and services.exists():
        form = WaitlistForm(request.POST, clinic=clinic, services=services)
        if form.is_valid():
            data = form.cleaned_data
            same = client.waitlist_entries.filter(
                service=data["service"],
                therapist=data.get("therapist"),
                earliest=data["earliest"],
                latest=data["latest"],
                status__in=[WaitlistEntry.Status.WAITING, WaitlistEntry.Status.OFFERED],
            )
            if same.exists():
                messages.info(request, "You are already on the waitlist for these days.")
                return redirect("portal_appointments")
            try:
                waitlist.join_waitlist(
                    client,
                    data["service"],
                    data["earliest"],
                    data["latest"],
                    by=request.user,
                    therapist=data.get("therapist"),
                    note=data.get("note", ""),
                    request=request,
                )
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                messages.success(
                    request, "You are on the waitlist. If a time comes free, we will offer it to you here."
                )
                return redirect("portal_appointments")
    else:
        own = client.therapist
        form = WaitlistForm(
            clinic=clinic,
            services=services,
            initial={
                "service": services.filter(assessment=False).first() or services.first(),
                "therapist": own.pk if own and own.active and own.role == "therapist" else None,
                "earliest": (today + timedelta(days=1)).isoformat(),
                "latest": (today + timedelta(days=14)).isoformat(),
            },
        )
    context = {
        "client": client,
        "form": form,
        "gate_text": client_gate_text(gate),
        "can_book": services.exists(),
    }
    return render_local(request, "scheduling/portal_waitlist.html", context, clinic)


@login_required
@require_POST
def portal_waitlist_leave(request: HttpRequest, pk: int) -> HttpResponse:
    client = portal_client(request.user)
    entry = get_object_or_404(WaitlistEntry, pk=pk, client=client)
    if entry.status != WaitlistEntry.Status.WITHDRAWN:
        waitlist.leave_waitlist(entry, by=request.user, request=request)
    messages.success(request, "You are no longer on the waitlist for these days.")
    return redirect("portal_appointments")


urlpatterns = [
    path("portal/appointments/", portal_appointments, name="portal_appointments"),
    path("portal/appointments/book/", portal_book, name="portal_book"),
    path("portal/appointments/book/confirm/", portal_book_confirm, name="portal_book_confirm"),
    path("portal/appointments/<int:pk>/cancel/", portal_cancel, name="portal_cancel"),
    path("portal/appointments/<int:pk>/move/", portal_reschedule, name="portal_reschedule"),
    path("portal/appointments/<int:pk>/offer/", portal_offer, name="portal_offer"),
    path("portal/waitlist/", portal_waitlist, name="portal_waitlist"),
    path("portal/waitlist/<int:pk>/leave/", portal_waitlist_leave, name="portal_waitlist_leave"),
]
