"""Booking, rescheduling and cancelling appointments, and booking a whole course all or nothing.

Every function checks who is asking (`by`: a staff user of the clinic, the client's own portal user, or `SYSTEM` for
the waitlist), checks the rules, writes under the locking policy of `backcare.scheduling.locking`, and records the
audit event with the client. Rule failures raise `ValidationError` naming the field; a time that is taken raises
`BookingConflict` (a `ValidationError` too) naming who or what is taken.

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
from django.db.models import Q
from django.utils import timezone

from backcare.clinic import access, audit
from backcare.clinic.access import can_see_clinical
from backcare.clinic.models import Client, Clinic, Course, Role, StaffMember
from backcare.clinic.services.screening import treatment_gate
from backcare.scheduling import locking
from backcare.scheduling.locking import BookingConflict
from backcare.scheduling.models import (
    VISIT_STATUSES,
    Absence,
    Appointment,
    Room,
    Service,
    WaitlistEntry,
    WorkingHours,
    as_dict,
    live_q,
)
from backcare.scheduling.services.availability import (
    MIN_COURSE_GAP_DAYS,
    Slot,
    block_window,
    clinic_zone,
    hhmm,
    missing_techniques,
    required_techniques,
    technique_names,
)
from backcare.scheduling.services.status import announce

HOLD_MINUTES = 30


class _System:
    """The clinic's own processes (waitlist offers, expiring holds), as the one asking."""

    is_authenticated = False

    def __repr__(self) -> str:
        return "SYSTEM"


SYSTEM: Any = _System()


@dataclass(frozen=True)
class Actor:
    user: Any
    staff: StaffMember | None = None
    client: Client | None = None

    @property
    def is_system(self) -> bool:
        return self.user is SYSTEM

    @property
    def is_owner(self) -> bool:
        return self.staff is not None and self.staff.role == Role.OWNER

    @property
    def audit_user(self) -> Any:
        return None if self.is_system else self.user


def actor_for(by: Any, clinic_id: int) -> Actor:
    """Who is asking: staff of this clinic, a client (for themselves only), or the system; anyone else is refused."""
    if by is SYSTEM:
        return Actor(SYSTEM)
    staff = access.staff_of(by)
    if staff is not None:
        if staff.clinic_id != clinic_id:
            raise PermissionDenied("This clinic's appointments are not yours to change.")
        return Actor(by, staff=staff)
    client = access.client_of(by)
    if client is not None and client.clinic_id == clinic_id:
        return Actor(by, client=client)
    raise PermissionDenied("Sign in to book appointments.")


def _confirm(appointment: Appointment, kind: str) -> None:
    """Queue the client's confirmation with an .ics file in the outbox, in the change's transaction: it goes only
    if the change commits, and is never lost if the mail server is down."""
    from backcare.scheduling import notifications

    notifications.queue_confirmation(appointment, kind)


def _record(actor: Actor, action: str, appointment: Appointment, detail: dict[str, Any], request: Any) -> None:
    if actor.is_system:
        detail = {**detail, "by": "system"}
    audit.record(actor.audit_user, action, client=appointment.client, obj=appointment, detail=detail, request=request)


# --- the rules ------------------------------------------------------------------------------------------------------


def _fmt(moment: datetime, zone: Any) -> str:
    return moment.astimezone(zone).strftime("%a %d %b %Y %H:%M")


