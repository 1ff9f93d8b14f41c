"""Billing hears the scheduler and the clinic: a completed session is billed, a late cancellation or a no-show raises
the clinic's fee, an ended course closes its package. Each receiver runs inside the transaction that made the change,
so the two commit or roll back together. Billing also fills the clinic's extension points (`backcare.clinic
.extensions`): the fee policy beside the cancellation window on the settings page, the package on the course page;
and states the fee policy in the scheduler's reminders."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from backcare.billing import services
from backcare.billing.models import Invoice
from backcare.clinic.signals import course_ended
from backcare.scheduling.signals import appointment_status_changed, reminder_policy


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


@receiver(course_ended, dispatch_uid="billing.course_ended")
def course_closed(sender: Any, *, course: Any, staff: Any, request: Any = None, **kwargs: Any) -> None:
    services.close_course_packages(course, by=staff.user, request=request)


@receiver(reminder_policy, dispatch_uid="billing.reminder_policy")
def reminder_fees(sender: Any, *, appointment: Any, **kwargs: Any) -> list[str]:
    return services.policy_text(appointment.clinic)
