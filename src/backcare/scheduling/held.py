"""Appointments on hold: booked future appointments of clients whose latest screening stops treatment (postpone or
a referral). The front desk and the therapist see them flagged on the dashboard and call the client; their
reminders are held (neither queued nor, if queued before the screening turned, sent)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone

from backcare.clinic.services.screening import BLOCKING, latest_screening
from backcare.scheduling.models import Appointment

HELD_SHOWN = 50


def _latest_decision() -> Subquery:
    from backcare.clinic.models import Screening

    return Subquery(
        Screening.objects.filter(client=OuterRef("client")).order_by("-created_at", "-id").values("decision")[:1]
    )


def held_appointments(clinic: Any, now: datetime | None = None) -> QuerySet[Appointment]:
    """Booked future appointments of the clinic whose client's latest screening stops treatment."""
    now = now or timezone.now()
    return (
        Appointment.objects.filter(clinic=clinic, status=Appointment.Status.BOOKED, starts_at__gt=now)
        .annotate(latest_decision=_latest_decision())
        .filter(latest_decision__in=BLOCKING)
        .select_related("client", "therapist", "service")
        .order_by("starts_at", "pk")
    )


def dashboard_section(sender: Any, staff: Any, **kwargs: Any) -> dict[str, Any]:
    """The dashboard's list of appointments on hold (the clinic's, or a therapist's own): a receiver of
    `backcare.clinic.selectors.dashboard.dashboard_sections`, connected in `SchedulingConfig.ready`."""
    from backcare.clinic.models import Role

    held = held_appointments(staff.clinic)
    if staff.role == Role.THERAPIST:
        held = held.filter(therapist=staff)
    return {"held": list(held[:HELD_SHOWN])}


def is_held(appointment: Appointment) -> bool:
    """Whether this appointment's client's latest screening stops treatment."""
    latest = latest_screening(appointment.client)
    return latest is not None and latest.decision in BLOCKING


__all__ = ["dashboard_section", "held_appointments", "is_held"]
