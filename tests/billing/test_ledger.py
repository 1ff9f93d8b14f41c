"""The ledger's rules through its services: prices and tax, invoices raised by the status signal, credit notes,
payments (partial, over, refunds), packages and fees, and that issued records cannot be changed."""

from __future__ import annotations

import datetime as dt

import pytest
from billing_support import change_status
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from backcare.billing import money, services
from backcare.billing.models import Invoice, InvoiceLine, Package, Payment, Practitioner, Redemption


def test_completed_appointment_is_invoiced_once_at_its_price(billing):
    appointment = billing.appointment()
    change_status(appointment, "completed", billing.therapist)
    change_status(appointment, "completed", billing.therapist)  # sent again: still one invoice
    invoice = Invoice.objects.get(appointment=appointment)
    assert (invoice.number, invoice.total, invoice.currency, invoice.source) == (1, 6000, "GBP", "session")
    assert invoice.therapist_name == "Theo Therapist"
    assert services.balance(billing.client) == 6000


def test_therapist_price_where_it_differs_and_tax_rounded_half_up(billing):
    settings = services.settings_for(billing.clinic)
    settings.tax_exempt, settings.tax_rate_bp = False, 2000
    settings.save()
    services.set_price(billing.service, 4999, by=billing.owner.user, therapist=billing.therapist)
    Practitioner.objects.create(staff=billing.therapist, registration_body="CNHC", registration_number="123456")
    invoice = services.bill_session(billing.appointment(), by=billing.owner.user)
    assert (invoice.net, invoice.tax, invoice.total) == (4999, 1000, 5999)
    assert invoice.therapist_registration == "CNHC 123456"


def test_unpriced_service_raises_nothing_and_staff_are_told(billing):
    from backcare.scheduling.services import resources

    other = resources.create_service(billing.clinic, by=billing.owner.user, name="Stretching", duration_minutes=30)
    appointment = billing.appointment()
    appointment.service = other
    appointment.save()
    change_status(appointment, "completed", billing.therapist)
    assert not Invoice.objects.exists()
    with pytest.raises(ValidationError, match="no price"):
        services.raise_for_appointment(appointment, by=billing.front_desk.user)


def test_money_is_parsed_exactly_and_refuses_what_is_not_an_amount():
    assert money.parse("12.50", "GBP") == 1250
    assert money.parse("£1,012.5", "GBP") == 101250
    assert money.parse("1200", "JPY") == 1200
    for bad in ("abc", "-1", "1.005", "NaN", ""):
        with pytest.raises(money.MoneyError):
            money.parse(bad, "GBP")
    with pytest.raises(money.MoneyError):
        money.parse("1.5", "JPY")
    assert money.format_money(-1250, "GBP") == "-£12.50"
    assert money.split_gross(1200, 2000) == (1000, 200)


def test_numbers_follow_on_per_clinic_across_invoices_and_credit_notes(billing):
    first = services.bill_session(billing.appointment(1), by=billing.owner.user)
    note = services.credit_note(first, 1000, "Shortened session", by=billing.owner.user)
    second = services.bill_session(billing.appointment(2), by=billing.owner.user)
    assert [first.number, note.number, second.number] == [1, 2, 3]
    assert services.balance(billing.client) == 11000


def test_credit_note_never_credits_more_than_is_left(billing):
    invoice = services.bill_session(billing.appointment(), by=billing.owner.user)
    services.credit_note(invoice, 5000, "Goodwill", by=billing.owner.user)
    with pytest.raises(ValidationError) as refused:
        services.credit_note(invoice, 1001, "More", by=billing.owner.user)
    assert "amount" in refused.value.message_dict
    with pytest.raises(ValidationError) as no_reason:
        services.credit_note(invoice, 100, "  ", by=billing.owner.user)
    assert "reason" in no_reason.value.message_dict


def test_issued_invoice_is_refused_change_by_the_model_and_by_the_database(billing):
    invoice = services.bill_session(billing.appointment(), by=billing.owner.user)
    invoice.total = 1
    with pytest.raises(ValidationError, match="cannot be changed"):
        invoice.save()
    with pytest.raises(ValidationError, match="cannot be deleted"):
        invoice.delete()
    for sql in (
        "UPDATE billing_invoice SET total = 1, net = 1",
        "DELETE FROM billing_invoice",
        "UPDATE billing_invoiceline SET description = 'x'",
        "DELETE FROM billing_invoiceline",
    ):
        with pytest.raises(DatabaseError) as caught, transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
        assert "cannot be changed or deleted" in str(caught.value)
    assert Invoice.objects.get(pk=invoice.pk).total == 6000
    assert InvoiceLine.objects.filter(invoice=invoice).count() == 1


