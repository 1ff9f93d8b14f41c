"""The server-drawn progress chart and its text alternative."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from backcare.clinic import charts
from backcare.clinic.models import AuditEvent
from backcare.clinic.services import courses, outcomes, sessions
from clinic_fixtures import login

SVG = "{http://www.w3.org/2000/svg}"


def ticks(n: int) -> list[bool]:
    return [True] * n + [False] * (24 - n)


def run_sessions(course, therapist, pains):
    for before, after in pains:
        update = sessions.health_update(course, staff=therapist, new_findings=[], pain_now=before)
        sessions.record_session(
            course,
            staff=therapist,
            health_update=update,
            techniques=["swedish_relaxation"],
            pressure=2,
            body_chart={"lower_back": {"treated": True}},
            pain_before=before,
            pain_after=after,
            response="relaxed",
        )


@pytest.fixture
def treated(client_record, therapist, screen_client):
    """A client with four sessions (pain 7 -> 3) and Roland-Morris 12 at baseline, 6 at reassessment."""
    screen_client(client_record, pain__intensity=7)
    course = courses.start_course(client_record, staff=therapist, sessions_planned=4, reassess_after=2)
    outcomes.record_rmdq(client_record, ticked=ticks(12), timepoint="baseline", course=course, by=therapist.user)
    run_sessions(course, therapist, [(7, 6), (6, 5)])
    outcomes.record_rmdq(client_record, ticked=ticks(6), timepoint="reassessment", course=course, by=therapist.user)
    run_sessions(course, therapist, [(5, 4), (4, 3)])
    return course


def texts(svg: str) -> str:
    root = ET.fromstring(svg)
    return " ".join("".join(el.itertext()) for el in root.iter(f"{SVG}text"))


def test_meaningful_threshold_is_the_smaller_change():
    # Pain 7: 2 points (to 5) is smaller than 30% (3 points, to 4).
    assert charts.meaningful_threshold(7, 2) == 5
    # Pain 4: 30% is 1.2, rounded up to 2 points: to 2.
    assert charts.meaningful_threshold(4, 2) == 2
    # Pain 3: 30% is 0.9, so 1 point is enough.
    assert charts.meaningful_threshold(3, 2) == 2
    # Roland-Morris 12: 30% (4 points) is smaller than 5.
    assert charts.meaningful_threshold(12, 5) == 8
    assert charts.meaningful_threshold(20, 5) == 15
    assert charts.meaningful_threshold(0, 2) is None


@pytest.mark.parametrize("baseline", range(1, 11))
def test_threshold_agrees_with_the_instruments(baseline):
    from backcare.clinical.instruments import pain_change

    line = charts.meaningful_threshold(baseline, 2)
    assert pain_change(baseline, line).meaningful
    if line + 1 < baseline:
        assert not pain_change(baseline, line + 1).meaningful


def test_chart_shows_data_threshold_and_title(treated, client_record):
    svg = charts.progress_chart_svg(client_record)
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.find(f"{SVG}title").text == "Progress chart for Cora Client"
    desc = root.find(f"{SVG}desc").text
    assert "Pain fell from 7 to 3" in desc and "Roland-Morris score fell from 12 to 6" in desc
    words = texts(svg)
    assert "Progress: Cora Client" in words
    assert "Meaningful change: pain 5 or less" in words
    assert "Meaningful change: Roland-Morris 8 or less" in words
    assert "Session number" in words and "Before session" in words and "After session" in words
    assert "Reassessment" in words
    # The plotted lines: pain before (4 points), after (4 points), RMDQ (2 points) and two dashed threshold lines.
    assert svg.count("stroke-dasharray") >= 2
    assert "<script" not in svg


def test_chart_is_identical_on_two_renders(treated, client_record):
    first = charts.progress_chart_svg(client_record)
    second = charts.progress_chart_svg(client_record)
    assert first == second
    assert "<dc:date>" not in first


def test_chart_with_no_scores(client_record):
    svg = charts.progress_chart_svg(client_record)
    ET.fromstring(svg)
    assert "No scores yet" in texts(svg)
    assert charts.summarise(client_record) == "No scores yet for Cora Client."


def test_summary_sentences(treated, client_record):
    text = charts.summarise(client_record)
    assert text.startswith("Pain fell from 7 to 3 (4 points, 57%): a meaningful improvement.")
    assert "4 sessions" in text
    assert "Roland-Morris score fell from 12 to 6 (6 points, 50%): a meaningful improvement." in text


def test_only_baseline_rmdq_and_no_sessions(client_record, therapist, screen_client):
    screen_client(client_record)
    course = courses.start_course(client_record, staff=therapist)
    outcomes.record_rmdq(client_record, ticked=ticks(10), timepoint="baseline", course=course, by=therapist.user)
    svg = charts.progress_chart_svg(client_record)
    words = texts(svg)
    assert "No pain scores yet" in words
    assert "Meaningful change: Roland-Morris 7 or less" in words
    assert "baseline: 10 of 24; no later score yet" in charts.summarise(client_record)


def test_name_is_escaped_and_not_maths(make_client, therapist, screen_client):
    client = make_client(therapist, first_name="<b>$x$", last_name="O'Neil & Co")
    svg = charts.progress_chart_svg(client)
    root = ET.fromstring(svg)
    assert root.find(f"{SVG}title").text == "Progress chart for <b>$x$ O'Neil & Co"
    assert "Progress: <b>$x$ O'Neil & Co" in texts(svg)


def test_chart_page_permissions_and_audit(
    treated, client, client_record, therapist, therapist2, front_desk, owner, make_client
):
    from django.urls import reverse

    url = reverse("progress_chart_svg", args=[client_record.pk])
    response = login(client, therapist.user).get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert "script-src" not in response["Content-Security-Policy"]
    assert "default-src 'none'" in response["Content-Security-Policy"]
    ET.fromstring(response.content)
    assert AuditEvent.objects.filter(
        action="export", client=client_record, detail__document="progress_chart", user=therapist.user
    ).exists()
    assert login(client, owner.user).get(url).status_code == 200
    assert login(client, front_desk.user).get(url).status_code == 403
    assert login(client, therapist2.user).get(url).status_code == 404
    assert login(client, client_record.user).get(url).status_code in (403, 404)
    client.logout()
    assert client.get(url).status_code == 302


def test_chart_for_a_chosen_course_of_the_client_only(treated, client, client_record, therapist, make_client):
    from django.urls import reverse

    other = make_client(therapist, first_name="Other")
    login(client, therapist.user)
    url = reverse("progress_chart_svg", args=[client_record.pk])
    assert client.get(url, {"course": treated.pk}).status_code == 200
    assert client.get(reverse("progress_chart_svg", args=[other.pk]), {"course": treated.pk}).status_code == 404
    assert client.get(url, {"course": "x"}).status_code == 404
