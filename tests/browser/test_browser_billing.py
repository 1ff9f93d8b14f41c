"""The till in a real browser: a visit that began half an hour ago is marked arrived by the front desk and completed
by its therapist on the Today page (completing is the therapist's: the front desk never opens the record), which
raises the invoice; the front desk takes the payment on the client's billing page and downloads the receipt PDF."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from clinic_fixtures import PASSWORD

pytestmark = pytest.mark.browser


def sign_in(ui: Any, username: str) -> None:
    ui.goto("login")
    ui.page.get_by_label("Username").fill(username)
    ui.page.get_by_label("Password").fill(PASSWORD)
    ui.submit(ui.page.get_by_role("button", name="Sign in", exact=True))


@pytest.fixture
def visit(live_client: Any, live_therapist: Any) -> Any:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from backcare.billing import services
    from backcare.billing.models import Practitioner
    from backcare.clinic.models import StaffMember
    from backcare.scheduling.models import Appointment
    from backcare.scheduling.services import resources

    clinic = live_therapist.clinic
    owner_user = get_user_model().objects.create_user(username="olga", password=PASSWORD, email="olga@x.test")
    owner = StaffMember.objects.create(user=owner_user, clinic=clinic, role="owner", display_name="Olga Owner")
    desk_user = get_user_model().objects.create_user(username="fern", password=PASSWORD, email="fern@x.test")
    StaffMember.objects.create(user=desk_user, clinic=clinic, role="front_desk", display_name="Fern Desk")
    room = resources.create_room(clinic, "Room 1", by=owner.user)
    service = resources.create_service(clinic, by=owner.user, name="Back massage", duration_minutes=60)
    services.set_price(service, 5500, by=owner.user)
    settings = services.settings_for(clinic)
    settings.legal_name = "Riverside Back Clinic Ltd"
    settings.save()
    Practitioner.objects.create(staff=live_therapist, registration_body="CNHC", registration_number="RN-2211")
    starts = timezone.now() - dt.timedelta(minutes=30)
    return Appointment.objects.create(
        clinic=clinic, client=live_client, therapist=live_therapist, room=room, service=service,
        starts_at=starts, ends_at=starts + dt.timedelta(hours=1), busy_from=starts,
        busy_until=starts + dt.timedelta(hours=1),
    )  # fmt: skip


def test_the_front_desk_takes_the_payment_of_a_completed_visit_and_opens_the_receipt(ui: Any, visit: Any) -> None:
    from pathlib import Path

    from backcare.billing import documents
    from backcare.billing.models import Invoice, Payment
    from backcare.clinic.models import AuditEvent

    page = ui.page
    sign_in(ui, "fern")
    ui.goto("today")
    ui.submit(page.get_by_role("button", name="Arrived"))
    assert "Arrived" in ui.text()
    ui.shot("the front desk marks the client arrived")

    ui.new_person()
    page = ui.page
    sign_in(ui, "theo")
    ui.goto("today")
    ui.submit(page.get_by_role("button", name="Completed", exact=True))
    ui.shot("the therapist marks the visit completed")
    invoice = Invoice.objects.get(appointment=visit)
    assert invoice.total == 5500

    ui.new_person()
    page = ui.page
    sign_in(ui, "fern")
    ui.goto("client_billing", visit.client_id)
    assert "Owes £55.00" in ui.text()
    ui.shot("the client owes the visit")
    form = page.locator("form", has=page.get_by_role("button", name="Record the payment"))
    form.get_by_label("Amount (GBP)").fill("55")
    form.get_by_label("Paid by").select_option("card")
    form.get_by_label("Against invoice").select_option(str(invoice.pk))
    form.get_by_label("Reference (terminal slip, bank reference)").fill("Slip 0042")
    ui.submit(form.get_by_role("button", name="Record the payment"))
    assert "£55.00 recorded." in ui.text() and "Nothing owed" in ui.text()
    ui.shot("the payment is recorded")
    assert Payment.objects.get(invoice=invoice).reference == "Slip 0042"

    ui.follow(page.get_by_role("link", name=str(invoice.number), exact=True))
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the PDF").click()
    assert download.value.suggested_filename == f"invoice-{invoice.number}-fielding.pdf"
    content = Path(download.value.path()).read_bytes()
    assert content.startswith(b"%PDF-") and len(content) > 1000
    html = documents.invoice_html(invoice)  # what the PDF was made from
    assert "Receipt 1" in html and "Riverside Back Clinic Ltd" in html and "CNHC RN-2211" in html
    assert AuditEvent.objects.filter(action="export", object_id=str(invoice.pk)).exists()
    ui.shot("the receipt was downloaded")
    assert not ui.unexpected_console_errors()
