"""The Django admin is no way around the services: clinical records are read-only there, the audit trail is
read-only for everyone (superusers included), and looking at clinical records in the admin is audited."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model

from backcare.clinic import audit
from backcare.clinic.models import AuditEvent, ConsentText, Screening
from clinic_fixtures import PASSWORD, login

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client: Any) -> Any:
    superuser = get_user_model().objects.create_superuser(username="root", password=PASSWORD, email="r@x.test")
    return login(client, superuser)


@pytest.fixture
def event(therapist: Any, client_record: Any) -> AuditEvent:
    return audit.record(therapist.user, "view", client=client_record, detail={"page": "client detail"})


def test_superuser_can_read_the_audit_trail(admin_client, event):
    listing = admin_client.get("/admin/clinic/auditevent/")
    assert listing.status_code == 200 and "Theo Therapist" in listing.content.decode()
    page = admin_client.get(f"/admin/clinic/auditevent/{event.pk}/change/")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'name="_save"' not in body and "/delete/" not in body


def test_nobody_adds_changes_or_deletes_an_audit_event(admin_client, event):
    assert admin_client.get("/admin/clinic/auditevent/add/").status_code == 403
    assert admin_client.post("/admin/clinic/auditevent/add/", {"actor": "x", "action": "view"}).status_code == 403
    changed = admin_client.post(
        f"/admin/clinic/auditevent/{event.pk}/change/", {"actor": "someone else", "action": "edit"}
    )
    assert changed.status_code == 403
    assert admin_client.get(f"/admin/clinic/auditevent/{event.pk}/delete/").status_code == 403
    assert admin_client.post(f"/admin/clinic/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    bulk = admin_client.post(
        "/admin/clinic/auditevent/", {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"}
    )
    assert bulk.status_code in (200, 302)
    event.refresh_from_db()
    assert event.actor == "Theo Therapist (Therapist)" and event.action == "view"


def test_clinical_records_are_read_only_and_viewing_them_is_audited(admin_client, client_record, screen_client):
    screening = screen_client(client_record, "dvt_history")
    url = f"/admin/clinic/screening/{screening.pk}/change/"
    assert admin_client.get("/admin/clinic/screening/add/").status_code == 403
    assert admin_client.post(url, {"decision": "proceed"}).status_code == 403
    assert admin_client.post(f"/admin/clinic/screening/{screening.pk}/delete/", {"post": "yes"}).status_code == 403
    screening.refresh_from_db()
    assert screening.decision == "clearance_required"

    before = AuditEvent.objects.filter(client=client_record, action="view").count()
    page = admin_client.get(url)
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    seen = AuditEvent.objects.filter(client=client_record, action="view").order_by("-id")
    assert seen.count() == before + 1
    assert seen[0].actor == "root" and seen[0].detail == {"page": "admin: screening"}
    assert admin_client.get("/admin/clinic/screening/").status_code == 200
    assert AuditEvent.objects.filter(detail__page="admin: screenings list").count() == 1

    for model in ("client", "intake", "course", "treatmentsession", "outcome", "referral", "clearance", "consent"):
        assert admin_client.get(f"/admin/clinic/{model}/add/").status_code == 403, model
    assert admin_client.post(f"/admin/clinic/client/{client_record.pk}/change/", {"first_name": "X"}).status_code == 403
    assert Screening.objects.count() == 1


def test_clinic_settings_stay_editable(admin_client, clinic):
    page = admin_client.get(f"/admin/clinic/clinic/{clinic.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' in page.content.decode()


def test_a_signed_consent_text_cannot_be_changed(admin_client, client_record):
    from backcare.clinic.models import Consent

    text = ConsentText.objects.get(version="1")
    page = admin_client.get(f"/admin/clinic/consenttext/{text.pk}/change/")
    assert 'name="_save"' in page.content.decode()
    Consent.objects.create(client=client_record, text=text, signature="Cora Client")
    assert 'name="_save"' not in admin_client.get(f"/admin/clinic/consenttext/{text.pk}/change/").content.decode()
    assert admin_client.post(f"/admin/clinic/consenttext/{text.pk}/change/", {"body": "new"}).status_code == 403


def test_clinic_staff_have_no_admin(client, owner):
    login(client, owner.user)
    response = client.get("/admin/clinic/auditevent/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
