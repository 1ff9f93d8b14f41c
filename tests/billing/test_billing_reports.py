"""The owner's reports: aged balances by days past due, revenue by therapist, service and month (credit notes
subtract), their CSVs (stable columns, ISO dates, decimal amounts, formula-safe text), the date range's messages,
and the same number of queries for 5 clients as for 200."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from billing_support import change_status
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from backcare.billing import reports, services
from backcare.billing.models import Invoice, InvoiceCounter, Payment
from backcare.clinic.models import AuditEvent, Client
from clinic_fixtures import login


def dated_invoices(billing, client, amounts_days, *, therapist=None):
    """Invoices issued `days` ago (bulk written, as an import would: a service only issues them now)."""
    counter, _ = InvoiceCounter.objects.get_or_create(clinic=billing.clinic)
    first = counter.last_number
    now = timezone.now()
    rows = [
        Invoice(
            clinic=billing.clinic, client=client, number=first + i + 1, source="manual", therapist=therapist,
            currency="GBP", net=amount, total=amount, issued_at=now - dt.timedelta(days=days),
        )
        for i, (amount, days) in enumerate(amounts_days)
    ]  # fmt: skip
    InvoiceCounter.objects.filter(pk=counter.pk).update(last_number=first + len(rows))
    return Invoice.objects.bulk_create(rows)


def test_open_invoices_fall_into_buckets_by_days_past_due(billing):
    desk = billing.front_desk.user
    _, d10, d45, d75, _ = dated_invoices(
        billing, billing.client, [(1000, 0), (1000, 10), (1000, 45), (1000, 75), (1000, 120)]
    )
    services.take_payment(billing.client, 300, "cash", key="p45", by=desk, invoice=d45)
    services.credit_note(d75, 200, "Goodwill", by=billing.owner.user)
    services.take_payment(billing.client, 500, "card", key="on-account", by=desk)  # unapplied credit
    services.take_payment(billing.client, 1000, "card", key="p10", by=desk, invoice=d10)  # paid: not open
    aged = reports.aged_receivables(billing.clinic, timezone.localdate())
    [row] = aged.rows
    assert row.buckets == {"current": 1000, "d1_30": 0, "d31_60": 700, "d61_90": 800, "over_90": 1000}
    assert row.open == 3500 and row.unapplied == 500 and row.balance == 3000
    assert row.balance == services.balance(billing.client)
    assert aged.totals["open_total"] == 3500
    # Thirty days' terms: the 45-day invoice is 15 days past due, the 75-day one 45, the 120-day one 90.
    later = reports.aged_receivables(billing.clinic, timezone.localdate(), terms_days=30)
    assert later.rows[0].buckets == {"current": 1000, "d1_30": 700, "d31_60": 800, "d61_90": 1000, "over_90": 0}


def test_revenue_by_therapist_service_and_month_subtracts_credit_notes(billing):
    settings = services.settings_for(billing.clinic)
    settings.tax_exempt, settings.tax_rate_bp = False, 2000
    settings.save()
    invoice = services.bill_session(billing.appointment(), by=billing.owner.user)  # 60.00 + 12.00 tax
    assert (invoice.net, invoice.tax, invoice.total) == (6000, 1200, 7200)
    services.credit_note(invoice, 3600, "Half the session", by=billing.owner.user)  # 30.00 + 6.00
    services.sell_package(
        billing.client, billing.service, 4, 20000, timezone.localdate() + dt.timedelta(days=90),
        by=billing.front_desk.user,
    )  # fmt: skip
    today = timezone.localdate()
    by_therapist = reports.revenue(billing.clinic, "therapist", today, today)
    assert [(r.label, r.documents, r.net, r.tax, r.gross) for r in by_therapist] == [
        ("No therapist (package sales, manual)", 1, 20000, 4000, 24000),
        (billing.therapist.display_name, 2, 3000, 600, 3600),
    ]
    [service] = reports.revenue(billing.clinic, "service", today, today)
    assert (service.label, service.net, service.tax, service.gross) == ("Back massage", 23000, 4600, 27600)
    [month] = reports.revenue(billing.clinic, "month", today, today)
    assert month.key == today.strftime("%Y-%m") and month.gross == 27600
    assert reports.revenue(billing.clinic, "month", today - dt.timedelta(days=40), today - dt.timedelta(days=1)) == []


def test_the_reports_page_and_its_csvs(client, billing):
    billing.client.first_name, billing.client.last_name = "=HYPERLINK(1)", "-Minus"
    billing.client.save()
    invoice = services.bill_session(billing.appointment(), by=billing.owner.user)
    services.credit_note(invoice, 6000, "Wrong client", by=billing.owner.user)
    change_status(billing.appointment(days=2), "late_cancelled", billing.front_desk)  # a 25.00 fee, open
    login(client, billing.owner.user)
    url = reverse("billing_reports")
    page = client.get(url).content.decode()
    assert "Outstanding balances by age" in page and "£25.00" in page and "Back massage" in page
    assert AuditEvent.objects.filter(action="view", detail__page="billing_reports").exists()
    today = timezone.localdate().isoformat()
    aged = client.get(url, {"report": "aged", "format": "csv"})
    assert aged["Content-Type"].startswith("text/csv") and today in aged["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(aged.streaming_content).decode())))
    assert rows[0] == reports.AGED_HEADER
    assert rows[1] == [today, str(billing.client.pk), "'=HYPERLINK(1) -Minus", "GBP",
                       "25.00", "0.00", "0.00", "0.00", "0.00", "25.00", "0.00", "25.00"]  # fmt: skip
    by_service = client.get(url, {"report": "service", "format": "csv", "date_from": today, "date_to": today})
    rows = list(csv.reader(io.StringIO(b"".join(by_service.streaming_content).decode())))
    assert rows[0] == reports.REVENUE_HEADER
    assert rows[1] == [today, today, "service", str(billing.service.pk), "Back massage", "GBP", "3",
                       "25.00", "0.00", "25.00"]  # fmt: skip
    assert AuditEvent.objects.filter(action="export", detail__report="service").exists()
    by_therapist = client.get(url, {"report": "therapist", "format": "csv"})
    body = b"".join(by_therapist.streaming_content).decode()
    assert re.search(r",-?\d+\.\d\d\r\n", body), body  # amounts are plain decimals, never prefixed


def test_a_wrong_date_range_is_named_and_kept(client, billing):
    login(client, billing.owner.user)
    url = reverse("billing_reports")
    page = client.get(url, {"date_from": "yesterday", "date_to": "2026-01-01"}).content.decode()
    assert "From: enter a date" in page and 'value="yesterday"' in page
    page = client.get(url, {"date_from": "2026-02-01", "date_to": "2026-01-01"}).content.decode()
    assert "To: the end of the range is before its start." in page and 'value="2026-02-01"' in page


def test_only_the_owner_sees_the_reports(client, billing):
    for staff in (billing.front_desk, billing.therapist):
        login(client, staff.user)
        assert client.get(reverse("billing_reports")).status_code == 403
        assert client.get(reverse("billing_reports"), {"report": "aged", "format": "csv"}).status_code == 403


def _page_queries(page_client, params):
    with CaptureQueriesContext(connection) as queries:
        response = page_client.get(reverse("billing_reports"), params)
    assert response.status_code == 200
    return response.content.decode(), [q["sql"] for q in queries.captured_queries]


def _clients_with_invoices(billing, start, n):
    Client.objects.bulk_create(
        Client(clinic=billing.clinic, therapist=billing.therapist, first_name=f"Owing{start + i}", last_name="Many",
               date_of_birth=dt.date(1970, 1, 1))
        for i in range(n)
    )  # fmt: skip
    for i, c in enumerate(Client.objects.filter(first_name__startswith="Owing").order_by("pk")[start:]):
        dated_invoices(billing, c, [(1000 + i, i % 130), (500, 3)], therapist=billing.therapist)
        Payment.objects.bulk_create([Payment(clinic=billing.clinic, client=c, method="cash", amount=200,
                                             currency="GBP", idempotency_key=f"bulk-{c.pk}")])  # fmt: skip


@pytest.mark.parametrize("params", [{}, {"page": "2"}, {"date_from": "2020-01-01", "date_to": "2030-12-31"}])
def test_the_reports_make_the_same_queries_for_5_and_200_clients(client, billing, params):
    login(client, billing.owner.user)
    _clients_with_invoices(billing, 0, 5)
    _page_queries(client, params)  # warm: sessions, caches
    _, small = _page_queries(client, params)
    _clients_with_invoices(billing, 5, 195)
    page, large = _page_queries(client, params)
    assert len(large) == len(small), "\n".join(large)
    # No query reads every client: the clients are read as a count, a page, or the page's balances.
    for sql in large:
        if re.search(r'FROM "clinic_client"|JOIN "clinic_client"', sql) and "COUNT(" not in sql:
            assert "LIMIT" in sql or " IN (" in sql, sql
    assert page.count("Owing") >= (5 if params.get("page") == "2" else 50)
