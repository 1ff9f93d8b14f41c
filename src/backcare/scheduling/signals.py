"""Signals the scheduler sends so that apps above it (billing) can act without scheduling importing them."""

from __future__ import annotations

from django.dispatch import Signal

# Sent inside the transaction that changed an appointment's status (so a receiver's writes commit or roll back
# with it), with sender=Appointment and the keyword arguments appointment (the Appointment, already saved),
# old (str, the status before), new (str, the status now) and by (the User who changed it, or None).
appointment_status_changed = Signal()

# Sent while a reminder email is composed, with sender=Appointment and the keyword argument appointment. Each
# receiver returns a list of sentences the reminder states after the cancellation window (billing: the clinic's
# late-cancellation and no-show fees), or an empty list.
reminder_policy = Signal()
