"""Property-based tests: whatever sequence of bookings, moves and cancellations, no two live appointments overlap for
a therapist, a room or a client, every refusal names a real conflict, and availability never offers a slot that
booking then refuses. Each example runs inside a transaction that is rolled back, so examples do not leak."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sched_helpers import at, future_day, live_overlaps

from backcare.scheduling.models import Appointment
from backcare.scheduling.services import availability, booking
from backcare.scheduling.services.booking import BookingConflict

SETTINGS = settings(
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

where = st.tuples(
    st.integers(0, 1),  # therapist
    st.integers(0, 1),  # room
    st.integers(0, 1),  # day
    st.integers(0, 28),  # quarter hours after 09:00
)
book_op = st.tuples(st.just("book"), st.integers(0, 2), st.integers(0, 1), where)  # client, service, where
move_op = st.tuples(st.just("move"), st.integers(0, 20), where)
cancel_op = st.tuples(st.just("cancel"), st.integers(0, 20))
operations = st.lists(st.one_of(book_op, book_op, move_op, cancel_op), max_size=10)


@pytest.fixture
def world(world):
    """The scheduling world (conftest), with three clients to book."""
    world.extra["clients"] = [world.cora, world.client(), world.client()]
    return world


def place_of(world: Any, spec: tuple[int, int, int, int]) -> tuple[Any, Any, Any]:
    therapist, room, day, quarter = spec
    start = at(future_day(7) + timedelta(days=day), 9) + timedelta(minutes=15 * quarter)
    return (world.therapist, world.therapist2)[therapist], (world.room1, world.room2)[room], start


def really_taken(appointment_or_none: Any, client: Any, service: Any, therapist: Any, room: Any, start: Any) -> bool:
    """Independent of the code under test: does a live appointment overlap what was asked?"""
    end = start + service.duration
    busy_from, busy_until = start - service.before, end + service.after
    for other in Appointment.objects.filter(status="booked"):
        if appointment_or_none is not None and other.pk == appointment_or_none.pk:
            continue
        busy = other.busy_from < busy_until and busy_from < other.busy_until
        if busy and (other.therapist_id == therapist.pk or other.room_id == room.pk):
            return True
        if other.client_id == client.pk and other.starts_at < end and start < other.ends_at:
            return True
    return False


def apply(world: Any, op: tuple[Any, ...]) -> None:
    by = world.front_desk.user
    if op[0] == "book":
        _, c, s, spec = op
        client, service = world.extra["clients"][c], (world.massage, world.assessment)[s]
        therapist, room, start = place_of(world, spec)
        try:
            booking.book_appointment(client, service, start, therapist=therapist, room=room, by=by)
        except BookingConflict:
            assert really_taken(None, client, service, therapist, room, start)
            return
        except ValidationError as e:
            refused = e.message_dict
        else:
            return
        assert "starts_at" in refused  # only "does not work then" (ends after 17:00) is expected
        return
    booked = list(Appointment.objects.filter(status="booked").order_by("pk"))
    if not booked:
        return
    target = booked[op[1] % len(booked)]
    if op[0] == "cancel":
        booking.cancel_appointment(target, by=by)
        return
    therapist, room, start = place_of(world, op[2])
    try:
        booking.reschedule_appointment(target, start, therapist=therapist, room=room, by=by)
    except BookingConflict:
        assert really_taken(target, target.client, target.service, therapist, room, start)
        return
    except ValidationError as e:
        refused = e.message_dict
    else:
        return
    assert "starts_at" in refused


@pytest.mark.django_db
def test_no_overlaps_whatever_happens(world):
    @SETTINGS
    @given(ops=operations)
    def check(ops: list[tuple[Any, ...]]) -> None:
        with transaction.atomic():
            for op in ops:
                apply(world, op)
                assert live_overlaps() == [], op
            transaction.set_rollback(True)

    check()


@pytest.mark.django_db
def test_offered_slots_can_be_booked(world):
    @SETTINGS
    @given(ops=operations, data=st.data())
    def check(ops: list[tuple[Any, ...]], data: st.DataObject) -> None:
        with transaction.atomic():
            for op in ops:
                apply(world, op)
            client = data.draw(st.sampled_from(world.extra["clients"]), label="client")
            service = data.draw(st.sampled_from([world.massage, world.assessment]), label="service")
            therapist = data.draw(st.sampled_from([None, world.therapist, world.therapist2]), label="therapist")
            day = future_day(7) + timedelta(days=data.draw(st.integers(0, 1), label="day"))
            slots = availability.find_slots(service, day, day, therapist=therapist, client=client)
            if slots:
                slot = data.draw(st.sampled_from(slots), label="slot")
                made = booking.book_slot(client, slot, by=world.front_desk.user)
                assert made.starts_at == slot.starts_at
                assert live_overlaps() == []
            transaction.set_rollback(True)

    check()
