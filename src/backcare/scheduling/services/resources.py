"""Setting up the calendar: rooms, services, therapists' weekly hours and absences. Every write is audited.

Rooms and services: the owner. Hours and absences: the owner, the front desk, or the therapist for themselves.

Changing the set-up never moves or cancels a booked appointment. What a change leaves out of place (appointments
outside the new hours, in a closed room, during an absence, or no longer fitting a changed service) stays booked and
is listed by the `*_clashes` functions, so the pages can show it to whoever must move them; the audit event of the
change records their ids.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from backcare.clinic import access, audit
from backcare.clinic.models import Clinic, Role, StaffMember
from backcare.clinical.vocabulary import TECHNIQUES
from backcare.common.rowlock import locked
from backcare.scheduling.models import Absence, Appointment, Room, Service, WorkingHours, live_q
from backcare.scheduling.services.availability import block_window, clinic_zone, day_bounds

# Limits the availability search relies on: an appointment's busy time (duration plus turnover) is never longer than
# 480 + 2 x 120 minutes = 12 hours.
MAX_DURATION_MINUTES = 480
MAX_TURNOVER_MINUTES = 120
ROOM_NAME_LENGTH = Room._meta.get_field("name").max_length or 100
SERVICE_NAME_LENGTH = Service._meta.get_field("name").max_length or 200
ABSENCE_NOTE_LENGTH = Absence._meta.get_field("note").max_length or 200
MAX_ABSENCE_DAYS = 366


def _owner(by: Any, clinic: Clinic) -> StaffMember:
    staff = access.require_staff(by, Role.OWNER)
    if staff.clinic_id != clinic.pk:
        raise PermissionDenied("Not your clinic.")
    return staff


def _may_plan(by: Any, therapist: StaffMember) -> StaffMember:
    staff = access.require_staff(by)
    if staff.clinic_id != therapist.clinic_id:
        raise PermissionDenied("Not your clinic.")
    if staff.role == Role.THERAPIST and staff.pk != therapist.pk:
        raise PermissionDenied("Therapists may only change their own hours.")
    if therapist.role != Role.THERAPIST:
        raise ValidationError({"therapist": "Hours are kept for therapists."})
    return staff


def may_plan(user: Any, therapist: StaffMember) -> bool:
    """Whether `user` may change this therapist's hours and absences (the rule the writes below enforce)."""
    try:
        _may_plan(user, therapist)
    except (PermissionDenied, ValidationError):
        return False
    return True


# --- what a change leaves out of place -------------------------------------------------------------------------------


def _future_live(now: datetime | None = None) -> QuerySet[Appointment]:
    """Live appointments that have not ended yet, earliest first, with what a list of them shows."""
    now = now or timezone.now()
    return (
        Appointment.objects.filter(live_q(now), ends_at__gt=now)
        .select_related("client", "therapist", "room", "service")
        .order_by("starts_at", "pk")
    )


def room_clashes(room: Room, now: datetime | None = None) -> list[Appointment]:
    """Live appointments still to come in this room (to be moved when the room is closed)."""
    return list(_future_live(now).filter(room=room))


def hours_clashes(therapist: StaffMember, now: datetime | None = None) -> list[Appointment]:
    """The therapist's live appointments still to come that do not lie inside one of their weekly blocks: the rule
    booking applies (`booking.check_rules`), asked again of appointments booked under earlier hours."""
    zone = clinic_zone(therapist.clinic)
    blocks: dict[int, list[WorkingHours]] = {}
    for block in WorkingHours.objects.filter(therapist=therapist):
        blocks.setdefault(block.weekday, []).append(block)
    outside = []
    for appointment in _future_live(now).filter(therapist=therapist):
        day = appointment.starts_at.astimezone(zone).date()
        windows = (block_window(day, b, zone) for b in blocks.get(day.weekday(), []))
        if not any(ws <= appointment.starts_at and appointment.ends_at <= we for ws, we in windows):
            outside.append(appointment)
    return outside


def absence_clashes(absence: Absence, now: datetime | None = None) -> list[Appointment]:
    """The therapist's live appointments still to come during this absence."""
    return list(
        _future_live(now).filter(
            therapist_id=absence.therapist_id, starts_at__lt=absence.ends_at, ends_at__gt=absence.starts_at
        )
    )


