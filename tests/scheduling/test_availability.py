"""Free slots: working hours, absences, turnover, qualifications, time zones and daylight saving, one busy fetch."""

from __future__ import annotations

from datetime import UTC, time, timedelta

import pytest
from sched_helpers import LONDON, at, future_day, next_transition

from backcare.scheduling.services import availability, booking, resources


def starts(slots, therapist=None, zone=LONDON):
    return [s.local(zone).strftime("%H:%M") for s in slots if therapist is None or s.therapist_id == therapist.pk]


def test_slots_follow_working_hours_on_the_grid(world):
    day = future_day(7)
    slots = availability.find_slots(world.massage, day, day, therapist=world.therapist)
    times = starts(slots)
    assert times[0] == "09:00" and times[1] == "09:15"
    assert times[-1] == "16:00"  # a 60-minute appointment must end by 17:00
    assert len(times) == 29
    assert all(s.room.pk == world.room1.pk for s in slots)  # the first free room


def test_split_shift_and_days_off(world):
    resources.set_working_hours(world.therapist, {0: [(time(9), time(11)), (time(14), time(16))]}, by=world.owner.user)
    monday = future_day(7, weekday=0)
    times = starts(
        availability.find_slots(world.massage, monday, monday + timedelta(days=1), therapist=world.therapist)
    )
    assert times == ["09:00", "09:15", "09:30", "09:45", "10:00", "14:00", "14:15", "14:30", "14:45", "15:00"]


def test_absence_removes_the_days(world):
    day = future_day(7)
    resources.add_absence(world.therapist, day, day, by=world.front_desk.user, kind="sick")
    slots = availability.find_slots(world.massage, day, day + timedelta(days=1))
    assert not [s for s in slots if s.therapist_id == world.therapist.pk and s.local(LONDON).date() == day]
    assert [s for s in slots if s.therapist_id == world.therapist.pk and s.local(LONDON).date() > day]
    assert [s for s in slots if s.therapist_id == world.therapist2.pk and s.local(LONDON).date() == day]


def test_turnover_keeps_therapist_and_room_busy(world):
    day = future_day(7)
    booking.book_appointment(
        world.cora, world.massage, at(day, 10), therapist=world.therapist, room=world.room1, by=world.front_desk.user
    )
    other = world.client()
    slots = availability.find_slots(world.massage, day, day, therapist=world.therapist, client=other)
    times = starts(slots)
    # Busy 09:55-11:10 with turnover: a new appointment needs 5 minutes before and 10 after.
    assert "09:00" not in times  # 09:00-10:00 + 10 minutes after overlaps 09:55
    assert "08:45" not in times and "11:00" not in times
    assert "11:15" in times
    # The other therapist can still work at 10:00, but in room 2 only.
    at_ten = [s for s in availability.find_slots(world.massage, day, day, client=other) if s.starts_at == at(day, 10)]
    assert [(s.therapist_id, s.room.name) for s in at_ten] == [(world.therapist2.pk, "Room 2")]


def test_client_who_is_busy_gets_no_overlapping_slot(world):
    day = future_day(7)
    booking.book_appointment(
        world.cora, world.massage, at(day, 10), therapist=world.therapist, room=world.room1, by=world.front_desk.user
    )
    slots = availability.find_slots(world.massage, day, day, therapist=world.therapist2, client=world.cora)
    times = starts(slots)
    assert "10:00" not in times and "10:45" not in times and "09:15" not in times
    assert "09:00" in times and "11:00" in times  # the client needs no turnover


def test_only_qualified_therapists(world):
    world.therapist2.qualified_techniques = ["swedish_relaxation"]
    world.therapist2.save()
    day = future_day(7)
    slots = availability.find_slots(world.massage, day, day)
    assert {s.therapist_id for s in slots} == {world.therapist.pk}
    assessment = availability.find_slots(world.assessment, day, day, technique="swedish_relaxation")
    assert {s.therapist_id for s in assessment} == {world.therapist.pk, world.therapist2.pk}
    assert not availability.find_slots(world.assessment, day, day, technique="thai")


def test_service_limited_to_its_rooms(world, clinic, owner):
    room3 = resources.create_room(clinic, "Room 3", by=owner.user)
    hot_stone = resources.create_service(clinic, by=owner.user, name="Warm room", duration_minutes=30, rooms=[room3])
    day = future_day(7)
    assert {s.room.pk for s in availability.find_slots(hot_stone, day, day)} == {room3.pk}


def test_no_slots_in_the_past(world):
    today = future_day(0)
    now = at(today, 12, 5).astimezone(UTC)
    times = starts(availability.find_slots(world.massage, today, today, therapist=world.therapist, now=now))
    assert times[0] == "12:15"


@pytest.mark.parametrize(("month", "offset_before", "offset_after"), [(3, 0, 1), (10, 1, 0)])
def test_daylight_saving_changes_keep_local_hours(world, month, offset_before, offset_after):
    """Europe/London: the clocks go forward on the last Sunday of March and back on the last Sunday of October.
    09:00-17:00 local gives 09:00 local slots before, on and after the change; the UTC hour moves."""
    sunday = next_transition(month)
    saturday, monday = sunday - timedelta(days=1), sunday + timedelta(days=1)
    slots = availability.find_slots(world.massage, saturday, monday, therapist=world.therapist)
    for day, offset in ((saturday, offset_before), (sunday, offset_after), (monday, offset_after)):
        today = [s for s in slots if s.local(LONDON).date() == day]
        assert today[0].local(LONDON).strftime("%H:%M") == "09:00"
        assert today[-1].local(LONDON).strftime("%H:%M") == "16:00"
        assert today[0].starts_at.astimezone(UTC).hour == 9 - offset
        assert len(today) == 29
        assert all(s.ends_at - s.starts_at == timedelta(hours=1) for s in today)
    # Booking accepts the 09:00 local slot on both sides.
    first_after = next(s for s in slots if s.local(LONDON).date() == monday)
    appointment = booking.book_slot(world.cora, first_after, by=world.front_desk.user)
    assert appointment.starts_at.astimezone(LONDON).hour == 9


def test_night_hours_across_the_spring_change(world):
    """A block over the skipped hour: 01:00-02:00 local does not exist on the March change day."""
    sunday = next_transition(3)
    resources.set_working_hours(world.therapist, {6: [(time(0), time(4))]}, by=world.owner.user)
    slots = availability.find_slots(world.massage, sunday, sunday, therapist=world.therapist, step_minutes=60)
    local = [s.local(LONDON).strftime("%H:%M") for s in slots]
    assert local == ["00:00", "02:00", "03:00"]  # 01:00 local does not exist that night
    assert slots[0].ends_at - slots[0].starts_at == timedelta(hours=1)


def test_busy_intervals_fetched_once_whatever_the_range(world, django_assert_max_num_queries):
    day = future_day(7)
    for i in range(6):
        booking.book_appointment(
            world.client(),
            world.massage,
            at(day + timedelta(days=i), 10),
            therapist=world.therapist,
            room=world.room1,
            by=world.front_desk.user,
        )
    resources.add_absence(world.therapist2, day + timedelta(days=2), day + timedelta(days=3), by=world.owner.user)
    with django_assert_max_num_queries(7) as one_day:
        availability.find_slots(world.massage, day, day, client=world.cora)
    with django_assert_max_num_queries(len(one_day.captured_queries)) as month:
        slots = availability.find_slots(world.massage, day, day + timedelta(days=30), client=world.cora)
    busy_queries = [q for q in month.captured_queries if "scheduling_appointment" in q["sql"]]
    assert len(busy_queries) == 1
    assert len(slots) > 1000
