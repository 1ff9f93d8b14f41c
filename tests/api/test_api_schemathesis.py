"""schemathesis against the served OpenAPI document (/api/openapi.json): for every operation at least 100 generated
requests, valid and invalid, sent with a real personal API token of the owner and of a therapist, each answer
checked with every schemathesis check (no server error; status code, content type, headers and body conform to the
document; valid data accepted, invalid data rejected; auth not ignored...).

The data is the demo clinic (`backcare demo`) with a ledger added (its completed visits invoiced, part payments, a
package), built once for the module inside a transaction that is rolled back at the end. Generated ids are mixed
with ids that exist (clients, courses, sessions, appointments, services, therapists, rooms, invoices, packages),
dates with days in the coming month and times with the clinic's working hours, so requests reach real records and
real bookings as well as missing ones.

Clinic rules that a schema cannot say (a booking at a time the therapist does not work, reassessment after the last
session) answer 422; `positive_data_acceptance` is told so, and only so.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from api_support import make_token
from django.db import transaction
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig

from backcare.api.schemas import MAX_ID

CONFIG = {
    "checks": {
        "positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "409", "422", "429"]},
    }
}
CALLS: Counter[str] = Counter()
STARTED: list[float] = []  # when the module's data was built


@dataclass
class Demo:
    tokens: dict[str, str]
    ids: dict[str, list[int]] = field(default_factory=dict)


def _ids() -> dict[str, list[int]]:
    from backcare.clinic.models import Client, Course, Intake, Role, Screening, StaffMember, TreatmentSession
    from backcare.scheduling.models import Appointment, Room, Service

    def pks(qs: Any) -> list[int]:
        return list(qs.order_by("pk").values_list("pk", flat=True))

    from backcare.billing.models import Invoice, Package

    course_ids = pks(Course.objects.all())
    return {
        "invoice": pks(Invoice.objects.all()),
        "package": pks(Package.objects.all()),
        "client": pks(Client.objects.all()),
        "intake": pks(Intake.objects.all()),
        "screening": pks(Screening.objects.all()),
        "health_update": pks(Screening.objects.filter(kind="pre_session")),
        "course": course_ids,
        "session": pks(TreatmentSession.objects.all()),
        "appointment": pks(Appointment.objects.all()),
        "service": pks(Service.objects.all()),
        "therapist": pks(StaffMember.objects.filter(role=Role.THERAPIST)),
        "room": pks(Room.objects.all()),
    }


def _add_billing() -> None:
    """The demo clinic has no ledger yet: price its services, invoice its completed visits, take part payments, sell
    a package, so the billing operations reach real invoices, payments and packages."""
    import datetime as dt

    from django.utils import timezone

    from backcare.billing import services
    from backcare.clinic.models import StaffMember
    from backcare.scheduling.models import Appointment, Service

    owner = StaffMember.objects.get(user__username="owner").user
    for service in Service.objects.all():
        services.set_price(service, 5500, by=owner)
    for appointment in Appointment.objects.filter(status="completed").order_by("pk")[:20]:
        invoice = services.bill_session(appointment, by=owner)
        if invoice is not None and hasattr(invoice, "number"):
            services.take_payment(appointment.client, 2000, "card", key=f"demo-{invoice.pk}", by=owner, invoice=invoice)
    client = Appointment.objects.order_by("pk").first().client
    service = Service.objects.order_by("pk").first()
    services.sell_package(client, service, 4, 20000, timezone.localdate() + dt.timedelta(days=90), by=owner)


@pytest.fixture(scope="module")
def demo(django_db_setup: Any, django_db_blocker: Any) -> Any:
    """The demo clinic and two tokens, for the whole module; rolled back at its end."""
    from backcare.clinic.models import StaffMember
    from backcare.demo.clinic import build_demo

    STARTED.append(time.monotonic())
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            build_demo()
            _add_billing()
            owner = StaffMember.objects.get(user__username="owner").user
            therapist = StaffMember.objects.get(user__username="therapist1").user
            yield Demo({"owner": make_token(owner, name="schemathesis"), "therapist": make_token(therapist)}, _ids())
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


# Which known ids a parameter of each name may take.
ID_POOLS = {
    "client_id": "client",
    "client": "client",
    "intake_id": "intake",
    "screening_id": "screening",
    "course_id": "course",
    "course": "course",
    "session_id": "session",
    "appointment_id": "appointment",
    "invoice_id": "invoice",
    "invoice": "invoice",
    "package_id": "package",
    "service": "service",
    "therapist": "therapist",
    "room": "room",
    "health_update": "health_update",
}


def _realistic(values: dict[str, Any], ids: dict[str, list[int]]) -> Any:
    """A strategy replacing, in valid values only, ids by known ones and dates by days of the coming month (so
    invalid values generated on purpose stay invalid)."""
    today = dt.date.today()
    replacements: dict[str, Any] = {}
    for name, value in values.items():
        pool = ids.get(ID_POOLS.get(name, ""), [])
        if pool and isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID:
            replacements[name] = st.sampled_from(pool)
        elif name in ("date_from", "start") and isinstance(value, str) and _is_date(value):
            replacements[name] = st.integers(0, 30).map(lambda d: (today + dt.timedelta(days=d)).isoformat())
        elif name == "starts_at" and isinstance(value, str) and _is_moment(value):
            replacements[name] = st.tuples(st.integers(1, 30), st.integers(9 * 4, 17 * 4)).map(
                lambda p: dt.datetime.combine(
                    today + dt.timedelta(days=p[0]), dt.time(p[1] // 4, 15 * (p[1] % 4)), tzinfo=dt.UTC
                ).isoformat()
            )
    if not replacements:
        return st.just(values)
    chosen = st.fixed_dictionaries(replacements).map(lambda r: {**values, **r})
    if "date_from" in replacements and isinstance(values.get("date_to"), str) and _is_date(values["date_to"]):
        chosen = chosen.flatmap(
            lambda v: st.integers(0, 6).map(
                lambda d: {**v, "date_to": (dt.date.fromisoformat(v["date_from"]) + dt.timedelta(days=d)).isoformat()}
            )
        )
    return st.one_of(st.just(values), chosen)


def _is_moment(value: str) -> bool:
    try:
        return dt.datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def _is_date(value: str) -> bool:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _load_schema() -> Any:
    """The document as the server serves it (a request through the WSGI application; it reads no database)."""
    from backcare.web.wsgi import application

    return schemathesis.openapi.from_wsgi("/api/openapi.json", application, config=SchemathesisConfig.from_dict(CONFIG))


schema = _load_schema()
KNOWN: dict[str, list[int]] = {}  # filled from the demo clinic when the module's data is built


@schema.hook
def filter_query(context: Any, query: Any) -> bool:
    """A parameter whose value is null or an empty list is left out of the URL when the request is sent, so the
    server cannot see what was "wrong" with it; such cases test the HTTP client, not the API."""
    return not isinstance(query, dict) or all(v is not None and v != [] for v in query.values())


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    return _realistic(path_parameters or {}, KNOWN)


@schema.hook
def flatmap_query(context: Any, query: dict[str, Any]) -> Any:
    return _realistic(query, KNOWN) if isinstance(query, dict) else st.just(query)


@schema.hook
def flatmap_body(context: Any, body: Any) -> Any:
    return _realistic(body, KNOWN) if isinstance(body, dict) else st.just(body)


@pytest.fixture
def keep_connection() -> Any:
    """The requests go through the real WSGI handler, whose request signals close the database connection after each
    request (PostgreSQL would lose the test's transaction); Django's own test client leaves them out the same way."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def tokens(demo: Demo, db: Any, settings: Any, keep_connection: Any) -> dict[str, str]:
    settings.BACKCARE_API_RATE = "1000000/minute"  # the rate limit has its own test
    KNOWN.clear()
    KNOWN.update(demo.ids)
    return demo.tokens


HYPOTHESIS = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)


@pytest.fixture(scope="module", autouse=True)
def at_least_100_cases_each() -> Any:
    """After the module: every operation that ran was sent at least 100 generated requests per token."""
    yield
    few = {key: count for key, count in CALLS.items() if count < 100}
    print(f"\nschemathesis: {sum(CALLS.values())} requests in {time.monotonic() - STARTED[0]:.0f} s:", dict(CALLS))
    assert not few, f"operations with fewer than 100 generated requests: {few}"


def check(case: Any, token: str, role: str) -> None:
    CALLS[f"{role} {case.operation.method.upper()} {case.operation.path}"] += 1
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"})


@schema.parametrize()
@HYPOTHESIS
def test_owner_token_every_answer_conforms(case: Any, tokens: dict[str, str]) -> None:
    check(case, tokens["owner"], "owner")


@schema.parametrize()
@HYPOTHESIS
def test_therapist_token_every_answer_conforms(case: Any, tokens: dict[str, str]) -> None:
    check(case, tokens["therapist"], "therapist")
