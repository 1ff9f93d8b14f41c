"""The waitlist: clients waiting for a service (optionally with one therapist, between two local dates).

When a time frees up (a cancellation or a move), the first matching waiting client is offered it as a *hold*: an
appointment with status `held` that expires after `HOLD_MINUTES`. A hold is live like a booking, so nobody else can
book that time while it stands (see `backcare.scheduling.locking`). Accepting the hold books it; declining it, or
letting it run out, frees the time and offers it to the next client in line. `release_expired_holds()` is meant to
run every few minutes (a scheduled job); bookings also release expired holds in their way as they go.

Every hold's email to its client is queued in the outbox in the hold's own transaction (`notifications.queue_offer`,
once per hold): the time, the therapist, until when it is held and the portal page to accept or decline it.
Leaving the waitlist while a time is held declines the hold, so the time goes to the next client at once.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from backcare.clinic import audit
from backcare.clinic.models import Client, StaffMember
from backcare.common.rowlock import locked
from backcare.scheduling.models import Appointment, Service, WaitlistEntry, as_dict
from backcare.scheduling.services.availability import clinic_zone
from backcare.scheduling.services.placement import (
    HOLD_MINUTES,
    actor_for,
    check_rules,
    confirm,
    matching_entries,
    offer_slot,
    place_hold,
    record,
    release_expired,
)
from backcare.scheduling.services.status import announce


@transaction.atomic
def join_waitlist(
    client: Client,
    service: Service,
    earliest: date,
    latest: date,
    *,
    by: Any,
    therapist: StaffMember | None = None,
    note: str = "",
    request: Any = None,
) -> WaitlistEntry:
    actor = actor_for(by, client.clinic_id)
    if actor.client is not None and actor.client.pk != client.pk:
        raise PermissionDenied("Clients may only add themselves to the waitlist.")
    errors: dict[str, str] = {}
    if service.clinic_id != client.clinic_id or not service.active:
        errors["service"] = "Choose one of the clinic's services."
    if therapist is not None and (therapist.clinic_id != client.clinic_id or not therapist.active):
        errors["therapist"] = "Choose one of the clinic's therapists, or any therapist."
    if latest < earliest:
        errors["latest"] = "The last suitable day must be on or after the first."
    if latest < timezone.localdate(timezone=clinic_zone(client.clinic)):
        errors["latest"] = "The last suitable day has already passed."
    if errors:
        raise ValidationError(errors)
    entry = WaitlistEntry.objects.create(
        clinic_id=client.clinic_id,
        client=client,
        service=service,
        therapist=therapist,
        earliest=earliest,
        latest=latest,
        note=note.strip(),
        created_by=by if getattr(by, "is_authenticated", False) else None,
    )
    audit.record(
        actor.audit_user,
        "join_waitlist",
        client=client,
        obj=entry,
        detail={
            "service": service.pk,
            "therapist": therapist.pk if therapist else None,
            "earliest": earliest.isoformat(),
            "latest": latest.isoformat(),
        },
        request=request,
    )
    return entry


@transaction.atomic
def leave_waitlist(entry: WaitlistEntry, *, by: Any, request: Any = None) -> WaitlistEntry:
    """Withdraw the entry. A time held for it is declined, and so offered to the next client in line."""
    actor = actor_for(by, entry.clinic_id)
    if actor.client is not None and actor.client.pk != entry.client_id:
        raise PermissionDenied("Clients may only change their own waitlist entries.")
    now = timezone.now()
    declined = []
    for hold in entry.holds.filter(status=Appointment.Status.HELD, hold_expires_at__gt=now):
        decline_hold(hold, by=by, request=request)
        declined.append(hold.pk)
    entry.status = WaitlistEntry.Status.WITHDRAWN
    entry.save(update_fields=["status"])
    detail = {"declined_holds": declined} if declined else None
    audit.record(actor.audit_user, "leave_waitlist", client=entry.client, obj=entry, detail=detail, request=request)
    return entry


@transaction.atomic
def accept_hold(hold: Appointment, *, by: Any, request: Any = None) -> Appointment:
    """The client (or staff for them) takes the offered time: the hold becomes a booking, if it has not expired."""
    actor = actor_for(by, hold.clinic_id)
    now = timezone.now()
    hold = locked(Appointment.objects.select_related("client", "service", "therapist", "room")).get(pk=hold.pk)
    if actor.client is not None and actor.client.pk != hold.client_id:
        raise PermissionDenied("This offer is for someone else.")
    if hold.status != Appointment.Status.HELD:
        raise ValidationError("This offer is no longer open.")
    if hold.hold_expires_at is None or hold.hold_expires_at <= now:
        raise ValidationError("This offer has expired. Ask the clinic for another time.")
    check_rules(
        actor=actor,
        client=hold.client,
        service=hold.service,
        therapist=hold.therapist,
        room=hold.room,
        starts_at=hold.starts_at,
        course=hold.course,
        now=now,
    )
    hold.status = Appointment.Status.BOOKED
    hold.hold_expires_at = None
    hold.status_changed_at = now
    hold.save(update_fields=["status", "hold_expires_at", "status_changed_at"])
    announce(hold, Appointment.Status.HELD, actor.audit_user)
    if hold.waitlist_entry_id is not None:
        WaitlistEntry.objects.filter(pk=hold.waitlist_entry_id).update(status=WaitlistEntry.Status.BOOKED)
    record(actor, "accept_hold", hold, as_dict(hold), request)
    confirm(hold, "booked")
    return hold


@transaction.atomic
def decline_hold(hold: Appointment, *, by: Any, request: Any = None) -> Appointment | None:
    """The client does not want the offered time: it goes to the next client in line (returned, or None)."""
    actor = actor_for(by, hold.clinic_id)
    hold = locked(Appointment.objects.select_related("client", "service", "therapist", "room")).get(pk=hold.pk)
    if actor.client is not None and actor.client.pk != hold.client_id:
        raise PermissionDenied("This offer is for someone else.")
    if hold.status != Appointment.Status.HELD:
        raise ValidationError("This offer is no longer open.")
    hold.status = Appointment.Status.DECLINED
    hold.status_changed_at = timezone.now()
    hold.save(update_fields=["status", "status_changed_at"])
    announce(hold, Appointment.Status.HELD, actor.audit_user)
    if hold.waitlist_entry_id is not None:
        WaitlistEntry.objects.filter(pk=hold.waitlist_entry_id).update(status=WaitlistEntry.Status.WAITING)
    record(actor, "decline_hold", hold, as_dict(hold), request)
    if hold.starts_at <= timezone.now():
        return None
    return offer_slot(therapist=hold.therapist, room=hold.room, service=hold.service, starts_at=hold.starts_at)


def release_expired_holds(now: datetime | None = None) -> list[Appointment]:
    """Expire every hold that has run out and offer each freed time to the next client in line."""
    now = now or timezone.now()
    with transaction.atomic():
        released = release_expired(Q(), now=now)
    for hold in released:
        if hold.starts_at > timezone.now():
            offer_slot(therapist=hold.therapist, room=hold.room, service=hold.service, starts_at=hold.starts_at)
    return released


__all__ = [
    "HOLD_MINUTES",
    "accept_hold",
    "decline_hold",
    "join_waitlist",
    "leave_waitlist",
    "matching_entries",
    "offer_slot",
    "place_hold",
    "release_expired_holds",
]
