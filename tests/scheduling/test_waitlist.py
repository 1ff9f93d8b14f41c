"""The waitlist: a freed time is held for the first matching client; accepting books it; an expired hold frees it;
a hold cannot be double-booked."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from sched_helpers import at, future_day, live_overlaps

from backcare.clinic.models import AuditEvent
from backcare.scheduling.models import Appointment, WaitlistEntry
from backcare.scheduling.services import availability, booking, waitlist
from backcare.scheduling.services.booking import BookingConflict


@pytest.fixture
def freed(world):
    """Cora's 10:00 appointment, a week ahead, and two clients waiting for that service."""
    day = future_day(7)
    appointment = booking.book_appointment(
        world.cora, world.massage, at(day, 10), therapist=world.therapist, room=world.room1, by=world.front_desk.user
    )
    first, second = world.client("Wanda"), world.client("Walter")
    entries = [
        waitlist.join_waitlist(
            c, world.massage, day - timedelta(days=2), day + timedelta(days=2), by=world.front_desk.user
        )
        for c in (first, second)
    ]
    return day, appointment, entries


def expire(hold):
    """Let the hold's time run out (as if 30 minutes had passed)."""
    Appointment.objects.filter(pk=hold.pk).update(hold_expires_at=timezone.now() - timedelta(seconds=1))


def test_cancellation_offers_a_hold_to_the_first_in_line(world, freed):
    day, appointment, (first, _second) = freed
    booking.cancel_appointment(appointment, by=world.front_desk.user)
    hold = Appointment.objects.get(status="held")
    assert hold.client_id == first.client_id and hold.starts_at == at(day, 10)
    assert hold.therapist_id == world.therapist.pk and hold.room_id == world.room1.pk
    assert timedelta(minutes=29) < hold.hold_expires_at - timezone.now() <= timedelta(minutes=30)
    first.refresh_from_db()
    assert first.status == "offered"
    assert AuditEvent.objects.filter(action="offer_hold", client=first.client).exists()


def test_a_hold_cannot_be_double_booked(world, freed):
    day, appointment, (_first, second) = freed
    booking.cancel_appointment(appointment, by=world.front_desk.user)
    with pytest.raises(BookingConflict, match="Theo Therapist is already booked 10:00-11:00"):
        booking.book_appointment(
            world.client(),
            world.massage,
            at(day, 10),
            therapist=world.therapist,
            room=world.room2,
            by=world.front_desk.user,
        )
    with pytest.raises(BookingConflict):
        waitlist.place_hold(second, therapist=world.therapist, room=world.room1, starts_at=at(day, 10))
    slots = availability.find_slots(world.massage, day, day, therapist=world.therapist)
    assert at(day, 10) not in {s.starts_at for s in slots}
    assert not live_overlaps()


def test_accepting_the_hold_books_it(world, freed):
    _day, appointment, (first, _second) = freed
    booking.cancel_appointment(appointment, by=world.front_desk.user)
    hold = Appointment.objects.get(status="held")
    with pytest.raises(PermissionDenied):
        waitlist.accept_hold(hold, by=world.cora.user)  # someone else's offer
    booked = waitlist.accept_hold(hold, by=world.front_desk.user)
    assert booked.status == "booked" and booked.hold_expires_at is None
    first.refresh_from_db()
    assert first.status == "booked"
    with pytest.raises(ValidationError, match="no longer open"):
        waitlist.accept_hold(hold, by=world.front_desk.user)


def test_expired_hold_frees_the_time_and_cannot_be_accepted(world, freed):
    day, appointment, (first, _second) = freed
    booking.cancel_appointment(appointment, by=world.front_desk.user)
    hold = Appointment.objects.get(status="held")
    expire(hold)
    with pytest.raises(ValidationError, match="expired"):
        waitlist.accept_hold(hold, by=world.front_desk.user)
    # Availability already offers the time again, and booking takes it (releasing the hold on the way).
    slots = availability.find_slots(world.massage, day, day, therapist=world.therapist)
    assert at(day, 10) in {s.starts_at for s in slots}
    walk_in = booking.book_appointment(
        world.client(),
        world.massage,
        at(day, 10),
        therapist=world.therapist,
        room=world.room1,
        by=world.front_desk.user,
    )
    hold.refresh_from_db()
    assert hold.status == "expired" and walk_in.status == "booked"
    first.refresh_from_db()
    assert first.status == "waiting"
    assert AuditEvent.objects.filter(action="expire_hold", object_id=str(hold.pk)).exists()
    assert not live_overlaps()


def test_release_job_offers_the_time_to_the_next_client(world, freed):
    _day, appointment, (_first, second) = freed
    booking.cancel_appointment(appointment, by=world.front_desk.user)
    hold = Appointment.objects.get(status="held")
    expire(hold)
    released = waitlist.release_expired_holds()
    assert [h.pk for h in released] == [hold.pk]
    next_hold = Appointment.objects.get(status="held")
    assert next_hold.client_id == second.client_id  # the first let it lapse: the next in line gets it
    assert not live_overlaps()


def test_declining_passes_the_offer_on(world, freed):
    _day, appointment, (first, second) = freed
    booking.cancel_appointment(appointment, by=world.front_desk.user)
    hold = Appointment.objects.get(status="held")
    passed_on = waitlist.decline_hold(hold, by=world.front_desk.user)
    assert passed_on is not None and passed_on.client_id == second.client_id
    first.refresh_from_db()
    assert first.status == "waiting"


def test_moving_an_appointment_offers_the_old_time(world, freed):
    day, appointment, (first, _second) = freed
    booking.reschedule_appointment(appointment, at(day, 14), by=world.front_desk.user)
    hold = Appointment.objects.get(status="held")
    assert hold.starts_at == at(day, 10) and hold.client_id == first.client_id


def test_only_matching_entries_are_offered(world, freed):
    day, appointment, (first, second) = freed
    for entry in (first, second):
        waitlist.leave_waitlist(entry, by=world.front_desk.user)
    wrong_therapist = waitlist.join_waitlist(
        world.client(), world.massage, day, day, therapist=world.therapist2, by=world.front_desk.user
    )
    wrong_dates = waitlist.join_waitlist(
        world.client(), world.massage, day + timedelta(days=1), day + timedelta(days=3), by=world.front_desk.user
    )
    wrong_service = waitlist.join_waitlist(world.client(), world.assessment, day, day, by=world.front_desk.user)
    booking.cancel_appointment(appointment, by=world.front_desk.user)
    assert not Appointment.objects.filter(status="held").exists()
    assert set(WaitlistEntry.objects.filter(status="waiting")) == {wrong_therapist, wrong_dates, wrong_service}


def test_waitlist_entry_checks(world):
    day = future_day(7)
    with pytest.raises(ValidationError) as e:
        waitlist.join_waitlist(world.cora, world.massage, day, day - timedelta(days=1), by=world.cora.user)
    assert "latest" in e.value.message_dict
    with pytest.raises(PermissionDenied):
        waitlist.join_waitlist(world.client(), world.massage, day, day, by=world.cora.user)
    entry = waitlist.join_waitlist(world.cora, world.massage, day, day, by=world.cora.user)
    assert AuditEvent.objects.filter(action="join_waitlist", object_id=str(entry.pk), client=world.cora).exists()