def test_partial_payment_overpayment_becomes_credit_and_refund_is_capped_by_it(billing):
    invoice = services.bill_session(billing.appointment(), by=billing.owner.user)
    desk = billing.front_desk.user
    services.take_payment(billing.client, 2000, "cash", key="k1", by=desk, invoice=invoice)
    assert services.outstanding(invoice) == 4000 and services.balance(billing.client) == 4000
    services.take_payment(billing.client, 5000, "card", key="k2", by=desk, invoice=invoice, reference="slip 77")
    assert services.outstanding(invoice) == 0 and services.balance(billing.client) == -1000  # 10.00 credit
    with pytest.raises(ValidationError) as too_much:
        services.take_payment(billing.client, 1001, "cash", key="k3", by=desk, kind="refund")
    assert "amount" in too_much.value.message_dict
    services.take_payment(billing.client, 1000, "cash", key="k4", by=desk, kind="refund")
    assert services.balance(billing.client) == 0
    lines = services.statement(billing.client)
    assert [e.running for e in lines] == [6000, 4000, -1000, 0]


def test_the_same_payment_key_records_once(billing):
    desk = billing.front_desk.user
    first, made = services.take_payment(billing.client, 2000, "cash", key="same", by=desk)
    again, made_again = services.take_payment(billing.client, 2000, "cash", key="same", by=billing.owner.user)
    assert made and not made_again and first.pk == again.pk
    assert Payment.objects.count() == 1


def test_therapists_and_clients_take_no_money(billing):
    with pytest.raises(PermissionDenied):
        services.take_payment(billing.client, 100, "cash", key="t", by=billing.therapist.user)


def test_package_of_four_is_redeemed_per_completed_session_then_invoiced_again(billing):
    desk = billing.front_desk.user
    package = services.sell_package(
        billing.client, billing.service, 4, 20000, timezone.localdate() + dt.timedelta(days=90), by=desk
    )
    assert package.invoice.total == 20000 and package.invoice.number == 1
    for day in range(1, 6):
        change_status(billing.appointment(day), "completed", billing.therapist)
    assert Redemption.objects.filter(package=package).count() == 4
    package.refresh_from_db()
    assert package.status == Package.Status.USED
    fifth = Invoice.objects.get(source="session")  # the fifth session is beyond the package
    assert fifth.total == 6000
    assert services.balance(billing.client) == 26000


def test_expired_package_is_not_redeemed(billing):
    package = services.sell_package(
        billing.client, billing.service, 4, 20000, timezone.localdate() + dt.timedelta(days=2), by=billing.owner.user
    )
    change_status(billing.appointment(days=5), "completed", billing.therapist)
    assert not package.redemptions.exists()
    assert Invoice.objects.filter(source="session").count() == 1


def test_closing_a_package_credits_unused_sessions_pro_rata(billing):
    package = services.sell_package(
        billing.client, billing.service, 4, 20000, timezone.localdate() + dt.timedelta(days=90), by=billing.owner.user
    )
    services.take_payment(
        billing.client, 20000, "transfer", key="p", by=billing.front_desk.user, invoice=package.invoice
    )
    change_status(billing.appointment(1), "completed", billing.therapist)
    note = services.close_package(package, "Discharged", by=billing.front_desk.user)
    assert note is not None and note.total == 15000 and note.source == "package_closed"
    assert services.balance(billing.client) == -15000  # kept as credit until refunded or used
    with pytest.raises(ValidationError):
        services.close_package(package, "again", by=billing.front_desk.user)


def test_late_cancellation_and_no_show_raise_the_policy_fee_which_staff_may_waive(billing):
    late = change_status(billing.appointment(1), "late_cancelled", billing.front_desk)
    absent = change_status(billing.appointment(2), "no_show", billing.front_desk)
    fee = Invoice.objects.get(appointment=late)
    assert (fee.source, fee.total) == ("late_cancellation", 2500)
    assert Invoice.objects.get(appointment=absent).total == 4000
    waiver = services.waive_fee(fee, "First time; bus strike", by=billing.front_desk.user)
    assert waiver.source == "waiver" and waiver.reason == "First time; bus strike" and waiver.total == 2500
    assert services.balance(billing.client) == 4000
    with pytest.raises(ValidationError):
        services.waive_fee(Invoice.objects.get(appointment=absent), "", by=billing.front_desk.user)


def test_no_fee_when_the_policy_has_none(billing):
    settings = services.settings_for(billing.clinic)
    settings.no_show_fee = 0
    settings.save()
    change_status(billing.appointment(), "no_show", billing.front_desk)
    assert not Invoice.objects.exists()


def test_every_ledger_write_is_audited(billing):
    from backcare.clinic.models import AuditEvent

    before = AuditEvent.objects.count()
    invoice = services.bill_session(billing.appointment(), by=billing.owner.user)
    services.take_payment(billing.client, 100, "cash", key="a", by=billing.front_desk.user, invoice=invoice)
    services.credit_note(invoice, 100, "Typo", by=billing.owner.user)
    events = list(AuditEvent.objects.order_by("pk")[before:].values_list("action", "object_type"))
    assert events == [("create", "invoice"), ("create", "payment"), ("create", "invoice")]
