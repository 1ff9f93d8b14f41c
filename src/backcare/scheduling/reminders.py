"""Appointment reminders by email, queued by `backcare manage send_reminders [--hours-ahead 24]` from cron or a
systemd timer (every 15 minutes, say), and sent by the outbox's worker (`backcare.common.outbox`).

Each run queues a reminder for every client whose booked appointment starts within the next `hours_ahead` hours and
who has an email address. A reminder is for one start time: it is keyed on appointment, kind and start (the outbox
row's idempotency key and the `ReminderLog` row beside it), so

- a reminder is queued once, and sent once, even when two runs overlap;
- a cancelled appointment is not reminded, and a moved one is reminded for its new time, never the old one (the
  outbox asks `notifications.still_true` just before it sends);
- a failed send is tried again by the outbox with a backoff, and shown to the owner when it gives up;
- a reminder is held while the client's latest screening stops treatment (postpone or a referral): the front desk
  and the therapist see the appointment flagged and call the client instead (`backcare.scheduling.held`).

Times are written in the clinic's zone with its abbreviation ("10:00 GMT").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from backcare.scheduling.held import is_held
from backcare.scheduling.models import Appointment, ReminderLog
from backcare.scheduling.notifications import email_context, queue, render_email
from backcare.scheduling.signals import reminder_policy

DEFAULT_HOURS_AHEAD = 24
KIND = ReminderLog.Kind.REMINDER


@dataclass
class ReminderRun:
    queued: int = 0
    skipped: int = 0
    held: int = 0

    def summary(self) -> str:
        text = f"{self.queued} reminder(s) queued for sending, {self.skipped} skipped (queued by another run)"
        if self.held:
            text += f"; {self.held} held because the client's latest screening stops treatment"
        return text


def due(now: datetime, hours_ahead: float) -> list[Appointment]:
    """Booked appointments starting within the window whose clients have an email and that have no reminder for
    their current start time yet."""
    done = ReminderLog.objects.filter(appointment=OuterRef("pk"), kind=KIND, starts_at=OuterRef("starts_at"))
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


def reminder_parts(appointment: Appointment) -> tuple[str, str]:
    context = email_context(appointment, hours=appointment.clinic.cancellation_hours)
    # The policies of the apps above the scheduler (billing's fees), stated after the cancellation window.
    context["policy"] = [
        line for _, lines in reminder_policy.send(sender=Appointment, appointment=appointment) for line in lines or ()
    ]
    return render_email("reminder", context)


def queue_due_reminders(*, hours_ahead: float = DEFAULT_HOURS_AHEAD, now: datetime | None = None) -> ReminderRun:
    """Queue every reminder that is due, each in its own transaction. Safe to run as often as you like, and
    several at once."""
    now = now or timezone.now()
    run = ReminderRun()
    for appointment in due(now, hours_ahead):
        if is_held(appointment):
            run.held += 1
            continue
        subject, body = reminder_parts(appointment)
        with transaction.atomic():
            if queue(appointment, KIND, subject=subject, body=body) is None:
                run.skipped += 1
            else:
                run.queued += 1
    return run


__all__ = ["DEFAULT_HOURS_AHEAD", "ReminderRun", "due", "queue_due_reminders", "reminder_parts"]
