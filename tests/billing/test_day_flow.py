"""Billing hears the real day: the scheduler's own transition service and cancel flow (not a test double of the
signal) raise the invoice for a completed visit and the policy's fees, in the transaction that changed the status."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from backcare.billing.models import Invoice
from backcare.scheduling.models import Appointment
from backcare.scheduling.services import booking, status


def _appointment(billing, starts: dt.datetime) -> Appointment:
    ends = starts + dt.timedelta(hours=1)
    return Appointment.objects.create(
        clinic=billing.clinic,
        client=billing.client,
        therapist=billing.therapist,
        room=billing.room,
        service=billing.service,
        starts_at=starts,
        ends_at=ends,
        busy_from=starts,
        busy_until=ends,
    )


@pytest.mark.django_db
def test_a_visit_completed_through_the_day_is_invoiced_once(billing):
    visit = _appointment(billing, timezone.now() - dt.timedelta(minutes=10))
    for new in ("arrived", "in_treatment", "completed"):
        visit = status.change_status(visit, new, by=billing.therapist.user)
    invoice = Invoice.objects.get(appointment=visit)
    assert (invoice.source, invoice.total) == ("session", 6000)
    assert Invoice.objects.filter(appointment=visit).count() == 1


@pytest.mark.django_db
def test_a_no_show_and_a_late_cancellation_raise_the_policy_fees(billing):
    absent = _appointment(billing, timezone.now() - dt.timedelta(minutes=20))
    status.change_status(absent, "no_show", by=billing.front_desk.user)
    assert Invoice.objects.get(appointment=absent).total == 4000

    soon = _appointment(billing, timezone.now() + dt.timedelta(hours=3))  # inside the 24-hour window
    booking.cancel_appointment(soon, by=billing.front_desk.user, reason="Unwell", late_reason="Rang this morning")
    soon.refresh_from_db()
    assert soon.status == "late_cancelled"
    fee = Invoice.objects.get(appointment=soon)
    assert (fee.source, fee.total) == ("late_cancellation", 2500)

    early = _appointment(billing, timezone.now() + dt.timedelta(days=3))
    booking.cancel_appointment(early, by=billing.front_desk.user, reason="Holiday")
    assert not Invoice.objects.filter(appointment=early).exists()
