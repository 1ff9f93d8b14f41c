"""Setting up the calendar: rooms, services, therapists' weekly hours and absences. Every write is audited.

Rooms and services: the owner. Hours and absences: the owner, the front desk, or the therapist for themselves.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from datetime import date, time
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from backcare.clinic import access, audit
from backcare.clinic.models import Clinic, Role, StaffMember
from backcare.clinical.vocabulary import TECHNIQUES
from backcare.scheduling.models import Absence, Appointment, Room, Service, WorkingHours, live_q
from backcare.scheduling.services.availability import clinic_zone, day_bounds


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


@transaction.atomic
def create_room(clinic: Clinic, name: str, *, by: Any, request: Any = None) -> Room:
    staff = _owner(by, clinic)
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the room a name."})
    if Room.objects.filter(clinic=clinic, name=name).exists():
        raise ValidationError({"name": f"There is already a room called {name}."})
    room = Room.objects.create(clinic=clinic, name=name)
    audit.record(staff.user, "create_room", obj=room, detail={"name": name}, request=request)
    return room


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
    errors: dict[str, str] = {}
    if not name.strip():
        errors["name"] = "Give the service a name."
    if not 5 <= duration_minutes <= 480:
        errors["duration_minutes"] = "The length must be between 5 and 480 minutes."
    if not 0 <= turnover_before_minutes <= 120:
        errors["turnover_before_minutes"] = "Turnover before must be between 0 and 120 minutes."
    if not 0 <= turnover_after_minutes <= 120:
        errors["turnover_after_minutes"] = "Turnover after must be between 0 and 120 minutes."
    unknown = [t for t in techniques if t not in TECHNIQUES]
    if unknown:
        errors["techniques"] = f"Unknown technique: {', '.join(unknown)}."
    room_list = list(rooms)
    if any(r.clinic_id != clinic.pk for r in room_list):
        errors["rooms"] = "Choose the clinic's own rooms."
    if errors:
        raise ValidationError(errors)
    service = Service.objects.create(
        clinic=clinic,
        name=name.strip(),
        duration_minutes=duration_minutes,
        turnover_before_minutes=turnover_before_minutes,
        turnover_after_minutes=turnover_after_minutes,
        assessment=assessment,
        techniques=list(techniques),
    )
    service.rooms.set(room_list)
    audit.record(
        staff.user,
        "create_service",
        obj=service,
        detail={
            "name": service.name,
            "duration": duration_minutes,
            "turnover": [turnover_before_minutes, turnover_after_minutes],
            "assessment": assessment,
            "techniques": list(techniques),
            "rooms": [r.pk for r in room_list],
        },
        request=request,
    )
    return service


@transaction.atomic
def set_working_hours(
    therapist: StaffMember,
    weekly: dict[int, Sequence[tuple[time, time]]],
    *,
    by: Any,
    request: Any = None,
) -> list[WorkingHours]:
    """Replace the therapist's weekly hours: {weekday (Monday 0): [(start, end), ...]} in local time."""
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
        detail={"before": before, "after": [str(b) for b in made]},
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
    if last_day < first_day:
        raise ValidationError({"last_day": "The last day must be on or after the first."})
    if kind not in Absence.Kind.values:
        raise ValidationError({"kind": "Choose holiday, sick or other."})
    starts_at, ends_at = day_bounds(first_day, last_day, clinic_zone(therapist.clinic))
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


__all__ = ["add_absence", "create_room", "create_service", "remove_absence", "set_working_hours"]
