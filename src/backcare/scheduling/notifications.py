"""Emails to clients about their appointments: confirmations with a calendar invitation, reminders, and offers of a
time held for a waitlisted client. Each is put in the outbox (`backcare.common.outbox`) inside the transaction of
the change that causes it, so a booking that rolls back sends nothing and a mail server that is down loses nothing:

    queue_confirmation(appointment, "booked")   # in the booking's transaction (placement.confirm does it)
    queue_offer(hold)                           # in the hold's transaction (placement.place does it)
    queue_reminder(appointment)                 # from `send_reminders`

Each email is keyed on (appointment, kind, start time, calendar sequence), so the same event is queued once: the
outbox row's idempotency key, and the `ReminderLog` row written beside it (the appointment's history of emails).
Just before the outbox sends one, `still_true` asks whether it still describes the appointment: a confirmation of a
booking that was moved or cancelled meanwhile, the reminder of an old time, or the offer of a hold that ran out is
not sent (the row is marked cancelled with the reason).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from backcare.common import outbox
from backcare.common.models import OutboundMessage
from backcare.scheduling import calendars
from backcare.scheduling.held import is_held
from backcare.scheduling.models import CANCELLED_STATUSES, Appointment, ReminderLog
from backcare.scheduling.services.availability import clinic_zone

logger = logging.getLogger(__name__)

CONFIRMATION_KINDS = (ReminderLog.Kind.BOOKED, ReminderLog.Kind.RESCHEDULED, ReminderLog.Kind.CANCELLED)
# The statuses an appointment must still have for each kind of email to make sense (a cancellation inside the
# clinic's window is `late_cancelled`, and its client is told as any other).
EXPECTED_STATUS: dict[str, tuple[str, ...]] = {
    ReminderLog.Kind.REMINDER: (Appointment.Status.BOOKED,),
    ReminderLog.Kind.BOOKED: (Appointment.Status.BOOKED,),
    ReminderLog.Kind.RESCHEDULED: (Appointment.Status.BOOKED,),
    ReminderLog.Kind.CANCELLED: CANCELLED_STATUSES,
    ReminderLog.Kind.OFFERED: (Appointment.Status.HELD,),
}


# --- words -----------------------------------------------------------------------------------------------------------


def local_when(moment: datetime, clinic: Any) -> dict[str, str]:
    """A moment in the clinic's zone, in words: "Monday 27 October 2025", "10:00 GMT"."""
    local = moment.astimezone(clinic_zone(clinic))
    return {
        "date": f"{local:%A} {local.day} {local:%B %Y}",
        "short_date": f"{local:%a} {local.day} {local:%b}",
        "time": f"{local:%H:%M} {local.tzname()}",
        "clock": f"{local:%H:%M}",
    }


def email_context(appointment: Appointment, **extra: Any) -> dict[str, Any]:
    clinic = appointment.clinic
    return {
        "appointment": appointment,
        "client": appointment.client,
        "clinic": clinic,
        "service": appointment.service,
        "therapist": appointment.therapist,
        "start": local_when(appointment.starts_at, clinic),
        "end": local_when(appointment.ends_at, clinic),
        "location": calendars.clinic_location(clinic),
        **extra,
    }


def render_email(name: str, context: dict[str, Any]) -> tuple[str, str]:
    subject = render_to_string(f"scheduling/email/{name}_subject.txt", context)
    body = render_to_string(f"scheduling/email/{name}.txt", context)
    return " ".join(subject.split()), body.strip() + "\n"


# --- into the outbox --------------------------------------------------------------------------------------------


def outbox_key(appointment: Appointment, kind: str, sequence: int = 0) -> str:
    """The event an email is about: this appointment, this kind, at this start time, at this calendar sequence."""
    return f"appointment-{appointment.pk}-{kind}-{appointment.starts_at.astimezone(UTC):%Y%m%dT%H%M%SZ}-{sequence}"


def queue(
    appointment: Appointment,
    kind: str,
    *,
    subject: str,
    body: str,
    sequence: int = 0,
    attachments: tuple[outbox.Attachment, ...] = (),
) -> OutboundMessage | None:
    """Put one email about this appointment in the outbox, in the caller's transaction, with its `ReminderLog`
    row. None when the client has no email address or this email was queued already."""
    recipient = appointment.client.email
    if not recipient:
        return None
    clinic = appointment.clinic
    message, created = outbox.enqueue_email(
        key=outbox_key(appointment, kind, sequence),
        kind=f"scheduling.{kind}",
        to=[recipient],
        subject=subject,
        body=body,
        attachments=attachments,
        reply_to=[clinic.email] if clinic.email else [],
        clinic_id=appointment.clinic_id,
        client_id=appointment.client_id,
        context={
            "appointment": appointment.pk,
            "kind": str(kind),
            "starts_at": appointment.starts_at.isoformat(),
            "sequence": sequence,
        },
    )
    if not created:
        return None
    ReminderLog.objects.get_or_create(
        appointment=appointment,
        kind=kind,
        starts_at=appointment.starts_at,
        sequence=sequence,
        defaults={"status": ReminderLog.Status.QUEUED, "recipient": recipient, "attempts": 0, "message": message},
    )
    return message


