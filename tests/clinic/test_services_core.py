"""The hard stops and precaution checks, through the services that own every write."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from backcare.clinic.models import AuditEvent, Course
from backcare.clinic.services import courses, sessions
from backcare.clinic.services.screening import record_clearance, treatment_gate


@pytest.mark.parametrize("finding", ["dvt_suspected", "fever", "saddle_anaesthesia"])
def test_no_course_when_screening_blocks(finding, client_record, therapist, screen_client):
    screen_client(client_record, finding)
    assert not treatment_gate(client_record).allowed
    with pytest.raises(ValidationError, match="No course or session can start"):
        courses.start_course(client_record, staff=therapist)
    assert not Course.objects.exists()


def test_clearance_needed_then_recorded(client_record, therapist, screen_client):
    screening = screen_client(client_record, "dvt_history")
    gate = treatment_gate(client_record)
    assert not gate.allowed and gate.clearance_pending == ["clearance.dvt_history"]
    with pytest.raises(ValidationError, match="clearance"):
        courses.start_course(client_record, staff=therapist)
    with pytest.raises(ValidationError) as e:
        record_clearance(screening, given_by="", given_on=dt.date.today(), staff=therapist)
    assert set(e.value.message_dict) == {"given_by", "note"}
    record_clearance(
        screening, given_by="Dr A. Jones, GP", given_on=dt.date.today(), note="No current clot.", staff=therapist
    )
    course = courses.start_course(client_record, staff=therapist)
    assert course.techniques == screening.result["plan"]["techniques"]


def test_session_beyond_precautions_needs_reason(client_record, therapist, screen_client):
    screen_client(client_record, "anticoagulants", {"code": "bruise", "region": "thigh_left"})
    course = courses.start_course(client_record, staff=therapist)
    update = sessions.health_update(course, staff=therapist, new_findings=[], pain_now=5)
    args = dict(
        staff=therapist,
        health_update=update,
        techniques=["remedial"],
        pressure=4,
        body_chart={"thigh_left": {"treated": True}, "lower_back": {"treated": True, "tension": 2}},
        pain_before=5,
        pain_after=3,
        response="relaxed",
    )
    with pytest.raises(ValidationError) as e:
        sessions.record_session(course, **args)
    message = e.value.message_dict["deviation_reason"][0]
    assert "thigh" in message and "pressure 4" in message
    s = sessions.record_session(
        course, deviation_reason="Bruise has healed, checked visually.", submission_key="k1", **args
    )
    assert len(s.deviations) == 2
    again = sessions.record_session(course, deviation_reason="x", submission_key="k1", **args)
    assert again.pk == s.pk and course.sessions.count() == 1
    assert AuditEvent.objects.filter(action="record_session").count() == 1


def test_pre_session_update_can_stop_the_session(client_record, therapist, screen_client):
    screen_client(client_record)
    course = courses.start_course(client_record, staff=therapist)
    update = sessions.health_update(course, staff=therapist, new_findings=[{"code": "fever"}], pain_now=None)
    assert update.blocks_treatment
    with pytest.raises(ValidationError, match="No course or session can start"):
        sessions.record_session(
            course,
            staff=therapist,
            health_update=update,
            techniques=["remedial"],
            pressure=2,
            body_chart={},
            pain_before=3,
            pain_after=2,
        )


def test_audit_rows_cannot_be_changed(client_record, therapist, screen_client):
    from django.db import DatabaseError, connection

    screen_client(client_record)
    event = AuditEvent.objects.first()
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    # SQLite's trigger raises IntegrityError, PostgreSQL's ProgrammingError: both are DatabaseErrors.
    with pytest.raises(DatabaseError, match="cannot be changed"), connection.cursor() as cursor:
        cursor.execute("UPDATE clinic_auditevent SET actor = 'someone else'")