def check_rules(
    *,
    actor: Actor,
    client: Client,
    service: Service,
    therapist: StaffMember,
    room: Room,
    starts_at: datetime,
    course: Course | None,
    now: datetime,
) -> None:
    """Everything about a booking except overlaps; raises ValidationError naming each field."""
    if actor.client is not None and actor.client.pk != client.pk:
        raise PermissionDenied("Clients may only book for themselves.")
    clinic_id = client.clinic_id
    errors: dict[str, str] = {}
    if timezone.is_naive(starts_at):
        raise ValueError("starts_at must be an aware datetime")
    if service.clinic_id != clinic_id or not service.active:
        errors["service"] = "Choose one of the clinic's services."
    if therapist.clinic_id != clinic_id or therapist.role != Role.THERAPIST or not therapist.active:
        errors["therapist"] = "Choose one of the clinic's therapists."
    if room.clinic_id != clinic_id or not room.active or not room_suits(room, service):
        errors["room"] = f"{room.name} cannot be used for {service.name}."
    if starts_at <= now:
        errors["starts_at"] = "Choose a time in the future."
    if course is not None and (course.client_id != client.pk or course.status != Course.Status.ACTIVE):
        errors["course"] = "Appointments can only be booked for this client's course in progress."
    if "therapist" not in errors:
        missing = missing_techniques(therapist, required_techniques(service, course))
        if missing:
            errors["therapist"] = f"{therapist.display_name} is not qualified for {technique_names(missing)}."
        elif course is not None and not can_see_clinical(therapist.user, client):
            # A course session needs the client's record (precautions, the health update, the session note).
            errors["therapist"] = (
                f"{therapist.display_name} cannot open {client.full_name}'s record, which a course session needs: "
                "choose the client's therapist, or ask the owner to share the record first."
            )
    gate = treatment_gate(client)
    if not gate.allowed and not (service.assessment and gate.screening is None):
        errors["client"] = gate.reason
    if "starts_at" not in errors and "therapist" not in errors:
        ends_at = starts_at + service.duration
        zone = clinic_zone(client.clinic)
        day = starts_at.astimezone(zone).date()
        blocks = WorkingHours.objects.filter(therapist=therapist, weekday=day.weekday())
        inside = any(ws <= starts_at and ends_at <= we for ws, we in (block_window(day, b, zone) for b in blocks))
        if not inside:
            errors["starts_at"] = (
                f"{therapist.display_name} does not work {_fmt(starts_at, zone)}-{hhmm(ends_at, zone)}."
            )
        else:
            away = Absence.objects.filter(therapist=therapist, starts_at__lt=ends_at, ends_at__gt=starts_at).first()
            if away is not None:
                errors["starts_at"] = f"{therapist.display_name} is away then ({away.get_kind_display().lower()})."
    if errors:
        raise ValidationError(errors)


def room_suits(room: Room, service: Service) -> bool:
    """The service's own rooms, or any room of the clinic when it names none (as `suitable_rooms_for`)."""
    own = set(Service.rooms.through.objects.filter(service_id=service.pk).values_list("room_id", flat=True))
    return room.pk in own if own else room.clinic_id == service.clinic_id


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


# --- overlaps --------------------------------------------------------------------------------------------------------


def _overlap_q(
    therapist_id: int, room_id: int, client_id: int, span: tuple[datetime, datetime], busy: tuple[datetime, datetime]
) -> Q:
    busy_overlap = Q(busy_from__lt=busy[1], busy_until__gt=busy[0])
    return (
        Q(busy_overlap, therapist_id=therapist_id)
        | Q(busy_overlap, room_id=room_id)
        | Q(client_id=client_id, starts_at__lt=span[1], ends_at__gt=span[0])
    )


def _touching(clinic_id: int, busy: tuple[datetime, datetime]) -> Q:
    """Any appointment of the clinic whose busy time overlaps (a superset of the conflicts, cheap to ask)."""
    return Q(clinic_id=clinic_id, busy_from__lt=busy[1], busy_until__gt=busy[0])


def find_conflicts(
    *,
    therapist: StaffMember,
    room: Room,
    client: Client,
    span: tuple[datetime, datetime],
    busy: tuple[datetime, datetime],
    now: datetime,
    exclude: int | None = None,
) -> list[str]:
    """What is taken, in words, from one query over live appointments (overbooked ones included)."""
    qs = Appointment.objects.filter(live_q(now)).filter(_overlap_q(therapist.pk, room.pk, client.pk, span, busy))
    if exclude is not None:
        qs = qs.exclude(pk=exclude)
    zone = clinic_zone(client.clinic)
    found: list[str] = []
    for other in qs.select_related("therapist", "room", "client").order_by("starts_at", "pk"):
        times = f"{hhmm(other.starts_at, zone)}-{hhmm(other.ends_at, zone)}"
        if other.starts_at.astimezone(zone).date() != span[0].astimezone(zone).date():
            times += f" on {other.starts_at.astimezone(zone):%a %d %b}"
        if other.busy_from != other.starts_at or other.busy_until != other.ends_at:
            turnover = f" (with turnover {hhmm(other.busy_from, zone)}-{hhmm(other.busy_until, zone)})"
        else:
            turnover = ""
        overlaps_busy = other.busy_from < busy[1] and other.busy_until > busy[0]
        if other.therapist_id == therapist.pk and overlaps_busy:
            found.append(f"{other.therapist.display_name} is already booked {times}{turnover}")
        if other.room_id == room.pk and overlaps_busy:
            found.append(f"{other.room.name} is already in use {times}{turnover}")
        if other.client_id == client.pk and other.starts_at < span[1] and other.ends_at > span[0]:
            found.append(f"{other.client.full_name} already has an appointment {times}")
    return list(dict.fromkeys(found))


