"""Sending the scheduler's status signal as the day's transition service does."""

from __future__ import annotations

from typing import Any

from django.db import transaction


def change_status(appointment: Any, new: str, by: Any) -> Any:
    """What the day helper's transition service does: save the status, send the signal in the same transaction."""
    from backcare.scheduling.models import Appointment
    from backcare.scheduling.signals import appointment_status_changed

    with transaction.atomic():
        old = appointment.status
        Appointment.objects.filter(pk=appointment.pk).update(status=new)
        appointment.refresh_from_db()
        appointment_status_changed.send(
            sender=Appointment, appointment=appointment, old=old, new=new, by=getattr(by, "user", by)
        )
    return appointment