def service_clashes(service: Service, now: datetime | None = None) -> list[Appointment]:
    """Live appointments still to come for this service whose room or therapist no longer suits it (after its rooms
    or techniques changed)."""
    own_rooms = set(service.rooms.values_list("pk", flat=True))
    needed = set(service.techniques or [])
    return [
        a
        for a in _future_live(now).filter(service=service)
        if (own_rooms and a.room_id not in own_rooms) or not needed <= set(a.therapist.qualified_techniques or [])
    ]


def _pks(appointments: Iterable[Appointment]) -> list[int]:
    return [a.pk for a in appointments]


# --- rooms ----------------------------------------------------------------------------------------------------------


def _room_name(clinic: Clinic, name: str, *, exclude: int | None = None) -> str:
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the room a name."})
    if len(name) > ROOM_NAME_LENGTH:
        raise ValidationError({"name": f"Use at most {ROOM_NAME_LENGTH} characters for the room's name."})
    taken = Room.objects.filter(clinic=clinic, name=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude)
    if taken.exists():
        raise ValidationError({"name": f"There is already a room called {name}."})
    return name


@transaction.atomic
def create_room(clinic: Clinic, name: str, *, by: Any, request: Any = None) -> Room:
    staff = _owner(by, clinic)
    name = _room_name(clinic, name)
    room = Room.objects.create(clinic=clinic, name=name)
    audit.record(staff.user, "create_room", obj=room, detail={"name": name}, request=request)
    return room


@transaction.atomic
def update_room(
    room: Room, *, by: Any, name: str | None = None, active: bool | None = None, request: Any = None
) -> tuple[Room, list[Appointment]]:
    """Rename, close (`active=False`) or reopen a room. A closed room is offered for no new booking; the
    appointments already booked in it stay booked and are returned (when it is closed), to be moved."""
    staff = _owner(by, room.clinic)
    room = locked(Room.objects.all()).get(pk=room.pk)
    before = {"name": room.name, "active": room.active}
    if name is not None:
        room.name = _room_name(room.clinic, name, exclude=room.pk)
    if active is not None:
        room.active = active
    after = {"name": room.name, "active": room.active}
    if after == before:
        return room, room_clashes(room) if not room.active else []
    room.save(update_fields=["name", "active"])
    clashes = room_clashes(room) if not room.active else []
    action = "update_room"
    if before["active"] != after["active"]:
        action = "reopen_room" if room.active else "close_room"
    audit.record(
        staff.user,
        action,
        obj=room,
        detail={"before": before, "after": after, "clashes": _pks(clashes)},
        request=request,
    )
    return room, clashes


# --- services -------------------------------------------------------------------------------------------------------


def _service_fields(
    clinic: Clinic,
    *,
    name: str,
    duration_minutes: int,
    turnover_before_minutes: int,
    turnover_after_minutes: int,
    techniques: Sequence[str],
    rooms: Iterable[Room],
) -> tuple[str, list[str], list[Room]]:
    """Check a service's fields; returns the cleaned name, techniques and rooms, or raises naming each field."""
    errors: dict[str, str] = {}
    name = name.strip()
    if not name:
        errors["name"] = "Give the service a name."
    elif len(name) > SERVICE_NAME_LENGTH:
        errors["name"] = f"Use at most {SERVICE_NAME_LENGTH} characters for the service's name."
    if not 5 <= duration_minutes <= MAX_DURATION_MINUTES:
        errors["duration_minutes"] = f"The length must be between 5 and {MAX_DURATION_MINUTES} minutes."
    if not 0 <= turnover_before_minutes <= MAX_TURNOVER_MINUTES:
        errors["turnover_before_minutes"] = f"Turnover before must be between 0 and {MAX_TURNOVER_MINUTES} minutes."
    if not 0 <= turnover_after_minutes <= MAX_TURNOVER_MINUTES:
        errors["turnover_after_minutes"] = f"Turnover after must be between 0 and {MAX_TURNOVER_MINUTES} minutes."
    unknown = [t for t in techniques if t not in TECHNIQUES]
    if unknown:
        errors["techniques"] = f"Unknown technique: {', '.join(unknown)}."
    room_list = list(rooms)
    if any(r.clinic_id != clinic.pk for r in room_list):
        errors["rooms"] = "Choose the clinic's own rooms."
    if errors:
        raise ValidationError(errors)
    return name, list(dict.fromkeys(techniques)), room_list


