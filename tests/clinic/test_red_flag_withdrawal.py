"""A red flag cannot be unticked without a medical assessment on record: in the pre-session health update and in the
intake review, removing or downgrading a finding that gives emergency, urgent, postpone or clearance is refused
until who assessed the client, when and with what outcome is recorded; then it is kept and audited with the reason."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from backcare.clinic.models import AuditEvent, MedicalAssessment, Screening
from backcare.clinic.services import courses as course_service
from clinic_fixtures import login

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def fresh_submission_keys(db):
    from django.core.cache import cache

    cache.clear()


def assessment(**changes):
    data = {
        "assessment_assessed_by": "Dr A. Jones, GP",
        "assessment_service": "Riverside GP practice",
        "assessment_assessed_on": dt.date.today().strftime("%d/%m/%Y"),
        "assessment_outcome": "No clot now; massage of the legs is fine with normal pressure.",
        "assessment_reason": "The physician has assessed the past clot.",
    }
    data.update(changes)
    return data


@pytest.fixture
def dvt_course(client_record, therapist, screen_client):
    from hardstop_support import clear

    screening = screen_client(client_record, "dvt_history")
    clear(screening, therapist)
    return course_service.start_course(client_record, staff=therapist)


def test_health_update_refuses_to_untick_a_clearance_finding_without_an_assessment(
    client, therapist, dvt_course, client_record
):
    login(client, therapist.user)
    url = reverse("health_update", args=[dvt_course.pk])
    before = Screening.objects.count()
    response = client.post(url, {"anything_new": "no", "pain_now": "3", "resolved": ["dvt_history"]})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Past blood clot (DVT or pulmonary embolism) needs a medical assessment on record" in html
    assert Screening.objects.count() == before and not MedicalAssessment.objects.exists()
    assert not AuditEvent.objects.filter(action="resolve_findings").exists()
    # Half an assessment: each missing part is named, what was typed comes back.
    response = client.post(
        url,
        {
            "anything_new": "no",
            "pain_now": "3",
            "resolved": ["dvt_history"],
            **assessment(assessment_outcome="", assessment_assessed_on=""),
        },
    )
    html = response.content.decode()
    assert "Assessed on: give the date of the assessment." in html
    assert "Outcome: say what the assessment found or advised." in html
    assert 'value="Riverside GP practice"' in html
    assert Screening.objects.count() == before


def test_health_update_with_an_assessment_withdraws_and_audits(client, therapist, dvt_course, client_record):
    login(client, therapist.user)
    url = reverse("health_update", args=[dvt_course.pk])
    letter = SimpleUploadedFile("letter.pdf", PDF, content_type="application/pdf")
    response = client.post(
        url,
        {"anything_new": "no", "pain_now": "3", "resolved": ["dvt_history"], **assessment(assessment_letter=letter)},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    row = MedicalAssessment.objects.get()
    assert row.assessed_by == "Dr A. Jones, GP" and row.service == "Riverside GP practice"
    assert [w["rule"] for w in row.withdrawn] == ["clearance.dvt_history"]
    assert row.letter.name.startswith("assessments/") and "letter" not in row.letter.name.rsplit("/", 1)[-1]
    event = AuditEvent.objects.get(action="withdraw_red_flag")
    assert event.detail["reason"] == "The physician has assessed the past clot."
    assert event.detail["withdrawn"][0]["decision"] == "clearance_required"


def test_a_fake_letter_is_refused(client, therapist, dvt_course):
    login(client, therapist.user)
    letter = SimpleUploadedFile("letter.pdf", b"<html>no</html>", content_type="application/pdf")
    response = client.post(
        reverse("health_update", args=[dvt_course.pk]),
        {"anything_new": "no", "pain_now": "3", "resolved": ["dvt_history"], **assessment(assessment_letter=letter)},
    )
    assert "Their letter: the file is named .pdf but is not a real PDF file." in response.content.decode()
    assert not MedicalAssessment.objects.exists()


def test_intake_review_refuses_to_untick_a_red_flag_the_client_reported(client, therapist, client_record):
    from backcare.clinic.services import intake as intake_service
    from matrix_support import intake_answers

    def text(label):
        return label

    answers = intake_answers(text, "dvt_history")
    draft = intake_service.save_draft(client_record, answers, by=client_record.user)
    submitted = intake_service.submit(draft, by=client_record.user)
    assert submitted.decision == "clearance_required"
    login(client, therapist.user)
    url = reverse("intake_review", args=[client_record.pk])
    page = client.get(url)
    key = page.context["form"].initial["submission_key"]
    post = {**answers, "f_dvt_history": "no", "f_impaired_consent": "no", "submission_key": key}
    response = client.post(url, post)
    html = response.content.decode()
    assert "needs a medical assessment on record" in html
    assert client_record.screenings.count() == 1
    post["submission_key"] = response.context["form"].data["submission_key"]
    response = client.post(url, {**post, **assessment()})
    assert response.status_code == 302
    latest = client_record.screenings.order_by("-id").first()
    assert latest.kind == "review" and latest.decision != "clearance_required"
    assert MedicalAssessment.objects.get().screening == latest
    assert AuditEvent.objects.filter(action="withdraw_red_flag", client=client_record).exists()


def test_a_referral_gets_its_outcome_once(client, therapist, client_record, screen_client):
    from backcare.clinic.services.referrals import create_referral

    screening = screen_client(client_record, "dvt_history")
    referral = create_referral(
        client_record, staff=therapist, urgency="routine", reason="Past clot.", screening=screening
    )
    login(client, therapist.user)
    url = reverse("referral_outcome", args=[referral.pk])
    detail = client.get(reverse("referral_detail", args=[referral.pk])).content.decode()
    assert "Record the outcome" in detail
    key = client.get(url).context["form"].initial["submission_key"]
    response = client.post(url, {"assessed_by": "", "assessed_on": "", "outcome": "", "submission_key": key})
    html = response.content.decode()
    assert "Seen by: this is required." in html and "What was advised: this is required." in html
    data = {
        "assessed_by": "Dr A. Jones, GP",
        "service": "Riverside GP practice",
        "assessed_on": dt.date.today().strftime("%d/%m/%Y"),
        "outcome": "Seen; no clot. Massage may go ahead.",
        "submission_key": key,
    }
    assert client.post(url, data).status_code == 302
    assert client.post(url, data).status_code == 302  # sent twice: recorded once
    row = MedicalAssessment.objects.get(referral=referral)
    assert row.outcome == "Seen; no clot. Massage may go ahead."
    assert AuditEvent.objects.filter(action="referral_outcome").count() == 1
    detail = client.get(reverse("referral_detail", args=[referral.pk])).content.decode()
    assert "Seen; no clot. Massage may go ahead." in detail and "Record the outcome" not in detail
