"""Bad input through the API: every mistake is a 4xx problem document (RFC 9457) that names the offending field,
never a server error. Malformed JSON, wrong types, unknown fields, oversized bodies, rule violations, a double booking
(409) and the rate limit (429)."""

from __future__ import annotations

import json

import pytest
from api_support import call, fields_named, problem

from conftest import make_intake


def owner(w):
    return w.tokens["owner"]


def booking_body(w, days=20, hour=9, client=None):
    from backcare.scheduling.models import Room, Service

    return {
        "client": client or w.x["client"],
        "service": Service.objects.filter(clinic=w.world.clinic).order_by("pk").first().pk,
        "therapist": w.world.therapist_a.pk,
        "room": Room.objects.filter(clinic=w.world.clinic).order_by("pk").first().pk,
        "starts_at": w.at(days, hour),
    }


@pytest.mark.parametrize("path", ["/api/clients", "/api/screening", "/api/appointments"])
@pytest.mark.parametrize("raw", ['{"first_name": "Ann",', "not json at all", "{'single': 'quotes'}", b"\xff\xfe\x00"])
def test_malformed_json_is_a_400_problem(w, path, raw):
    response = call("POST", path, token=owner(w), raw=raw)
    assert response.status_code == 400
    data = problem(response)
    assert data["type"].endswith("/malformed-json")
    assert "JSON" in data["detail"]


def test_wrong_types_are_named_by_field_and_pointer(w):
    response = call(
        "POST",
        "/api/clients",
        token=owner(w),
        body={"first_name": 5, "last_name": "Ng", "date_of_birth": "yesterday", "therapist": "Theo"},
    )
    assert response.status_code == 400
    errors = {e["field"]: e for e in problem(response)["errors"]}
    assert set(errors) == {"first_name", "date_of_birth", "therapist"}
    assert errors["date_of_birth"]["pointer"] == "/date_of_birth" and errors["date_of_birth"]["in"] == "body"
    assert "date" in errors["date_of_birth"]["message"]


def test_nested_fields_are_named_by_their_whole_path(w):
    body = {"health_update": w.x["health_update"], "pain_before": 4, "body_chart": {"lower_back": {"tension": "x"}}}
    response = call("POST", f"/api/courses/{w.x['course']}/sessions", token=owner(w), body=body)
    assert response.status_code == 400
    error = problem(response)["errors"][0]
    assert error["field"] == "body_chart.lower_back.tension"
    assert error["pointer"] == "/body_chart/lower_back/tension"


def test_unknown_fields_are_refused_by_name(w):
    body = {"first_name": "Ann", "last_name": "Ng", "date_of_birth": "1980-01-01", "favourite_colour": "teal"}
    response = call("POST", "/api/clients", token=owner(w), body=body)
    assert response.status_code == 400
    assert fields_named(response) == {"favourite_colour"}
    assert "unknown field" in problem(response)["detail"]
    nested = call(
        "POST",
        f"/api/courses/{w.x['course']}/health-updates",
        token=owner(w),
        body={"new_findings": [{"code": "fever", "severity": "high"}]},
    )
    assert nested.status_code == 400 and fields_named(nested) == {"new_findings[0].severity"}


def test_an_invalid_intake_names_every_field_as_the_command_line_does(w):
    intake = make_intake(pain__intensity=11, age=-1)
    intake["findings"] = [{"code": "not_a_finding"}]
    response = call("POST", "/api/screening", token=owner(w), body=intake)
    assert response.status_code == 400
    data = problem(response)
    assert {"pain.intensity", "age", "findings[0].code"} <= fields_named(response)
    assert "pain.intensity: 11 is greater than the maximum 10" in data["detail"]
    pointers = {e["pointer"] for e in data["errors"]}
    assert {"/pain/intensity", "/findings/0/code"} <= pointers


def test_a_valid_intake_is_screened_as_the_command_line_screens_it(w, cli, tmp_path):
    intake = make_intake("fever", "anticoagulants")
    response = call("POST", "/api/screening", token=w.tokens["client"], body=intake)
    assert response.status_code == 200
    path = tmp_path / "intake.json"
    path.write_text(json.dumps(intake))
    assert response.json() == cli("screen", "--format", "json", str(path)).json()


def test_query_parameters_are_checked(w):
    response = call("GET", "/api/clients?limit=abc&offset=-1", token=owner(w))
    assert response.status_code == 400
    errors = problem(response)["errors"]
    assert {(e["in"], e["field"]) for e in errors} == {("query", "limit"), ("query", "offset")}
    assert call("GET", "/api/clients?limit=201", token=owner(w)).status_code == 400
    page = call("GET", "/api/clients?limit=1&offset=1", token=owner(w)).json()
    assert len(page["items"]) == 1 and page["count"] >= 3
    response = call("GET", "/api/availability/slots?service=1&date_from=2030-01-10&date_to=2030-01-01", token=owner(w))
    assert response.status_code == 422 and fields_named(response) == {"date_to"}


