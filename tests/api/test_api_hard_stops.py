"""The hard stops through the REST API: none of them can be undone silently by a program either."""

from __future__ import annotations

import pytest
from api_support import call, make_token, problem

from backcare.clinic.services.screening import treatment_gate
from hardstop_support import YEAR_AGO, clear, episode


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def test_api_refuses_a_course_on_last_years_clearance_and_enforces_restrictions(client_record, therapist):

    token = make_token(therapist.user)
    shoulder = episode(
        client_record, {"code": "recent_surgery", "region": "shoulder_left", "weeks_ago": 3}, when=YEAR_AGO
    )
    clear(shoulder, therapist, given_on=YEAR_AGO.date())
    episode(client_record, {"code": "recent_surgery", "region": "abdomen", "weeks_ago": 2})
    response = call("POST", f"/api/clients/{client_record.pk}/courses", token=token, body={})
    assert response.status_code == 409
    data = problem(response)
    assert data["clearance_pending"] == ["clearance.recent_surgery"]
    assert any("lapsed" in n for n in data["clearance_notes"])

    dvt = episode(client_record, "dvt_history")
    clear(dvt, therapist, avoid_regions=["leg_left"])
    course = call("POST", f"/api/clients/{client_record.pk}/courses", token=token, body={})
    assert course.status_code == 201, course.content
    course_id = course.json()["id"]
    update = call("POST", f"/api/courses/{course_id}/health-updates", token=token, body={"pain_now": 3})
    session = {
        "health_update": update.json()["screening"]["id"],
        "techniques": ["swedish_relaxation"],
        "pressure": 2,
        "body_chart": {"leg_left": {"treated": True}},
        "pain_before": 3,
    }
    refused = call("POST", f"/api/courses/{course_id}/sessions", token=token, body=session)
    assert refused.status_code == 422
    assert "deviation_reason" in {e["field"] for e in problem(refused)["errors"]}


def test_api_health_update_cannot_untick_a_red_flag_without_an_assessment(client_record, therapist):
    import datetime as dt

    from backcare.clinic.models import AuditEvent, MedicalAssessment

    token = make_token(therapist.user)
    clear(episode(client_record, "dvt_history"), therapist)
    course = call("POST", f"/api/clients/{client_record.pk}/courses", token=token, body={}).json()["id"]
    before = client_record.screenings.count()
    body = {"pain_now": 3, "resolved": [{"code": "dvt_history"}]}
    refused = call("POST", f"/api/courses/{course}/health-updates", token=token, body=body)
    assert refused.status_code == 422
    data = problem(refused)
    assert "needs a medical assessment on record" in data["detail"]
    assert {e["field"] for e in data["errors"]} == {"assessment.assessed_by"}
    assert client_record.screenings.count() == before
    body["assessment"] = {
        "assessed_by": "Dr A. Jones, GP",
        "service": "Riverside GP practice",
        "assessed_on": dt.date.today().isoformat(),
        "outcome": "No clot now.",
        "reason": "",
    }
    refused = call("POST", f"/api/courses/{course}/health-updates", token=token, body=body)
    assert refused.status_code == 422, refused.content
    assert {e["field"] for e in problem(refused)["errors"]} == {"assessment.reason"}
    body["assessment"]["reason"] = "Assessed by the GP."
    done = call("POST", f"/api/courses/{course}/health-updates", token=token, body=body)
    assert done.status_code == 201, done.content
    assert MedicalAssessment.objects.get().withdrawn[0]["rule"] == "clearance.dvt_history"
    assert AuditEvent.objects.filter(action="withdraw_red_flag").exists()
    assert treatment_gate(client_record).allowed


def test_api_refuses_a_course_without_signed_consent(client_record, therapist, screen_client):
    token = make_token(therapist.user)
    screen_client(client_record, consent=False)
    response = call("POST", f"/api/clients/{client_record.pk}/courses", token=token, body={})
    assert response.status_code == 409
    assert "No signed consent" in problem(response)["detail"]
    assert not client_record.courses.exists()


def test_api_records_a_stopped_session_with_its_advice_and_referral(client_record, therapist, screen_client):
    from backcare.clinic.services.referrals import create_referral

    token = make_token(therapist.user)
    screen_client(client_record)
    course = call("POST", f"/api/clients/{client_record.pk}/courses", token=token, body={}).json()["id"]
    update = call("POST", f"/api/courses/{course}/health-updates", token=token, body={"pain_now": 3}).json()
    other = create_referral(client_record, staff=therapist, urgency="urgent", reason="Numbness.")
    body = {
        "health_update": update["screening"]["id"],
        "pain_before": 3,
        "stopped": True,
        "stop_reason": "New numbness.",
        "stop_advice": "See the GP today.",
        "stop_referral": other.pk,
    }
    done = call("POST", f"/api/courses/{course}/sessions", token=token, body=body)
    assert done.status_code == 201, done.content
    assert done.json()["stop_referral"] == other.pk and done.json()["stop_advice"] == "See the GP today."
