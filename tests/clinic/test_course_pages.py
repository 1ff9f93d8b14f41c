"""Course pages through the Django test client: start from the plan, the full flow to reassessment, the hard stops,
editing and ending a course, and who may see what."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.urls import reverse

from backcare.clinic.models import AuditEvent, Course, Outcome, TreatmentSession
from backcare.clinic.services import courses as course_service
from backcare.clinic.services.screening import record_clearance
from backcare.clinical.instruments import RMDQ_ITEMS
from clinic_fixtures import login


def course_post(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "techniques": ["remedial"],
        "sessions_planned": "4",
        "weeks": "6",
        "reassess_after": "2",
        "goals": "Sit through a working day",
        "adjuncts": ["exercise", "self_management_advice"],
        "home_exercise": "Walk daily.",
        "home_posture": "Move every 30 minutes.",
        "home_relaxation": "Slow breathing.",
        "home_self_massage": "Ball against the muscles beside the spine.",
    }
    data.update(changes)
    return data


def rmdq_post(ticked: int) -> dict[str, str]:
    return {f"item_{n}": "on" for n in range(1, ticked + 1)}


def session_post(page: Any, **changes: Any) -> dict[str, Any]:
    """The session form as the page offers it, filled in like a therapist would."""
    form = page.context["form"]
    data: dict[str, Any] = {
        "submission_key": form.initial["submission_key"],
        "subjective": "Stiff after long drives.",
        "objective": "Tight paraspinals, L3-L5.",
        "assessment": "Postural strain.",
        "plan_note": "Continue; add hip stretches.",
        "treated": ["lower_back"],
        "tension_lower_back": "2",
        "pain_lower_back": "5",
        "techniques": ["remedial"],
        "pressure": "3",
        "response": "relaxed",
        "pain_before": "5",
        "pain_after": "5",
        "aftercare": form.initial["aftercare"],
    }
    data.update(changes)
    return data


def test_full_flow_from_plan_to_reassessment_prompt(client, therapist, client_record, screen_client):
    screen_client(client_record, goals=["postural_strain"])
    login(client, therapist.user)

    page = client.get(reverse("course_start", args=[client_record.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert 'value="remedial" id="id_techniques_remedial" checked' in body
    assert DEFAULT_EXERCISE_START in body
    assert "Sources:" in body and "NICE NG59" in body  # the plan rationale with its sources
    assert "Ease strain from posture" in body  # goals prefilled from the intake

    response = client.post(reverse("course_start", args=[client_record.pk]), course_post())
    course = Course.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("rmdq_record", args=[course.pk]) + "?timepoint=baseline"
    assert course.techniques == ["remedial"] and course.home_programme["exercise"] == "Walk daily."
    assert course.therapist == therapist

    # Baseline Roland-Morris: 24 statements, then 10 ticked.
    page = client.get(response["Location"])
    assert page.content.decode().count('type="checkbox" name="item_') == len(RMDQ_ITEMS)
    response = client.post(response["Location"], rmdq_post(10))
    assert response.status_code == 302
    assert Outcome.objects.get(instrument="rmdq", timepoint="baseline").score == 10

    detail = client.get(reverse("course_detail", args=[course.pk])).content.decode()
    assert "Start next session" in detail and "Reassessment is due" not in detail

    for number in (1, 2):
        response = client.post(
            reverse("health_update", args=[course.pk]), {"anything_new": "no", "pain_now": "5", "once": f"h{number}"}
        )
        assert response.status_code == 302, response.content.decode()[:2000]
        page = client.get(response["Location"])
        assert page.status_code == 200 and 'id="session-form"' in page.content.decode()
        response = client.post(response["Location"], session_post(page))
        session = TreatmentSession.objects.get(number=number)
        assert response["Location"] == reverse("session_detail", args=[session.pk])
    session_page = client.get(response["Location"]).content.decode()
    assert "Reassessment is due" in session_page  # due after session 2

    detail = client.get(reverse("course_detail", args=[course.pk])).content.decode()
    assert "Reassessment is due" in detail
    reassess_url = reverse("rmdq_record", args=[course.pk]) + "?timepoint=reassessment"
    assert reassess_url in detail.replace("&amp;", "&")

    response = client.post(reassess_url, rmdq_post(9), follow=True)
    body = response.content.decode()
    assert "change the technique" in body and "refer" in body
    assert "Roland-Morris score fell from 10 to 9 (1 point, 10%): an improvement, but not yet a meaningful one." in body
    assert "Pain stayed at 5: no change." in body
    assert "Reassessment is due" not in body
    assert AuditEvent.objects.filter(action="view", detail__page="course detail").exists()


DEFAULT_EXERCISE_START = "Stay active. Walk every day"


def test_excluded_techniques_shown_disabled_with_reason_and_refused(client, therapist, client_record, screen_client):
    screen_client(client_record, "anticoagulants")
    login(client, therapist.user)
    url = reverse("course_start", args=[client_record.pk])
    body = client.get(url).content.decode()
    assert 'value="deep_tissue" id="id_techniques_deep_tissue" disabled' in body
    assert "Not allowed: needs at least pressure" in body
    assert "Maximum pressure" in body and "3 (moderate)" in body

    response = client.post(url, course_post(techniques=["remedial", "deep_tissue"], weeks="abc", goals="Keep me"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "the screening excludes Deep-tissue massage" in body
    assert "Weeks must be a whole number from 1 to 52." in body
    assert "Keep me" in body  # what was typed stays
    assert not Course.objects.exists()


@pytest.mark.parametrize("finding", ["saddle_anaesthesia", "fever"])
def test_course_start_refused_when_screening_blocks(finding, client, therapist, client_record, screen_client):
    screen_client(client_record, finding)
    login(client, therapist.user)
    url = reverse("course_start", args=[client_record.pk])
    page = client.get(url)
    assert page.status_code == 403
    body = page.content.decode()
    assert "No course or session can start" in body
    assert reverse("referral_create", args=[client_record.pk]) in body
    assert client.post(url, course_post()).status_code == 403
    assert not Course.objects.exists()


def test_course_start_waits_for_clearance(client, therapist, client_record, screen_client):
    screening = screen_client(client_record, "dvt_history")
    login(client, therapist.user)
    url = reverse("course_start", args=[client_record.pk])
    page = client.get(url)
    assert page.status_code == 403
    assert "clearance must be recorded" in page.content.decode()
    assert reverse("clearance_create", args=[client_record.pk, screening.pk]) in page.content.decode()
    assert client.post(url, course_post()).status_code == 403
    assert not Course.objects.exists()

    record_clearance(screening, given_by="Dr A. Jones, GP", given_on=dt.date.today(), note="Fine.", staff=therapist)
    assert client.get(url).status_code == 200
    assert client.post(url, course_post()).status_code == 302
    assert Course.objects.count() == 1


def test_second_start_goes_to_the_course_in_progress(client, therapist, client_record, screen_client):
    screen_client(client_record)
    login(client, therapist.user)
    url = reverse("course_start", args=[client_record.pk])
    client.post(url, course_post())
    response = client.post(url, course_post())
    course = Course.objects.get()
    assert response["Location"] == reverse("course_detail", args=[course.pk])


def test_edit_course(client, therapist, client_record, screen_client):
    screen_client(client_record)
    course = course_service.start_course(client_record, staff=therapist)
    login(client, therapist.user)
    url = reverse("course_edit", args=[course.pk])
    page = client.get(url)
    assert page.status_code == 200 and 'value="remedial" id="id_techniques_remedial" checked' in page.content.decode()

    response = client.post(url, course_post(sessions_planned="6", reassess_after="7"))
    assert "Reassess after session must be between 1 and the number of sessions (6)." in response.content.decode()
    response = client.post(url, course_post(sessions_planned="6", techniques=["swedish_relaxation"]))
    assert response.status_code == 302
    course.refresh_from_db()
    assert course.sessions_planned == 6 and course.techniques == ["swedish_relaxation"]
    assert AuditEvent.objects.filter(action="update_course").count() == 1
    detail = client.get(reverse("course_detail", args=[course.pk])).content.decode()
    assert "changed" in detail and "Swedish / relaxing massage" in detail


def test_end_course_prompts_referral_when_pain_not_better(client, therapist, client_record, screen_client):
    screen_client(client_record, pain__intensity=6)
    course = course_service.start_course(client_record, staff=therapist)
    login(client, therapist.user)
    url = reverse("course_end", args=[course.pk])
    page = client.get(url).content.decode()
    assert "discharge Roland-Morris" in page
    assert reverse("rmdq_record", args=[course.pk]) + "?timepoint=discharge" in page.replace("&amp;", "&")

    response = client.post(url, {"status": "stopped", "note": ""})
    assert "Note: say why the course was referred or stopped." in response.content.decode()
    response = client.post(url, {"status": "stopped", "note": "Moved away."}, follow=True)
    body = response.content.decode()
    course.refresh_from_db()
    assert course.status == "stopped" and course.end_note == "Moved away."
    assert "pain is not meaningfully better: refer the client" in body
    assert reverse("referral_create", args=[client_record.pk]) in body
    assert "Start next session" not in body
    # The discharge Roland-Morris can still be recorded after the end.
    assert client.get(reverse("rmdq_record", args=[course.pk]) + "?timepoint=discharge").status_code == 200


PAGES = ["course_detail", "course_edit", "course_end", "rmdq_record", "health_update"]


@pytest.mark.parametrize("name", PAGES)
def test_permissions_per_role(name, client, therapist, therapist2, front_desk, owner, client_record, screen_client):
    screen_client(client_record)
    course = course_service.start_course(client_record, staff=therapist)
    url = reverse(name, args=[course.pk])
    assert client.get(url).status_code == 302  # anonymous: to the sign-in page
    login(client, front_desk.user)
    assert client.get(url).status_code == 403
    login(client, therapist2.user)
    assert client.get(url).status_code == 404
    login(client, client_record.user)
    assert client.get(url).status_code == 404
    login(client, owner.user)
    assert client.get(url).status_code == 200
    login(client, therapist.user)
    assert client.get(url).status_code == 200


def test_course_start_permissions(client, therapist, therapist2, front_desk, client_record, screen_client):
    screen_client(client_record)
    url = reverse("course_start", args=[client_record.pk])
    login(client, front_desk.user)
    assert client.get(url).status_code == 403
    assert client.post(url, course_post()).status_code == 403
    login(client, therapist2.user)
    assert client.get(url).status_code == 404
    assert client.post(url, course_post()).status_code == 404
    assert not Course.objects.exists()


def test_shared_therapist_sees_the_course(client, therapist, therapist2, client_record, screen_client):
    screen_client(client_record)
    course = course_service.start_course(client_record, staff=therapist)
    client_record.shared_with.add(therapist2)
    login(client, therapist2.user)
    assert client.get(reverse("course_detail", args=[course.pk])).status_code == 200


def test_script_in_goals_is_escaped(client, therapist, client_record, screen_client):
    screen_client(client_record)
    login(client, therapist.user)
    client.post(reverse("course_start", args=[client_record.pk]), course_post(goals="<script>alert(1)</script>"))
    course = Course.objects.get()
    body = client.get(reverse("course_detail", args=[course.pk])).content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
