"""The owner edits the clinic's details, policies (the cancellation window the scheduler uses), the STarT Back
switch and the consent text in the application; every change is audited with before and after."""

from __future__ import annotations

import pytest
from django.urls import reverse

from backcare.clinic.models import AuditEvent, Client, Clinic, ConsentText
from backcare.clinic.services import consent
from backcare.clinic.services.intake import start_back_enabled
from clinic_fixtures import login


def settings_data(clinic, **changes):
    data = {
        "name": clinic.name,
        "country": clinic.country,
        "time_zone": clinic.time_zone,
        "address": clinic.address,
        "phone": clinic.phone,
        "email": clinic.email,
        "emergency_number": clinic.emergency_number,
        "urgent_care_number": clinic.urgent_care_number,
        "cancellation_hours": str(clinic.cancellation_hours),
    }
    if clinic.start_back_enabled:
        data["start_back_enabled"] = "on"
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


@pytest.mark.django_db
def test_the_owner_changes_details_policies_and_start_back_and_each_change_is_audited(client, owner, make_client):
    clinic = owner.clinic
    login(client, owner.user)
    page = client.get(reverse("clinic_settings")).content.decode()
    assert 'value="Test Clinic"' in page and 'name="cancellation_hours"' in page
    data = settings_data(
        clinic, name="Harbour Clinic", country="de", cancellation_hours="48", start_back_enabled=None, phone="0301234"
    )
    data.pop("start_back_enabled", None)
    response = client.post(reverse("clinic_settings"), data)
    assert response.status_code == 302
    clinic.refresh_from_db()
    assert (clinic.name, clinic.country, clinic.cancellation_hours) == ("Harbour Clinic", "DE", 48)
    assert not clinic.start_back_enabled and clinic.emergency == "112" and clinic.urgent_care == "116117"
    assert not start_back_enabled(Client.objects.get(pk=make_client().pk))  # the intake follows the switch
    changed = AuditEvent.objects.get(action="clinic_settings_update").detail["changed"]
    assert changed["cancellation_hours"] == [24, 48] and changed["start_back_enabled"] == [True, False]
    assert changed["name"] == ["Test Clinic", "Harbour Clinic"] and "time_zone" not in changed
    # Saving again unchanged records nothing.
    client.post(reverse("clinic_settings"), settings_data(clinic))
    assert AuditEvent.objects.filter(action="clinic_settings_update").count() == 1


@pytest.mark.django_db
def test_the_scheduler_uses_the_cancellation_window_set_here(client, owner):
    from backcare.scheduling.services import booking

    login(client, owner.user)
    client.post(reverse("clinic_settings"), settings_data(owner.clinic, cancellation_hours="72"))
    assert booking._window_hours(Clinic.objects.get(pk=owner.clinic_id)).total_seconds() == 72 * 3600


@pytest.mark.django_db
def test_bad_settings_name_the_field_and_keep_what_was_typed(client, owner):
    login(client, owner.user)
    data = settings_data(
        owner.clinic, country="Germany", cancellation_hours="two days", emergency_number="dial 112", email="nope"
    )
    body = client.post(reverse("clinic_settings"), data).content.decode()
    for message in ("Country:", "Cancellation window (hours): enter a whole number.", "Emergency number: digits"):
        assert message in body, message
    assert "Clinic email: enter a valid email address" in body
    for typed in ("Germany", "two days", "dial 112", "nope"):
        assert typed in body
    too_long = client.post(reverse("clinic_settings"), settings_data(owner.clinic, cancellation_hours="9999"))
    assert "Cancellation window (hours): at most 336." in too_long.content.decode()
    assert Clinic.objects.get(pk=owner.clinic_id).country == "GB"


@pytest.mark.django_db
def test_the_owner_publishes_a_new_consent_version_and_clients_are_asked_to_sign_it(client, owner):
    login(client, owner.user)
    before = consent.current_consent_text()
    page = client.get(reverse("consent_texts")).content.decode()
    assert before.version in page
    body = "# About treatment\n\nMassage can leave you **sore** for a day. <script>alert(1)</script>"
    response = client.post(reverse("consent_texts"), {"version": "2026-2", "title": "Consent", "body": body})
    assert response.status_code == 302
    current = consent.current_consent_text()
    assert current.version == "2026-2" and current.body == body
    assert ConsentText.objects.filter(pk=before.pk, body=before.body).exists()  # the signed version is untouched
    event = AuditEvent.objects.get(action="consent_text_publish")
    assert event.detail["version"] == "2026-2" and event.clinic_id == owner.clinic_id
    shown = client.get(reverse("consent_texts")).content.decode()
    assert "<script>alert(1)</script>" not in shown and "&lt;script&gt;" in shown
    assert "<strong>sore</strong>" in shown
    again = client.post(reverse("consent_texts"), {"version": "2026-2", "title": "Typed title", "body": "Typed"})
    text = again.content.decode()
    assert "Version: &#x27;2026-2&#x27; exists already" in text and "Typed title" in text


@pytest.mark.django_db
def test_settings_are_the_owners_alone(client, therapist, front_desk):
    for member in (therapist, front_desk):
        login(client, member.user)
        assert client.post(reverse("clinic_settings"), {"name": "Mine"}).status_code == 403
        assert client.post(reverse("consent_texts"), {"version": "x", "title": "x", "body": "x"}).status_code == 403
    assert not AuditEvent.objects.filter(action__in=["clinic_settings_update", "consent_text_publish"]).exists()
