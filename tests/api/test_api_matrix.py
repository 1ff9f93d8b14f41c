"""Who may call which API operation: EVERY operation of the OpenAPI document for EVERY kind of token (owner,
therapist of client X, another therapist, front desk, client X, client Y, a read-only token, a revoked token, no
token). The operations are enumerated from /api/openapi.json, so a new operation fails
`test_every_operation_is_in_the_table` until its row is written here.

Every request is sent with valid data for X's records and rolled back afterwards, so each token meets the same data.
The rows follow the pages (tests/clinic/test_permission_matrix.py): clinical records are for the owner and the
client's own therapists (another therapist 404, front desk 403, clients 404); contact details and appointments for
all staff; a client reaches only their own record and appointments.
"""

from __future__ import annotations

from typing import Any

from api_support import call
from api_world import ROLES
from django.db import transaction

# One row per operation: the status each token gets, in ROLES order:
#   owner, therapist (X's), other therapist, front desk, client X, client Y, read-only, revoked, no token.
EXPECTED: dict[tuple[str, str], str] = {
    ("POST", "/api/screening"): "200 200 200 200 200 200 200 401 401",
    # contact details: all staff; a client only their own record; changes are staff work
    ("GET", "/api/clients"): "200 200 200 200 200 200 200 401 401",
    ("POST", "/api/clients"): "201 201 201 201 403 403 403 401 401",
    ("GET", "/api/clients/{client_id}"): "200 200 200 200 200 404 200 401 401",
    ("PATCH", "/api/clients/{client_id}"): "200 200 200 200 403 403 403 401 401",
    # clinical records: the owner and X's therapist; another therapist 404, front desk 403, clients 404
    ("GET", "/api/clients/{client_id}/intakes"): "200 200 404 403 404 404 200 401 401",
    ("GET", "/api/intakes/{intake_id}"): "200 200 404 403 404 404 200 401 401",
    ("GET", "/api/clients/{client_id}/screenings"): "200 200 404 403 404 404 200 401 401",
    ("GET", "/api/screenings/{screening_id}"): "200 200 404 403 404 404 200 401 401",
    ("GET", "/api/clients/{client_id}/courses"): "200 200 404 403 404 404 200 401 401",
    ("POST", "/api/clients/{client_id}/courses"): "201 201 404 403 404 404 403 401 401",
    ("GET", "/api/courses/{course_id}"): "200 200 404 403 404 404 200 401 401",
    ("GET", "/api/courses/{course_id}/sessions"): "200 200 404 403 404 404 200 401 401",
    ("POST", "/api/courses/{course_id}/health-updates"): "201 201 404 403 404 404 403 401 401",
    ("POST", "/api/courses/{course_id}/sessions"): "201 201 404 403 404 404 403 401 401",
    ("GET", "/api/sessions/{session_id}"): "200 200 404 403 404 404 200 401 401",
    ("GET", "/api/clients/{client_id}/outcomes"): "200 200 404 403 404 404 200 401 401",
    ("POST", "/api/courses/{course_id}/outcomes"): "201 201 404 403 404 404 403 401 401",
    # availability: staff; a client searches for themselves
    ("GET", "/api/availability/slots"): "200 200 200 200 200 200 200 401 401",
    # course booking reads the course: as the course booking page (front desk yes, another therapist 404)
    ("GET", "/api/courses/{course_id}/suggestion"): "200 200 404 200 403 403 200 401 401",
    # appointments: contact data for all staff; a client their own, booking and cancelling as the portal allows
    ("GET", "/api/appointments"): "200 200 200 200 200 200 200 401 401",
    ("POST", "/api/appointments"): "201 201 201 201 201 404 403 401 401",
    ("GET", "/api/appointments/{appointment_id}"): "200 200 200 200 200 404 200 401 401",
    ("POST", "/api/appointments/{appointment_id}/reschedule"): "200 200 200 200 403 403 403 401 401",
    ("POST", "/api/appointments/{appointment_id}/cancel"): "200 200 200 200 200 404 403 401 401",
    # billing, as the billing pages: lists are everyone's own share (the clinic's for the owner and front desk, a
    # therapist's own sessions', a client's own); X's session invoice for its therapist, the till roles and X
    ("GET", "/api/invoices"): "200 200 200 200 200 200 200 401 401",
    ("GET", "/api/invoices/{invoice_id}"): "200 200 404 200 200 404 200 401 401",
    ("GET", "/api/payments"): "200 200 200 200 200 200 200 401 401",
    # money is taken by the front desk and the owner only
    ("POST", "/api/payments"): "201 403 403 201 403 403 403 401 401",
    ("POST", "/api/refunds"): "201 403 403 201 403 403 403 401 401",
    # packages: the till roles, the therapists who may see X's record, X
    ("GET", "/api/packages"): "200 200 200 200 200 200 200 401 401",
    ("GET", "/api/packages/{package_id}"): "200 200 404 200 200 404 200 401 401",
    # the day's statuses are staff work, as on the appointment's page: arrived for the desk, the owner and its
    # therapist (another therapist 403); clients never
    ("POST", "/api/appointments/{appointment_id}/status"): "200 200 403 200 403 403 403 401 401",
}
# An invoice follows its session's therapist, not the sharing of the client's record (docs/billing.md).
BY_SESSION = {("GET", "/api/invoices/{invoice_id}")}


