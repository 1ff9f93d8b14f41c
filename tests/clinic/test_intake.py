"""The online intake through its pages: drafts, missing answers, submission and screening, STarT Back, the
therapist's review."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.urls import reverse

from backcare.clinic.models import AuditEvent, Intake, Outcome, Screening
from backcare.clinic.services import consent as consent_services
from backcare.clinic.services.intake import intake_form
from backcare.clinical.instruments import START_BACK_COPYRIGHT, START_BACK_ITEMS
from clinic_fixtures import login


def sign(client: Any) -> None:
    consent_services.sign_consent(client, consent_services.current_consent_text(), client.full_name)


def full_answers(*yes: str, start_back: bool = True, **changes: Any) -> dict[str, Any]:
    """A complete form: every question answered "no" except the findings in `yes`."""
    data: dict[str, Any] = {
        "pain_regions": ["lower_back"],
        "pain_intensity": "4",
        "pain_duration_weeks": "3",
        "pain_first_episode": "no",
        "pain_onset": "gradual",
        "pain_medically_assessed": "yes",
        "goals": ["mobility"],
        "goals_text": "",
        "pregnant": "no",
        "pregnancy_weeks": "",
        "notes": "",
    }
    for q in intake_form().questions:
        if not q.therapist_only and not q.only_if:
            data[q.name] = "yes" if q.finding in yes else "no"
    if start_back:
        data.update({f"sb_{i}": "disagree" for i in range(1, 9)})
        data["sb_9"] = "slightly"
    data.update(changes)
    return data


@pytest.fixture
def cora(client, client_record):
    """The Django test client signed in as the portal client Cora, who has signed consent."""
    sign(client_record)
    return login(client, client_record.user)


def test_draft_is_kept_across_visits(cora, client_record):
    url = reverse("portal_intake")
    response = cora.post(url, {"action": "save", "pain_intensity": "7", "f_fever": "no", "goals_text": "Walk the dog"})
    assert response.status_code == 302
    intake = Intake.objects.get(client=client_record)
    assert intake.status == "draft" and intake.answers["pain_intensity"] == "7"
    page = cora.get(url).content.decode()
    assert re.search(r'name="pain_intensity" value="7" checked', page)
    assert re.search(r'name="f_fever" value="no" checked', page)
    assert "Walk the dog" in page
    # Every save updates the same draft.
    cora.post(url, {"action": "save", "pain_intensity": "5", "goals_text": "Walk the dog"})
    intake.refresh_from_db()
    assert Intake.objects.filter(client=client_record).count() == 1
    assert intake.answers["pain_intensity"] == "5" and intake.answers["f_fever"] == ""
    assert AuditEvent.objects.filter(client=client_record, action="view", detail__page="portal intake").exists()


def test_submit_with_missing_answers_lists_each_and_keeps_input(cora, client_record):
    data = full_answers(action="submit")
    del data["f_fever"]
    data["pain_regions"] = []
    data["f_open_wound"] = "yes"  # yes, but no region given
    data["goals_text"] = "Sleep through the night"
    response = cora.post(reverse("portal_intake"), data)
    assert response.status_code == 200
    page = response.content.decode()
    top = page[page.index('id="missing"') : page.index("</ul>", page.index('id="missing"'))]
    assert "3 answers are missing" in page
    assert 'href="#q-f_fever"' in top and "Have you had a fever" in top
    assert 'href="#q-pain_regions"' in top and "Where do you feel pain?" in top
    assert 'href="#q-f_open_wound_regions"' in top and "Tick where" in top
    assert 'id="err-f_fever"' in page  # marked next to the field too
    assert "Sleep through the night" in page
    assert re.search(r'name="f_open_wound" value="yes" checked', page)
    intake = Intake.objects.get(client=client_record)
    assert intake.status == "draft" and intake.answers["goals_text"] == "Sleep through the night"
    assert not Screening.objects.exists()


def test_out_of_range_numbers_are_refused_by_question(cora):
    data = full_answers("recent_surgery", action="submit", pain_intensity="12", f_recent_surgery_regions=["abdomen"])
    response = cora.post(reverse("portal_intake"), data)
    page = response.content.decode()
    assert "Give a whole number from 0 to 10" in page
    assert "Say how many weeks ago, for “Have you had an operation recently?”" in page
    assert not Screening.objects.exists()


def test_full_submission_screens_and_stores_the_decision(cora, client_record):
    data = full_answers("bruise", action="submit", f_bruise_regions=["thigh_left"])
    response = cora.post(reverse("portal_intake"), data)
    assert response.status_code == 302 and response["Location"] == reverse("portal")
    intake = Intake.objects.get(client=client_record)
    assert intake.status == "submitted" and intake.submitted_at is not None
    doc = intake.document
    assert doc["schema_version"] == "1" and doc["id"] == f"client-{client_record.pk}"
    assert doc["age"] == client_record.age_on() and doc["sex"] == "female"
    assert doc["pain"] == {
        "regions": ["lower_back"],
        "intensity": 4,
        "duration_weeks": 3,
        "first_episode": False,
        "onset": "gradual",
        "medically_assessed": True,
    }
    assert doc["findings"] == [{"code": "bruise", "region": "thigh_left"}]
    assert doc["pregnancy_weeks"] is None and doc["goals"] == ["mobility"]
    screening = Screening.objects.get(client=client_record)
    assert screening.kind == "intake" and screening.intake == intake
    assert screening.decision == "proceed_with_precautions"
    assert "thigh_left" in screening.result["precautions"]["avoid_regions"]
    # Sending the same form again creates nothing twice.
    again = cora.post(reverse("portal_intake"), data)
    assert again.status_code == 302
    assert Screening.objects.count() == 1 and Intake.objects.count() == 1
    portal = cora.get(reverse("portal")).content.decode()
    assert "Massage can go ahead, with some changes" in portal
    assert "Left thigh" in portal


def test_red_flag_answer_gives_a_referral(cora, client_record):
    data = full_answers("saddle_anaesthesia", "bladder_dysfunction", action="submit")
    cora.post(reverse("portal_intake"), data)
    screening = Screening.objects.get(client=client_record)
    assert screening.decision == "refer_emergency" and screening.referral == "emergency"
    page = cora.get(reverse("portal")).content.decode()
    assert "Please get medical help now" in page
    for finding in screening.result["findings"]:
        assert finding["summary"] in page.replace("&#x27;", "'")
        assert finding["rationale"] not in page


def test_pregnancy_week_is_required_and_recorded(cora, client_record):
    data = full_answers(action="submit", pregnant="yes", pregnancy_weeks="")
    page = cora.post(reverse("portal_intake"), data).content.decode()
    assert "How many weeks pregnant are you?" in page[page.index('id="missing"') :]
    assert "Does your pregnancy have complications" in page
    data.update(pregnancy_weeks="20", f_pregnancy_complicated="no")
    cora.post(reverse("portal_intake"), data)
    intake = Intake.objects.get(client=client_record)
    assert intake.document["pregnancy_weeks"] == 20
    assert "side_lying" in Screening.objects.get().result["precautions"]["positioning"]


def test_start_back_scored_when_on(cora, client_record):
    page = cora.get(reverse("portal_intake")).content.decode()
    assert START_BACK_COPYRIGHT in page and START_BACK_ITEMS[0] in page
    data = full_answers(action="submit", sb_5="agree", sb_6="agree", sb_7="agree", sb_8="agree", sb_9="extremely")
    cora.post(reverse("portal_intake"), data)
    outcome = Outcome.objects.get(client=client_record, instrument="start_back")
    assert outcome.score == 5 and outcome.answers["group"] == "high"
    assert Intake.objects.get().document["start_back"]["bothersomeness"] == "extremely"


@pytest.mark.parametrize("switch", ["settings", "clinic"])
def test_start_back_hidden_when_switched_off(switch, cora, client_record, settings):
    if switch == "settings":
        settings.BACKCARE = {**settings.BACKCARE, "START_BACK": False}
    else:
        client_record.clinic.start_back_enabled = False
        client_record.clinic.save()
    page = cora.get(reverse("portal_intake")).content.decode()
    assert START_BACK_ITEMS[0] not in page and "Keele" not in page
    response = cora.post(reverse("portal_intake"), full_answers(action="submit", start_back=False))
    assert response.status_code == 302
    assert "start_back" not in Intake.objects.get().document
    assert not Outcome.objects.filter(instrument="start_back").exists()


def test_intake_needs_consent_first(client, client_record):
    login(client, client_record.user)
    response = client.get(reverse("portal_intake"))
    assert response.status_code == 302 and response["Location"] == reverse("consent")
    response = client.post(reverse("portal_intake"), full_answers(action="submit"))
    assert response.status_code == 302 and response["Location"] == reverse("consent")
    assert not Intake.objects.exists()


def test_staff_cannot_use_the_portal_intake(client, therapist):
    login(client, therapist.user)
    assert client.get(reverse("portal_intake")).status_code == 403


def test_front_desk_cannot_open_intake_review(client, client_record, front_desk, therapist2):
    login(client, front_desk.user)
    url = reverse("intake_review", args=[client_record.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, full_answers(action="complete")).status_code == 403
    login(client, therapist2.user)  # another therapist's client: not found
    assert client.get(url).status_code == 404
    login(client, client_record.user)
    assert client.get(url).status_code == 403
    assert not Screening.objects.exists()


def review_form(page_client: Any, url: str) -> str:
    page = page_client.get(url).content.decode()
    return re.search(r'name="submission_key" value="([^"]+)"', page).group(1)


def test_therapist_reviews_changes_and_rescreens(cora, client, client_record, therapist):
    cora.post(reverse("portal_intake"), full_answers(action="submit", goals_text="<script>alert(1)</script>"))
    assert Screening.objects.get().decision == "proceed"
    login(client, therapist.user)
    url = reverse("intake_review", args=[client_record.pk])
    page = client.get(url).content.decode()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "therapist only" in page and "under the influence" in page
    key = review_form(client, url)
    data = full_answers(action="complete", goals_text="<script>alert(1)</script>", submission_key=key)
    # The therapist-only question must be answered at review.
    page = client.post(url, data).content.decode()
    assert "Please answer “Is the client under the influence" in page
    assert Screening.objects.count() == 1
    key = re.search(r'name="submission_key" value="([^"]+)"', page).group(1)
    data.update(submission_key=key, f_impaired_consent="no", f_fever="yes", note="Checked with the client.")
    response = client.post(url, data)
    assert response.status_code == 302
    assert client.post(url, data).status_code == 302  # sent twice: acted on once
    intake = Intake.objects.get()
    assert intake.status == "reviewed" and intake.reviewed_by == therapist
    assert intake.review_note == "Checked with the client." and intake.answers["f_fever"] == "yes"
    review = Screening.objects.filter(kind="review").get()
    assert review.decision == "postpone" and review.created_by == therapist.user
    event = AuditEvent.objects.get(action="review_intake")
    assert "f_fever" in event.detail["changed"] and "f_impaired_consent" in event.detail["changed"]
    page = client.get(url).content.decode()
    assert "No massage today" in page and reverse("client_detail", args=[client_record.pk]) in page
    # Findings read as words, never as raw codes.
    assert "(postpone)" not in page and "(Postpone" in page


def test_staff_fill_in_for_a_client_without_portal(client, make_client, therapist):
    paper = make_client(therapist, first_name="Pat", last_name="Paper", sex="male", email="")
    login(client, therapist.user)
    url = reverse("intake_review", args=[paper.pk])
    page = client.get(url).content.decode()
    assert "No intake yet" in page and "Are you pregnant?" not in page
    assert "Have you given birth" not in page
    key = review_form(client, url)
    client.post(url, {"action": "save", "pain_intensity": "6", "submission_key": key})
    assert Intake.objects.get(client=paper).answers["pain_intensity"] == "6"
    key = review_form(client, url)
    data = full_answers(action="complete", f_impaired_consent="no", submission_key=key)
    del data["pregnant"]
    assert client.post(url, data).status_code == 302
    intake = Intake.objects.get(client=paper)
    assert intake.status == "reviewed" and intake.document["sex"] == "male"
    assert Screening.objects.get(client=paper).kind == "review"


def test_new_findings_of_contract_1_1_go_into_the_document_with_weeks_and_region(cora, client_record):
    # A recent spinal injection with its region and weeks, a recent birth with its weeks, a hernia without a region.
    data = full_answers(
        "spinal_procedure_recent",
        "postpartum",
        "hernia",
        action="submit",
        f_spinal_procedure_recent_regions=["lower_back"],
        f_spinal_procedure_recent_weeks="1",
        f_postpartum_weeks="3",
    )
    response = cora.post(reverse("portal_intake"), data)
    assert response.status_code == 302
    doc = Intake.objects.get(client=client_record).document
    assert {"code": "spinal_procedure_recent", "weeks_ago": 1, "region": "lower_back"} in doc["findings"]
    assert {"code": "postpartum", "weeks_ago": 3} in doc["findings"]
    assert {"code": "hernia"} in doc["findings"]
    result = Screening.objects.get(client=client_record).result
    assert {"lower_back", "abdomen", "groin", "thigh_left", "leg_right"} <= set(result["precautions"]["avoid_regions"])
    assert result["rule_base"]["contract"] == "1.1"


def test_a_recent_birth_needs_its_weeks(cora, client_record):
    data = full_answers("postpartum", action="submit")
    page = cora.post(reverse("portal_intake"), data).content.decode()
    assert "Have you given birth in the last 6 weeks?" in page[page.index('id="missing"') :]
    assert not Screening.objects.filter(client=client_record).exists()


def test_fever_after_a_spinal_injection_through_the_form_is_a_same_day_referral(cora, client_record):
    data = full_answers(
        "fever",
        "spinal_procedure_recent",
        action="submit",
        f_spinal_procedure_recent_weeks="4",
    )
    cora.post(reverse("portal_intake"), data)
    screening = Screening.objects.get(client=client_record)
    assert screening.decision == "refer_urgent"
    assert screening.result["client_message"]["timeframe"] == "within_24_hours"
