"""Booking, moving and cancelling: the rules, the conflict messages, the cancellation window, the screening gate,
overbooking by the owner, the audit trail, and whole courses all or nothing."""

from __future__ import annotations

import itertools
from datetime import time, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone
from sched_helpers import LONDON, at, future_day, live_overlaps

from backcare.clinic.models import AuditEvent
from backcare.clinic.services import courses
from backcare.scheduling import locking
from backcare.scheduling.models import Appointment
from backcare.scheduling.services import availability, booking, placement, resources
from backcare.scheduling.services.booking import BookingConflict


def book(world, client, start, *, therapist=None, room=None, service=None, by=None, **kw):
    return booking.book_appointment(
        client,
        service or world.massage,
        start,
        therapist=therapist or world.therapist,
        room=room or world.room1,
        by=by or world.front_desk.user,
        **kw,
    )


def test_booking_is_recorded_and_audited(world):
    day = future_day(7)
    a = book(world, world.cora, at(day, 10))
    assert a.status == "booked" and not a.override
    assert a.ends_at - a.starts_at == timedelta(minutes=60)
    assert (a.starts_at - a.busy_from, a.busy_until - a.ends_at) == (timedelta(minutes=5), timedelta(minutes=10))
    event = AuditEvent.objects.get(action="book_appointment")
    assert event.client_id == world.cora.pk and event.object_id == str(a.pk)
    assert event.actor == "Fred Frontdesk (Front desk)"


@pytest.mark.parametrize(
    ("who", "message"),
    [
        ("therapist", "Theo Therapist is already booked 10:00-11:00 (with turnover 09:55-11:10)"),
        ("room", "Room 1 is already in use 10:00-11:00 (with turnover 09:55-11:10)"),
        ("client", "Cora Client already has an appointment 10:00-11:00"),
    ],
)
def test_conflict_names_who_is_taken(world, who, message):
    day = future_day(7)
    book(world, world.cora, at(day, 10))
    other = world.client()
    kwargs = {
        "therapist": {"client": other, "room": world.room2},
        "room": {"client": other, "therapist": world.therapist2},
        "client": {"client": world.cora, "therapist": world.therapist2, "room": world.room2},
    }[who]
    client = kwargs.pop("client")
    with pytest.raises(BookingConflict) as e:
        book(world, client, at(day, 10, 30), **kwargs)
    assert e.value.conflicts == [message]
    assert message in str(e.value) and isinstance(e.value, ValidationError)
    assert Appointment.objects.count() == 1 and not live_overlaps()


def test_turnover_only_clash_and_back_to_back(world):
    day = future_day(7)
    book(world, world.cora, at(day, 10))
    other = world.client()
    with pytest.raises(BookingConflict, match="Theo Therapist is already booked"):
        book(world, other, at(day, 11), room=world.room2)  # 10 minutes' turnover after, 5 before
    assert book(world, other, at(day, 11, 15), room=world.room2).pk


def test_client_back_to_back_is_allowed(world):
    day = future_day(7)
    book(world, world.cora, at(day, 10))
    second = book(world, world.cora, at(day, 11), therapist=world.therapist2, room=world.room2)
    assert second.starts_at == at(day, 11)


def test_rules_name_the_field(world):
    day = future_day(7)
    with pytest.raises(ValidationError) as e:
        book(world, world.cora, at(day, 16, 30))
    assert "does not work" in e.value.message_dict["starts_at"][0]
    with pytest.raises(ValidationError) as e:
        book(world, world.cora, timezone.now() - timedelta(hours=1))
    assert e.value.message_dict["starts_at"] == ["Choose a time in the future."]
    resources.add_absence(world.therapist, day, day, by=world.owner.user, kind="holiday")
    with pytest.raises(ValidationError) as e:
        book(world, world.cora, at(day, 10))
    assert e.value.message_dict["starts_at"] == ["Theo Therapist is away then (holiday)."]
    world.therapist2.qualified_techniques = ["swedish_relaxation"]
    world.therapist2.save()
    with pytest.raises(ValidationError) as e:
        book(world, world.cora, at(day, 10), therapist=world.therapist2)
    assert e.value.message_dict["therapist"] == ["Tara Therapist is not qualified for Remedial (therapeutic) massage."]
    assert not Appointment.objects.exists()