# Operations whose difference between X's therapist and another is being the appointment's therapist, not the record.
APPOINTMENT_THERAPIST_ONLY = {("POST", "/api/appointments/{appointment_id}/status")}


def end_active_course(w: Any) -> None:
    """Course start needs a client without a course in progress."""
    from backcare.clinic.models import Course
    from backcare.clinic.services import courses

    courses.end_course(Course.objects.get(pk=w.x["course"]), status="completed", staff=w.world.therapist_a)


def put_x_in_credit(w: Any) -> None:
    """A refund needs the client in credit: a payment on account larger than X owes."""
    from backcare.billing import services

    services.take_payment(w.world.x.client, 100_000, "transfer", key="matrix-credit", by=w.world.front_desk.user)


def request_for(method: str, path: str, w: Any) -> dict[str, Any]:
    """The path filled with X's ids, and a valid query and body for this operation."""
    from conftest import make_intake

    ids = {
        "client_id": w.x["client"],
        "intake_id": w.x["intake"],
        "screening_id": w.x["screening"],
        "course_id": w.x["course"],
        "session_id": w.x["session"],
        "appointment_id": w.x["appointment"],
        "invoice_id": w.x["invoice"],
        "package_id": w.x["package"],
    }
    from backcare.scheduling.models import Room, Service

    service = Service.objects.filter(clinic=w.world.clinic).order_by("pk").first()
    room = Room.objects.filter(clinic=w.world.clinic).order_by("pk").first()
    therapist = w.world.therapist_a
    query: dict[str, Any] = {}
    body: Any = None
    prepare = None
    headers: dict[str, str] = {}
    match (method, path):
        case ("POST", "/api/screening"):
            body = make_intake("fever")
        case ("POST", "/api/clients"):
            body = {"first_name": "Nora", "last_name": "Newman", "date_of_birth": "1979-05-02", "phone": "01632 960111"}
        case ("PATCH", "/api/clients/{client_id}"):
            body = {"phone": "01632 960123", "email": "x.new@example.org"}
        case ("POST", "/api/clients/{client_id}/courses"):
            body = {"goals": "Walk to work again"}
            prepare = end_active_course
        case ("POST", "/api/courses/{course_id}/health-updates"):
            body = {"pain_now": 3, "new_findings": []}
        case ("POST", "/api/courses/{course_id}/sessions"):
            body = {
                "health_update": w.x["health_update"],
                "techniques": ["swedish_relaxation"],
                "pressure": 2,
                "body_chart": {"lower_back": {"treated": True, "tension": 1}},
                "pain_before": 4,
                "pain_after": 3,
                "response": "relaxed",
                "subjective": "Better since last week",
            }
        case ("POST", "/api/courses/{course_id}/outcomes"):
            body = {"instrument": "pain_nrs", "score": 3, "timepoint": "session"}
        case ("GET", "/api/availability/slots"):
            query = {"service": service.pk, "date_from": w.day(20), "date_to": w.day(22)}
        case ("GET", "/api/courses/{course_id}/suggestion"):
            query = {"service": service.pk, "start": w.day(20)}
        case ("GET", "/api/appointments"):
            query = {"date_from": w.day(0), "date_to": w.day(30)}
        case ("POST", "/api/appointments"):
            body = {
                "client": w.x["client"],
                "service": service.pk,
                "therapist": therapist.pk,
                "room": room.pk,
                "starts_at": w.at(20),
            }
        case ("POST", "/api/appointments/{appointment_id}/reschedule"):
            body = {"starts_at": w.at(21, 11)}
        case ("POST", "/api/appointments/{appointment_id}/cancel"):
            body = {"reason": "Away that week"}
        case ("POST", "/api/payments"):
            body = {
                "client": w.x["client"],
                "amount": 1250,
                "currency": "GBP",
                "method": "card",
                "invoice": w.x["invoice"],
            }
            headers = {"Idempotency-Key": "matrix-payment-1"}
        case ("POST", "/api/refunds"):
            body = {"client": w.x["client"], "amount": 500, "currency": "GBP", "method": "cash", "note": "Moving away"}
            headers = {"Idempotency-Key": "matrix-refund-1"}
            prepare = put_x_in_credit
        case ("POST", "/api/appointments/{appointment_id}/status"):
            ids["appointment_id"] = w.x["appointment_today"]  # it began ten minutes ago
            body = {"status": "arrived"}
    url = path.format(**ids)
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return {"url": url, "body": body, "prepare": prepare, "headers": headers}


