"""Races, each thread on its own database connection: invoices raised at the same moment get gapless, distinct
numbers, and two staff sending the same payment form at once record it once. Each has its control, which shows the
race is real: numbers read without the counter's lock collide. Runs on SQLite and on PostgreSQL
(BACKCARE_TEST_DB=postgres)."""

from __future__ import annotations

import threading
import traceback
from typing import Any

import pytest
from django.db import connections

from backcare.billing import locking, services
from backcare.billing.models import Invoice, Payment

THREADS = 12


def run_threads(work: Any) -> list[str]:
    """Run `work(n)` in THREADS threads released together; returns the errors' names."""
    start = threading.Barrier(THREADS)
    errors: list[str] = []
    guard = threading.Lock()

    def body(n: int) -> None:
        try:
            start.wait()
            work(n)
        except Exception as error:
            with guard:
                errors.append(type(error).__name__ + ": " + str(error).splitlines()[0])
                if "Unexpected" in str(error):
                    traceback.print_exc()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=body, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return errors


@pytest.fixture
def world(race_db: Any, billing: Any) -> Any:
    billing.appointments = [billing.appointment(days=1 + n // 8, hour=8 + n % 8) for n in range(THREADS)]
    return billing


@pytest.fixture
def control() -> Any:
    yield
    locking.COUNTER_LOCK = True
    locking.RACE_PAUSE_SECONDS = 0.0


def test_invoices_raised_at_once_get_gapless_distinct_numbers(world: Any, control: Any) -> None:
    locking.RACE_PAUSE_SECONDS = 0.05  # widen the gap between reading the counter and writing the invoice
    errors = run_threads(lambda n: services.bill_session(world.appointments[n], by=world.owner.user))
    assert errors == []
    numbers = sorted(Invoice.objects.filter(clinic=world.clinic).values_list("number", flat=True))
    assert numbers == list(range(1, THREADS + 1))


def test_control_numbers_read_without_the_lock_collide(world: Any, control: Any) -> None:
    locking.COUNTER_LOCK = False
    locking.RACE_PAUSE_SECONDS = 0.05
    errors = run_threads(lambda n: services.bill_session(world.appointments[n], by=world.owner.user))
    made = Invoice.objects.filter(clinic=world.clinic).count()
    assert errors and made < THREADS, (errors, made)  # the same number taken twice: the unique constraint refused


def test_the_same_payment_sent_by_two_staff_at_once_is_recorded_once(world: Any) -> None:
    invoice = services.bill_session(world.appointments[0], by=world.owner.user)
    takers = [world.front_desk.user, world.owner.user]
    results: list[tuple[int, bool]] = []
    guard = threading.Lock()

    def pay(n: int) -> None:
        payment, created = services.take_payment(
            world.client, 6000, "card", key="form-key-1", by=takers[n % 2], invoice=invoice
        )
        with guard:
            results.append((payment.pk, created))

    errors = run_threads(pay)
    assert errors == []
    assert Payment.objects.filter(client=world.client).count() == 1
    assert len({pk for pk, _ in results}) == 1 and sum(created for _, created in results) == 1
    assert services.balance(world.client) == 0


def test_control_different_keys_record_every_payment(world: Any) -> None:
    """Without the one key of the form, the same concurrent sends are all recorded: what the key prevents."""
    errors = run_threads(
        lambda n: services.take_payment(world.client, 6000, "card", key=f"key-{n}", by=world.front_desk.user)
    )
    assert errors == []
    assert Payment.objects.filter(client=world.client).count() == THREADS