def test_screening_gate(world):
    day = future_day(7)
    new = world.client(screened=False)
    with pytest.raises(ValidationError) as e:
        book(world, new, at(day, 10))
    assert "No screening yet" in e.value.message_dict["client"][0]
    # The first assessment visit may be booked before the intake is screened.
    assert book(world, new, at(day, 10), service=world.assessment).pk
    flagged = world.client()
    world.screen_client(flagged, "dvt_history")  # clearance required
    for service in (world.massage, world.assessment):
        with pytest.raises(ValidationError, match="clearance"):
            book(world, flagged, at(day, 12), service=service)
    blocked = world.client()
    world.screen_client(blocked, "fever")
    with pytest.raises(ValidationError, match="No course or session can start"):
        book(world, blocked, at(day, 14), service=world.assessment)


def test_clients_book_for_themselves_only(world, make_client):
    day = future_day(7)
    own = book(world, world.cora, at(day, 10), by=world.cora.user)
    assert own.created_by == world.cora.user
    stranger = world.client()
    with pytest.raises(PermissionDenied):
        book(world, stranger, at(day, 12), by=world.cora.user)


def test_only_the_owner_overbooks_with_a_reason(world):
    day = future_day(7)
    book(world, world.cora, at(day, 10))
    other = world.client()
    with pytest.raises(PermissionDenied):
        book(world, other, at(day, 10), room=world.room2, override_reason="squeeze in")
    a = book(world, other, at(day, 10), room=world.room2, by=world.owner.user, override_reason="Acute, seen briefly")
    assert a.override and a.override_reason == "Acute, seen briefly"
    event = AuditEvent.objects.get(action="overbook_appointment")
    assert event.detail["overbooked"] == ["Theo Therapist is already booked 10:00-11:00 (with turnover 09:55-11:10)"]
    assert event.detail["reason"] == "Acute, seen briefly"
    # An owner's booking without a conflict is an ordinary one.
    plain = book(world, world.client(), at(day, 14), by=world.owner.user, override_reason="not needed")
    assert not plain.override
    # Other bookings still see the overbooked appointment as busy.
    with pytest.raises(BookingConflict):
        book(world, world.client(), at(day, 10), therapist=world.therapist2, room=world.room2)


def test_double_submission_books_once(world):
    day = future_day(7)
    a = book(world, world.cora, at(day, 10), submission_key="form-1")
    b = book(world, world.cora, at(day, 10), submission_key="form-1")
    assert a.pk == b.pk and Appointment.objects.count() == 1


def test_reschedule_moves_and_audits(world):
    day = future_day(7)
    a = book(world, world.cora, at(day, 10))
    moved = booking.reschedule_appointment(a, at(day, 10, 30), by=world.front_desk.user)  # overlaps only itself
    assert moved.starts_at == at(day, 10, 30) and moved.busy_from == at(day, 10, 25)
    event = AuditEvent.objects.get(action="reschedule_appointment")
    assert event.detail["before"]["starts_at"] == at(day, 10).isoformat()
    other = book(world, world.client(), at(day, 13))
    with pytest.raises(BookingConflict, match="Theo Therapist is already booked 13:00-14:00"):
        booking.reschedule_appointment(moved, at(day, 12, 30), by=world.front_desk.user)
    moved.refresh_from_db()
    assert moved.starts_at == at(day, 10, 30)
    booking.reschedule_appointment(moved, at(day, 13), therapist=world.therapist2, room=world.room2, by=world.cora.user)
    assert not live_overlaps() and other.pk


