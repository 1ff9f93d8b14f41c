"""Booking, rescheduling and cancelling appointments, and booking a whole course all or nothing.

Every function checks who is asking (`by`: a staff user of the clinic, the client's own portal user, or `SYSTEM` for
the waitlist), checks the rules, writes under the locking policy of `backcare.scheduling.locking`, and records the
audit event with the client. Rule failures raise `ValidationError` naming the field; a time that is taken raises
`BookingConflict` (a `ValidationError` too) naming who or what is taken. What booking shares with the waitlist (who
asks, the rules, placing an appointment or a hold, its audit event and email, offering a freed time) is in
`placement`, which both import; names used here keep being importable from this module.

The rules:
- the therapist works then (weekly hours, no absence) and holds the service's and the course's techniques;
- the room is one the service can use; the time is in the future;
- the screening allows treatment (`treatment_gate`); a service marked `assessment` may also be booked by a client who
  has not been screened yet (the first visit, where the intake is reviewed), never while a screening blocks;
- cancelling or moving inside the clinic's cancellation window (`Clinic.cancellation_hours`): clients may not, staff
  may with a reason; an appointment cancelled then is `late_cancelled`;
- overbooking (a time that is taken) only by the owner, with a reason, recorded in the audit trail.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from backcare.clinic.models import Client, Clinic, Course, Role, StaffMember
from backcare.common.rowlock import locked
from backcare.scheduling import locking
from backcare.scheduling.locking import BookingConflict
from backcare.scheduling.models import VISIT_STATUSES, Appointment, Room, Service, as_dict
from backcare.scheduling.services.availability import MIN_COURSE_GAP_DAYS, Slot, clinic_zone
from backcare.scheduling.services.placement import (
    HOLD_MINUTES,
    SYSTEM,
    Actor,
    actor_for,
    check_rules,
    confirm,
    find_conflicts,
    offer_freed,
    place,
    record,
    release_expired,
    touching,
)
from backcare.scheduling.services.status import announce

# --- booking, moving, cancelling --------------------------------------------------------------------------------------


def _window_hours(clinic: Clinic) -> timedelta:
    return timedelta(hours=clinic.cancellation_hours)


def check_late_change(appointment: Appointment, *, actor: Actor, late_reason: str, now: datetime, what: str) -> bool:
    """Inside the cancellation window clients may not cancel or move; staff may, with a reason. True when late."""
    clinic = appointment.clinic
    if appointment.starts_at - now >= _window_hours(clinic):
        return False
    hours = clinic.cancellation_hours
    if actor.client is not None or actor.is_system:
        raise ValidationError(
            f"Appointments cannot be {what} online less than {hours} hours before they start. Please phone the clinic."
        )
    if not late_reason.strip():
        raise ValidationError(
            {"late_reason": f"This is less than {hours} hours before the appointment: give a reason."}
        )
    return True


def book_appointment(
    client: Client,
    service: Service,
    starts_at: datetime,
    *,
    therapist: StaffMember,
    room: Room,
    by: Any,
    course: Course | None = None,
    override_reason: str = "",
    submission_key: str | None = None,
    request: Any = None,
) -> Appointment:
    """Book one appointment. A repeated `submission_key` returns the appointment it already made."""
    actor = actor_for(by, client.clinic_id)
    if submission_key:
        existing = Appointment.objects.filter(submission_key=submission_key).first()
        if existing is not None:
            return existing
    try:
        return place(
            actor=actor,
            client=client,
            service=service,
            therapist=therapist,
            room=room,
            starts_at=starts_at,
            course=course,
            override_reason=override_reason,
            submission_key=submission_key,
            request=request,
        )
    except (BookingConflict, IntegrityError):
        # The same form submitted twice at once: the second finds the first's appointment.
        if submission_key:
            existing = Appointment.objects.filter(submission_key=submission_key).first()
            if existing is not None:
                return existing
        raise


def book_slot(client: Client, slot: Slot, *, by: Any, **kwargs: Any) -> Appointment:
    """Book a slot that `availability.find_slots` offered."""
    return book_appointment(
        client, slot.service, slot.starts_at, therapist=slot.therapist, room=slot.room, by=by, **kwargs
    )


def is_movable(appointment: Appointment, now: datetime) -> bool:
    """Only a booked appointment that has not started can be moved (`reschedule_appointment` says why not)."""
    return appointment.status == Appointment.Status.BOOKED and appointment.starts_at > now


def reschedule_appointment(
    appointment: Appointment,
    starts_at: datetime,
    *,
    by: Any,
    therapist: StaffMember | None = None,
    room: Room | None = None,
    late_reason: str = "",
    override_reason: str = "",
    request: Any = None,
) -> Appointment:
    """Move a booked appointment (optionally to another therapist or room). The time it leaves is offered to the
    waitlist."""
    actor = actor_for(by, appointment.clinic_id)
    now = timezone.now()
    override_reason = override_reason.strip()
    if override_reason and not actor.is_owner:
        raise PermissionDenied("Only the clinic owner may overbook.")
    appointment = Appointment.objects.select_related("client", "service", "therapist", "room", "clinic").get(
        pk=appointment.pk
    )
    if actor.client is not None and actor.client.pk != appointment.client_id:
        raise PermissionDenied("Clients may only move their own appointments.")
    if appointment.status != Appointment.Status.BOOKED:
        raise ValidationError("Only a booked appointment can be moved.")
    if appointment.starts_at <= now:
        raise ValidationError("This appointment has already started.")
    late = check_late_change(appointment, actor=actor, late_reason=late_reason, now=now, what="moved")
    therapist = therapist or appointment.therapist
    room = room or appointment.room
    service, client = appointment.service, appointment.client
    course = appointment.course
    check_rules(
        actor=actor,
        client=client,
        service=service,
        therapist=therapist,
        room=room,
        starts_at=starts_at,
        course=course,
        now=now,
    )
    ends_at = starts_at + service.duration
    span = (starts_at, ends_at)
    busy = (starts_at - service.before, ends_at + service.after)
    before = as_dict(appointment)
    freed = (appointment.therapist, appointment.room, appointment.service, appointment.starts_at)

    def prepare() -> None:
        release_expired(touching(client.clinic_id, busy), now=now)

    def check() -> list[str]:
        return find_conflicts(
            therapist=therapist, room=room, client=client, span=span, busy=busy, now=now, exclude=appointment.pk
        )

    def write(conflicts: list[str], bypass: bool) -> Appointment:
        changed = Appointment.objects.filter(pk=appointment.pk, status=Appointment.Status.BOOKED).update(
            therapist=therapist,
            room=room,
            starts_at=starts_at,
            ends_at=ends_at,
            busy_from=busy[0],
            busy_until=busy[1],
            override=bool(conflicts) or bypass,
            override_reason=override_reason if conflicts else "",
            late_change_reason=late_reason.strip() if late else appointment.late_change_reason,
        )
        if not changed:
            raise ValidationError("This appointment was cancelled or changed meanwhile. Reload and try again.")
        appointment.refresh_from_db()
        detail: dict[str, Any] = {"before": before, "after": as_dict(appointment)}
        if late:
            detail["late_reason"] = late_reason.strip()
        if conflicts:
            detail.update(overbooked=conflicts, reason=override_reason)
        record(actor, "reschedule_appointment", appointment, detail, request)
        confirm(appointment, "rescheduled")
        offer_freed(*freed)
        return appointment

    return locking.run_guarded(
        appointment.clinic_id, prepare=prepare, check=check, write=write, override=bool(override_reason)
    )


@transaction.atomic
def cancel_appointment(
    appointment: Appointment, *, by: Any, reason: str = "", late_reason: str = "", request: Any = None
) -> Appointment:
    """Cancel a booked appointment; its time is offered to the waitlist."""
    actor = actor_for(by, appointment.clinic_id)
    now = timezone.now()
    appointment = locked(Appointment.objects.select_related("clinic", "client")).get(pk=appointment.pk)
    if actor.client is not None and actor.client.pk != appointment.client_id:
        raise PermissionDenied("Clients may only cancel their own appointments.")
    if appointment.status != Appointment.Status.BOOKED:
        raise ValidationError("Only a booked appointment can be cancelled.")
    if appointment.starts_at <= now:
        raise ValidationError("This appointment has already started.")
    late = check_late_change(appointment, actor=actor, late_reason=late_reason, now=now, what="cancelled")
    # Inside the cancellation window the appointment is cancelled late (billing may charge for it).
    appointment.status = Appointment.Status.LATE_CANCELLED if late else Appointment.Status.CANCELLED
    appointment.cancelled_at = now
    appointment.status_changed_at = now
    appointment.cancel_reason = reason.strip()
    if late:
        appointment.late_change_reason = late_reason.strip()
    appointment.save(
        update_fields=["status", "cancelled_at", "status_changed_at", "cancel_reason", "late_change_reason"]
    )
    detail: dict[str, Any] = {**as_dict(appointment), "reason": appointment.cancel_reason}
    if late:
        detail["late_reason"] = appointment.late_change_reason
    record(actor, "cancel_appointment", appointment, detail, request)
    announce(appointment, Appointment.Status.BOOKED, actor.audit_user)
    confirm(appointment, "cancelled")
    offer_freed(appointment.therapist, appointment.room, appointment.service, appointment.starts_at)
    return appointment


# --- courses ---------------------------------------------------------------------------------------------------------


def check_spacing(slots: Sequence[Slot], zone: Any, min_gap_days: int) -> None:
    days: list[date] = sorted(s.local(zone).date() for s in slots)
    for earlier, later in itertools.pairwise(days):
        if (later - earlier).days < min_gap_days:
            raise ValidationError(
                f"Sessions must be at least {min_gap_days} days apart ({earlier:%d %b} and {later:%d %b} are not)."
            )


def book_course(
    course: Course,
    slots: Sequence[Slot],
    *,
    by: Any,
    min_gap_days: int = MIN_COURSE_GAP_DAYS,
    submission_key: str | None = None,
    request: Any = None,
) -> list[Appointment]:
    """Book the course's sessions all or nothing: any conflict or broken rule books none of them."""
    actor_for(by, course.client.clinic_id)
    if not slots:
        raise ValidationError("Choose the sessions to book.")
    if submission_key:
        existing = list(Appointment.objects.filter(submission_key__startswith=f"{submission_key}:").order_by("pk"))
        if existing:
            return existing
    booked = course.appointments.filter(status__in=VISIT_STATUSES).count()
    if booked + len(slots) > course.sessions_planned:
        raise ValidationError(
            f"The course plans {course.sessions_planned} sessions; {booked} are booked already, so at most "
            f"{course.sessions_planned - booked} more."
        )
    zone = clinic_zone(course.client.clinic)
    check_spacing(slots, zone, min_gap_days)
    ordered = sorted(slots, key=lambda s: s.starts_at)
    made: list[Appointment] = []
    with transaction.atomic():
        for number, slot in enumerate(ordered, start=1):
            try:
                made.append(
                    book_slot(
                        course.client,
                        slot,
                        by=by,
                        course=course,
                        submission_key=f"{submission_key}:{number}" if submission_key else None,
                        request=request,
                    )
                )
            except BookingConflict as conflict:
                raise BookingConflict(
                    [f"Session {number} ({slot.local(zone):%a %d %b %H:%M}): {c}" for c in conflict.conflicts]
                ) from conflict
            except ValidationError as error:
                messages = "; ".join(error.messages)
                raise ValidationError(f"Session {number} ({slot.local(zone):%a %d %b %H:%M}): {messages}") from error
    return made


