"""The demo clinic bills as a clinic does: priced services (one therapist's own price), a fee policy, a package for a
course paid by card, an invoice part paid, a late cancellation with its fee; all through the billing services."""

from __future__ import annotations

import pytest


@pytest.mark.django_db
def test_the_demo_clinic_has_prices_a_package_paid_and_unpaid_invoices_and_a_fee():
    from backcare.billing import services
    from backcare.billing.models import Invoice, Package, Price
    from backcare.clinic.models import AuditEvent
    from backcare.demo.clinic import build_demo

    clinic = build_demo()
    assert Price.objects.filter(clinic=clinic, therapist__isnull=True).count() == 2
    assert Price.objects.filter(clinic=clinic, therapist__isnull=False).count() == 1
    policy = services.settings_for(clinic)
    assert (policy.late_cancellation_fee, policy.no_show_fee, policy.legal_name) == (
        2500, 3500, "Backcare Demo Clinic Ltd",
    )  # fmt: skip
    package = Package.objects.get(clinic=clinic)
    assert package.course is not None and package.course.client.full_name == "Maya Okafor"
    assert services.outstanding(package.invoice) == 0  # paid in full: its PDF is a receipt
    invoices = list(Invoice.objects.filter(clinic=clinic, kind="invoice"))
    assert {i.source for i in invoices} == {"package", "session", "late_cancellation"}
    unpaid = [i for i in invoices if services.outstanding(i) > 0]
    assert {i.source for i in unpaid} == {"session", "late_cancellation"}
    fee = next(i for i in invoices if i.source == "late_cancellation")
    assert fee.total == 2500 and fee.client.full_name == "Eleanor Price"
    assert [i.number for i in sorted(invoices, key=lambda i: i.number)] == list(range(1, len(invoices) + 1))
    assert AuditEvent.objects.filter(action="billing_settings_update").count() == 2
