"""The client's portal: their own record only, in plain language, with the home programme."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from backcare.clinic.models import AuditEvent
from backcare.clinic.services import consent as consent_services
from backcare.clinic.services import courses
from backcare.clinic.services import intake as intake_services
from clinic_fixtures import login


def submitted(client_obj: Any, *yes: str, **changes: Any) -> Any:
    """Sign consent and submit a complete intake through the services, as the client's pages do."""
    consent_services.sign_consent(client_obj, consent_services.current_consent_text(), client_obj.full_name)
    answers: dict[str, Any] = {
        "pain_regions": ["lower_back"],
        "pain_intensity": "5",
        "pain_duration_weeks": "2",
        "pain_first_episode": "yes",
        "pain_onset": "sudden_movement",
        "pain_medically_assessed": "no",
        "goals": ["muscle_tension"],
        "pregnant": "no",
        **{f"sb_{i}": "disagree" for i in range(1, 9)},
        "sb_9": "moderately",
    }
    for q in intake_services.intake_form().questions:
        if not q.therapist_only and not q.only_if:
            answers[q.name] = "yes" if q.finding in yes else "no"
    answers.update(changes)
    intake = intake_services.save_draft(client_obj, answers)
    return intake_services.submit(intake)


def test_portal_shows_next_steps_in_order(client, client_record):
    login(client, client_record.user)
    page = client.get(reverse("portal")).content.decode()
    assert "Read and sign the consent form" in page and "Not signed yet" in page and "Not started yet" in page
    consent_services.sign_consent(client_record, consent_services.current_consent_text(), "Cora Client")
    page = client.get(reverse("portal")).content.decode()
    assert "Answer your health questions" in page and "You signed version 1" in page
    assert AuditEvent.objects.filter(client=client_record, action="view", detail__page="portal").count() == 2


def test_portal_explains_the_screening_in_plain_language(client, client_record):
    screening = submitted(client_record, "dvt_history", goals_text="<script>alert('x')</script>")
    assert screening.decision == "clearance_required"
    login(client, client_record.user)
    page = client.get(reverse("portal")).content.decode()
    assert "please talk to your doctor" in page
    assert "Your therapist will go through your answers" in page
    for finding in screening.result["findings"]:
        assert finding["summary"].replace("'", "&#x27;") in page
        assert finding["rationale"].replace("'", "&#x27;") not in page
        for source in finding["sources"]:
            assert source not in page
    assert "clearance_required" not in page  # no codes, only words
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page


def test_client_sees_only_their_own_record(client, make_client, client_record, therapist):
    other = make_client(therapist, username="bob", first_name="Bob", last_name="Other", email="bob@x.test")
    submitted(other, "fever", goals_text="Bob's secret goal")
    login(client, client_record.user)
    page = client.get(reverse("portal")).content.decode()
    assert "Bob" not in page and "secret goal" not in page and "No massage for now" not in page
    assert client.get(reverse("portal_intake")).status_code == 302  # to consent: Cora has not signed; not Bob's
    # Staff pages about Bob are closed to Cora.
    assert client.get(reverse("intake_review", args=[other.pk])).status_code == 403
    assert client.post(reverse("invite_client", args=[other.pk])).status_code == 403
    assert not AuditEvent.objects.filter(client=other, user=client_record.user).exists()


def test_staff_get_no_portal(client, therapist):
    login(client, therapist.user)
    assert client.get(reverse("portal")).status_code == 403
    assert client.get(reverse("consent")).status_code == 403
    assert client.get(reverse("portal_home_programme")).status_code == 403


def test_anonymous_is_sent_to_sign_in(client):
    for name in ("portal", "consent", "portal_intake", "portal_home_programme"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and reverse("login") in response["Location"]


def test_home_programme_is_printable(client, client_record, therapist):
    login(client, client_record.user)
    page = client.get(reverse("portal_home_programme")).content.decode()
    assert "will give you a home programme when your course starts" in page
    submitted(client_record)
    courses.start_course(
        client_record, staff=therapist, home_programme={"exercise": "Walk 20 minutes a day.", "posture": "<b>Sit</b>"}
    )
    page = client.get(reverse("portal_home_programme")).content.decode()
    assert "Exercise and staying active" in page and "Walk 20 minutes a day." in page
    assert "&lt;b&gt;Sit&lt;/b&gt;" in page
    assert "clinic/intake.css" in page
    portal = client.get(reverse("portal")).content.decode()
    assert "0 of" in portal and reverse("portal_home_programme") in portal
    assert AuditEvent.objects.filter(client=client_record, detail__page="home programme").count() == 2