@dataclass(frozen=True)
class CourseBookingState:
    """Where a course's bookings stand: the sessions booked (visits), how many are left to book, and whether the
    course may be booked at all now (in progress, the booking gate open, sessions left)."""

    booked: list[Appointment]
    remaining: int
    active: bool
    bookable: bool


def course_booking_state(course: Course, *, gate_allowed: bool) -> CourseBookingState:
    booked = list(
        course.appointments.filter(status__in=VISIT_STATUSES)
        .select_related("therapist", "room", "service")
        .order_by("starts_at")
    )
    remaining = max(course.sessions_planned - len(booked), 0)
    active = course.status == Course.Status.ACTIVE
    return CourseBookingState(booked, remaining, active, active and gate_allowed and remaining > 0)


def already_booked(course: Course, submission_key: str | None) -> bool:
    """Whether this proposal was booked already (the same form sent twice)."""
    return bool(submission_key) and course.appointments.filter(submission_key__startswith=f"{submission_key}:").exists()


def book_course_proposal(
    course: Course,
    service: Service,
    sessions: Sequence[tuple[datetime, int, int]],
    *,
    by: Any,
    submission_key: str | None = None,
    request: Any = None,
) -> list[Appointment]:
    """Book a proposal sent back as (start, therapist id, room id) per session (`book_course`, all or nothing). A
    therapist or room that is no longer the clinic's or no longer active refuses the whole proposal."""
    clinic_id = course.client.clinic_id
    therapists = {t.pk: t for t in StaffMember.objects.filter(clinic_id=clinic_id, role=Role.THERAPIST, active=True)}
    rooms = {r.pk: r for r in Room.objects.filter(clinic_id=clinic_id, active=True)}
    slots = []
    for starts_at, therapist_id, room_id in sessions:
        therapist, room = therapists.get(therapist_id), rooms.get(room_id)
        if therapist is None or room is None:
            raise ValidationError("Nothing was booked: a therapist or room of the proposal is no longer available.")
        ends_at = starts_at + service.duration
        slots.append(Slot(starts_at=starts_at, ends_at=ends_at, therapist=therapist, room=room, service=service))
    return book_course(course, slots, by=by, submission_key=submission_key, request=request)


__all__ = [
    "HOLD_MINUTES",
    "SYSTEM",
    "Actor",
    "BookingConflict",
    "CourseBookingState",
    "actor_for",
    "already_booked",
    "book_appointment",
    "book_course",
    "book_course_proposal",
    "book_slot",
    "cancel_appointment",
    "check_rules",
    "course_booking_state",
    "find_conflicts",
    "is_movable",
    "place",
    "release_expired",
    "reschedule_appointment",
]
