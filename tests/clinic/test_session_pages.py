"""The pre-session health update and the session note through the Django test client: hard stops, precautions that
need a reason, the guarding prompt, double submission, invalid input and escaping."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.urls import reverse

from backcare.clinic.models import AuditEvent, Screening, TreatmentSession
from backcare.clinic.services import courses as course_service
from backcare.clinic.services.sessions import DEFAULT_AFTERCARE
from clinic_fixtures import login


@pytest.fixture
def course(therapist: Any, client_record: Any, screen_client: Any) -> Any:
    screen_client(client_record)
    return course_service.start_course(client_record, staff=therapist)


@pytest.fixture
def careful_course(therapist: Any, client_record: Any, screen_client: Any) -> Any:
    """A course whose screening says: avoid the left thigh (bruise), pressure at most 3 (blood thinners)."""
    screen_client(client_record, "anticoagulants", {"code": "bruise", "region": "thigh_left"})
    return course_service.start_course(client_record, staff=therapist)


def nothing_new(page_client: Any, course: Any, pain: str = "4", once: str = "") -> Any:
    return page_client.post(
        reverse("health_update", args=[course.pk]), {"anything_new": "no", "pain_now": pain, "once": once}
    )


def open_session_form(page_client: Any, course: Any) -> tuple[str, Any]:
    response = nothing_new(page_client, course)
    assert response.status_code == 302, response.content.decode()[:3000]
    url = response["Location"]
    page = page_client.get(url)
    assert page.status_code == 200
    return url, page


def session_post(page: Any, **changes: Any) -> dict[str, Any]:
    form = page.context["form"]
    data: dict[str, Any] = {
        "submission_key": form.initial["submission_key"],
        "subjective": "Sore after gardening.",
        "objective": "Tight lumbar muscles.",
        "assessment": "Muscle strain.",
        "plan_note": "Review in a week.",
        "treated": ["lower_back"],
        "tension_lower_back": "2",
        "pain_lower_back": "4",
        "techniques": ["remedial"],
        "pressure": "3",
        "response": "relaxed",
        "pain_before": "4",
        "pain_after": "2",
        "aftercare": form.initial["aftercare"],
    }
    data.update(changes)
    return data


def test_nothing_new_leads_to_the_session_form(client, therapist, course):
    login(client, therapist.user)
    page = client.get(reverse("health_update", args=[course.pk]))
    body = page.content.decode()
    assert "Anything new since last time?" in body and "Nothing new" in body
    assert "Fever (38 C or more)" in body  # the findings list, grouped
    url, page = open_session_form(client, course)
    update = Screening.objects.get(kind="pre_session")
    assert url == reverse("session_record", args=[course.pk, update.pk])
    body = page.content.decode()
    assert 'value="remedial" id="id_techniques_remedial" checked' in body  # the course's techniques preselected
    assert DEFAULT_AFTERCARE.split(".")[0] in body
    assert 'name="submission_key"' in body and 'class="bodymap"' in body
    assert page.context["form"].initial["pain_before"] == 4


def test_fever_stops_the_session(client, therapist, course, client_record):
    login(client, therapist.user)
    response = client.post(
        reverse("health_update", args=[course.pk]),
        {"anything_new": "yes", "findings": ["fever"], "pain_now": "4"},
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "No session today" in body and "Stop:" in body
    assert 'id="session-form"' not in body and "submission_key" not in body
    assert reverse("referral_create", args=[client_record.pk]) in body
    update = Screening.objects.get(kind="pre_session")
    assert update.blocks_treatment
    # Going to the session form directly is stopped too.
    page = client.get(reverse("session_record", args=[course.pk, update.pk]))
    assert 'id="session-form"' not in page.content.decode() and "No session today" in page.content.decode()
    # And so is the next health update, while the fever is on record.
    detail = client.get(reverse("course_detail", args=[course.pk]))
    assert detail.status_code == 200
    assert not TreatmentSession.objects.exists()


def test_new_finding_needing_clearance_stops_the_session(client, therapist, course, client_record):
    login(client, therapist.user)
    response = client.post(
        reverse("health_update", args=[course.pk]),
        {"anything_new": "yes", "findings": ["dvt_history"], "pain_now": "3"},
    )
    body = response.content.decode()
    assert response.status_code == 200 and "clearance must be recorded" in body
    update = Screening.objects.get(kind="pre_session")
    assert reverse("clearance_create", args=[client_record.pk, update.pk]) in body
    assert 'id="session-form"' not in body


def test_regional_finding_becomes_a_precaution_for_today(client, therapist, course):
    login(client, therapist.user)
    response = client.post(
        reverse("health_update", args=[course.pk]),
        {"anything_new": "yes", "findings": ["bruise"], "region_bruise": ["thigh_right"], "pain_now": "3"},
    )
    assert response.status_code == 302
    update = Screening.objects.get(kind="pre_session")
    assert {"code": "bruise", "region": "thigh_right"} in update.document["findings"]
    page = client.get(response["Location"]).content.decode()
    assert "Right thigh" in page.split("Precautions for today")[1]


def test_health_update_form_errors_name_the_field(client, therapist, course):
    login(client, therapist.user)
    url = reverse("health_update", args=[course.pk])
    body = client.post(url, {"anything_new": "yes", "pain_now": "abc"}).content.decode()
    assert "What is new: tick at least one, or choose Nothing new." in body
    assert "Pain now must be a whole number from 0 to 10." in body
    body = client.post(url, {"anything_new": "no", "findings": ["fever"], "pain_now": "3"}).content.decode()
    assert "you ticked something new, so choose Yes" in body
    assert 'value="fever" id="id_findings_fever" checked' in body
    assert not Screening.objects.filter(kind="pre_session").exists()


def test_health_update_sent_twice_screens_once(client, therapist, course):
    login(client, therapist.user)
    first = nothing_new(client, course, once="same-key")
    second = nothing_new(client, course, once="same-key")
    assert first["Location"] == second["Location"]
    assert Screening.objects.filter(kind="pre_session").count() == 1


def test_deviation_needs_a_reason_and_keeps_input(client, therapist, careful_course):
    login(client, therapist.user)
    url, page = open_session_form(client, careful_course)
    body = page.content.decode()
    assert "Left thigh" in body and "3 (moderate)" in body  # precautions beside the form
    data = session_post(
        page,
        treated=["thigh_left", "lower_back"],
        pressure="4",
        subjective="Wants firm work on the thigh.",
        tension_thigh_left="3",
    )
    response = client.post(url, data)
    assert response.status_code == 200
    body = response.content.decode()
    assert "treated left thigh, a region to avoid" in body
    assert "pressure 4 (firm) exceeds the maximum 3 (moderate)" in body
    assert "Wants firm work on the thigh." in body  # input kept
    assert 'value="thigh_left" checked' in body
    assert 'name="tension_thigh_left" value="3"' in body
    assert not TreatmentSession.objects.exists()

    data["deviation_reason"] = "Bruise healed, checked visually; client asked for firmer work."
    response = client.post(url, data)
    session = TreatmentSession.objects.get()
    assert response["Location"] == reverse("session_detail", args=[session.pk])
    assert len(session.deviations) == 2
    detail = client.get(reverse("course_detail", args=[careful_course.pk])).content.decode()
    assert "treated left thigh, a region to avoid" in detail and "Bruise healed, checked visually" in detail


def test_avoided_technique_needs_a_reason(client, therapist, careful_course):
    login(client, therapist.user)
    url, page = open_session_form(client, careful_course)
    response = client.post(url, session_post(page, techniques=["remedial", "deep_tissue"]))
    assert "used Deep-tissue massage, a technique to avoid" in response.content.decode()
    assert not TreatmentSession.objects.exists()


def test_guarding_prompt(client, therapist, course, client_record):
    login(client, therapist.user)
    url, page = open_session_form(client, course)
    response = client.post(url, session_post(page, response="guarding"), follow=True)
    body = response.content.decode()
    assert "The client was guarding against the pressure" in body
    assert reverse("referral_create", args=[client_record.pk]) in body


def test_double_submission_creates_one_session(client, therapist, course):
    login(client, therapist.user)
    url, page = open_session_form(client, course)
    data = session_post(page)
    first = client.post(url, data)
    second = client.post(url, data)
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]
    assert TreatmentSession.objects.count() == 1
    assert AuditEvent.objects.filter(action="record_session").count() == 1
    # The same health update cannot be used for a second session from another form.
    other = client.get(url)
    assert other.status_code == 302 and other["Location"] == first["Location"]


@pytest.mark.parametrize("value", ["11", "abc", "-1"])
def test_invalid_pain_names_the_field(value, client, therapist, course):
    login(client, therapist.user)
    url, page = open_session_form(client, course)
    response = client.post(url, session_post(page, pain_before=value, objective="Keep this note"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Pain before the session must be a whole number from 0 to 10." in body
    assert "Keep this note" in body
    assert not TreatmentSession.objects.exists()


def test_other_missing_fields_are_named(client, therapist, course):
    login(client, therapist.user)
    url, page = open_session_form(client, course)
    data = session_post(page, pressure="", response="", pain_after="", tension_lower_back="7")
    body = client.post(url, data).content.decode()
    assert "Pressure: choose the pressure used (1 to 5)." in body
    assert "Client&#x27;s response to the pressure: choose one." in body
    assert "Enter pain after the session (0 to 10)" in body
    assert "Tension, lower back (lumbar) must be a whole number from 0 to 3." in body


def test_stopped_session_needs_a_reason(client, therapist, course):
    login(client, therapist.user)
    url, page = open_session_form(client, course)
    data = session_post(page, stopped="on", pain_after="", response="")
    body = client.post(url, data).content.decode()
    assert "Why the session was stopped: say why." in body
    data["stop_reason"] = "Client felt faint."
    response = client.post(url, data, follow=True)
    session = TreatmentSession.objects.get()
    assert session.status == "stopped" and session.stop_reason == "Client felt faint."
    assert "Session stopped early:" in response.content.decode()


def test_script_in_soap_is_escaped(client, therapist, course):
    login(client, therapist.user)
    url, page = open_session_form(client, course)
    attack = "<script>alert('x')</script>"
    data = session_post(page, subjective=attack, assessment=attack, deviation_reason=attack)
    response = client.post(url, data, follow=True)
    for body in (response.content.decode(), client.get(reverse("course_detail", args=[course.pk])).content.decode()):
        assert "<script>alert(" not in body
        assert "&lt;script&gt;alert(" in body


def test_session_pages_permissions(client, therapist, therapist2, front_desk, owner, course):
    login(client, therapist.user)
    url, page = open_session_form(client, course)
    client.post(url, session_post(page))
    session = TreatmentSession.objects.get()
    detail = reverse("session_detail", args=[session.pk])
    update = Screening.objects.get(kind="pre_session")
    login(client, front_desk.user)
    assert client.get(detail).status_code == 403
    assert client.get(url).status_code == 403
    assert client.post(reverse("health_update", args=[course.pk]), {"anything_new": "no"}).status_code == 403
    login(client, therapist2.user)
    assert client.get(detail).status_code == 404
    assert client.get(url).status_code == 404
    assert client.post(reverse("health_update", args=[course.pk]), {"anything_new": "no"}).status_code == 404
    login(client, owner.user)
    assert client.get(detail).status_code == 200
    assert AuditEvent.objects.filter(action="view", detail__page="session detail").exists()
    assert Screening.objects.filter(kind="pre_session").get() == update


def test_no_session_beyond_the_planned_number(client, therapist, client_record, screen_client):
    screen_client(client_record)
    course = course_service.start_course(client_record, staff=therapist, sessions_planned=1, reassess_after=1)
    login(client, therapist.user)
    url, page = open_session_form(client, course)
    client.post(url, session_post(page))
    response = client.get(reverse("health_update", args=[course.pk]), follow=True)
    assert "All 1 planned sessions are recorded" in response.content.decode()


def test_finding_that_has_passed_can_be_marked_resolved(client, therapist, course):
    login(client, therapist.user)
    url = reverse("health_update", args=[course.pk])
    client.post(url, {"anything_new": "yes", "findings": ["fever"], "pain_now": "4"})
    # Next visit: the fever is still on record, so saying "nothing new" still stops the session.
    page = client.get(url).content.decode()
    assert 'name="resolved" value="fever"' in page
    assert "No session today" in client.post(url, {"anything_new": "no", "pain_now": "3"}).content.decode()
    # Fever postpones treatment: it is withdrawn only with a medical assessment on record.
    response = client.post(url, {"anything_new": "no", "pain_now": "3", "resolved": ["fever"]})
    assert response.status_code == 200
    assert "needs a medical assessment on record" in response.content.decode()
    assessment = {
        "assessment_assessed_by": "Dr A. Jones, GP",
        "assessment_assessed_on": dt.date.today().strftime("%d/%m/%Y"),
        "assessment_outcome": "Viral illness, recovered; no fever for three days.",
        "assessment_reason": "The fever has passed.",
    }
    response = client.post(url, {"anything_new": "no", "pain_now": "3", "resolved": ["fever"], **assessment})
    assert response.status_code == 302
    latest = Screening.objects.filter(kind="pre_session").order_by("-id").first()
    assert latest.decision == "proceed" and {"code": "fever"} not in latest.document["findings"]
    event = AuditEvent.objects.get(action="resolve_findings")
    assert event.detail["resolved"] == [{"code": "fever"}]


def test_a_stopped_session_records_what_was_advised_and_the_referral(client, therapist, course, client_record):
    from backcare.clinic.services.referrals import create_referral

    referral = create_referral(client_record, staff=therapist, urgency="urgent", reason="New numbness in the leg.")
    login(client, therapist.user)
    url, page = open_session_form(client, course)
    data = session_post(
        page,
        stopped="on",
        pain_after="",
        response="",
        stop_reason="New numbness in the left leg.",
        stop_advice="See the GP today; we will not massage until then.",
        stop_referral=str(referral.pk),
    )
    response = client.post(url, data, follow=True)
    session = TreatmentSession.objects.get()
    assert session.stop_advice == "See the GP today; we will not massage until then."
    assert session.stop_referral == referral
    html = response.content.decode()
    assert "See the GP today" in html and reverse("referral_detail", args=[referral.pk]) in html
