"""A physician's clearance clears the findings it names, for this episode, for a limited time.

The first two tests reproduce the review's findings: a clearance stored against a rule id and unioned over every
past screening cleared a new operation somewhere else, and a new, worse episode of intense pain."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from backcare.clinic.models import Clearance, Intake
from backcare.clinic.services.screening import record_clearance, run_screening, treatment_gate
from conftest import make_intake

YEAR_AGO = timezone.now() - dt.timedelta(days=380)


def episode(client, *findings, when=None, **changes):
    """A submitted intake (one episode of back pain) and its screening, made `when`."""
    when = when or timezone.now()
    document = make_intake(*findings, **changes)
    document["id"] = f"client-{client.pk}-{when:%Y%m%d%H%M%S%f}"
    document["age"] = client.age_on()
    intake = Intake.objects.create(
        client=client, status=Intake.Status.SUBMITTED, document=document, started_at=when, submitted_at=when
    )
    screening = run_screening(client, document, kind="intake", intake=intake)
    screening.created_at = when
    screening.save(update_fields=["created_at"])
    return screening


def clear(screening, staff, *, given_on=None, **extra):
    return record_clearance(
        screening,
        given_by="Dr A. Jones, GP",
        given_on=given_on or timezone.localdate(),
        note="Massage may go ahead.",
        staff=staff,
        **extra,
    )


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
