"""The client fills in the course's Roland-Morris in the portal, before the session: at baseline, at reassessment
(once the course check session has been held) and at discharge (before the last planned session), only when one is
due. Scored by the clinical core, stored as the same outcome record the therapist enters, audited, and shown to
the therapist as filled in by the client."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from backcare.clinic.models import AuditEvent, Outcome
from backcare.clinic.services import courses as course_service
from backcare.clinic.services import outcomes as outcome_service
from backcare.clinic.services import sessions as session_service
from backcare.clinical.instruments import score_rmdq
from clinic_fixtures import login


@pytest.fixture
def course(therapist: Any, client_record: Any, screen_client: Any) -> Any:
    screen_client(client_record)
    return course_service.start_course(client_record, staff=therapist, sessions_planned=4)


def hold_session(course: Any, therapist: Any) -> None:
    update = session_service.health_update(course, staff=therapist, new_findings=[], pain_now=4)
    session_service.record_session(
        course,
        session_service.SessionNote(
            techniques=["remedial"], pressure=3, body_chart={}, pain_before=4, pain_after=2, response="relaxed"
        ),
        staff=therapist,
        health_update=update,
    )


def fill_in(page_client: Any, ticks: list[int], timepoint: str) -> Any:
    data = {"timepoint": timepoint, **{f"item_{n}": "on" for n in ticks}}
    return page_client.post(reverse("portal_questionnaire"), data)


def test_baseline_reassessment_and_discharge_in_turn(client, client_record, therapist, course):
    login(client, client_record.user)
    assert outcome_service.questionnaire_due(client_record).timepoint == "baseline"
    home = client.get(reverse("portal")).content.decode()
    assert 'id="questionnaire-due"' in home and "at the start of your course" in home
    page = client.get(reverse("portal_questionnaire"))
    assert page.status_code == 200 and 'name="item_24"' in page.content.decode()
    assert fill_in(client, [1, 2, 3, 5, 8], "baseline").status_code == 302
    baseline = Outcome.objects.get(instrument="rmdq", timepoint="baseline")
    assert baseline.score == score_rmdq([n in (1, 2, 3, 5, 8) for n in range(1, 25)]) == 5
    assert baseline.by_client and baseline.course == course and baseline.recorded_by == client_record.user
    event = AuditEvent.objects.get(action="record_outcome", object_id=str(baseline.pk))
    assert event.detail["by_client"] is True and event.client_id == client_record.pk
    # Nothing due between baseline and the course check.
    assert outcome_service.questionnaire_due(client_record) is None
    assert 'id="questionnaire-due"' not in client.get(reverse("portal")).content.decode()
    assert client.get(reverse("portal_questionnaire")).status_code == 302
    hold_session(course, therapist)
    assert outcome_service.questionnaire_due(client_record) is None
    hold_session(course, therapist)  # session 2: the course check
    assert outcome_service.questionnaire_due(client_record).timepoint == "reassessment"
    assert fill_in(client, [1, 2], "reassessment").status_code == 302
    assert Outcome.objects.get(timepoint="reassessment").score == 2
    hold_session(course, therapist)  # session 3 of 4: the next is the last
    assert outcome_service.questionnaire_due(client_record).timepoint == "discharge"
    assert "before your last session" in client.get(reverse("portal")).content.decode()
    assert fill_in(client, [], "discharge").status_code == 302
    assert Outcome.objects.get(timepoint="discharge").score == 0
    assert outcome_service.questionnaire_due(client_record) is None


def test_the_therapist_sees_the_score_as_filled_in_by_the_client(client, client_record, therapist, course):
    login(client, client_record.user)
    fill_in(client, [4, 6], "baseline")
    client.logout()
    login(client, therapist.user)
    page = client.get(reverse("course_detail", args=[course.pk])).content.decode()
    assert "2 out of 24" in page and "filled in by the client" in page
    staff_page = client.get(reverse("rmdq_record", args=[course.pk]) + "?timepoint=baseline").content.decode()
    assert "filled in by the client" in staff_page


def test_a_questionnaire_not_due_is_refused_and_nothing_is_saved(client, client_record, course):
    login(client, client_record.user)
    response = fill_in(client, [1], "reassessment")
    assert response.status_code == 302
    assert not Outcome.objects.filter(instrument="rmdq").exists()
    fill_in(client, [1], "baseline")
    again = client.post(reverse("portal_questionnaire"), {"timepoint": "baseline", "item_1": "on"}, follow=True)
    assert "no questionnaire for you to fill in now" in again.content.decode()
    assert Outcome.objects.filter(instrument="rmdq", timepoint="baseline").count() == 1


def test_a_staff_entered_baseline_means_none_is_due(client_record, therapist, course):
    outcome_service.record_rmdq(
        client_record, ticked=[False] * 24, timepoint="baseline", course=course, by=therapist.user
    )
    assert outcome_service.questionnaire_due(client_record) is None


def test_no_questionnaire_without_an_active_course(client, client_record, therapist, course):
    course_service.end_course(course, status="stopped", staff=therapist)
    assert outcome_service.questionnaire_due(client_record) is None
    login(client, client_record.user)
    assert client.get(reverse("portal_questionnaire")).status_code == 302


def test_staff_cannot_open_the_portal_questionnaire(client, therapist, course):
    login(client, therapist.user)
    assert client.get(reverse("portal_questionnaire")).status_code == 403
