"""Billing hears the scheduler: a completed session is billed, a late cancellation or a no-show raises the clinic's
fee. The receiver runs inside the transaction that changed the status, so the two commit or roll back together."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from backcare.billing import services
from backcare.billing.models import Invoice
from backcare.scheduling.signals import appointment_status_changed


@receiver(appointment_status_changed, dispatch_uid="billing.status_changed")
def status_changed(sender: Any, *, appointment: Any, old: str, new: str, by: Any = None, **kwargs: Any) -> None:
    if new == old:
        return
    if new == "completed":
        services.bill_session(appointment, by=by)
    elif new == "late_cancelled":
        services.raise_fee(appointment, Invoice.Source.LATE_CANCELLATION, by=by)
    elif new == "no_show":
        services.raise_fee(appointment, Invoice.Source.NO_SHOW, by=by)
