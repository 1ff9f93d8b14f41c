"""Emails to clients about their appointments: confirmations with a calendar invitation, offers of a time held for
a waitlisted client, and the claim-send-mark protocol that reminders share, so the same email never goes twice.

The protocol, for every email (see `ReminderLog`):
1. claim: create the log row (appointment, kind, start time, sequence) in its own transaction, or take back a
   FAILED row that has attempts left; the unique constraint lets exactly one process win;
2. send through Django's email framework (outside any transaction);
3. mark the row SENT, or FAILED with the error (a later `send_reminders` run tries it again, up to MAX_ATTEMPTS).
A process that dies between 1 and 3 leaves the row SENDING; it is never sent again (at most once, never twice).

`send_confirmation(appointment, kind)` is meant to run after the booking's transaction has committed:

    transaction.on_commit(lambda: notifications.send_confirmation(appointment, "booked"))

It never raises for a mail failure: the booking stands, the failure is logged and retried.

`send_offer(hold)` runs the same way after a waitlist hold is placed (`waitlist.place_hold`): one email per hold,
saying the time, the therapist, until when it is held and where to accept or decline it. No calendar file: nothing is
booked until the client accepts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.mime.text import MIMEText
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from backcare.scheduling import calendars
from backcare.scheduling.models import Appointment, ReminderLog
from backcare.scheduling.services.availability import clinic_zone

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
CONFIRMATION_KINDS = (ReminderLog.Kind.BOOKED, ReminderLog.Kind.RESCHEDULED, ReminderLog.Kind.CANCELLED)
# The status an appointment must still have for each kind of email to make sense.
EXPECTED_STATUS = {
    ReminderLog.Kind.REMINDER: Appointment.Status.BOOKED,
    ReminderLog.Kind.BOOKED: Appointment.Status.BOOKED,
    ReminderLog.Kind.RESCHEDULED: Appointment.Status.BOOKED,
    ReminderLog.Kind.CANCELLED: Appointment.Status.CANCELLED,
    ReminderLog.Kind.OFFERED: Appointment.Status.HELD,
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


def ics_part(ics: bytes, method: str) -> MIMEText:
    """An iTIP attachment: text/calendar with its method, as calendar programs expect."""
    part = MIMEText(ics.decode("utf-8"), "calendar", "utf-8")
    part.set_param("method", method)
    part.add_header("Content-Disposition", "attachment", filename="appointment.ics")
    return part


# --- claim, send, mark -----------------------------------------------------------------------------------------------


def claim(
    appointment: Appointment,
    kind: str,
    *,
    sequence: int = 0,
    now: datetime | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    still_valid: Callable[[Appointment], str] | None = None,
) -> ReminderLog | None:
    """Claim the right to send this email, in its own transaction. None when someone else has it or had it.

    `still_valid(fresh_appointment)` is asked inside the claiming transaction; a non-empty answer (the reason) marks
    the row SKIPPED instead, and None is returned."""
    now = now or timezone.now()
    key = {"appointment_id": appointment.pk, "kind": kind, "starts_at": appointment.starts_at, "sequence": sequence}
    recipient = appointment.client.email
    row: ReminderLog | None = None
    try:
        with transaction.atomic():
            row = ReminderLog.objects.create(
                **key, status=ReminderLog.Status.SENDING, recipient=recipient, attempts=1, claimed_at=now
            )
            return _recheck(row, still_valid)
    except IntegrityError:
        pass
    with transaction.atomic():
        existing = ReminderLog.objects.filter(**key).first()
        if existing is None or existing.status != ReminderLog.Status.FAILED or existing.attempts >= max_attempts:
            return None
        taken = ReminderLog.objects.filter(
            pk=existing.pk, status=ReminderLog.Status.FAILED, attempts=existing.attempts
        ).update(status=ReminderLog.Status.SENDING, attempts=F("attempts") + 1, claimed_at=now, recipient=recipient)
        if not taken:
            return None
        existing.refresh_from_db()
        return _recheck(existing, still_valid)


def _recheck(row: ReminderLog, still_valid: Callable[[Appointment], str] | None) -> ReminderLog | None:
    if still_valid is None:
        return row
    fresh = Appointment.objects.select_related("client").get(pk=row.appointment_id)
    reason = still_valid(fresh)
    if reason:
        ReminderLog.objects.filter(pk=row.pk).update(status=ReminderLog.Status.SKIPPED, last_error=reason)
        return None
    return row


def deliver(row: ReminderLog, message: EmailMessage) -> bool:
    """Send a claimed email and mark its row SENT or FAILED. Never raises for a mail failure."""
    try:
        message.send(fail_silently=False)
    except Exception as error:  # any failure to hand the mail over is recorded and retried
        logger.warning("email %s (%s) for appointment %s failed: %s", row.pk, row.kind, row.appointment_id, error)
        ReminderLog.objects.filter(pk=row.pk).update(
            status=ReminderLog.Status.FAILED, last_error=f"{type(error).__name__}: {error}"[:1000]
        )
        return False
    ReminderLog.objects.filter(pk=row.pk).update(status=ReminderLog.Status.SENT, sent_at=timezone.now(), last_error="")
    return True


# --- confirmations ---------------------------------------------------------------------------------------------------

SUBJECTS = {
    ReminderLog.Kind.BOOKED: "confirmation_booked",
    ReminderLog.Kind.RESCHEDULED: "confirmation_rescheduled",
    ReminderLog.Kind.CANCELLED: "confirmation_cancelled",
}


def confirmation_message(appointment: Appointment, kind: str, sequence: int) -> EmailMessage:
    cancelled = kind == ReminderLog.Kind.CANCELLED
    method = "CANCEL" if cancelled else "REQUEST"
    context = email_context(appointment, kind=kind, cancelled=cancelled)
    subject, body = render_email(SUBJECTS[ReminderLog.Kind(kind)], context)
    message = EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [appointment.client.email])
    if appointment.clinic.email:
        message.reply_to = [appointment.clinic.email]
    ics = calendars.invitation_ics(appointment, method=method, sequence=sequence, attendee=appointment.client.email)
    message.attach(ics_part(ics, method))
    return message


def _confirmation_still_valid(kind: str, starts_at: datetime, sequence: int) -> Callable[[Appointment], str]:
    def check(fresh: Appointment) -> str:
        if fresh.status != EXPECTED_STATUS[ReminderLog.Kind(kind)]:
            return f"the appointment is {fresh.get_status_display().lower()} now"
        if fresh.starts_at != starts_at or calendars.sequence_of(fresh) != sequence:
            return "the appointment was changed again; a newer confirmation replaces this one"
        if not fresh.client.email:
            return "the client has no email address"
        return ""

    return check


def send_confirmation(appointment: Appointment, kind: str) -> ReminderLog | None:
    """Email the client that their appointment was booked, moved or cancelled, with an .ics attachment
    (METHOD:REQUEST, or CANCEL for a cancellation; one UID per appointment, SEQUENCE counting its changes).

    Call it after the change has committed. Returns the log row (its status says whether it went), or None when
    there is nothing to send (no email address, the appointment has changed since, or it was sent already)."""
    kind = ReminderLog.Kind(kind)
    if kind not in CONFIRMATION_KINDS:
        raise ValueError(f"{kind!r} is not a confirmation")
    appointment = Appointment.objects.select_related("clinic", "client", "therapist", "room", "service").get(
        pk=appointment.pk
    )
    if not appointment.client.email or appointment.status != EXPECTED_STATUS[kind]:
        return None
    sequence = calendars.sequence_of(appointment)
    row = claim(
        appointment,
        kind,
        sequence=sequence,
        still_valid=_confirmation_still_valid(kind, appointment.starts_at, sequence),
    )
    if row is None:
        return None
    try:
        message = confirmation_message(appointment, kind, sequence)
    except Exception as error:  # a broken template must not undo or break the booking
        logger.exception("confirmation for appointment %s could not be made", appointment.pk)
        ReminderLog.objects.filter(pk=row.pk).update(status=ReminderLog.Status.FAILED, last_error=str(error)[:1000])
        return ReminderLog.objects.get(pk=row.pk)
    deliver(row, message)
    return ReminderLog.objects.get(pk=row.pk)


@dataclass
class RetryResult:
    sent: int = 0
    failed: int = 0
    skipped: int = 0


def retry_failed_confirmations(*, max_attempts: int = MAX_ATTEMPTS) -> RetryResult:
    """Try again the confirmations that failed, while they still describe the appointment as it is, and the offers
    that failed while their hold is still open (`send_reminders` calls this on every run)."""
    result = RetryResult()
    failed = ReminderLog.objects.filter(
        kind__in=[*CONFIRMATION_KINDS, ReminderLog.Kind.OFFERED],
        status=ReminderLog.Status.FAILED,
        attempts__lt=max_attempts,
    ).select_related("appointment__clinic", "appointment__client", "appointment__therapist", "appointment__room")
    for old in failed.select_related("appointment__service"):
        appointment = old.appointment
        offer = old.kind == ReminderLog.Kind.OFFERED
        check = _offer_still_valid if offer else _confirmation_still_valid(old.kind, old.starts_at, old.sequence)
        reason = check(appointment)
        if reason:
            ReminderLog.objects.filter(pk=old.pk, status=ReminderLog.Status.FAILED).update(
                status=ReminderLog.Status.SKIPPED, last_error=reason
            )
            result.skipped += 1
            continue
        row = claim(appointment, old.kind, sequence=old.sequence, max_attempts=max_attempts, still_valid=check)
        if row is None:
            continue
        try:
            message = offer_message(appointment) if offer else confirmation_message(appointment, old.kind, old.sequence)
        except Exception as error:  # a broken template is recorded on the row, like a failed send
            logger.exception("email for appointment %s could not be made", appointment.pk)
            ReminderLog.objects.filter(pk=row.pk).update(status=ReminderLog.Status.FAILED, last_error=str(error)[:1000])
            result.failed += 1
            continue
        if deliver(row, message):
            result.sent += 1
        else:
            result.failed += 1
    return result


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


def offer_message(hold: Appointment) -> EmailMessage:
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
    subject, body = render_email("offer", context)
    message = EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [hold.client.email])
    if hold.clinic.email:
        message.reply_to = [hold.clinic.email]
    return message


def send_offer(hold: Appointment) -> ReminderLog | None:
    """Email the client that a time they wait for is held for them, once per hold. Call it after the hold has
    committed (`waitlist.place_hold` does). Returns the log row, or None when there is nothing to send (no email
    address, the hold is no longer open, or the email was claimed already). Never raises for a mail failure."""
    hold = Appointment.objects.select_related("clinic", "client", "therapist", "room", "service").get(pk=hold.pk)
    if not hold.client.email or _offer_still_valid(hold):
        return None
    row = claim(hold, ReminderLog.Kind.OFFERED, still_valid=_offer_still_valid)
    if row is None:
        return None
    try:
        message = offer_message(hold)
    except Exception as error:  # a broken template must not break the waitlist
        logger.exception("offer email for hold %s could not be made", hold.pk)
        ReminderLog.objects.filter(pk=row.pk).update(status=ReminderLog.Status.FAILED, last_error=str(error)[:1000])
        return ReminderLog.objects.get(pk=row.pk)
    deliver(row, message)
    return ReminderLog.objects.get(pk=row.pk)


__all__ = [
    "MAX_ATTEMPTS",
    "claim",
    "deliver",
    "local_when",
    "offer_message",
    "portal_link",
    "retry_failed_confirmations",
    "send_confirmation",
    "send_offer",
]
