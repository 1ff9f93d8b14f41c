"""The billing pages: the front desk takes a payment (sent twice, recorded once), waives a fee with a reason; the
owner's takings and CSV; the invoice PDF with the clinic's legal details and the therapist's registration; the
portal; a therapist sees only their own sessions' billing; every view is audited."""

from __future__ import annotations

import csv
import io
import re

from billing_support import change_status
from django.urls import reverse

from backcare.billing import documents, services
from backcare.billing.models import Invoice, Payment, Practitioner
from backcare.clinic.models import AuditEvent
from clinic_fixtures import login


def form_key(page: str, prefix: str) -> str:
    return re.search(rf'name="{prefix}-key" value="([^"]+)"', page).group(1)


def test_front_desk_takes_a_payment_once_even_when_sent_twice(client, billing):
    invoice = services.bill_session(billing.appointment(), by=billing.owner.user)
    login(client, billing.front_desk.user)
    url = reverse("client_billing", args=[billing.client.pk])
    page = client.get(url).content.decode()
    assert ("Owes £60.00" in page and "Invoice 1" in page) or f">{invoice.number}<" in page
    data = {
        "action": "pay",
        "pay-key": form_key(page, "pay"),
        "pay-amount": "60.00",
        "pay-method": "cash",
        "pay-invoice": str(invoice.pk),
        "pay-reference": "",
    }
    assert client.post(url, data).status_code == 302
    assert client.post(url, data).status_code == 302
    assert Payment.objects.count() == 1 and services.balance(billing.client) == 0
    assert "Nothing owed" in client.get(url).content.decode()


def test_bad_amount_is_named_and_kept(client, billing):
    login(client, billing.front_desk.user)
    url = reverse("client_billing", args=[billing.client.pk])
    page = client.get(url).content.decode()
    data = {"action": "pay", "pay-key": form_key(page, "pay"), "pay-amount": "12.345", "pay-method": "cash"}
    response = client.post(url, data)
    body = response.content.decode()
    assert response.status_code == 200 and "at most 2 decimal places" in body and 'value="12.345"' in body
    assert not Payment.objects.exists()


def test_front_desk_waives_a_fee_with_a_reason(client, billing):
    late = change_status(billing.appointment(), "late_cancelled", billing.front_desk)
    fee = Invoice.objects.get(appointment=late)
    login(client, billing.front_desk.user)
    url = reverse("invoice_detail", args=[fee.pk])
    page = client.get(url).content.decode()
    assert "Waive the fee" in page and "Issue a credit note" not in page  # credit notes are the owner's
    response = client.post(url, {"action": "waive", "waive-key": form_key(page, "waive"), "waive-reason": "Ill"})
    assert response.status_code == 302
    assert services.balance(billing.client) == 0
    assert Invoice.objects.get(kind="credit_note").reason == "Ill"


def test_invoice_pdf_has_the_legal_details_and_registration_and_is_a_receipt_once_paid(client, billing):
    settings = services.settings_for(billing.clinic)
    settings.tax_number, settings.company_number = "GB123456789", "09876543"
    settings.save()
    Practitioner.objects.create(staff=billing.therapist, registration_body="CNHC", registration_number="RN-4711")
    invoice = services.bill_session(billing.appointment(), by=billing.owner.user)
    html = documents.invoice_html(invoice)
    for expected in ("Test Clinic Ltd", "GB123456789", "09876543", "CNHC RN-4711", "Invoice 1", "£60.00"):
        assert expected in html, expected
    services.take_payment(billing.client, 6000, "card", key="r", by=billing.front_desk.user, invoice=invoice)
    assert "Receipt 1" in documents.invoice_html(invoice)
    billing.client.user = None
    login(client, billing.therapist.user)
    response = client.get(reverse("invoice_pdf", args=[invoice.pk]))
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    assert AuditEvent.objects.filter(action="export", object_type="invoice").exists()


