"""Financial records outlive the clinical record: a client with a paid invoice whose clinical retention has ended is
erased clinically (retention job after an erasure request, and the owner's deletion past retention) while the
invoices, credit notes, payments and packages stay for BACKCARE_FINANCIAL_RETENTION_YEARS from the last of them,
with the client row reduced to what the invoices need (docs/billing.md). Run on SQLite and PostgreSQL, whose ledger
triggers refuse any UPDATE or DELETE of those rows."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from backcare import datarights  # noqa: F401  # the package the erasure lives in
from backcare.billing.models import Invoice, Package, Payment
from backcare.clinic.models import AuditEvent, Client, Course, Intake, Screening, TreatmentSession
from backcare.datarights import erasure
from backcare.scheduling.models import Appointment
from matrix_support import build_world


@pytest.fixture
def billed(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BACKCARE = {**settings.BACKCARE, "RETENTION_YEARS": 0, "FINANCIAL_RETENTION_YEARS": 10}
    world = build_world(billing=True)
    world.clinic.retention_years = 1
    world.clinic.save()
    x = world.x.client
    from backcare.billing import services

    services.take_payment(x, services.balance(x), "transfer", key="settle-x", by=world.front_desk.user)
    return world


def clinical(client_pk):
    return {
        "intakes": Intake.objects.filter(client_id=client_pk).count(),
        "screenings": Screening.objects.filter(client_id=client_pk).count(),
        "courses": Course.objects.filter(client_id=client_pk).count(),
        "sessions": TreatmentSession.objects.filter(course__client_id=client_pk).count(),
    }


def ledger(client_pk):
    return (
        Invoice.objects.filter(client_id=client_pk).count(),
        Payment.objects.filter(client_id=client_pk).count(),
        Package.objects.filter(client_id=client_pk).count(),
    )


def test_retention_erases_the_clinical_record_and_keeps_the_paid_invoices(billed):
    x, owner = billed.x.client, billed.owner.user
    books = ledger(x.pk)
    assert books[0] >= 3 and books[1] >= 2
    erasure.confirm_erasure(erasure.request_erasure(x, by=owner, channel="letter"), by=owner)
    later = timezone.now() + dt.timedelta(days=3 * 366)  # clinical retention (1 year) over, financial (10) not
    run = erasure.run_retention(now=later)
    [item] = [i for i in run.items if i.client_id == x.pk]
    assert item.error == "" and item.due
    assert all(n == 0 for n in clinical(x.pk).values())
    assert ledger(x.pk) == books
    kept = Client.objects.get(pk=x.pk)
    assert (kept.first_name, kept.last_name) == (x.first_name, x.last_name)  # the invoices name them
    assert kept.email == kept.phone == kept.physician_name == "" and kept.user_id is None
    billed_visits = set(
        Invoice.objects.filter(client=x, appointment__isnull=False).values_list("appointment", flat=True)
    )
    assert set(Appointment.objects.filter(client=x).values_list("pk", flat=True)) == billed_visits
    event = AuditEvent.objects.filter(client_id=x.pk, action="erasure_completed").latest("id")
    assert event.detail["financial_records_kept_until"] >= (later + dt.timedelta(days=6 * 365)).date().isoformat()
    # Running again changes nothing while the financial records are kept.
    events = AuditEvent.objects.count()
    again = erasure.run_retention(now=later)
    assert not [i for i in again.items if i.client_id == x.pk and i.due]
    assert AuditEvent.objects.count() == events and ledger(x.pk) == books


def test_the_owner_deletes_a_record_past_retention_and_the_ledger_stays(billed):
    y, owner = billed.y.client, billed.owner.user
    books = ledger(y.pk)
    later = timezone.now() + dt.timedelta(days=3 * 366)
    Appointment.objects.filter(client=y, starts_at__gt=later).delete()
    Client.objects.filter(pk=y.pk).update(created_at=timezone.now() - dt.timedelta(days=5 * 366))
    counts = erasure.delete_past_retention(Client.objects.get(pk=y.pk), by=owner, now=later)
    assert counts["clinic.Screening"] > 0
    assert all(n == 0 for n in clinical(y.pk).values()) and ledger(y.pk) == books
    assert not erasure.past_retention(billed.clinic, now=later) or y.pk not in {
        p.client.pk for p in erasure.past_retention(billed.clinic, now=later)
    }


def test_financial_retention_counts_from_the_last_financial_record(billed, settings):
    x = billed.x.client
    last = max(
        Payment.objects.filter(client=x).latest("taken_at").taken_at,
        Invoice.objects.filter(client=x).latest("issued_at").issued_at,
    )
    assert erasure.financial_keep_until(x) == erasure.add_years(last.date(), 10)
    settings.BACKCARE = {**settings.BACKCARE, "FINANCIAL_RETENTION_YEARS": 6}
    assert erasure.financial_keep_until(x) == erasure.add_years(last.date(), 6)
    assert erasure.financial_keep_until(billed.z) is None


def test_once_the_financial_period_has_passed_the_ledger_and_the_client_go(billed):
    from django.db import IntegrityError, transaction
    from django.db.utils import DatabaseError

    from backcare.billing.models import InvoiceLine, LedgerPurge

    x, owner = billed.x.client, billed.owner.user
    erasure.confirm_erasure(erasure.request_erasure(x, by=owner, channel="letter"), by=owner)
    erasure.run_retention(now=timezone.now() + dt.timedelta(days=3 * 366))
    assert Client.objects.filter(pk=x.pk).exists()
    # The triggers still refuse deleting the kept invoices by hand.
    for qs in (InvoiceLine.objects.filter(invoice__client_id=x.pk), Payment.objects.filter(client_id=x.pk)):
        with pytest.raises((IntegrityError, DatabaseError)), transaction.atomic():
            qs.delete()
    until = erasure.financial_keep_until(Client.objects.get(pk=x.pk))
    run = erasure.run_retention(now=dt.datetime.combine(until + dt.timedelta(days=1), dt.time(12), tzinfo=dt.UTC))
    [item] = [i for i in run.items if i.client_id == x.pk]
    assert item.error == "" and item.due
    assert not Client.objects.filter(pk=x.pk).exists() and ledger(x.pk) == (0, 0, 0)
    assert not LedgerPurge.objects.exists()
    assert ledger(billed.y.client.pk)[0] >= 3  # Y's ledger untouched
