"""The owner's billing settings and prices in the application (no longer only the admin), and the fee policy on
the clinic's settings page beside the cancellation window: bad input named and kept, every change audited with
what it was; a course that ends closes its package by the unused-session rule, and the course page shows it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from backcare.billing import services
from backcare.billing.models import Invoice, Package, Price
from backcare.clinic.models import AuditEvent
from clinic_fixtures import login
from matrix_support import build_world, login_as


def settings_data(**changes):
    data = {"currency": "GBP", "tax_rate": "", "tax_label": "VAT", "tax_exempt": "on", "legal_name": "Back Ltd",
            "tax_number": "", "company_number": "", "payment_terms_days": "14"}  # fmt: skip
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_owner_sets_tax_terms_and_legal_details_audited(client, billing):
    login(client, billing.owner.user)
    url = reverse("billing_settings")
    assert client.get(url).status_code == 200
    response = client.post(url, settings_data(tax_exempt=None, tax_rate="20", legal_name="Back Care Ltd"))
    assert response.status_code == 302
    saved = services.settings_for(billing.clinic)
    assert (saved.tax_exempt, saved.tax_rate_bp, saved.legal_name, saved.payment_terms_days) == (
        False, 2000, "Back Care Ltd", 14,
    )  # fmt: skip
    event = AuditEvent.objects.filter(action="billing_settings_update").latest("pk")
    assert event.detail["changed"]["tax_rate_bp"] == [0, 2000]
    assert event.detail["changed"]["legal_name"] == ["Test Clinic Ltd", "Back Care Ltd"]
    invoice = services.bill_session(billing.appointment(), by=billing.owner.user)
    assert (invoice.tax_rate_bp, invoice.tax) == (2000, 1200)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tax_rate": "twenty", "tax_exempt": None}, "Tax rate: enter a percentage such as 20 or 7.5."),
        ({"tax_rate": "", "tax_exempt": None}, "Tax rate: enter the rate, or mark the clinic exempt from tax."),
        ({"tax_rate": "101", "tax_exempt": None}, "Tax rate: enter a percentage from 0 to 100."),
        ({"payment_terms_days": "soon"}, "Payment terms (days): enter a whole number."),
        ({"currency": "XYZ"}, "Currency: choose one of the options in the list."),
    ],
)
def test_bad_settings_are_named_and_kept(client, billing, changes, message):
    login(client, billing.owner.user)
    response = client.post(reverse("billing_settings"), settings_data(**changes))
    body = response.content.decode()
    assert response.status_code == 200 and message in body
    for value in changes.values():
        if value and value != "XYZ":
            assert f'value="{value}"' in body
    assert not AuditEvent.objects.filter(action="billing_settings_update").exists()


def test_the_currency_cannot_change_once_documents_exist(client, billing):
    services.bill_session(billing.appointment(), by=billing.owner.user)
    login(client, billing.owner.user)
    response = client.post(reverse("billing_settings"), settings_data(currency="EUR"))
    assert "Currency: documents were issued in GBP" in response.content.decode()
    assert services.settings_for(billing.clinic).currency == "GBP"


def test_owner_sets_a_therapist_price_which_wins_and_removes_it(client, billing):
    login(client, billing.owner.user)
    url = reverse("price_list")
    assert "£60.00" in client.get(url).content.decode()
    data = {"action": "set", "service": billing.service.pk, "therapist": billing.therapist.pk, "amount": "72.50"}
    assert client.post(url, data).status_code == 302
    assert services.price_for(billing.service, billing.therapist) == 7250
    assert services.price_for(billing.service, None) == 6000
    event = AuditEvent.objects.filter(action="update", object_type__icontains="price").latest("pk")
    assert event.detail["price"] == [None, 7250]
    override = Price.objects.get(therapist=billing.therapist)
    assert client.post(url, {"action": "remove", "price": override.pk}).status_code == 302
    assert services.price_for(billing.service, billing.therapist) == 6000
    assert AuditEvent.objects.filter(action="delete", detail__price=[7250, None]).exists()


def test_a_bad_price_is_named_and_kept(client, billing):
    login(client, billing.owner.user)
    data = {"action": "set", "service": billing.service.pk, "therapist": "", "amount": "12.345"}
    body = client.post(reverse("price_list"), data).content.decode()
    assert "Price before tax (GBP): GBP amounts have at most 2 decimal places." in body and 'value="12.345"' in body


def test_only_the_owner_changes_prices_and_settings(client, billing):
    login(client, billing.front_desk.user)
    for name in ("price_list", "billing_settings"):
        assert client.get(reverse(name)).status_code == 403
        assert client.post(reverse(name), {"action": "set"}).status_code == 403


def clinic_data(clinic, **fees):
    from backcare.clinic.forms.operations import ClinicSettingsForm

    data = {k: ("on" if v is True else v) for k, v in ClinicSettingsForm.initial_of(clinic).items() if v is not False}
    data.update(fees)
    return data


def test_the_fee_policy_sits_beside_the_cancellation_window(client, billing):
    login(client, billing.owner.user)
    url = reverse("clinic_settings")
    page = client.get(url).content.decode()
    policies = page[page.index("<legend>Policies</legend>") : page.index("<legend>Intake</legend>")]
    assert "Cancellation window" in policies and "Late-cancellation fee (GBP)" in policies
    assert 'value="25.00"' in policies and 'value="40.00"' in policies
    data = clinic_data(billing.clinic, cancellation_hours="48", **{"fees-late_cancellation_fee": "30",
                       "fees-no_show_fee": ""})  # fmt: skip
    assert client.post(url, data).status_code == 302
    saved = services.settings_for(billing.clinic)
    assert (saved.late_cancellation_fee, saved.no_show_fee) == (3000, 0)
    billing.clinic.refresh_from_db()
    assert billing.clinic.cancellation_hours == 48
    event = AuditEvent.objects.filter(action="billing_settings_update").latest("pk")
    assert event.detail["changed"] == {"late_cancellation_fee": [2500, 3000], "no_show_fee": [4000, 0]}


def test_a_bad_fee_is_named_kept_and_nothing_is_saved(client, billing):
    login(client, billing.owner.user)
    data = clinic_data(billing.clinic, cancellation_hours="12", **{"fees-late_cancellation_fee": "lots",
                       "fees-no_show_fee": "40"})  # fmt: skip
    response = client.post(reverse("clinic_settings"), data)
    body = response.content.decode()
    assert response.status_code == 200
    assert "Late-cancellation fee (GBP): Enter an amount such as 12.50." in body and 'value="lots"' in body
    billing.clinic.refresh_from_db()
    assert billing.clinic.cancellation_hours == 24  # the clinic's part is not saved without the fees' part


@pytest.fixture
def world(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return build_world(billing=True)


def test_ending_the_course_closes_its_package_and_the_course_page_shows_it(client, world):
    from backcare.clinic.models import Course
    from backcare.clinic.services import courses

    course = Course.objects.get(pk=world.x.ids["course"])
    package = Package.objects.get(course=course)
    login_as(client, world.owner.user)
    page = client.get(reverse("course_detail", args=[course.pk])).content.decode()
    assert "4 sessions of" in page and "0 used" in page and "(active)" in page
    courses.end_course(course, status="completed", staff=world.therapist_a)  # the therapist: no till role needed
    package.refresh_from_db()
    assert package.status == Package.Status.CLOSED and package.closed_at is not None
    note = Invoice.objects.get(credits=package.invoice, source=Invoice.Source.PACKAGE_CLOSED)
    assert note.total == package.invoice.total  # four unused of four: all of it, to the client's account
    assert "course completed" in note.reason
    page = client.get(reverse("course_detail", args=[course.pk])).content.decode()
    assert "closed (unused sessions credited)" in page


def test_a_package_of_another_course_stays_open(world):
    from backcare.clinic.models import Course
    from backcare.clinic.services import courses

    course = Course.objects.get(pk=world.x.ids["course"])
    Package.objects.filter(course=course).update(course=None)
    courses.end_course(course, status="stopped", staff=world.therapist_a)
    assert Package.objects.filter(client=world.x.client, status=Package.Status.ACTIVE).count() == 1
    assert timezone.localdate() < Package.objects.get(client=world.x.client).expires_on + dt.timedelta(days=1)


def test_an_overlong_tax_rate_is_named_not_a_server_error(client, billing):
    login(client, billing.owner.user)
    response = client.post(reverse("billing_settings"), settings_data(tax_rate="2" * 11, tax_exempt=None))
    assert response.status_code == 200
    assert "Tax rate (%): use at most 10 characters." in response.content.decode()
