"""Signing a session note locks it (the service, the model and a database trigger refuse a change, on SQLite and
PostgreSQL: run with BACKCARE_TEST_DB=postgres too); corrections are append-only addenda shown under the note; a
note not signed a day after the session is "Note due" on the dashboard and the Today page; the next session's form
can be copied forward from the last one (never the client's report or the pain scores)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from backcare.clinic.models import AuditEvent, SessionAddendum, TreatmentSession
from backcare.clinic.services import courses as course_service
from backcare.clinic.services import sessions as session_service
from clinic_fixtures import login


@pytest.fixture
def course(therapist: Any, client_record: Any, screen_client: Any) -> Any:
    screen_client(client_record)
    return course_service.start_course(client_record, staff=therapist)


def record(course: Any, therapist: Any, **changes: Any) -> TreatmentSession:
    update = session_service.health_update(course, staff=therapist, new_findings=[], pain_now=4)
    note: dict[str, Any] = {
        "techniques": ["remedial"],
        "pressure": 3,
        "body_chart": {"lower_back": {"treated": True, "tension": 2, "pain": 4}, "neck": {"treated": False, "pain": 1}},
        "pain_before": 4,
        "pain_after": 2,
        "response": "relaxed",
        "subjective": "Sore after gardening.",
        "plan_note": "Lumbar work again, then review.",
        **changes,
    }
    return session_service.record_session(
        course, session_service.SessionNote(**note), staff=therapist, health_update=update
    )


@pytest.fixture
def signed(course: Any, therapist: Any) -> TreatmentSession:
    return session_service.sign_session(record(course, therapist), staff=therapist)


# --- signing ------------------------------------------------------------------------------------------------------


def test_the_therapist_signs_the_note_on_its_page_and_it_is_audited(client, therapist, course):
    session = record(course, therapist)
    login(client, therapist.user)
    page = client.get(reverse("session_detail", args=[session.pk])).content.decode()
    assert "Not signed" in page and "Sign the note" in page and "Add an addendum" not in page
    response = client.post(reverse("session_sign", args=[session.pk]))
    assert response.status_code == 302
    session.refresh_from_db()
    assert session.signed_at is not None and session.signed_by == therapist
    page = client.get(reverse("session_detail", args=[session.pk])).content.decode()
    assert "Signed " in page and "Sign the note" not in page and "Add an addendum" in page
    event = AuditEvent.objects.get(action="sign_session")
    assert event.object_id == str(session.pk) and event.client_id == course.client_id


def test_only_the_sessions_therapist_signs_and_only_once(client, owner, therapist, course):
    session = record(course, therapist)
    with pytest.raises(ValidationError, match="Only the therapist who held the session"):
        session_service.sign_session(session, staff=owner)
    login(client, owner.user)
    client.post(reverse("session_sign", args=[session.pk]), follow=True)
    session.refresh_from_db()
    assert session.signed_at is None
    session_service.sign_session(session, staff=therapist)
    with pytest.raises(ValidationError, match="already signed"):
        session_service.sign_session(session, staff=therapist)


def test_an_unsigned_note_can_be_corrected_a_signed_one_refuses(course, therapist):
    session = record(course, therapist)
    session_service.update_note(session, staff=therapist, subjective="Sore after digging.")
    session.refresh_from_db()
    assert session.subjective == "Sore after digging."
    assert AuditEvent.objects.filter(action="update_session_note").count() == 1
    session_service.sign_session(session, staff=therapist)
    with pytest.raises(ValidationError, match="is signed"):
        session_service.update_note(session, staff=therapist, subjective="Changed.")
    session.refresh_from_db()
    assert session.subjective == "Sore after digging."


def test_the_model_refuses_to_save_a_change_to_a_signed_note(signed):
    signed.plan_note = "Rewritten afterwards."
    with pytest.raises(ValidationError, match="plan_note"):
        signed.save()
    stale = TreatmentSession.objects.get(pk=signed.pk)
    stale.pain_after = 0
    with pytest.raises(ValidationError, match="pain_after"):
        stale.save(update_fields=["pain_after"])


LOCKED_CHANGES = [
    ("subjective", "'rewritten'"),
    ("assessment", "'rewritten'"),
    ("plan_note", "'rewritten'"),
    ("pain_before", "9"),
    ("pressure", "NULL"),
    ("body_chart", "'{}'"),
    ("techniques", "'[]'"),
    ("status", "'stopped'"),
    ("signed_at", "NULL"),
]


@pytest.mark.parametrize(("column", "value"), LOCKED_CHANGES)
def test_the_database_refuses_an_update_of_a_signed_notes_clinical_fields(signed, column, value):
    """Past the model and the services: raw SQL, as another program or a console would write."""
    if column in ("body_chart", "techniques") and connection.vendor == "postgresql":
        value += "::jsonb"
    refused = pytest.raises(DatabaseError, match="signed session note cannot be changed")
    with refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE clinic_treatmentsession SET {column} = {value} WHERE id = %s", [signed.pk])
    signed.refresh_from_db()
    assert signed.signed_at is not None and signed.subjective == "Sore after gardening."


def test_the_database_refuses_a_queryset_update_of_a_signed_note(signed):
    with pytest.raises(DatabaseError), transaction.atomic():
        TreatmentSession.objects.filter(pk=signed.pk).update(objective="added later")
    assert TreatmentSession.objects.get(pk=signed.pk).objective == ""


def test_the_database_lets_unsigned_notes_and_unlocked_columns_change(course, therapist, signed):
    unsigned = record(course, therapist)
    assert TreatmentSession.objects.filter(pk=unsigned.pk).update(objective="Tight lumbar muscles.") == 1
    # What is not part of the note (the link to the health update, removed when a screening is erased) still may.
    assert TreatmentSession.objects.filter(pk=signed.pk).update(health_update=None, submission_key=None) == 1


def test_erasing_the_record_still_deletes_a_signed_note_and_its_addenda(signed, therapist):
    session_service.add_addendum(signed, staff=therapist, text="Also advised heat.", reason="Left out of the note.")
    from backcare.datarights.erasure import _delete_record

    _delete_record(signed.course.client)
    assert not TreatmentSession.objects.filter(pk=signed.pk).exists()
    assert not SessionAddendum.objects.exists()


# --- addenda ------------------------------------------------------------------------------------------------------


def test_addenda_are_added_under_the_signed_note_in_order_and_audited(client, therapist, owner, signed):
    login(client, therapist.user)
    url = reverse("session_addendum", args=[signed.pk])
    assert client.get(url).status_code == 200
    first = client.post(url, {"text": "Client also mentioned stiffness on waking.", "reason": "Forgotten in the note."})
    assert first.status_code == 302
    session_service.add_addendum(signed, staff=owner, text="Reviewed the note.", reason="Clinical supervision.")
    page = client.get(reverse("session_detail", args=[signed.pk])).content.decode()
    assert page.index("stiffness on waking") < page.index("Reviewed the note.")
    assert "Forgotten in the note." in page and owner.display_name in page
    addenda = list(signed.addenda.all())
    assert [a.author for a in addenda] == [therapist, owner] and addenda[0].written_at <= addenda[1].written_at
    assert AuditEvent.objects.filter(action="add_addendum", object_id=str(signed.pk)).count() == 2


def test_an_addendum_needs_text_and_a_reason_and_keeps_what_was_typed(client, therapist, signed):
    login(client, therapist.user)
    response = client.post(reverse("session_addendum", args=[signed.pk]), {"text": "Typed text 7", "reason": ""})
    assert response.status_code == 200
    body = response.content.decode()
    assert "Reason: say why the note needs the addendum." in body and "Typed text 7" in body
    assert not SessionAddendum.objects.exists()


def test_no_addendum_before_signing(client, course, therapist):
    session = record(course, therapist)
    with pytest.raises(ValidationError, match="not signed"):
        session_service.add_addendum(session, staff=therapist, text="x", reason="y")
    login(client, therapist.user)
    assert client.get(reverse("session_addendum", args=[session.pk])).status_code == 302


def test_the_database_refuses_to_change_an_addendum(signed, therapist):
    addendum = session_service.add_addendum(signed, staff=therapist, text="Heat advised.", reason="Left out.")
    with pytest.raises(DatabaseError, match="addenda cannot be changed"), transaction.atomic():
        SessionAddendum.objects.filter(pk=addendum.pk).update(text="Something else.")
    assert SessionAddendum.objects.get(pk=addendum.pk).text == "Heat advised."


def test_another_therapist_cannot_open_the_addendum_page(client, therapist2, signed):
    login(client, therapist2.user)
    assert client.get(reverse("session_addendum", args=[signed.pk])).status_code == 404
    assert client.post(reverse("session_sign", args=[signed.pk])).status_code == 404


# --- note due -----------------------------------------------------------------------------------------------------


def test_a_note_not_signed_a_day_later_is_due_on_the_dashboard_and_today(client, therapist, course):
    old = record(course, therapist)
    recent = record(course, therapist)
    TreatmentSession.objects.filter(pk=old.pk).update(held_at=timezone.now() - dt.timedelta(days=2))
    assert session_service.notes_due(therapist) == [old]
    login(client, therapist.user)
    for name in ("dashboard", "today"):
        page = client.get(reverse(name)).content.decode()
        assert session_service.NOTE_DUE in page and reverse("session_detail", args=[old.pk]) in page, name
        assert reverse("session_detail", args=[recent.pk]) not in page, name
    session_service.sign_session(old, staff=therapist)
    assert session_service.notes_due(therapist) == []
    assert 'id="notes-due"' not in client.get(reverse("dashboard")).content.decode()


def test_another_therapists_unsigned_notes_are_not_theirs_to_sign(therapist2, course, therapist):
    old = record(course, therapist)
    TreatmentSession.objects.filter(pk=old.pk).update(held_at=timezone.now() - dt.timedelta(days=2))
    assert session_service.notes_due(therapist2) == []


# --- copy forward -------------------------------------------------------------------------------------------------


def test_copy_forward_prefills_treatment_chart_and_plan_but_not_what_the_client_reports(client, therapist, course):
    last = record(course, therapist, techniques=["remedial", "swedish_relaxation"], pressure=2)
    login(client, therapist.user)
    response = client.post(reverse("health_update", args=[course.pk]), {"anything_new": "no", "pain_now": "6"})
    url = response["Location"]
    plain = client.get(url).content.decode()
    assert "Copy forward from session 1" in plain and "Copied from session" not in plain
    page = client.get(url, {"copy": last.pk})
    body = page.content.decode()
    form = page.context["form"]
    assert "Copied from session 1" in body and 'class="badge">copied<' in body
    assert form.initial["techniques"] == ["remedial", "swedish_relaxation"] and form.initial["pressure"] == 2
    assert form.initial["plan_note"] == "Lumbar work again, then review."
    assert form.initial["treated"] == ["lower_back"] and form.initial["tension_lower_back"] == 2
    assert "pain_lower_back" not in form.initial and "pain_neck" not in form.initial
    assert "subjective" not in form.initial and "pain_after" not in form.initial
    assert form.initial["pain_before"] == 6  # today's health update, not the copied session's
    assert "Sore after gardening." not in body
    data = {
        "submission_key": form.initial["submission_key"],
        "copied_from": str(last.pk),
        "treated": ["lower_back"],
        "tension_lower_back": "2",
        "techniques": ["remedial"],
        "pressure": "2",
        "response": "relaxed",
        "pain_before": "6",
        "pain_after": "3",
        "plan_note": "Lumbar work again, then review.",
        "aftercare": "Keep moving.",
    }
    assert client.post(url, data).status_code == 302
    new = TreatmentSession.objects.get(number=2)
    assert new.copied_from == last and new.subjective == "" and new.pain_before == 6
    assert AuditEvent.objects.get(action="record_session", object_id=str(new.pk)).detail["copied_from"] == last.pk
    assert "Copied forward from session 1" in client.get(reverse("session_detail", args=[new.pk])).content.decode()


def test_copy_forward_of_another_courses_session_is_ignored(client, therapist, course, signed):
    login(client, therapist.user)
    response = client.post(reverse("health_update", args=[course.pk]), {"anything_new": "no", "pain_now": "3"})
    page = client.get(response["Location"], {"copy": signed.pk + 1000})
    assert "Copied from session" not in page.content.decode()
    assert "plan_note" not in page.context["form"].initial
