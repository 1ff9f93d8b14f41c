"""Consent first: no course or session without current signed consent. Staff record consent in the clinic (signed on
the clinic's device, or a signed paper form uploaded with its witness); a client under 16 needs a guardian's consent
and is not asked STarT Back."""

from __future__ import annotations

import datetime as dt
from html import unescape

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from backcare.clinic.models import AuditEvent, Consent
from backcare.clinic.services import consent as consent_service
from backcare.clinic.services import courses as course_service
from backcare.clinic.services.screening import treatment_gate
from clinic_fixtures import login


def _text(response):
    return unescape(response.content.decode())


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def fresh_submission_keys(db):
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def unsigned(client_record, screen_client):
    screen_client(client_record, consent=False)
    return client_record


@pytest.fixture
def child(make_client, therapist, screen_client):
    today = dt.date.today()
    kid = make_client(therapist, first_name="Kit", date_of_birth=today.replace(year=today.year - 12))
    return kid


def test_no_course_without_consent_through_service_and_page(client, therapist, unsigned):
    gate = treatment_gate(unsigned)
    assert not gate.allowed and gate.needs_consent and "No signed consent" in gate.reason
    with pytest.raises(ValidationError, match="No signed consent"):
        course_service.start_course(unsigned, staff=therapist)
    login(client, therapist.user)
    html = _text(client.get(reverse("client_detail", args=[unsigned.pk])))
    assert "No signed consent" in html and reverse("consent_record", args=[unsigned.pk]) in html
    page = client.get(reverse("course_start", args=[unsigned.pk]), follow=True)
    assert "No signed consent" in _text(page)
    client.post(reverse("course_start", args=[unsigned.pk]), {})
    assert not unsigned.courses.exists()


def test_a_withdrawn_consent_stops_the_next_session(client_record, therapist, screen_client):
    from django.utils import timezone

    from backcare.clinic.services.sessions import health_update, record_session

    screen_client(client_record)
    course = course_service.start_course(client_record, staff=therapist)
    Consent.objects.filter(client=client_record).update(withdrawn_at=timezone.now())
    update = health_update(course, staff=therapist, new_findings=[], pain_now=3)
    with pytest.raises(ValidationError, match="No signed consent"):
        record_session(
            course,
            staff=therapist,
            health_update=update,
            techniques=["swedish_relaxation"],
            pressure=2,
            body_chart={},
            pain_before=3,
            pain_after=2,
        )


def test_consent_signed_on_the_clinics_device_opens_the_gate(client, therapist, unsigned):
    login(client, therapist.user)
    url = reverse("consent_record", args=[unsigned.pk])
    page = client.get(url)
    assert page.status_code == 200 and "Consent to massage therapy" in _text(page)
    key = page.context["form"].initial["submission_key"]
    wrong = client.post(url, {"method": "device", "signature": "Someone Else", "submission_key": key})
    assert "Client's signature: the client types their first and last name" in _text(wrong)
    assert 'value="Someone Else"' in _text(wrong)
    data = {"method": "device", "signature": unsigned.full_name, "submission_key": key}
    response = client.post(url, data)
    assert response.status_code == 302
    assert client.post(url, data).status_code == 302  # sent twice: one consent
    signed = Consent.objects.get(client=unsigned)
    assert signed.method == "device" and signed.recorded_by == therapist
    assert AuditEvent.objects.filter(action="record_consent", client=unsigned).count() == 1
    assert treatment_gate(unsigned).allowed


def test_a_paper_form_needs_its_witness_and_a_real_file(client, therapist, owner, front_desk, unsigned):
    login(client, therapist.user)
    url = reverse("consent_record", args=[unsigned.pk])
    key = client.get(url).context["form"].initial["submission_key"]
    fake = SimpleUploadedFile("form.pdf", b"<html>", content_type="application/pdf")
    response = client.post(url, {"method": "paper", "paper_form": fake, "submission_key": key})
    html = _text(response)
    assert "Signed form: the file is named .pdf but is not a real PDF file." in html
    response = client.post(url, {"method": "paper", "submission_key": key})
    html = _text(response)
    assert "Signed form: upload the scan" in html and "Witnessed by: say who saw the form being signed." in html
    form = SimpleUploadedFile("form.pdf", PDF, content_type="application/pdf")
    data = {"method": "paper", "paper_form": form, "witnessed_by": "Fred Frontdesk", "submission_key": key}
    assert client.post(url, data).status_code == 302
    signed = Consent.objects.get(client=unsigned)
    assert signed.witnessed_by == "Fred Frontdesk" and signed.paper_form.name.startswith("consents/")
    file_url = reverse("consent_paper_form", args=[signed.pk])
    response = client.get(file_url)
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response["Cache-Control"] == "private, no-store"
    login(client, front_desk.user)
    assert client.get(file_url).status_code == 403
    assert client.get(url).status_code == 403


def test_a_child_needs_a_guardians_consent_and_is_not_asked_start_back(client, therapist, child):
    from backcare.clinic.services.intake import start_back_enabled

    assert not start_back_enabled(child)
    text = consent_service.current_consent_text()
    with pytest.raises(ValidationError, match="parent or guardian"):
        consent_service.sign_consent(child, text, child.full_name)
    login(client, therapist.user)
    url = reverse("consent_record", args=[child.pk])
    page = client.get(url)
    assert "is under 16" in _text(page)
    key = page.context["form"].initial["submission_key"]
    response = client.post(url, {"method": "device", "signature": child.full_name, "submission_key": key})
    html = _text(response)
    assert "Guardian's name: a client under 16 needs a parent's or guardian's consent." in html
    assert "Relationship: say how the guardian is related to the client." in html
    data = {
        "method": "device",
        "guardian_name": "Gwen Client",
        "guardian_relationship": "mother",
        "guardian_signature": "Gwen Klient",
        "submission_key": key,
    }
    assert "Guardian's signature" in _text(client.post(url, data))
    data["guardian_signature"] = "Gwen Client"
    assert client.post(url, data).status_code == 302
    signed = Consent.objects.get(client=child)
    assert (signed.guardian_name, signed.guardian_relationship) == ("Gwen Client", "mother")
