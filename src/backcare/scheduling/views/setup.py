"""The clinic's set-up pages: rooms, services, and each therapist's weekly hours and absences.

Who may do what is the service layer's rule (`backcare.scheduling.services.resources`), asked again here only to
decide what to show:
- every member of staff sees the overview (rooms, services, therapists' hours), read-only;
- rooms and services: the owner adds and changes them;
- hours and absences: the owner, the front desk, and each therapist for themselves (`resources.may_plan`).

A change never moves or cancels a booked appointment. The pages list, with links, the appointments still to come that
a change leaves out of place (outside the new hours, in a closed room, during an absence, no longer fitting a changed
service), so whoever changed it can move them; the lists are worked out afresh on every visit, so they empty as the
appointments are moved.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from backcare.clinic import access
from backcare.clinic.models import Role, StaffMember
from backcare.clinical.vocabulary import TECHNIQUES
from backcare.common.forms import add_service_errors
from backcare.scheduling.forms import AbsenceForm, RoomForm, ServiceForm, WeeklyHoursForm
from backcare.scheduling.models import Absence, Appointment, Room, Service, WorkingHours, live_q
from backcare.scheduling.services import resources
from backcare.scheduling.services.availability import clinic_zone
from backcare.scheduling.views import render_local

# At most this many appointments are listed as out of place on one page (the count is always given).
CLASHES_SHOWN = 100


def _clash_context(clashes: list[Appointment]) -> dict[str, Any]:
    return {
        "clashes": clashes[:CLASHES_SHOWN],
        "clash_count": len(clashes),
        "clashes_cut": len(clashes) > CLASHES_SHOWN,
    }


def _owner(user: Any) -> StaffMember:
    return access.require_staff(user, Role.OWNER)


def _service_values(form: ServiceForm) -> dict[str, Any]:
    data = form.cleaned_data
    values = {
        "name": data["name"],
        "duration_minutes": data["duration_minutes"],
        "turnover_before_minutes": data["turnover_before_minutes"],
        "turnover_after_minutes": data["turnover_after_minutes"],
        "assessment": data["assessment"],
        "techniques": list(data["techniques"]),
        "rooms": list(data["rooms"]),
    }
    if "active" in form.fields:
        values["active"] = data["active"]
    return values


def _moved(count: int, where: str) -> str:
    if not count:
        return ""
    noun = "appointment is" if count == 1 else "appointments are"
    return f" {count} {noun} still booked {where}: they stay booked until you move them (listed below)."


# --- overview -------------------------------------------------------------------------------------------------------


@login_required
@require_GET
def setup_overview(request: HttpRequest) -> HttpResponse:
    staff = access.require_staff(request.user)
    clinic = staff.clinic
    now = timezone.now()
    rooms = list(Room.objects.filter(clinic=clinic).order_by("-active", "name", "pk"))
    # Each room's upcoming live appointments, counted from the index `appt_live_room_end`: joining every room's
    # appointments read the clinic's whole history (issue 14).
    upcoming = dict(
        Appointment.objects.filter(live_q(now), room__in=[r.pk for r in rooms], ends_at__gt=now)
        .order_by()
        .values("room")
        .annotate(n=Count("*"))
        .values_list("room", "n")
    )
    for room in rooms:
        room.upcoming = upcoming.get(room.pk, 0)  # type: ignore[attr-defined]
    services = list(Service.objects.filter(clinic=clinic).prefetch_related("rooms").order_by("-active", "name", "pk"))
    for service in services:
        # for the template only: the model does not declare it
        service.technique_names = [TECHNIQUES.get(t, t) for t in service.techniques or []]  # type: ignore[attr-defined]
    therapists = list(
        StaffMember.objects.filter(clinic=clinic, role=Role.THERAPIST).order_by("-active", "display_name", "pk")
    )
    hours: dict[int, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    for block in WorkingHours.objects.filter(therapist__in=therapists).order_by("weekday", "starts"):
        hours[block.therapist_id][block.weekday].append(f"{block.starts:%H:%M}-{block.ends:%H:%M}")
    away = dict(
        Absence.objects.filter(therapist__in=therapists, ends_at__gt=now)
        .values("therapist_id")
        .annotate(n=Count("pk"))
        .values_list("therapist_id", "n")
    )
    rows = [
        {
            "therapist": t,
            "days": [
                {"label": label[:3], "hours": hours[t.pk].get(weekday, [])}
                for weekday, label in WorkingHours.Weekday.choices
            ],
            "absences": away.get(t.pk, 0),
            "may_plan": resources.may_plan(request.user, t),
        }
        for t in therapists
    ]
    context = {
        "staff": staff,
        "owner": staff.role == Role.OWNER,
        "rooms": rooms,
        "services": services,
        "therapists": rows,
    }
    return render_local(request, "scheduling/setup_overview.html", context, clinic)


# --- rooms ----------------------------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def setup_room_add(request: HttpRequest) -> HttpResponse:
    staff = _owner(request.user)
    form = RoomForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            room = resources.create_room(staff.clinic, form.cleaned_data["name"], by=request.user, request=request)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Room “{room.name}” added. It can be booked from now on.")
            return redirect("setup")
    return render_local(request, "scheduling/setup_room.html", {"form": form, "room": None}, staff.clinic)


@login_required
@require_http_methods(["GET", "POST"])
def setup_room(request: HttpRequest, pk: int) -> HttpResponse:
    staff = _owner(request.user)
    room = get_object_or_404(Room, pk=pk, clinic=staff.clinic)
    action = request.POST.get("action", "") if request.method == "POST" else ""
    if action in ("close", "reopen"):
        room, clashes = resources.update_room(room, by=request.user, active=action == "reopen", request=request)
        if room.active:
            messages.success(request, f"“{room.name}” is open again for bookings.")
        else:
            messages.success(
                request, f"“{room.name}” is closed: it is offered for no new booking." + _moved(len(clashes), "in it")
            )
        return redirect("setup_room", pk=room.pk)
    form = RoomForm(request.POST if request.method == "POST" else None, initial={"name": room.name})
    if request.method == "POST" and form.is_valid():
        try:
            room, _ = resources.update_room(room, by=request.user, name=form.cleaned_data["name"], request=request)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"The room is now called “{room.name}”.")
            return redirect("setup_room", pk=room.pk)
    clashes = resources.room_clashes(room) if not room.active else []
    upcoming = room.appointments.filter(live_q(timezone.now()), ends_at__gt=timezone.now()).count()
    context = {"form": form, "room": room, "upcoming": upcoming, **_clash_context(clashes)}
    return render_local(request, "scheduling/setup_room.html", context, staff.clinic)


# --- services -------------------------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def setup_service_add(request: HttpRequest) -> HttpResponse:
    staff = _owner(request.user)
    clinic = staff.clinic
    if request.method == "POST":
        form = ServiceForm(request.POST, clinic=clinic)
        if form.is_valid():
            try:
                service = resources.create_service(clinic, by=request.user, request=request, **_service_values(form))
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                messages.success(request, f"Service “{service.name}” added. It can be booked from now on.")
                return redirect("setup")
    else:
        form = ServiceForm(clinic=clinic, initial={"duration_minutes": 60})
    context = {"form": form, "service": None, "room_count": Room.objects.filter(clinic=clinic).count()}
    return render_local(request, "scheduling/setup_service.html", context, clinic)


@login_required
@require_http_methods(["GET", "POST"])
def setup_service(request: HttpRequest, pk: int) -> HttpResponse:
    staff = _owner(request.user)
    clinic = staff.clinic
    service = get_object_or_404(Service, pk=pk, clinic=clinic)
    if request.method == "POST":
        form = ServiceForm(request.POST, clinic=clinic, editing=True)
        if form.is_valid():
            try:
                service, clashes = resources.update_service(
                    service, by=request.user, request=request, **_service_values(form)
                )
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                state = "saved" if service.active else "saved and is no longer offered for booking"
                messages.success(
                    request,
                    f"“{service.name}” is {state}."
                    + _moved(len(clashes), "in a room or with a therapist that no longer suits it"),
                )
                return redirect("setup_service", pk=service.pk)
    else:
        form = ServiceForm(
            clinic=clinic,
            editing=True,
            initial={
                "name": service.name,
                "duration_minutes": service.duration_minutes,
                "turnover_before_minutes": service.turnover_before_minutes,
                "turnover_after_minutes": service.turnover_after_minutes,
                "assessment": service.assessment,
                "techniques": list(service.techniques or []),
                "rooms": list(service.rooms.all()),
                "active": service.active,
            },
        )
    upcoming = service.appointments.filter(live_q(timezone.now()), ends_at__gt=timezone.now()).count()
    context = {
        "form": form,
        "service": service,
        "upcoming": upcoming,
        "room_count": Room.objects.filter(clinic=clinic).count(),
        **_clash_context(resources.service_clashes(service)),
    }
    return render_local(request, "scheduling/setup_service.html", context, clinic)


# --- a therapist's hours and absences --------------------------------------------------------------------------------


def _plannable(user: Any, pk: int) -> tuple[StaffMember, StaffMember]:
    """The therapist whose hours `user` may change (404 when not a therapist of their clinic, 403 when not theirs)."""
    staff = access.require_staff(user)
    try:
        therapist = StaffMember.objects.select_related("clinic").get(pk=pk, clinic=staff.clinic, role=Role.THERAPIST)
    except StaffMember.DoesNotExist:
        raise Http404("No such therapist") from None
    if not resources.may_plan(user, therapist):
        raise PermissionDenied("Therapists may only see and change their own hours and absences.")
    return staff, therapist


@login_required
@require_http_methods(["GET", "POST"])
def setup_hours(request: HttpRequest, pk: int) -> HttpResponse:
    staff, therapist = _plannable(request.user, pk)
    clinic = therapist.clinic
    if request.method == "POST":
        form = WeeklyHoursForm(request.POST)
        if form.is_valid():
            try:
                resources.set_working_hours(therapist, form.cleaned_data["weekly"], by=request.user, request=request)
            except ValidationError as error:
                form.add_day_errors(error)
            else:
                outside = len(resources.hours_clashes(therapist))
                messages.success(
                    request,
                    f"{therapist.display_name}'s weekly hours are saved." + _moved(outside, "outside these hours"),
                )
                return redirect("setup_hours", pk=therapist.pk)
    else:
        initial, rows = WeeklyHoursForm.initial_from(therapist.working_hours.all())
        form = WeeklyHoursForm(initial=initial, rows=rows)
    context = {
        "form": form,
        "therapist": therapist,
        "own": staff.pk == therapist.pk,
        "failed": bool(form.is_bound and (form.errors or form.day_errors)),
        **_clash_context(resources.hours_clashes(therapist)),
    }
    return render_local(request, "scheduling/setup_hours.html", context, clinic)


@login_required
@require_http_methods(["GET", "POST"])
def setup_absences(request: HttpRequest, pk: int) -> HttpResponse:
    staff, therapist = _plannable(request.user, pk)
    clinic = therapist.clinic
    zone = clinic_zone(clinic)
    if request.method == "POST":
        form = AbsenceForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                absence, clashes = resources.add_absence(
                    therapist,
                    data["first_day"],
                    data["last_day"],
                    by=request.user,
                    kind=data["kind"],
                    note=data["note"],
                    request=request,
                )
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                now = timezone.now()
                coming = [a for a in clashes if a.ends_at > now]
                messages.success(
                    request,
                    f"{absence.get_kind_display()} recorded for {therapist.display_name}: no new booking is offered "
                    "on those days." + _moved(len(coming), "on those days"),
                )
                return redirect("setup_absences", pk=therapist.pk)
    else:
        today = timezone.localdate(timezone=zone)
        form = AbsenceForm(initial={"first_day": today.isoformat(), "last_day": today.isoformat(), "kind": "holiday"})
    now = timezone.now()
    absences = []
    for absence in therapist.absences.filter(ends_at__gt=now - timedelta(days=30)).order_by("starts_at"):
        last = (absence.ends_at - timedelta(seconds=1)).astimezone(zone).date()
        absences.append(
            {
                "absence": absence,
                "first": absence.starts_at.astimezone(zone).date(),
                "last": last,
                "past": absence.ends_at <= now,
                "clashes": resources.absence_clashes(absence, now) if absence.ends_at > now else [],
            }
        )
    context = {"form": form, "therapist": therapist, "own": staff.pk == therapist.pk, "absences": absences}
    return render_local(request, "scheduling/setup_absences.html", context, clinic)


@login_required
@require_POST
def setup_absence_remove(request: HttpRequest, pk: int) -> HttpResponse:
    staff = access.require_staff(request.user)
    absence = get_object_or_404(Absence.objects.select_related("therapist"), pk=pk, therapist__clinic=staff.clinic)
    therapist = absence.therapist
    resources.remove_absence(absence, by=request.user, request=request)
    messages.success(request, f"The absence is removed: {therapist.display_name} can be booked on those days again.")
    return redirect("setup_absences", pk=therapist.pk)


urlpatterns = [
    path("setup/", setup_overview, name="setup"),
    path("setup/rooms/add/", setup_room_add, name="setup_room_add"),
    path("setup/rooms/<int:pk>/", setup_room, name="setup_room"),
    path("setup/services/add/", setup_service_add, name="setup_service_add"),
    path("setup/services/<int:pk>/", setup_service, name="setup_service"),
    path("setup/therapists/<int:pk>/hours/", setup_hours, name="setup_hours"),
    path("setup/therapists/<int:pk>/absences/", setup_absences, name="setup_absences"),
    path("setup/absences/<int:pk>/remove/", setup_absence_remove, name="setup_absence_remove"),
]
