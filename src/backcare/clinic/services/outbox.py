"""The owner's view of the clinic's outbox (`backcare.common.outbox`): the emails waiting, being sent and given
up on, and a retry. Who sees what: only the owner, and never a message's body (a body may hold a sign-in link, or
say more about a client than the owner needs to see to get it sent): what it is, to whom, its subject, its attempts
and the mail server's last answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import Http404
from django.utils import timezone

from backcare.clinic import audit
from backcare.clinic.models import Client, StaffMember
from backcare.common import outbox
from backcare.common.models import OutboundMessage

Status = OutboundMessage.Status
OPEN = (Status.FAILED, Status.PENDING, Status.SENDING)
SHOWN = 200
KINDS = {
    "clinic.invitation": "Portal invitation",
    "scheduling.booked": "Booking confirmation",
    "scheduling.rescheduled": "Change confirmation",
    "scheduling.cancelled": "Cancellation confirmation",
    "scheduling.reminder": "Appointment reminder",
    "scheduling.offered": "Waitlist offer",
}
# The columns the page may read: never a body, an attachment or the context.
COLUMNS = (
    "pk",
    "kind",
    "to",
    "subject",
    "status",
    "attempts",
    "max_attempts",
    "next_attempt_at",
    "last_error",
    "created_at",
    "client_id",
)


@dataclass
class OutboxView:
    messages: list[dict[str, Any]]
    counts: dict[str, int]
    sent_last_week: int
    more: bool


def clinic_messages(staff: StaffMember) -> QuerySet[OutboundMessage]:
    return OutboundMessage.objects.filter(clinic_id=staff.clinic_id)


def failure_count(staff: StaffMember) -> int:
    """Emails of this clinic that failed for good (for the owner's dashboard)."""
    return clinic_messages(staff).filter(status=Status.FAILED).count()


def open_messages(staff: StaffMember) -> OutboxView:
    """The clinic's failed, waiting and in-flight emails (failed first, then by age), without their bodies."""
    rows = clinic_messages(staff)
    counts = {s: 0 for s in OPEN} | dict(
        rows.filter(status__in=OPEN).values_list("status").annotate(n=Count("id")).order_by()
    )
    order = {Status.FAILED: 0, Status.PENDING: 1, Status.SENDING: 2}
    listed = list(rows.filter(status__in=OPEN).order_by("-created_at", "-pk").values(*COLUMNS)[: SHOWN + 1])
    listed.sort(key=lambda m: order[m["status"]])
    for m in listed:
        m["what"] = KINDS.get(m["kind"], m["kind"])
        m["status_label"] = Status(m["status"]).label
        m["to"] = ", ".join(m["to"])
    week_ago = timezone.now() - timedelta(days=7)
    return OutboxView(
        messages=listed[:SHOWN],
        counts={str(k): v for k, v in counts.items()},
        sent_last_week=rows.filter(status=Status.SENT, sent_at__gte=week_ago).count(),
        more=len(listed) > SHOWN,
    )


@transaction.atomic
def retry_message(pk: int, *, staff: StaffMember, request: Any = None) -> OutboundMessage:
    """The owner asks for a failed or waiting email to be tried again now, with a fresh set of attempts."""
    message = clinic_messages(staff).filter(pk=pk).first()
    if message is None:
        raise Http404("No such email in this clinic's outbox.")
    if not outbox.retry(message):
        raise ValidationError(f"This email is {message.get_status_display().lower()}: there is nothing to retry.")
    client = (
        Client.objects.filter(pk=message.client_id, clinic_id=staff.clinic_id).first()
        if message.client_id is not None
        else None
    )
    audit.record(
        staff.user,
        "outbox_retry",
        client=client,
        obj=message,
        detail={"kind": message.kind, "status_before": message.status, "attempts_before": message.attempts},
        request=request,
    )
    return message


__all__ = ["KINDS", "OutboxView", "failure_count", "open_messages", "retry_message"]