@transaction.atomic
def create_service(
    clinic: Clinic,
    *,
    by: Any,
    name: str,
    duration_minutes: int,
    turnover_before_minutes: int = 0,
    turnover_after_minutes: int = 0,
    assessment: bool = False,
    techniques: Sequence[str] = (),
    rooms: Iterable[Room] = (),
    request: Any = None,
) -> Service:
    staff = _owner(by, clinic)
    name, technique_list, room_list = _service_fields(
        clinic,
        name=name,
        duration_minutes=duration_minutes,
        turnover_before_minutes=turnover_before_minutes,
        turnover_after_minutes=turnover_after_minutes,
        techniques=techniques,
        rooms=rooms,
    )
    service = Service.objects.create(
        clinic=clinic,
        name=name,
        duration_minutes=duration_minutes,
        turnover_before_minutes=turnover_before_minutes,
        turnover_after_minutes=turnover_after_minutes,
        assessment=assessment,
        techniques=technique_list,
    )
    service.rooms.set(room_list)
    audit.record(staff.user, "create_service", obj=service, detail=_service_detail(service), request=request)
    return service


def _service_detail(service: Service) -> dict[str, Any]:
    return {
        "name": service.name,
        "duration": service.duration_minutes,
        "turnover": [service.turnover_before_minutes, service.turnover_after_minutes],
        "assessment": service.assessment,
        "techniques": list(service.techniques or []),
        "rooms": sorted(service.rooms.values_list("pk", flat=True)),
        "active": service.active,
    }


@transaction.atomic
def update_service(
    service: Service,
    *,
    by: Any,
    name: str,
    duration_minutes: int,
    turnover_before_minutes: int = 0,
    turnover_after_minutes: int = 0,
    assessment: bool = False,
    techniques: Sequence[str] = (),
    rooms: Iterable[Room] = (),
    active: bool = True,
    request: Any = None,
) -> tuple[Service, list[Appointment]]:
    """Change a service, or deactivate it (no new bookings, nor new waitlist entries). Appointments already booked
    keep their times and stay booked; those whose room or therapist no longer suits it are returned, to be moved."""
    staff = _owner(by, service.clinic)
    service = locked(Service.objects.all()).get(pk=service.pk)
    name, technique_list, room_list = _service_fields(
        service.clinic,
        name=name,
        duration_minutes=duration_minutes,
        turnover_before_minutes=turnover_before_minutes,
        turnover_after_minutes=turnover_after_minutes,
        techniques=techniques,
        rooms=rooms,
    )
    before = _service_detail(service)
    service.name = name
    service.duration_minutes = duration_minutes
    service.turnover_before_minutes = turnover_before_minutes
    service.turnover_after_minutes = turnover_after_minutes
    service.assessment = assessment
    service.techniques = technique_list
    service.active = active
    service.save()
    service.rooms.set(room_list)
    after = _service_detail(service)
    clashes = service_clashes(service)
    if after != before:
        action = "update_service"
        if before["active"] != after["active"]:
            action = "reactivate_service" if active else "deactivate_service"
        audit.record(
            staff.user,
            action,
            obj=service,
            detail={"before": before, "after": after, "clashes": _pks(clashes)},
            request=request,
        )
    return service, clashes


# --- hours and absences ---------------------------------------------------------------------------------------------