def release_expired(q: Q, *, now: datetime) -> list[Appointment]:
    """Mark holds that have run out (matching `q`) as expired; their waitlist entries wait again. Audited."""
    released: list[Appointment] = []
    candidates = Appointment.objects.filter(q, status=Appointment.Status.HELD, hold_expires_at__lte=now)
    for hold in candidates.select_related("client"):
        changed = Appointment.objects.filter(pk=hold.pk, status=Appointment.Status.HELD).update(
            status=Appointment.Status.EXPIRED
        )
        if not changed:
            continue
        hold.status = Appointment.Status.EXPIRED
        announce(hold, Appointment.Status.HELD, None)
        if hold.waitlist_entry_id is not None:
            WaitlistEntry.objects.filter(pk=hold.waitlist_entry_id, status=WaitlistEntry.Status.OFFERED).update(
                status=WaitlistEntry.Status.WAITING
            )
        _record(Actor(SYSTEM), "expire_hold", hold, {"expired_at": now.isoformat(), **as_dict(hold)}, None)
        released.append(hold)
    return released


# --- placing an appointment ------------------------------------------------------------------------------------------


def place(
    *,
    actor: Actor,
    client: Client,
    service: Service,
    therapist: StaffMember,
    room: Room,
    starts_at: datetime,
    course: Course | None = None,
    hold_minutes: int | None = None,
    entry: WaitlistEntry | None = None,
    override_reason: str = "",
    submission_key: str | None = None,
    request: Any = None,
) -> Appointment:
    """Create a booked appointment, or a hold when `hold_minutes` is given (the waitlist's offers)."""
    now = timezone.now()
    override_reason = override_reason.strip()
    if override_reason and not actor.is_owner:
        raise PermissionDenied("Only the clinic owner may overbook.")
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

    def prepare() -> None:
        release_expired(_touching(client.clinic_id, busy), now=now)

    def check() -> list[str]:
        return find_conflicts(therapist=therapist, room=room, client=client, span=span, busy=busy, now=now)

    def write(conflicts: list[str], bypass: bool) -> Appointment:
        held = hold_minutes is not None
        appointment = Appointment.objects.create(
            clinic_id=client.clinic_id,
            client=client,
            therapist=therapist,
            room=room,
            service=service,
            course=course,
            starts_at=starts_at,
            ends_at=ends_at,
            busy_from=busy[0],
            busy_until=busy[1],
            status=Appointment.Status.HELD if held else Appointment.Status.BOOKED,
            hold_expires_at=now + timedelta(minutes=hold_minutes) if hold_minutes is not None else None,
            waitlist_entry=entry,
            override=bool(conflicts) or bypass,
            override_reason=override_reason if conflicts else "",
            created_by=actor.audit_user if getattr(actor.audit_user, "is_authenticated", False) else None,
            submission_key=submission_key,
        )
        detail: dict[str, Any] = as_dict(appointment)
        if course is not None:
            detail["course"] = course.pk
        if conflicts:
            detail.update(overbooked=conflicts, reason=override_reason)
        if held:
            assert entry is not None and appointment.hold_expires_at is not None
            WaitlistEntry.objects.filter(pk=entry.pk).update(status=WaitlistEntry.Status.OFFERED)
            detail.update(waitlist_entry=entry.pk, hold_expires_at=appointment.hold_expires_at.isoformat())
        action = "offer_hold" if held else ("overbook_appointment" if conflicts else "book_appointment")
        _record(actor, action, appointment, detail, request)
        if held:
            from backcare.scheduling import notifications

            notifications.queue_offer(appointment)  # the offer goes with the hold, or not at all
        else:
            _confirm(appointment, "booked")
        return appointment

    return locking.run_guarded(
        client.clinic_id, prepare=prepare, check=check, write=write, override=bool(override_reason)
    )


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
        release_expired(_touching(client.clinic_id, busy), now=now)

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
        _record(actor, "reschedule_appointment", appointment, detail, request)
        _confirm(appointment, "rescheduled")
        _offer_freed(*freed)
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
    appointment = Appointment.objects.select_for_update().select_related("clinic", "client").get(pk=appointment.pk)
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
    _record(actor, "cancel_appointment", appointment, detail, request)
    announce(appointment, Appointment.Status.BOOKED, actor.audit_user)
    _confirm(appointment, "cancelled")
    _offer_freed(appointment.therapist, appointment.room, appointment.service, appointment.starts_at)
    return appointment


def _offer_freed(therapist: StaffMember, room: Room, service: Service, starts_at: datetime) -> None:
    from backcare.scheduling.services import waitlist

    if starts_at > timezone.now():
        waitlist.offer_slot(therapist=therapist, room=room, service=service, starts_at=starts_at)


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


__all__ = [
    "HOLD_MINUTES",
    "SYSTEM",
    "Actor",
    "BookingConflict",
    "actor_for",
    "book_appointment",
    "book_course",
    "book_slot",
    "cancel_appointment",
    "check_rules",
    "find_conflicts",
    "place",
    "release_expired",
    "reschedule_appointment",
]