def send(w: Any, method: str, path: str, role: str) -> Any:
    """One request as `role`, rolled back so every role meets the same data."""
    spec = request_for(method, path, w)
    with transaction.atomic():
        if spec["prepare"] is not None:
            spec["prepare"](w)
        response = call(method, spec["url"], token=w.tokens[role], body=spec["body"], **spec["headers"])
        transaction.set_rollback(True)
    return response


def openapi_operations() -> set[tuple[str, str]]:
    document = call("GET", "/api/openapi.json").json()
    return {(method.upper(), path) for path, methods in document["paths"].items() for method in methods}


def test_every_operation_is_in_the_table(db):
    operations = openapi_operations()
    assert len(operations) >= 25
    missing = sorted(operations - set(EXPECTED))
    assert not missing, f"API operations missing from EXPECTED in {__file__}: {missing}"
    assert not set(EXPECTED) - operations, "EXPECTED lists operations that no longer exist"
    assert all(len(row.split()) == len(ROLES) for row in EXPECTED.values())


def test_every_operation_answers_every_token_as_expected(w):
    wrong = []
    for (method, path), row in EXPECTED.items():
        for role, expected in zip(ROLES, row.split(), strict=True):
            response = send(w, method, path, role)
            if str(response.status_code) != expected:
                wrong.append(
                    f"{method} {path} as {role}: expected {expected}, got {response.status_code} "
                    f"{response.content[:200]!r}"
                )
            elif response.status_code >= 400:
                assert response["Content-Type"] == "application/problem+json", (method, path, role)
    assert not wrong, "\n".join(wrong)


def test_refusals_record_nothing_and_reveal_nothing(w):
    """Another therapist and the other client, refused on X's records, leave no audit event and see no name."""
    from backcare.clinic.models import AuditEvent

    checked = 0
    for (method, path), row in EXPECTED.items():
        for role, expected in zip(ROLES, row.split(), strict=True):
            if role not in ("other_therapist", "other_client", "front_desk") or expected not in ("403", "404"):
                continue
            before = AuditEvent.objects.count()
            response = send(w, method, path, role)
            assert AuditEvent.objects.count() == before, (method, path, role)
            assert "first name X" not in response.content.decode(), (method, path, role)
            checked += 1
    assert checked >= 30


def test_clinical_reads_are_audited(w):
    from backcare.clinic.models import AuditEvent

    for path in ("/api/clients/{client_id}/intakes", "/api/screenings/{screening_id}", "/api/sessions/{session_id}"):
        before = AuditEvent.objects.filter(action="view", client=w.world.x.client, user=w.world.therapist_a.user)
        count = before.count()
        response = call("GET", request_for("GET", path, w)["url"], token=w.tokens["therapist"])
        assert response.status_code == 200
        events = AuditEvent.objects.filter(action="view", client=w.world.x.client, user=w.world.therapist_a.user)
        assert events.count() == count + 1, path
        assert events.order_by("-id").first().detail["page"].startswith("API: ")


def test_sharing_x_with_the_other_therapist_opens_what_x_s_therapist_may(w):
    from backcare.clinic.services.clients import share_client

    share_client(w.world.x.client, therapist=w.world.therapist_b, staff=w.world.owner)
    a, b = ROLES.index("therapist"), ROLES.index("other_therapist")
    opened = 0
    for (method, path), row in EXPECTED.items():
        statuses = row.split()
        if (method, path) in APPOINTMENT_THERAPIST_ONLY:
            # Sharing opens the record, not the appointment: its day's statuses stay its own therapist's.
            assert send(w, method, path, "other_therapist").status_code == 403, (method, path)
            continue
        if statuses[a] != statuses[b] and (method, path) not in BY_SESSION:
            assert str(send(w, method, path, "other_therapist").status_code) == statuses[a], (method, path)
            opened += 1
    assert opened >= 12


def test_only_the_client_s_own_appointments_are_listed(w):
    for role, side in (("client", w.world.x), ("other_client", w.world.y)):
        items = call("GET", "/api/appointments?limit=200", token=w.tokens[role]).json()["items"]
        assert items and {item["client"] for item in items} == {side.client.pk}
        clients = call("GET", "/api/clients", token=w.tokens[role]).json()
        assert clients["count"] == 1 and clients["items"][0]["id"] == side.client.pk
