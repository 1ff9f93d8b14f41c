"""Appointment reminders by email, sent by `backcare manage send_reminders [--hours-ahead 24]` from cron or a
systemd timer (every 15 minutes, say).

Each run reminds every client whose booked appointment starts within the next `hours_ahead` hours and who has an
email address. A reminder is for one start time: the log row is keyed on appointment, kind and start, so

- a reminder is never sent twice, even when two runs overlap (the row is claimed before sending, see
  `backcare.scheduling.notifications`);
- a cancelled appointment is not reminded, and a moved one is reminded for its new time, never the old one;
- a failed send is tried again by the next run, at most `MAX_ATTEMPTS` times in all;
- a reminder is held while the client's latest screening stops treatment (postpone or a referral): the front desk
  and the therapist see the appointment flagged and call the client instead (`held_appointments`).

Times are written in the clinic's zone with its abbreviation ("10:00 GMT").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from backcare.scheduling.models import Appointment, ReminderLog
from backcare.scheduling.notifications import MAX_ATTEMPTS, claim, deliver, email_context, render_email

DEFAULT_HOURS_AHEAD = 24
KIND = ReminderLog.Kind.REMINDER
STUCK_AFTER = timedelta(hours=1)


@dataclass
class ReminderRun:
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    confirmations_sent: int = 0
    confirmations_failed: int = 0
    stuck: int = 0
    held: int = 0

    def summary(self) -> str:
        text = (
            f"{self.sent} reminder(s) sent, {self.failed} failed, "
            f"{self.skipped} skipped (sent by another run, or no longer due)"
        )
        if self.held:
            text += f"; {self.held} held because the client's latest screening stops treatment"
        if self.confirmations_sent or self.confirmations_failed:
            text += f"; {self.confirmations_sent} confirmation(s) sent again, {self.confirmations_failed} failed"
        if self.stuck:
            text += (
                f"; {self.stuck} email(s) were being sent by a run that stopped half-way more than an hour ago: "
                "they are not sent again (they may have gone); see ReminderLog rows with status 'sending'"
            )
        return text


BLOCKING = ("postpone", "refer_urgent", "refer_emergency")


def _latest_decision() -> Subquery:
    from backcare.clinic.models import Screening

    return Subquery(
        Screening.objects.filter(client=OuterRef("client")).order_by("-created_at", "-id").values("decision")[:1]
    )


def held_appointments(clinic: Any, now: datetime | None = None) -> QuerySet[Appointment]:
    """Booked future appointments of clients whose latest screening stops treatment: flagged to the front desk and
    the therapist, their reminders held."""
    now = now or timezone.now()
    return (
        Appointment.objects.filter(clinic=clinic, status=Appointment.Status.BOOKED, starts_at__gt=now)
        .annotate(latest_decision=_latest_decision())
        .filter(latest_decision__in=BLOCKING)
        .select_related("client", "therapist", "service")
        .order_by("starts_at", "pk")
    )


def _held(appointment: Appointment) -> bool:
    from backcare.clinic.services.screening import latest_screening

    latest = latest_screening(appointment.client)
    return latest is not None and latest.decision in BLOCKING


def due(now: datetime, hours_ahead: float, max_attempts: int = MAX_ATTEMPTS) -> list[Appointment]:
    """Booked appointments starting within the window whose clients have an email and that have no reminder for
    their current start time yet (or only failed ones with attempts left)."""
    done = ReminderLog.objects.filter(appointment=OuterRef("pk"), kind=KIND, starts_at=OuterRef("starts_at")).filter(
        ~Q(status=ReminderLog.Status.FAILED) | Q(attempts__gte=max_attempts)
    )
    return list(
        Appointment.objects.filter(
            status=Appointment.Status.BOOKED,
            starts_at__gt=now,
            starts_at__lte=now + timedelta(hours=hours_ahead),
        )
        .exclude(client__email="")
        .filter(~Exists(done))
        .select_related("clinic", "client", "therapist", "room", "service")
        .order_by("starts_at", "pk")
    )


def _still_due(starts_at: datetime, now: datetime) -> Callable[[Appointment], str]:
    def check(fresh: Appointment) -> str:
        if fresh.status != Appointment.Status.BOOKED:
            return f"the appointment is {fresh.get_status_display().lower()} now"
        if fresh.starts_at != starts_at:
            return "the appointment was moved; its new time has its own reminder"
        if fresh.starts_at <= now:
            return "the appointment has started"
        if not fresh.client.email:
            return "the client has no email address"
        if _held(fresh):
            return "the client's latest screening stops treatment: the reminder is held"
        return ""

    return check


def reminder_message(appointment: Appointment) -> EmailMessage:
    context = email_context(appointment, hours=appointment.clinic.cancellation_hours)
    subject, body = render_email("reminder", context)
    message = EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [appointment.client.email])
    if appointment.clinic.email:
        message.reply_to = [appointment.clinic.email]
    return message


def send_due_reminders(
    *,
    hours_ahead: float = DEFAULT_HOURS_AHEAD,
    now: datetime | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    retry_confirmations: bool = True,
) -> ReminderRun:
    """Send every reminder that is due. Safe to run as often as you like, and several at once."""
    now = now or timezone.now()
    run = ReminderRun()
    for appointment in due(now, hours_ahead, max_attempts):
        if _held(appointment):
            run.held += 1
            continue
        row = claim(
            appointment,
            KIND,
            now=now,
            max_attempts=max_attempts,
            still_valid=_still_due(appointment.starts_at, now),
        )
        if row is None:
            run.skipped += 1
            continue
        if deliver(row, reminder_message(appointment)):
            run.sent += 1
        else:
            run.failed += 1
    if retry_confirmations:
        from backcare.scheduling.notifications import retry_failed_confirmations

        again = retry_failed_confirmations(max_attempts=max_attempts)
        run.confirmations_sent, run.confirmations_failed = again.sent, again.failed
    run.stuck = ReminderLog.objects.filter(
        status=ReminderLog.Status.SENDING, claimed_at__lt=now - STUCK_AFTER, starts_at__gt=now
    ).count()
    return run


__all__ = ["DEFAULT_HOURS_AHEAD", "ReminderRun", "due", "reminder_message", "send_due_reminders"]
