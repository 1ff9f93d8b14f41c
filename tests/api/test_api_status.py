"""Appointment statuses through the API (`POST /api/appointments/{id}/status`): the same service and rules as the
appointment's page (`scheduling.services.status`). A move the status does not allow now answers 409, one the
caller's role may not make 403; late cancelling is staff's, inside the cancellation window only, with a reason.
Every change is audited."""

from __future__ import annotations

from api_support import call, problem

from backcare.clinic.models import AuditEvent
from backcare.scheduling.models import Appointment


def status_of(pk):
    return Appointment.objects.get(pk=pk).status


def post(w, role, pk, **body):
    return call("POST", f"/api/appointments/{pk}/status", token=w.tokens[role], body=body)


def test_through_the_day_arrived_then_in_treatment_then_completed(w):
    pk = w.x["appointment_today"]
    response = post(w, "front_desk", pk, status="arrived")
    assert response.status_code == 200 and response.json()["status"] == "arrived"
    assert post(w, "therapist", pk, status="in_treatment").json()["status"] == "in_treatment"
    assert post(w, "therapist", pk, status="completed").json()["status"] == "completed"
    moves = AuditEvent.objects.filter(action="appointment_status", object_id=str(pk))
    assert [e.detail["new"] for e in moves.order_by("pk")] == ["arrived", "in_treatment", "completed"]


def test_a_disallowed_move_answers_409_and_changes_nothing(w):
    today, future = w.x["appointment_today"], w.x["appointment"]
    refused = post(w, "owner", future, status="no_show")
    assert refused.status_code == 409 and "has not begun yet" in problem(refused)["detail"]
    assert status_of(future) == "booked"
    assert post(w, "owner", today, status="no_show").status_code == 200
    again = post(w, "owner", today, status="arrived")
    assert again.status_code == 409 and "cannot become arrived" in problem(again)["detail"]
    assert status_of(today) == "no_show"


def test_the_front_desk_never_completes_a_visit(w):
    pk = w.x["appointment_today"]
    assert post(w, "front_desk", pk, status="arrived").status_code == 200
    refused = post(w, "front_desk", pk, status="completed")
    assert refused.status_code == 403 and status_of(pk) == "arrived"


def test_an_unknown_status_is_named(w):
    response = post(w, "owner", w.x["appointment_today"], status="finished")
    assert response.status_code == 400
    assert any(e["field"].endswith("status") for e in problem(response)["errors"])


def test_late_cancelling_inside_the_window_only_and_with_a_reason(w):
    from backcare.clinic.models import Clinic

    pk = w.x["appointment"]
    early = post(w, "front_desk", pk, status="late_cancelled", late_reason="Phoned in ill")
    assert early.status_code == 409 and "outside the cancellation window" in problem(early)["detail"]
    Clinic.objects.filter(pk=w.world.clinic.pk).update(cancellation_hours=24 * 365)
    missing = post(w, "front_desk", pk, status="late_cancelled")
    assert missing.status_code == 422 and status_of(pk) == "booked"
    done = post(w, "front_desk", pk, status="late_cancelled", late_reason="Phoned in ill")
    assert done.status_code == 200 and done.json()["status"] == "late_cancelled"
    assert post(w, "client", pk, status="late_cancelled", late_reason="x").status_code == 403