def test_a_body_over_the_upload_limit_is_a_413_problem(w, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    body = {"first_name": "Ann", "last_name": "Ng", "date_of_birth": "1980-01-01", "address": "x" * 3000}
    response = call("POST", "/api/clients", token=owner(w), body=body)
    assert response.status_code == 413
    assert problem(response)["max_bytes"] == 2000
    ok = call("POST", "/api/clients", token=owner(w), body={**body, "address": "1 High Street"})
    assert ok.status_code == 201


def test_the_real_upload_limit_and_the_intake_limit(w):
    from django.conf import settings

    big = json.dumps({"schema_version": "1", "padding": "x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE})
    assert call("POST", "/api/screening", token=owner(w), raw=big).status_code == 413
    over_intake = json.dumps({**make_intake(), "id": "y" * (1024 * 1024)})
    response = call("POST", "/api/screening", token=owner(w), raw=over_intake)
    assert response.status_code == 413 and "at most" in problem(response)["detail"]


def test_a_double_booking_is_a_409_naming_what_is_taken(w):
    first = call("POST", "/api/appointments", token=owner(w), body=booking_body(w))
    assert first.status_code == 201, first.content
    second = call("POST", "/api/appointments", token=w.tokens["front_desk"], body=booking_body(w, client=w.y["client"]))
    assert second.status_code == 409
    data = problem(second)
    assert data["type"].endswith("/booking-conflict")
    assert any("already booked" in c for c in data["conflicts"])
    # moving another appointment onto the taken time is refused the same way
    # (a plain appointment: a course session may only go to a therapist who can open the client's record)
    other = call("POST", "/api/appointments", token=owner(w), body=booking_body(w, hour=13, client=w.y["client"]))
    assert other.status_code == 201, other.content
    moved = call(
        "POST",
        f"/api/appointments/{other.json()['id']}/reschedule",
        token=owner(w),
        body={"starts_at": w.at(20), "therapist": w.world.therapist_a.pk},
    )
    assert moved.status_code == 409, moved.content


def test_clinic_rules_are_422_naming_the_field(w):
    night = call("POST", "/api/appointments", token=owner(w), body=booking_body(w, hour=23))
    assert night.status_code == 422 and "starts_at" in fields_named(night)
    body = {
        "health_update": w.x["health_update"],
        "techniques": ["swedish_relaxation"],
        "pressure": 2,
        "body_chart": {"thigh_left": {"treated": True}},  # the bruise: a region to avoid
        "pain_before": 4,
        "pain_after": 3,
        "response": "relaxed",
    }
    session = call("POST", f"/api/courses/{w.x['course']}/sessions", token=w.tokens["therapist"], body=body)
    assert session.status_code == 422
    assert fields_named(session) == {"deviation_reason"}
    assert "region to avoid" in problem(session)["detail"]


def test_a_hard_stop_is_a_409(w):
    from backcare.clinic.models import Course
    from backcare.clinic.services import courses

    course = f"/api/courses/{w.y['course']}"
    update = call(
        "POST",
        f"{course}/health-updates",
        token=owner(w),
        body={"new_findings": [{"code": "saddle_anaesthesia"}], "pain_now": 6},
    )
    assert update.status_code == 201
    assert update.json()["session_allowed"] is False and update.json()["screening"]["decision"] == "refer_emergency"
    session = call(
        "POST",
        f"{course}/sessions",
        token=owner(w),
        body={
            "health_update": update.json()["screening"]["id"],
            "pain_before": 6,
            "stopped": True,
            "stop_reason": "red flag",
        },
    )
    assert session.status_code == 409 and problem(session)["type"].endswith("/hard-stop")
    courses.end_course(Course.objects.get(pk=w.y["course"]), status="referred", staff=w.world.therapist_b, note="x")
    stopped = call("POST", f"/api/clients/{w.y['client']}/courses", token=owner(w), body={})
    assert stopped.status_code == 409
    assert problem(stopped)["type"].endswith("/hard-stop")
    assert "No course or session can start" in problem(stopped)["detail"]


def test_the_rate_limit_is_a_429_with_retry_after(w, settings):
    settings.BACKCARE_API_RATE = "3/minute"
    statuses = [call("GET", "/api/clients", token=owner(w)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = call("GET", "/api/clients", token=owner(w))
    assert limited.status_code == 429
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert problem(limited)["retry_after"] == int(limited["Retry-After"])
    assert call("GET", "/api/clients", token=w.tokens["therapist"]).status_code == 200  # per token


def test_no_garbage_gives_a_server_error(w):
    """Every operation, sent bodies and ids of every wrong shape: always a 4xx problem."""
    from test_api_matrix import EXPECTED

    garbage = [b"[]", b'"x"', b"null", b"0", b'{"a": 1}', b"{" * 5000, b'{"x": "\\u0000"}']
    garbage += [b'{"phone": "\\u0000"}', b'{"phone": "\\ud800"}', b'{"reason": "\\ud800"}', b'{"goals": "\\udfff"}']
    for method, path in EXPECTED:
        url = path.replace("{", "").replace("}", "").replace("client_id", str(w.x["client"]))
        url = url.replace("course_id", str(w.x["course"])).replace("appointment_id", str(w.x["appointment"]))
        url = url.replace("intake_id", "1").replace("screening_id", "1").replace("session_id", "1")
        for raw in garbage if method != "GET" else [None]:
            response = call(method, url, token=owner(w), raw=raw)
            assert response.status_code < 500, (method, url, raw)
        for bad_id in ("0", "-5", "1.5", "99999999999999999999999", "%00"):
            bad = path.replace("{client_id}", bad_id).replace("{course_id}", bad_id)
            bad = bad.replace("{appointment_id}", bad_id).replace("{intake_id}", bad_id)
            bad = bad.replace("{screening_id}", bad_id).replace("{session_id}", bad_id)
            if bad != path:
                response = call(method, bad, token=owner(w), body={} if method != "GET" else None)
                assert 400 <= response.status_code < 500, (method, bad)
                problem(response)


@pytest.mark.parametrize("rate", ["lots", "600", "0/minute", "10/fortnight", ""])
def test_a_wrong_rate_setting_is_refused_naming_the_variable(rate):
    from django.core.exceptions import ImproperlyConfigured

    from backcare.api.throttling import parse_rate

    with pytest.raises(ImproperlyConfigured, match="BACKCARE_API_RATE"):
        parse_rate(rate)
    assert parse_rate("600/minute") == (600, 60) and parse_rate("5/10min") == (5, 600)
