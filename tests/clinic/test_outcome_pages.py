"""The Roland-Morris page and the outcome prompts, through the Django test client."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from backcare.clinic.models import Outcome
from backcare.clinic.services import courses as course_service
from backcare.clinic.services import outcomes as outcome_service
from backcare.clinic.services import sessions as session_service
from backcare.clinical.instruments import INSTRUMENTS, RMDQ_ITEMS
from clinic_fixtures import login


@pytest.fixture
def course(therapist: Any, client_record: Any, screen_client: Any) -> Any:
    screen_client(client_record)
    return course_service.start_course(client_record, staff=therapist, reassess_after=1)


def rmdq_url(course: Any, timepoint: str) -> str:
    return reverse("rmdq_record", args=[course.pk]) + f"?timepoint={timepoint}"


def ticks(count: int) -> dict[str, str]:
    return {f"item_{n}": "on" for n in range(1, count + 1)}


def one_session(course: Any, therapist: Any, before: int, after: int) -> None:
    update = session_service.health_update(course, staff=therapist, new_findings=[], pain_now=before)
    session_service.record_session(
        course,
        staff=therapist,
        health_update=update,
        techniques=["remedial"],
        pressure=3,
        body_chart={"lower_back": {"treated": True}},
        pain_before=before,
        pain_after=after,
        response="relaxed",
    )


def test_rmdq_page_shows_all_statements_source_and_licence(client, therapist, course):
    login(client, therapist.user)
    page = client.get(rmdq_url(course, "baseline"))
    body = page.content.decode()
    assert page.status_code == 200
    for item in RMDQ_ITEMS:
        assert item.replace("'", "&#x27;") in body
    assert INSTRUMENTS["rmdq"].source in body
    assert INSTRUMENTS["rmdq"].licence in body

    response = client.post(rmdq_url(course, "baseline"), {f"item_{n}": "on" for n in (1, 5, 24)})
    assert response["Location"] == reverse("course_detail", args=[course.pk])
    outcome = Outcome.objects.get(instrument="rmdq")
    assert outcome.score == 3 and outcome.timepoint == "baseline" and outcome.course == course
    assert outcome.answers["ticked"][0] is True and outcome.answers["ticked"][1] is False


def test_rmdq_recorded_once_per_timepoint(client, therapist, course):
    login(client, therapist.user)
    client.post(rmdq_url(course, "baseline"), ticks(8))
    page = client.post(rmdq_url(course, "baseline"), ticks(2))
    assert "already recorded" in page.content.decode() and "8 out of 24" in page.content.decode()
    assert Outcome.objects.filter(instrument="rmdq").count() == 1


def test_rmdq_unknown_timepoint_refused(client, therapist, course):
    login(client, therapist.user)
    assert client.get(rmdq_url(course, "whenever")).status_code == 400
    assert client.post(rmdq_url(course, "whenever"), ticks(3)).status_code == 400
    assert not Outcome.objects.exists()


def test_reassessment_without_improvement_prompts_change_or_referral(client, therapist, course):
    login(client, therapist.user)
    client.post(rmdq_url(course, "baseline"), ticks(12))
    one_session(course, therapist, before=6, after=6)
    detail = client.get(reverse("course_detail", args=[course.pk])).content.decode()
    assert "Reassessment is due" in detail
    response = client.post(rmdq_url(course, "reassessment"), ticks(11), follow=True)
    body = response.content.decode()
    assert "No meaningful improvement at reassessment: change the technique or refer" in body
    assert reverse("course_edit", args=[course.pk]) in body


def test_reassessment_with_improvement_gives_no_prompt(client, therapist, course):
    login(client, therapist.user)
    client.post(rmdq_url(course, "baseline"), ticks(12))
    one_session(course, therapist, before=6, after=6)
    response = client.post(rmdq_url(course, "reassessment"), ticks(5), follow=True)
    body = response.content.decode()
    assert "a meaningful improvement" in body
    assert "No meaningful improvement" not in body
    assert outcome_service.review_course(course).improved


def test_discharge_rmdq_after_the_course_ended(client, therapist, course):
    login(client, therapist.user)
    client.post(rmdq_url(course, "baseline"), ticks(12))
    course_service.end_course(course, status="completed", staff=therapist)
    detail = client.get(reverse("course_detail", args=[course.pk])).content.decode()
    assert "No discharge Roland-Morris recorded" in detail
    # Only the discharge score can still be added once the course has ended.
    assert client.get(rmdq_url(course, "reassessment")).status_code == 302
    client.post(rmdq_url(course, "discharge"), ticks(4))
    detail = client.get(reverse("course_detail", args=[course.pk])).content.decode()
    assert "Roland-Morris score fell from 12 to 4 (8 points, 67%): a meaningful improvement." in detail


def test_rmdq_permissions(client, therapist2, front_desk, course):
    login(client, front_desk.user)
    assert client.post(rmdq_url(course, "baseline"), ticks(3)).status_code == 403
    login(client, therapist2.user)
    assert client.post(rmdq_url(course, "baseline"), ticks(3)).status_code == 404
    assert not Outcome.objects.filter(instrument="rmdq").exists()
