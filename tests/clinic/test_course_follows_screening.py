"""Courses follow the latest screening: editing a course checks its techniques against the latest screening (and the
physician's restrictions), not the one it started from."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from backcare.clinic.services import courses as course_service
from backcare.clinic.services.sessions import health_update
from clinic_fixtures import login


def test_editing_a_course_checks_the_latest_screening(client, therapist, client_record, screen_client):
    screen_client(client_record)
    course = course_service.start_course(client_record, staff=therapist, techniques=["remedial"])
    course_service.update_course(course, staff=therapist, techniques=["remedial", "deep_tissue"])
    course_service.update_course(course, staff=therapist, techniques=["remedial"])
    # A health update finds a herniated disc: deep-tissue work is now excluded.
    health_update(course, staff=therapist, new_findings=[{"code": "herniated_disc"}], pain_now=4)
    with pytest.raises(ValidationError, match="excludes Deep-tissue massage"):
        course_service.update_course(course, staff=therapist, techniques=["remedial", "deep_tissue"])
    login(client, therapist.user)
    url = reverse("course_edit", args=[course.pk])
    page = client.get(url)
    assert page.status_code == 200
    data = {
        "techniques": ["remedial", "deep_tissue"],
        "sessions_planned": course.sessions_planned,
        "weeks": course.weeks,
        "reassess_after": course.reassess_after,
    }
    client.post(url, data)
    course.refresh_from_db()
    assert course.techniques == ["remedial"]


def test_starting_a_course_warns_when_the_therapist_is_not_qualified(client, therapist, client_record, screen_client):
    screen = screen_client(client_record)
    planned = screen.result["plan"]["techniques"]
    login(client, therapist.user)
    url = reverse("course_start", args=[client_record.pk])
    assert "is not qualified for" not in client.get(url).content.decode()
    therapist.qualified_techniques = []
    therapist.save()
    html = client.get(url).content.decode()
    assert f"{therapist.display_name} is not qualified for" in html
    from backcare.clinical.vocabulary import TECHNIQUES

    assert all(TECHNIQUES[t] in html for t in planned)
