"""Confirmation emails on booking, moving and cancelling, queued in the outbox with the change and delivered by it to a
real SMTP server on loopback, each with an .ics attachment a calendar program understands: METHOD REQUEST or CANCEL,
one UID per appointment, SEQUENCE raised on every change, DTSTART the appointment's start."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from icalendar import Calendar
from sched_helpers import at, future_day, next_transition
from test_reminders_smtp import attachments, body_text, smtp_server

from backcare.common import outbox
from backcare.common.models import OutboundMessage
from backcare.scheduling import notifications
from backcare.scheduling.models import ReminderLog
from backcare.scheduling.services import booking


@pytest.fixture
def world(world):
    """The scheduling world (conftest), with the clinic's email address the confirmations give."""
    world.clinic.email = "desk@clinic.test"
    world.clinic.save()
    return world


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
    assert outbox.send_due().sent == 1
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
    assert (log.kind, log.status, log.sequence, log.message.status) == ("booked", "queued", 0, "sent")


def test_on_commit_sends_after_the_booking_commits(world, smtp, django_capture_on_commit_callbacks):
    _, inbox = smtp
    # The booking queues the confirmation; the outbox's kick sends it after the commit, never before.
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        book(world, world.cora, at(future_day(7), 10))
        assert inbox.messages == []
    assert len(callbacks) == 1
    assert len(inbox.to("cora@x.test")) == 1


def test_moves_and_cancellation_update_the_same_calendar_entry(world, smtp):
    _, inbox = smtp
    day = future_day(7)
    a = book(world, world.cora, at(day, 10))
    outbox.send_due()
    a = booking.reschedule_appointment(a, at(day, 14), by=world.front_desk.user)
    outbox.send_due()
    a = booking.cancel_appointment(a, by=world.front_desk.user, reason="Client asked")
    outbox.send_due()

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
    assert notifications.queue_confirmation(a, "booked") is None  # e.g. a double submission asking again
    assert notifications.queue_confirmation(a, "cancelled") is None  # it is not cancelled
    other = world.client("Nomail")
    other.email = ""
    other.save()
    b = booking.book_appointment(
        other, world.massage, at(future_day(7), 13), therapist=world.therapist, room=world.room1, by=world.owner.user
    )
    assert not ReminderLog.objects.filter(appointment=b).exists()
    assert outbox.send_due().sent == 1 and outbox.send_due().sent == 0
    assert len(inbox.messages) == 1
    with pytest.raises(ValueError, match="is not a confirmation"):
        notifications.queue_confirmation(a, "reminder")


def test_a_failed_confirmation_does_not_break_the_booking_and_is_sent_later(world):
    with smtp_server() as (controller, _):
        controller.stop()
        a = book(world, world.cora, at(future_day(7), 10))  # no exception reaches the booking
        assert outbox.send_due().retrying == 1
    [message] = OutboundMessage.objects.all()
    assert message.status == "pending" and message.last_error
    with smtp_server() as (_, inbox):
        assert outbox.send_due(now=message.next_attempt_at).sent == 1
        assert outbox.send_due(now=message.next_attempt_at).sent == 0
        [email] = inbox.to("cora@x.test")
        assert str(invitation(email)[1]["method"]) == "REQUEST"
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("sent", 2)
    assert ReminderLog.objects.get(appointment=a).message == message


def test_a_failed_confirmation_that_no_longer_holds_is_not_sent(world):
    day = future_day(7)
    with smtp_server() as (controller, _):
        controller.stop()
        a = book(world, world.cora, at(day, 10))
        outbox.send_due()
    booking.reschedule_appointment(a, at(day, 15), by=world.front_desk.user)
    with smtp_server() as (_, inbox):
        outbox.send_due(now=OutboundMessage.objects.get(kind="scheduling.booked").next_attempt_at)
        assert [str(m["subject"]).split(":")[0] for m in inbox.messages] == ["Moved"]
    assert ReminderLog.objects.get(appointment=a, kind="booked").message.status == "cancelled"


def test_confirmation_time_after_the_october_change(world, smtp):
    _, inbox = smtp
    day = next_transition(10) + timedelta(days=1)
    a = book(world, world.cora, at(day, 10))
    outbox.send_due()
    [message] = inbox.messages
    assert "at 10:00 GMT" in str(message["subject"])
    assert invitation(message)[2].decoded("dtstart") == a.starts_at