@transaction.atomic
def set_working_hours(
    therapist: StaffMember,
    weekly: Mapping[int, Sequence[tuple[time, time]]],
    *,
    by: Any,
    request: Any = None,
) -> list[WorkingHours]:
    """Replace the therapist's weekly hours: {weekday (Monday 0): [(start, end), ...]} in local time. Appointments
    already booked outside the new hours stay booked (`hours_clashes` lists them; the audit event names them)."""
    staff = _may_plan(by, therapist)
    errors: dict[str, str] = {}
    for weekday, blocks in weekly.items():
        if not 0 <= weekday <= 6:
            errors["weekday"] = "Days run from Monday (0) to Sunday (6)."
            continue
        ordered = sorted(blocks)
        for start, end in ordered:
            if end <= start:
                errors[f"day_{weekday}"] = (
                    f"{WorkingHours.Weekday(weekday).label}: each block must end after it starts."
                )
        for (_, end1), (start2, _) in itertools.pairwise(ordered):
            if start2 < end1:
                errors[f"day_{weekday}"] = f"{WorkingHours.Weekday(weekday).label}: the blocks overlap."
    if errors:
        raise ValidationError(errors)
    before = [str(b) for b in therapist.working_hours.all()]
    therapist.working_hours.all().delete()
    made = [
        WorkingHours.objects.create(therapist=therapist, weekday=weekday, starts=start, ends=end)
        for weekday, blocks in sorted(weekly.items())
        for start, end in sorted(blocks)
    ]
    audit.record(
        staff.user,
        "set_working_hours",
        obj=therapist,
        detail={
            "before": before,
            "after": [str(b) for b in made],
            "outside_hours": _pks(hours_clashes(therapist)),
        },
        request=request,
    )
    return made


@transaction.atomic
def add_absence(
    therapist: StaffMember,
    first_day: date,
    last_day: date,
    *,
    by: Any,
    kind: str = Absence.Kind.HOLIDAY,
    note: str = "",
    request: Any = None,
) -> tuple[Absence, list[Appointment]]:
    """Whole local days off. Returns the absence and the live appointments it clashes with (to be moved)."""
    staff = _may_plan(by, therapist)
    zone = clinic_zone(therapist.clinic)
    today = timezone.localdate(timezone=zone)
    errors: dict[str, str] = {}
    # Bounded, so a mistyped year neither blocks a therapist for decades nor runs past the calendar's end.
    if last_day < first_day:
        errors["last_day"] = "The last day must be on or after the first."
    elif (last_day - first_day).days >= MAX_ABSENCE_DAYS:
        errors["last_day"] = f"Record at most {MAX_ABSENCE_DAYS} days at a time."
    elif last_day > today + timedelta(days=5 * MAX_ABSENCE_DAYS):
        errors["last_day"] = "The last day is more than five years ahead."
    if first_day < today - timedelta(days=MAX_ABSENCE_DAYS):
        errors["first_day"] = "The first day is more than a year ago."
    if kind not in Absence.Kind.values:
        errors["kind"] = "Choose holiday, sick or other."
    note = note.strip()
    if len(note) > ABSENCE_NOTE_LENGTH:
        errors["note"] = f"Use at most {ABSENCE_NOTE_LENGTH} characters for the note."
    if errors:
        raise ValidationError(errors)
    starts_at, ends_at = day_bounds(first_day, last_day, zone)
    absence = Absence.objects.create(therapist=therapist, starts_at=starts_at, ends_at=ends_at, kind=kind, note=note)
    clashes = list(
        Appointment.objects.filter(
            live_q(timezone.now()), therapist=therapist, starts_at__lt=ends_at, ends_at__gt=starts_at
        ).select_related("client")
    )
    audit.record(
        staff.user,
        "add_absence",
        obj=absence,
        detail={
            "therapist": therapist.pk,
            "first_day": first_day.isoformat(),
            "last_day": last_day.isoformat(),
            "kind": kind,
            "clashes": [a.pk for a in clashes],
        },
        request=request,
    )
    return absence, clashes


@transaction.atomic
def remove_absence(absence: Absence, *, by: Any, request: Any = None) -> None:
    staff = _may_plan(by, absence.therapist)
    detail = {"therapist": absence.therapist_id, "starts_at": absence.starts_at.isoformat(), "kind": absence.kind}
    audit.record(staff.user, "remove_absence", obj=absence, detail=detail, request=request)
    absence.delete()


__all__ = [
    "MAX_DURATION_MINUTES",
    "MAX_TURNOVER_MINUTES",
    "absence_clashes",
    "add_absence",
    "create_room",
    "create_service",
    "hours_clashes",
    "may_plan",
    "remove_absence",
    "room_clashes",
    "service_clashes",
    "set_working_hours",
    "update_room",
    "update_service",
]