def test_cancellation_window(world, clinic):
    soon = (timezone.now() + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    if soon.astimezone(LONDON).hour == 23:
        soon += timedelta(hours=1)
    all_day = {d: [(time(0), time(23, 59))] for d in range(7)}
    resources.set_working_hours(world.therapist, all_day, by=world.owner.user)
    a = book(world, world.cora, soon)
    with pytest.raises(ValidationError, match=r"less than 24 hours before they start\. Please phone the clinic"):
        booking.cancel_appointment(a, by=world.cora.user)
    with pytest.raises(ValidationError, match="less than 24 hours before they start"):
        booking.reschedule_appointment(a, soon + timedelta(days=3), by=world.cora.user)
    with pytest.raises(ValidationError) as e:
        booking.cancel_appointment(a, by=world.front_desk.user)
    assert "give a reason" in e.value.message_dict["late_reason"][0]
    cancelled = booking.cancel_appointment(a, by=world.front_desk.user, late_reason="Client is ill, phoned in")
    assert cancelled.status == "late_cancelled" and cancelled.late_change_reason == "Client is ill, phoned in"
    assert AuditEvent.objects.get(action="cancel_appointment").detail["late_reason"] == "Client is ill, phoned in"
    # Outside the window the client cancels online.
    later = book(world, world.cora, at(future_day(5), 10))
    assert booking.cancel_appointment(later, by=world.cora.user, reason="Away").status == "cancelled"
    with pytest.raises(ValidationError, match="Only a booked appointment"):
        booking.cancel_appointment(later, by=world.cora.user)


def test_cancelled_time_is_free_again(world):
    day = future_day(7)
    a = book(world, world.cora, at(day, 10))
    booking.cancel_appointment(a, by=world.front_desk.user)
    assert book(world, world.client(), at(day, 10)).pk


def test_exclusion_violation_becomes_booking_conflict(world, monkeypatch):
    """On PostgreSQL the database constraint is the last word: with the application's check fooled into seeing a
    free time, the insert fails on the constraint and the caller still gets a BookingConflict naming who is taken.
    On SQLite there is no such constraint (the write lock makes the check exact), so the check is what refuses."""
    day = future_day(7)
    book(world, world.cora, at(day, 10))
    real = placement.find_conflicts
    calls = []

    def blind_first(**kw):
        calls.append(1)
        return [] if len(calls) == 1 else real(**kw)

    other = world.client()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT conname FROM pg_constraint WHERE conname LIKE 'scheduling_no_%%' ORDER BY 1")
            assert [r[0] for r in cursor.fetchall()] == [
                "scheduling_no_client_overlap",
                "scheduling_no_room_overlap",
                "scheduling_no_therapist_overlap",
            ]
        monkeypatch.setattr(placement, "find_conflicts", blind_first)
        with pytest.raises(BookingConflict) as e:
            book(world, other, at(day, 10, 30), room=world.room2)
        assert len(calls) == 2  # blind check, then the lookup that names the conflict
        assert e.value.conflicts == ["Theo Therapist is already booked 10:00-11:00 (with turnover 09:55-11:10)"]
    else:
        with connection.cursor() as cursor:
            cursor.execute("SELECT sql FROM sqlite_master WHERE name = 'scheduling_appointment'")
            assert "EXCLUDE" not in cursor.fetchone()[0]
        with pytest.raises(BookingConflict, match="Theo Therapist is already booked 10:00-11:00"):
            book(world, other, at(day, 10, 30), room=world.room2)
    assert Appointment.objects.count() == 1
    assert locking.GUARDED


# --- courses ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def course(world):
    return courses.start_course(world.cora, staff=world.therapist)


def test_course_plan_is_spaced_and_prefers_the_same_therapist(world, course):
    start = future_day(3)
    from backcare.scheduling.services import holidays

    # Every day of the six weeks open (a closed public holiday moves a session a day on: test_calendar_grid.py).
    for day in holidays.public_holidays(world.clinic, start, start + timedelta(weeks=6)):
        holidays.open_holiday(world.clinic, day, by=world.owner.user)
    plan = availability.suggest_course(course, world.massage, start)
    assert len(plan) == course.sessions_planned == 4
    days = [s.local(LONDON).date() for s in plan]
    gaps = [(b - a).days for a, b in itertools.pairwise(days)]
    assert all(g >= 5 for g in gaps) and gaps == [10, 10, 10]  # 6 weeks, 4 sessions: every 10 days
    assert days[-1] < start + timedelta(weeks=6)
    assert {s.therapist_id for s in plan} == {world.therapist.pk}
    made = booking.book_course(course, plan, by=world.front_desk.user, submission_key="course-1")
    assert [a.course_id for a in made] == [course.pk] * 4
    again = booking.book_course(course, plan, by=world.front_desk.user, submission_key="course-1")
    assert [a.pk for a in again] == [a.pk for a in made]


def test_course_falls_back_only_to_a_therapist_who_can_open_the_record(world, course):
    start = future_day(3)
    resources.add_absence(world.therapist, start, start + timedelta(days=60), by=world.owner.user)
    # Tara cannot open Cora's record: the search does not propose her.
    with pytest.raises(ValidationError):
        availability.suggest_course(course, world.massage, start)
    world.cora.shared_with.add(world.therapist2)
    plan = availability.suggest_course(course, world.massage, start)
    assert {s.therapist_id for s in plan} == {world.therapist2.pk}


def test_course_all_or_nothing(world, course):
    start = future_day(3)
    plan = availability.suggest_course(course, world.massage, start)
    # Someone takes the third session's therapist meanwhile.
    third = plan[2]
    book(world, world.client(), third.starts_at, therapist=third.therapist, room=world.room2)
    with pytest.raises(BookingConflict, match="Session 3"):
        booking.book_course(course, plan, by=world.front_desk.user)
    assert not Appointment.objects.filter(course=course).exists()
    assert not AuditEvent.objects.filter(action="book_appointment", client=world.cora).exists()


def test_course_spacing_and_size_enforced(world, course):
    start = future_day(3)
    plan = availability.suggest_course(course, world.massage, start)
    close = availability.find_slots(
        world.massage, start + timedelta(days=1), start + timedelta(days=1), therapist=world.therapist
    )[0]
    with pytest.raises(ValidationError, match="at least 5 days apart"):
        booking.book_course(course, [plan[0], close], by=world.front_desk.user)
    extra = availability.find_slots(
        world.massage, start + timedelta(days=40), start + timedelta(days=40), therapist=world.therapist
    )[0]
    with pytest.raises(ValidationError, match="plans 4 sessions"):
        booking.book_course(course, [*plan, extra], by=world.front_desk.user)
    with pytest.raises(ValidationError, match="do not fit in 6 weeks"):
        availability.suggest_course(course, world.massage, start, sessions=10)
    assert not Appointment.objects.exists()


def test_course_needs_a_qualified_therapist(world, course):
    course.techniques = ["remedial", "connective_tissue"]
    course.save()
    start = future_day(3)
    slot = availability.find_slots(world.massage, start, start, therapist=world.therapist)[0]
    with pytest.raises(ValidationError, match="not qualified for Connective-tissue"):
        booking.book_course(course, [slot], by=world.front_desk.user)
    assert not availability.find_slots(world.massage, start, start, course=course)


def test_calendar_set_up_is_audited_and_guarded(world, make_staff):
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"create_room", "create_service", "set_working_hours"} <= actions
    with pytest.raises(PermissionDenied):
        resources.create_room(world.clinic, "Room 9", by=world.front_desk.user)
    with pytest.raises(PermissionDenied):
        resources.set_working_hours(world.therapist2, {0: [(time(8), time(12))]}, by=world.therapist.user)
    with pytest.raises(ValidationError) as e:
        resources.set_working_hours(
            world.therapist, {0: [(time(9), time(12)), (time(11), time(14))]}, by=world.therapist.user
        )
    assert e.value.message_dict["day_0"] == ["Monday: the blocks overlap."]
    day = future_day(7)
    appointment = book(world, world.cora, at(day, 10))
    _absence, clashes = resources.add_absence(world.therapist, day, day, by=world.therapist.user, kind="sick")
    assert clashes == [appointment]
    assert AuditEvent.objects.get(action="add_absence").detail["clashes"] == [appointment.pk]
