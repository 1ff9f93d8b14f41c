"""What booking and the waitlist share: placing an appointment or a hold, and offering a freed time.

Who is asking (`actor_for`: staff of the clinic, the client for themselves, or `SYSTEM` for the waitlist's own
offers), the rules of a booking (`check_rules`), what a time conflicts with (`find_conflicts`), expiring holds that
have run out (`release_expired`), writing the appointment or the hold under the locking policy of
`backcare.scheduling.locking` (`place`) with its audit event (`record`) and its email in the outbox (`confirm`,
`notifications.queue_offer`), and offering a time that frees up to the first waiting client it suits
(`offer_slot`). `booking` (book, move, cancel, courses) and `waitlist` (join, leave, accept, decline, expire) both
build on this module and never import each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.utils import timezone

from backcare.clinic import access, audit
from backcare.clinic.access import can_see_clinical
from backcare.clinic.models import Client, Course, Role, StaffMember
from backcare.clinic.services.screening import treatment_gate
from backcare.scheduling import locking
from backcare.scheduling.locking import BookingConflict
from backcare.scheduling.models import Absence, Appointment, Room, Service, WaitlistEntry, WorkingHours, as_dict, live_q
from backcare.scheduling.services.availability import (
    block_window,
    clinic_zone,
    hhmm,
    missing_techniques,
    required_techniques,
    technique_names,
)
from backcare.scheduling.services.holidays import closed_message, closed_on
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


def confirm(appointment: Appointment, kind: str) -> None:
    """Queue the client's confirmation with an .ics file in the outbox, in the change's transaction: it goes only
    if the change commits, and is never lost if the mail server is down."""
    from backcare.scheduling import notifications

    notifications.queue_confirmation(appointment, kind)


def record(actor: Actor, action: str, appointment: Appointment, detail: dict[str, Any], request: Any) -> None:
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
        holiday = closed_on(client.clinic, day)
        blocks = WorkingHours.objects.filter(therapist=therapist, weekday=day.weekday())
        inside = any(ws <= starts_at and ends_at <= we for ws, we in (block_window(day, b, zone) for b in blocks))
        if holiday:
            errors["starts_at"] = closed_message(starts_at, zone, holiday)
        elif not inside:
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


def touching(clinic_id: int, busy: tuple[datetime, datetime]) -> Q:
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
        record(Actor(SYSTEM), "expire_hold", hold, {"expired_at": now.isoformat(), **as_dict(hold)}, None)
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
        release_expired(touching(client.clinic_id, busy), now=now)

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
        record(actor, action, appointment, detail, request)
        if held:
            from backcare.scheduling import notifications

            notifications.queue_offer(appointment)  # the offer goes with the hold, or not at all
        else:
            confirm(appointment, "booked")
        return appointment

    return locking.run_guarded(
        client.clinic_id, prepare=prepare, check=check, write=write, override=bool(override_reason)
    )


# --- offering a freed time to the waitlist ----------------------------------------------------------------------------


def matching_entries(therapist: StaffMember, service: Service, starts_at: datetime) -> QuerySet[WaitlistEntry]:
    """Waiting clients this time suits, first come first served."""
    day = starts_at.astimezone(clinic_zone(service.clinic)).date()
    return (
        WaitlistEntry.objects.filter(
            clinic_id=service.clinic_id,
            service=service,
            status=WaitlistEntry.Status.WAITING,
            earliest__lte=day,
            latest__gte=day,
        )
        .filter(Q(therapist__isnull=True) | Q(therapist=therapist))
        .exclude(holds__starts_at=starts_at, holds__therapist=therapist)  # already offered this very time
        .select_related("client", "client__clinic")
        .order_by("created_at", "pk")
    )


def place_hold(
    entry: WaitlistEntry,
    *,
    therapist: StaffMember,
    room: Room,
    starts_at: datetime,
    hold_minutes: int = HOLD_MINUTES,
    request: Any = None,
) -> Appointment:
    """Hold this time for the entry's client, and queue the email offering it to them. Raises BookingConflict
    when it is taken (by a booking or a hold)."""
    hold = place(
        actor=actor_for(SYSTEM, entry.clinic_id),
        client=entry.client,
        service=entry.service,
        therapist=therapist,
        room=room,
        starts_at=starts_at,
        hold_minutes=hold_minutes,
        entry=entry,
        request=request,
    )
    return hold


def offer_slot(
    *, therapist: StaffMember, room: Room, service: Service, starts_at: datetime, hold_minutes: int = HOLD_MINUTES
) -> Appointment | None:
    """Offer a freed time to the first waiting client it suits and can be held for; None when nobody takes it."""
    for entry in matching_entries(therapist, service, starts_at):
        try:
            return place_hold(entry, therapist=therapist, room=room, starts_at=starts_at, hold_minutes=hold_minutes)
        except (BookingConflict, ValidationError):
            continue  # this client cannot have it (busy then, screening, ...): try the next
    return None


def offer_freed(therapist: StaffMember, room: Room, service: Service, starts_at: datetime) -> None:
    if starts_at > timezone.now():
        offer_slot(therapist=therapist, room=room, service=service, starts_at=starts_at)


__all__ = [
    "HOLD_MINUTES",
    "SYSTEM",
    "Actor",
    "actor_for",
    "check_rules",
    "confirm",
    "find_conflicts",
    "matching_entries",
    "offer_freed",
    "offer_slot",
    "place",
    "place_hold",
    "record",
    "release_expired",
    "room_suits",
    "touching",
]
