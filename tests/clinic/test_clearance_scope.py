"""A physician's clearance clears the findings it names, for this episode, for a limited time.

The first two tests reproduce the review's findings: a clearance stored against a rule id and unioned over every
past screening cleared a new operation somewhere else, and a new, worse episode of intense pain."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from backcare.clinic.models import Clearance
from backcare.clinic.services.screening import run_screening, treatment_gate
from hardstop_support import YEAR_AGO, clear, episode


def test_last_years_shoulder_surgery_clearance_does_not_clear_a_new_abdominal_operation(client_record, therapist):
    shoulder = episode(
        client_record, {"code": "recent_surgery", "region": "shoulder_left", "weeks_ago": 3}, when=YEAR_AGO
    )
    clear(shoulder, therapist, given_on=YEAR_AGO.date())
    episode(client_record, {"code": "recent_surgery", "region": "abdomen", "weeks_ago": 2})
    gate = treatment_gate(client_record)
    assert not gate.allowed
    assert gate.clearance_pending == ["clearance.recent_surgery"]
    assert [f["region"] for f in gate.pending_findings] == ["abdomen"]


def test_a_past_8_of_10_pain_clearance_does_not_cover_a_new_9_of_10_episode(client_record, therapist):
    unassessed = {"pain__medically_assessed": False}
    first = episode(client_record, pain__intensity=8, when=timezone.now() - dt.timedelta(days=60), **unassessed)
    clear(first, therapist, given_on=(timezone.now() - dt.timedelta(days=59)).date())
    assert treatment_gate(client_record).allowed
    episode(client_record, pain__intensity=9, **unassessed)
    gate = treatment_gate(client_record)
    assert not gate.allowed
    assert gate.clearance_pending == ["clearance.intense_pain_unassessed"]


def test_within_an_episode_a_shoulder_clearance_does_not_clear_a_new_abdominal_operation(client_record, therapist):
    from backcare.clinic.services.courses import start_course
    from backcare.clinic.services.sessions import health_update

    shoulder = episode(client_record, {"code": "recent_surgery", "region": "shoulder_left", "weeks_ago": 3})
    clear(shoulder, therapist)
    course = start_course(client_record, staff=therapist)
    update = health_update(
        course,
        staff=therapist,
        new_findings=[{"code": "recent_surgery", "region": "abdomen", "weeks_ago": 1}],
        pain_now=None,
    )
    assert update.intake_id == shoulder.intake_id  # the same episode
    gate = treatment_gate(client_record)
    assert not gate.allowed and [f["region"] for f in gate.pending_findings] == ["abdomen"]


def test_a_changed_cleared_finding_needs_a_new_clearance(client_record, therapist):
    first = episode(client_record, {"code": "recent_surgery", "region": "shoulder_left", "weeks_ago": 3})
    clear(first, therapist)
    assert treatment_gate(client_record).allowed
    # The therapist's review corrects the date: it is another fact, so the old clearance does not cover it.
    document = dict(first.document, findings=[{"code": "recent_surgery", "region": "shoulder_left", "weeks_ago": 1}])
    run_screening(client_record, document, kind="review", intake=first.intake)
    gate = treatment_gate(client_record)
    assert not gate.allowed
    assert any("does not name these findings" in n for n in gate.clearance_notes)


def test_a_new_episode_needs_a_new_clearance_of_the_same_finding(client_record, therapist):
    first = episode(client_record, "dvt_history", when=timezone.now() - dt.timedelta(days=30))
    clear(first, therapist, given_on=(timezone.now() - dt.timedelta(days=30)).date())
    episode(client_record, "dvt_history")
    gate = treatment_gate(client_record)
    assert not gate.allowed
    assert any("earlier episode" in n for n in gate.clearance_notes)


def test_lower_pain_in_the_same_episode_stays_cleared(client_record, therapist):
    first = episode(client_record, pain__intensity=8, pain__medically_assessed=False)
    clear(first, therapist)
    document = dict(first.document, pain={**first.document["pain"], "intensity": 7})
    run_screening(client_record, document, kind="review", intake=first.intake)
    assert treatment_gate(client_record).allowed


def test_a_clearance_lapses_after_the_clinics_period(client_record, therapist, clinic):
    clinic.clearance_valid_days = 30
    clinic.save()
    screening = episode(client_record, "dvt_history", when=timezone.now() - dt.timedelta(days=40))
    clearance = clear(screening, therapist, given_on=(timezone.now() - dt.timedelta(days=31)).date())
    assert clearance.valid_until == clearance.given_on + dt.timedelta(days=30)
    gate = treatment_gate(client_record)
    assert not gate.allowed and any("lapsed on" in n for n in gate.clearance_notes)


def test_the_physicians_own_end_date_is_kept_when_sooner(client_record, therapist):
    screening = episode(client_record, "dvt_history")
    soon = timezone.localdate() + dt.timedelta(days=10)
    assert clear(screening, therapist, valid_until=soon).valid_until == soon
    assert treatment_gate(client_record).allowed
    assert not treatment_gate(client_record, today=soon + dt.timedelta(days=1)).allowed


def test_only_the_named_findings_are_cleared(client_record, therapist):
    screening = episode(client_record, "dvt_history", "bleeding_disorder")
    clear(screening, therapist, findings=["clearance.dvt_history@"])
    gate = treatment_gate(client_record)
    assert gate.clearance_pending == ["clearance.bleeding_disorder"]


def test_a_clearance_is_recorded_against_the_latest_screening_only(client_record, therapist):
    from django.core.exceptions import ValidationError

    old = episode(client_record, "dvt_history", when=timezone.now() - dt.timedelta(days=2))
    episode(client_record, "dvt_history")
    with pytest.raises(ValidationError, match="latest screening"):
        clear(old, therapist)
    assert not Clearance.objects.exists()


def test_the_physicians_restrictions_are_enforced_by_the_session_check(client_record, therapist):
    from django.core.exceptions import ValidationError

    from backcare.clinic.services.courses import start_course
    from backcare.clinic.services.sessions import health_update, record_session

    screening = episode(client_record, "dvt_history")
    clear(screening, therapist, avoid_regions=["leg_left"], max_pressure=2, avoid_techniques=["deep_tissue"])
    course = start_course(client_record, staff=therapist)
    update = health_update(course, staff=therapist, new_findings=[], pain_now=3)
    arguments = {
        "staff": therapist,
        "health_update": update,
        "techniques": ["swedish_relaxation"],
        "pressure": 3,
        "body_chart": {"leg_left": {"treated": True}},
        "pain_before": 3,
        "pain_after": 2,
    }
    with pytest.raises(ValidationError) as refused:
        record_session(course, **arguments)
    text = str(refused.value)
    assert "left lower leg" in text.lower() or "leg" in text.lower()
    assert "exceeds the maximum 2" in text
    session = record_session(course, **arguments, deviation_reason="Physician agreed by phone today.")
    assert len(session.deviations) == 2


# --- Through the page and the API --------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fresh_submission_keys(db):
    from django.core.cache import cache

    cache.clear()


def test_page_names_the_findings_records_restrictions_and_an_old_clearance_opens_nothing(
    client, client_record, therapist
):
    from django.urls import reverse

    from clinic_fixtures import login

    shoulder = episode(
        client_record, {"code": "recent_surgery", "region": "shoulder_left", "weeks_ago": 3}, when=YEAR_AGO
    )
    clear(shoulder, therapist, given_on=YEAR_AGO.date())
    abdomen = episode(client_record, {"code": "recent_surgery", "region": "abdomen", "weeks_ago": 2})
    login(client, therapist.user)
    detail = client.get(reverse("client_detail", args=[client_record.pk])).content.decode()
    assert "No course or session can start" in detail and "Operation less than 6 weeks ago: abdomen" in detail
    assert "lapsed on" in detail  # says why last year's clearance does not count
    url = reverse("clearance_create", args=[client_record.pk, abdomen.pk])
    html = client.get(url).content.decode()
    assert 'value="clearance.recent_surgery@abdomen" checked' in html.replace("\n", " ") or (
        "clearance.recent_surgery@abdomen" in html
    )
    assert "Regions the physician said to avoid" in html and "Highest pressure allowed" in html
    response = client.post(
        url,
        {
            "findings": [],
            "given_by": "Dr A. Jones, GP",
            "given_on": timezone.localdate().strftime("%d/%m/%Y"),
            "note": "No massage on the abdomen.",
            "submission_key": "scope-1",
        },
    )
    assert response.status_code == 200
    assert "Findings cleared: tick each finding the physician cleared." in response.content.decode()
    assert not treatment_gate(client_record).allowed
    response = client.post(
        url,
        {
            "findings": ["clearance.recent_surgery@abdomen"],
            "given_by": "Dr A. Jones, GP",
            "given_on": timezone.localdate().strftime("%d/%m/%Y"),
            "note": "No massage on the abdomen; light pressure elsewhere.",
            "avoid_regions": ["abdomen"],
            "max_pressure": "2",
            "submission_key": "scope-2",
        },
    )
    assert response.status_code == 302
    clearance = Clearance.objects.get(screening=abdomen)
    assert [k["region"] for k in clearance.findings] == ["abdomen"]
    assert clearance.avoid_regions == ["abdomen"] and clearance.max_pressure == 2
    assert treatment_gate(client_record).allowed


def test_an_old_screenings_clearance_page_sends_to_the_latest(client, client_record, therapist):
    from django.urls import reverse

    from clinic_fixtures import login

    old = episode(client_record, "dvt_history", when=timezone.now() - dt.timedelta(days=2))
    new = episode(client_record, "dvt_history")
    login(client, therapist.user)
    response = client.post(reverse("clearance_create", args=[client_record.pk, old.pk]), {"given_by": "x"})
    assert response.status_code == 302
    assert response["Location"] == reverse("clearance_create", args=[client_record.pk, new.pk])
    assert not Clearance.objects.exists()