def test_therapist_sees_only_their_own_sessions_billing(client, billing, therapist2):
    mine = services.bill_session(billing.appointment(1), by=billing.owner.user)
    theirs = services.bill_session(billing.appointment(2, therapist=therapist2), by=billing.owner.user)
    login(client, billing.therapist.user)
    page = client.get(reverse("client_billing", args=[billing.client.pk])).content.decode()
    assert reverse("invoice_detail", args=[mine.pk]) in page
    assert reverse("invoice_detail", args=[theirs.pk]) not in page
    assert "Take a payment" not in page and "Balance" not in page
    assert client.get(reverse("invoice_detail", args=[theirs.pk])).status_code == 404


def test_owner_takings_by_method_and_csv(client, billing):
    desk = billing.front_desk.user
    services.take_payment(billing.client, 2000, "cash", key="a", by=desk)
    services.take_payment(billing.client, 4550, "card", key="b", by=desk)
    services.take_payment(billing.client, 500, "cash", key="c", by=desk, kind="refund")
    login(client, billing.owner.user)
    page = client.get(reverse("takings")).content.decode()
    assert "£15.00" in page and "£45.50" in page and "£60.50" in page
    csv_response = client.get(reverse("takings") + "?format=csv")
    rows = list(csv.DictReader(io.StringIO(csv_response.content.decode())))
    by_method = {r["method"]: r for r in rows}
    assert by_method["cash"]["net"] == "15.00" and by_method["card"]["taken"] == "45.50"
    assert by_method["cash"]["refunded"] == "5.00" and by_method["transfer"]["count"] == "0"
    assert client.get(reverse("takings") + "?day=not-a-day").status_code == 200
    assert AuditEvent.objects.filter(action="view", detail__page="takings").count() == 3


def test_client_downloads_their_invoices_in_the_portal(client, billing, make_client):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username="cora", password="x-very-long-pass-1")
    billing.client.user = user
    billing.client.save()
    invoice = services.bill_session(billing.appointment(), by=billing.owner.user)
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    page = client.get(reverse("portal_billing")).content.decode()
    assert "You owe £60.00" in page and reverse("invoice_pdf", args=[invoice.pk]) in page
    assert client.get(reverse("invoice_pdf", args=[invoice.pk])).status_code == 200
    other = make_client(billing.therapist, first_name="Other")
    foreign = services.bill_session(
        billing.appointment(3).__class__.objects.create(**{**_fields(billing.appointment(4)), "client": other}),
        by=billing.owner.user,
    )
    assert client.get(reverse("invoice_pdf", args=[foreign.pk])).status_code == 404


def _fields(appointment):
    values = {f.name: getattr(appointment, f.name) for f in appointment._meta.concrete_fields if f.name != "id"}
    appointment.delete()
    return values


def test_staff_invoice_a_visit_by_hand(client, billing):
    appointment = billing.appointment()
    login(client, billing.front_desk.user)
    page = client.get(reverse("client_billing", args=[billing.client.pk])).content.decode()
    assert reverse("appointment_invoice", args=[appointment.pk]) in page
    response = client.post(reverse("appointment_invoice", args=[appointment.pk]))
    invoice = Invoice.objects.get(appointment=appointment)
    assert response["Location"] == reverse("invoice_detail", args=[invoice.pk])


def test_invoice_document_escapes_what_users_typed(billing):
    script = '<script>alert("xss")</script>'
    settings = services.settings_for(billing.clinic)
    settings.legal_name = settings.tax_number = script
    settings.save()
    Practitioner.objects.create(staff=billing.therapist, registration_body=script, registration_number=script)
    invoice = services.bill_session(billing.appointment(), by=billing.owner.user)
    note = services.credit_note(invoice, 100, script, by=billing.owner.user)
    for html in (documents.invoice_html(invoice), documents.invoice_html(note)):
        assert script not in html and "&lt;script&gt;" in html