def still_true(message: OutboundMessage) -> str:
    """Asked by the outbox just before it sends a scheduling email: why it must not go now (or "" to send it)."""
    context = message.context
    fresh = Appointment.objects.select_related("client").filter(pk=context.get("appointment")).first()
    if fresh is None:
        return "the appointment no longer exists"
    kind = ReminderLog.Kind(context["kind"])
    if kind == ReminderLog.Kind.OFFERED:
        return _offer_still_valid(fresh)
    if fresh.status not in EXPECTED_STATUS[kind]:
        return f"the appointment is {fresh.get_status_display().lower()} now"
    if fresh.starts_at != parse_datetime(context["starts_at"]):
        return "the appointment was moved; its new time has its own email"
    if kind == ReminderLog.Kind.REMINDER:
        if fresh.starts_at <= timezone.now():
            return "the appointment has started"
        if is_held(fresh):
            return "the client's latest screening stops treatment: the reminder is held"
    elif calendars.sequence_of(fresh) != context["sequence"]:
        return "the appointment was changed again; a newer confirmation replaces this one"
    if not fresh.client.email:
        return "the client has no email address"
    return ""


# --- confirmations ---------------------------------------------------------------------------------------------------

SUBJECTS = {
    ReminderLog.Kind.BOOKED: "confirmation_booked",
    ReminderLog.Kind.RESCHEDULED: "confirmation_rescheduled",
    ReminderLog.Kind.CANCELLED: "confirmation_cancelled",
}


def confirmation_parts(appointment: Appointment, kind: str, sequence: int) -> tuple[str, str, outbox.Attachment]:
    """Subject, body and the iTIP .ics (METHOD:REQUEST, or CANCEL for a cancellation) of a confirmation."""
    cancelled = kind == ReminderLog.Kind.CANCELLED
    method = "CANCEL" if cancelled else "REQUEST"
    context = email_context(appointment, kind=kind, cancelled=cancelled)
    subject, body = render_email(SUBJECTS[ReminderLog.Kind(kind)], context)
    ics = calendars.invitation_ics(appointment, method=method, sequence=sequence, attendee=appointment.client.email)
    attachment = outbox.Attachment("appointment.ics", ics.decode("utf-8"), "text/calendar", (("method", method),))
    return subject, body, attachment


def queue_confirmation(appointment: Appointment, kind: str) -> OutboundMessage | None:
    """Queue the email telling the client that their appointment was booked, moved or cancelled, with an .ics
    attachment (one UID per appointment, SEQUENCE counting its changes). Call it inside the change's transaction,
    after its audit event (the sequence counts it). None when there is nothing to send (no email address, queued
    already, or the appointment is not in that state). A broken template is logged, and never undoes or breaks
    the booking."""
    kind = ReminderLog.Kind(kind)
    if kind not in CONFIRMATION_KINDS:
        raise ValueError(f"{kind!r} is not a confirmation")
    if not appointment.client.email or appointment.status not in EXPECTED_STATUS[kind]:
        return None
    sequence = calendars.sequence_of(appointment)
    try:
        subject, body, ics = confirmation_parts(appointment, kind, sequence)
    except Exception:  # a broken template must not undo or break the booking
        logger.exception("the %s confirmation for appointment %s could not be made", kind, appointment.pk)
        return None
    return queue(appointment, kind, subject=subject, body=body, sequence=sequence, attachments=(ics,))


# --- waitlist offers -------------------------------------------------------------------------------------------------


def portal_link() -> str:
    """Where the client accepts or declines: the portal's appointments page, absolute when the site's address is
    configured (`BACKCARE["SITE_URL"]`, as invitation links use), else the path alone."""
    path = reverse("portal_appointments")
    base = str(getattr(settings, "BACKCARE", {}).get("SITE_URL", "") or "").rstrip("/")
    return f"{base}{path}"


def _offer_still_valid(fresh: Appointment) -> str:
    if fresh.status != Appointment.Status.HELD:
        return f"the offer is {fresh.get_status_display().lower()} now"
    if fresh.hold_expires_at is None or fresh.hold_expires_at <= timezone.now():
        return "the offer has run out"
    if not fresh.client.email:
        return "the client has no email address"
    return ""


def offer_parts(hold: Appointment) -> tuple[str, str]:
    assert hold.hold_expires_at is not None
    held_for = max(round((hold.hold_expires_at - hold.created_at).total_seconds() / 60), 1)
    link = portal_link()
    context = email_context(
        hold,
        held_until=local_when(hold.hold_expires_at, hold.clinic),
        held_for=held_for,
        link=link,
        link_is_absolute=link.startswith(("http://", "https://")),
        same_day=local_when(hold.hold_expires_at, hold.clinic)["date"]
        == local_when(timezone.now(), hold.clinic)["date"],
    )
    return render_email("offer", context)


def queue_offer(hold: Appointment) -> OutboundMessage | None:
    """Queue the email telling the client that a time they wait for is held for them, once per hold, inside the
    hold's transaction (`placement.place` does it): the time, the therapist, until when it is held and where to
    accept or decline it. No calendar file: nothing is booked until the client accepts."""
    if not hold.client.email:
        return None
    try:
        subject, body = offer_parts(hold)
    except Exception:  # a broken template must not break the waitlist
        logger.exception("the offer email for hold %s could not be made", hold.pk)
        return None
    return queue(hold, ReminderLog.Kind.OFFERED, subject=subject, body=body)


def queued(appointment: Appointment, kind: str) -> list[OutboundMessage]:
    """The outbox rows of this appointment's emails of one kind, oldest first (for the pages and the tests)."""
    return list(
        OutboundMessage.objects.filter(reminderlog__appointment=appointment, reminderlog__kind=kind).order_by("pk")
    )


__all__ = [
    "CONFIRMATION_KINDS",
    "confirmation_parts",
    "local_when",
    "offer_parts",
    "outbox_key",
    "portal_link",
    "queue",
    "queue_confirmation",
    "queue_offer",
    "queued",
    "still_true",
]
