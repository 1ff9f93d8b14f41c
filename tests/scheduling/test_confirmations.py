"""Confirmation emails on booking, moving and cancelling, delivered to a real SMTP server on loopback, each with an
.ics attachment a calendar program understands: METHOD REQUEST or CANCEL, one UID per appointment, SEQUENCE raised on
every change, DTSTART the appointment's start."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from icalendar import Calendar
from sched_helpers import at, build_world, future_day, next_transition
from test_reminders_smtp import attachments, body_text, smtp_server

from backcare.scheduling import notifications
from backcare.scheduling.models import ReminderLog
from backcare.scheduling.reminders import send_due_reminders
from backcare.scheduling.services import booking


@pytest.fixture
def world(clinic, owner, therapist, therapist2, front_desk, make_client, screen_client, client_record):
    clinic.email = "desk@clinic.test"
    clinic.save()
    return build_world(clinic, owner, therapist, therapist2, front_desk, make_client, screen_client, client_record)


@pytest.fixture
def smtp():
    """A real SMTP server on loopback, with Django's email settings pointing at it."""
    with smtp_server() as running:
        yield running


def book(world, client, start, **kw):
    return booking.book_appointment(
        client, world.massage, start, therapist=world.therapist, room=world.room1, by=world.front_desk.user, **kw
    )


def invitation(message):
    [part] = attachments(message)
    calendar = Calendar.from_ical(part.get_content())
    [event] = calendar.events
    return part, calendar, event


def test_booking_confirmation_carries_a_calendar_request(world, smtp):
    _, inbox = smtp
    day = future_day(7)
    a = book(world, world.cora, at(day, 10))
    notifications.send_confirmation(a, "booked")
    [message] = inbox.to("cora@x.test")
    zone = at(day, 10).tzname()
    assert str(message["subject"]) == f"Booked: Remedial massage on {day:%a} {day.day} {day:%b} at 10:00 {zone}"
    assert str(message["reply-to"]) == "desk@clinic.test"
    text = body_text(message)
    assert "Your appointment at Test Clinic is booked" in text
    assert f"{day:%A} {day.day} {day:%B %Y}, 10:00 {zone} to 11:00" in text

    part, calendar, event = invitation(message)
    assert part.get_param("method") == "REQUEST"
    assert str(calendar["method"]) == "REQUEST"
    assert event.decoded("dtstart").astimezone(UTC) == a.starts_at
    assert event.decoded("dtstart").utcoffset() == timedelta(0)  # written in UTC
    assert event.decoded("dtend").astimezone(UTC) == a.ends_at
    assert str(event["uid"]).startswith(f"appointment-{a.pk}-")
    assert int(event["sequence"]) == 0
    assert str(event["summary"]) == "Remedial massage at Test Clinic"
    assert str(event["status"]) == "CONFIRMED"
    assert str(event["attendee"]) == "mailto:cora@x.test"
    assert str(event["organizer"]) == "mailto:desk@clinic.test"
    log = ReminderLog.objects.get(appointment=a)
    assert (log.kind, log.status, log.sequence) == ("booked", "sent", 0)


def test_on_commit_sends_after_the_booking_commits(world, smtp, django_capture_on_commit_callbacks):
    _, inbox = smtp
    # The booking service itself schedules the confirmation for after the commit, never before.
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        book(world, world.cora, at(future_day(7), 10))
        assert inbox.messages == []
    assert len(callbacks) == 1
    assert len(inbox.to("cora@x.test")) == 1


def test_moves_and_cancellation_update_the_same_calendar_entry(world, smtp):
    _, inbox = smtp
    day = future_day(7)
    a = book(world, world.cora, at(day, 10))
    notifications.send_confirmation(a, "booked")
    a = booking.reschedule_appointment(a, at(day, 14), by=world.front_desk.user)
    notifications.send_confirmation(a, "rescheduled")
    a = booking.cancel_appointment(a, by=world.front_desk.user, reason="Client asked")
    notifications.send_confirmation(a, "cancelled")

    booked, moved, cancelled = inbox.to("cora@x.test")
    events = [invitation(m) for m in (booked, moved, cancelled)]
    assert len({str(e["uid"]) for _, _, e in events}) == 1
    assert [int(e["sequence"]) for _, _, e in events] == [0, 1, 2]
    assert [str(c["method"]) for _, c, _ in events] == ["REQUEST", "REQUEST", "CANCEL"]
    assert events[1][2].decoded("dtstart").astimezone(UTC) == at(day, 14).astimezone(UTC)
    assert str(events[2][2]["status"]) == "CANCELLED"
    assert str(moved["subject"]).startswith("Moved: your appointment is now on")
    assert "has moved" in body_text(moved)
    assert str(cancelled["subject"]).startswith("Cancelled: Remedial massage")
    assert "is cancelled" in body_text(cancelled)


def test_a_confirmation_goes_once_and_only_while_it_is_true(world, smtp):
    _, inbox = smtp
    a = book(world, world.cora, at(future_day(7), 10))
    assert notifications.send_confirmation(a, "booked").status == "sent"
    assert notifications.send_confirmation(a, "booked") is None  # e.g. a double submission calling it again
    assert notifications.send_confirmation(a, "cancelled") is None  # it is not cancelled
    other = world.client("Nomail")
    other.email = ""
    other.save()
    b = booking.book_appointment(
        other, world.massage, at(future_day(7), 13), therapist=world.therapist, room=world.room1, by=world.owner.user
    )
    assert notifications.send_confirmation(b, "booked") is None
    assert len(inbox.messages) == 1
    with pytest.raises(ValueError, match="is not a confirmation"):
        notifications.send_confirmation(a, "reminder")


def test_a_failed_confirmation_does_not_break_the_booking_and_is_sent_later(world):
    a = book(world, world.cora, at(future_day(7), 10))
    with smtp_server() as (controller, _):
        controller.stop()
        log = notifications.send_confirmation(a, "booked")  # no exception reaches the booking
    assert log.status == "failed" and log.last_error
    with smtp_server() as (_, inbox):
        run = send_due_reminders(hours_ahead=1)
        assert run.confirmations_sent == 1
        assert send_due_reminders(hours_ahead=1).confirmations_sent == 0
        [message] = inbox.to("cora@x.test")
        assert str(invitation(message)[1]["method"]) == "REQUEST"
    log.refresh_from_db()
    assert (log.status, log.attempts) == ("sent", 2)


def test_a_failed_confirmation_that_no_longer_holds_is_not_sent(world):
    day = future_day(7)
    a = book(world, world.cora, at(day, 10))
    with smtp_server() as (controller, _):
        controller.stop()
        notifications.send_confirmation(a, "booked")
    booking.reschedule_appointment(a, at(day, 15), by=world.front_desk.user)
    with smtp_server() as (_, inbox):
        send_due_reminders(hours_ahead=1)
        assert inbox.messages == []
    assert ReminderLog.objects.get(appointment=a, kind="booked").status == "skipped"


def test_confirmation_time_after_the_october_change(world, smtp):
    _, inbox = smtp
    day = next_transition(10) + timedelta(days=1)
    a = book(world, world.cora, at(day, 10))
    notifications.send_confirmation(a, "booked")
    [message] = inbox.messages
    assert "at 10:00 GMT" in str(message["subject"])
    assert invitation(message)[2].decoded("dtstart") == a.starts_at
