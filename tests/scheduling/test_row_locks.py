"""Row locks lock only the row asked for (`backcare.common.rowlock.locked`): while one client's screening holds its
intake locked, or a FHIR import or a settings change holds the clinic, the clinic's bookings go on. Each case has
its control, the lock as it was written before (``select_for_update()`` over ``select_related``, which locks every
joined row, the clinic's too), under which the same booking waits. On PostgreSQL with real threads, each on its own
connection (BACKCARE_TEST_DB=postgres); on SQLite, which has no row locks, Django leaves the clause out."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from sched_helpers import at, future_day

from backcare.clinic.models import Clinic, Intake
from backcare.clinic.services.intake import lock_intake
from backcare.common.rowlock import locked
from backcare.scheduling.services import booking
from pgcluster import on_postgres

# PostgreSQL: committed rows, which the other threads' connections see. SQLite (no threads here): the usual
# rolled-back test transaction, since emptying the database afterwards would delete audit events, which it refuses.
pytestmark = pytest.mark.django_db(transaction=on_postgres())

SRC = Path(__file__).resolve().parents[2] / "src" / "backcare"
LOCK_TIMEOUT = "3s"  # a booking waits at most this long; one that is not blocked takes milliseconds


def _old_intake_lock(pk: int) -> Any:
    return Intake.objects.select_for_update().select_related("client", "client__clinic").get(pk=pk)


def _old_clinic_lock(pk: int) -> Any:
    return Clinic.objects.select_for_update().filter(pk=pk).first()


def _booking_while_held(world: Any, hold: Callable[[], Any]) -> str:
    """Thread A runs `hold()` in a transaction and keeps it open; meanwhile thread B books an appointment for
    another client of the same clinic with a lock timeout. Returns "booked" or the error B got."""
    holding, finished = threading.Event(), threading.Event()
    outcome: dict[str, str] = {}
    other = world.client()
    when = at(future_day(5), 10)

    def holder() -> None:
        try:
            with transaction.atomic():
                hold()
                holding.set()
                finished.wait(30)
        except Exception as error:  # pragma: no cover - reported through outcome
            outcome["holder"] = repr(error)
            holding.set()
        finally:
            connections.close_all()

    def booker() -> None:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                booking.book_appointment(
                    other, world.massage, when, therapist=world.therapist, room=world.room1, by=world.front_desk.user
                )
            outcome["booker"] = "booked"
        except OperationalError as error:
            outcome["booker"] = "lock timeout" if "lock timeout" in str(error) else repr(error)
        finally:
            finished.set()
            connections.close_all()

    a = threading.Thread(target=holder)
    a.start()
    assert holding.wait(30)
    b = threading.Thread(target=booker)
    b.start()
    b.join(60)
    finished.set()
    a.join(60)
    assert not a.is_alive() and not b.is_alive()
    assert "holder" not in outcome, outcome
    return outcome["booker"]


@pytest.fixture
def intake(world: Any) -> Intake:
    return Intake.objects.create(client=world.cora)


def test_a_screening_lock_leaves_the_clinic_bookable(world: Any, intake: Intake) -> None:
    if connection.vendor != "postgresql":
        with transaction.atomic():
            assert lock_intake(intake.pk) == intake  # no row locks: the IMMEDIATE transaction's write lock instead
        return
    assert _booking_while_held(world, lambda: lock_intake(intake.pk)) == "booked"


def test_control_the_old_screening_lock_blocked_every_booking(world: Any, intake: Intake) -> None:
    if connection.vendor != "postgresql":
        assert "FOR UPDATE" not in str(_old_intake_lock_sql(intake.pk))
        return
    assert _booking_while_held(world, lambda: _old_intake_lock(intake.pk)) == "lock timeout"


def _old_intake_lock_sql(pk: int) -> str:
    query = Intake.objects.select_for_update().select_related("client", "client__clinic").filter(pk=pk)
    return str(query.query)


@pytest.mark.parametrize("new", [True, False], ids=["no-key lock (import, settings)", "control: the old lock"])
def test_a_clinic_lock_for_an_import_leaves_the_clinic_bookable(world: Any, new: bool) -> None:
    pk = world.clinic.pk
    if connection.vendor != "postgresql":
        with transaction.atomic():
            assert locked(Clinic.objects.filter(pk=pk), no_key=True).first() == world.clinic
        return
    hold = (
        (lambda: locked(Clinic.objects.filter(pk=pk), no_key=True).first()) if new else (lambda: _old_clinic_lock(pk))
    )
    assert _booking_while_held(world, hold) == ("booked" if new else "lock timeout")


def test_the_intake_lock_names_the_intake_and_client_only(db: Any, intake: Intake) -> None:
    """What `submit` and `review` take: the intake and its client (a draft save waits on the client), never the
    clinic."""
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        lock_intake(intake.pk)
    sql = queries.captured_queries[-1]["sql"]
    if connection.vendor != "postgresql":
        assert "FOR UPDATE" not in sql  # SQLite: the write lock of the IMMEDIATE transaction instead
        return
    assert sql.endswith('FOR UPDATE OF "clinic_intake", "clinic_client"'), sql


def test_every_row_lock_goes_through_the_helper() -> None:
    """One way to lock rows: a bare select_for_update would lock every joined table again."""
    offenders = [
        f"{path.relative_to(SRC)}:{n}"
        for path in SRC.rglob("*.py")
        if path.name != "rowlock.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\.select_for_update\(", line)
    ]
    assert offenders == []
