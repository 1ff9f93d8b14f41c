"""Reminders queued by `backcare manage send_reminders` and sent by the outbox (`send_outbox`), delivered to a real
SMTP server on loopback: each reminder exactly once (also when two runs overlap), none for cancelled appointments or
old times of moved ones, failed sends retried by the outbox, and times in the clinic's zone across a daylight-saving
change."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from sched_helpers import at, build_world, future_day, next_transition
from test_reminders_smtp import Inbox, body_text, smtp_server

from backcare.common import outbox
from backcare.common.models import OutboundMessage
from backcare.scheduling.models import Appointment, ReminderLog
from backcare.scheduling.reminders import queue_due_reminders
from backcare.scheduling.services import booking


@pytest.fixture
def world(world):
    """The scheduling world (conftest), with the clinic's phone and address the reminders give."""
    world.clinic.phone = "020 7946 0000"
    world.clinic.address = "1 High Street\nLondon"
    world.clinic.save()
    return world


def book(world, client, start, *, therapist=None, room=None, service=None):
    return booking.book_appointment(
        client,
        service or world.massage,
        start,
        therapist=therapist or world.therapist,
        room=room or world.room1,
        by=world.front_desk.user,
    )


def run(*args: str) -> None:
    """One cron run: queue the reminders, then send the outbox (as `backcare worker` would)."""
    call_command("send_reminders", *args)
    call_command("send_outbox")


def send_due_reminders(*, hours_ahead: float, now=None) -> outbox.SendResult:
    """Queue the reminders and send what is due in the outbox, leaving the confirmations aside (already sent)."""
    OutboundMessage.objects.exclude(kind="scheduling.reminder").update(status="sent")
    queue_due_reminders(hours_ahead=hours_ahead, now=now)
    return outbox.send_due()


def tomorrow():
    return future_day(1)


def test_each_reminder_arrives_once_with_the_right_content(world, smtp):
    _, inbox = smtp
    day = tomorrow()
    cora = book(world, world.cora, at(day, 10))
    bob = world.client("Bob")
    book(world, bob, at(day, 12), therapist=world.therapist2, room=world.room2)
    later = world.client("Later")
    book(world, later, at(future_day(5), 10))  # outside the 48 hours
    no_email = world.client("Nomail")
    no_email.email = ""
    no_email.save()
    book(world, no_email, at(day, 14))

    OutboundMessage.objects.update(status="sent")  # the bookings' confirmations: not what this test is about
    run("--hours-ahead", "48")
    run("--hours-ahead", "48")

    assert len(inbox.messages) == 2
    [mine] = inbox.to("cora@x.test")
    assert len(inbox.to(bob.email)) == 1 and not inbox.to(later.email)
    zone = at(day, 10).tzname()  # GMT or BST, whichever that day is in
    assert str(mine["subject"]) == f"Reminder: Remedial massage on {at(day, 10):%a} {day.day} {day:%b} at 10:00 {zone}"
    text = body_text(mine)
    assert "Hello Cora," in text
    assert f"{day:%A} {day.day} {day:%B %Y}, 10:00 {zone} to 11:00" in text
    assert "Remedial massage with Theo Therapist" in text
    assert "Test Clinic, 1 High Street London" in text and "020 7946 0000" in text
    assert "less than 24 hours" in text
    assert mine["from"] and "@" in str(mine["from"])
    logs = ReminderLog.objects.filter(kind="reminder")
    assert sorted(logs.values_list("message__status", flat=True)) == ["sent", "sent"]
    assert logs.get(appointment=cora).starts_at == cora.starts_at


def test_cancelled_and_moved_appointments(world, smtp):
    _, inbox = smtp
    day = tomorrow()
    moving = book(world, world.cora, at(day, 10))
    other = world.client("Cancelled")
    gone = book(world, other, at(day, 12))

    booking.cancel_appointment(gone, by=world.front_desk.user, reason="Ill", late_reason="Phoned in ill")
    OutboundMessage.objects.update(status="sent")  # the confirmations: not what this test is about
    run("--hours-ahead", "48")
    assert [m["to"] for m in inbox.messages] == ["cora@x.test"]
    assert "10:00" in str(inbox.messages[0]["subject"])

    booking.reschedule_appointment(moving, at(day, 15), by=world.front_desk.user, late_reason="Client asked")
    OutboundMessage.objects.exclude(kind="scheduling.reminder").update(status="sent")
    run("--hours-ahead", "48")
    run("--hours-ahead", "48")
    subjects = [str(m["subject"]) for m in inbox.to("cora@x.test")]
    assert len(subjects) == 2 and "15:00" in subjects[1]
    assert not inbox.to(other.email)
    assert ReminderLog.objects.filter(appointment=moving, kind="reminder", message__status="sent").count() == 2


def test_a_reminder_already_queued_is_not_queued_again(world):
    a = book(world, world.cora, at(tomorrow(), 10))
    assert queue_due_reminders(hours_ahead=48).queued == 1
    assert queue_due_reminders(hours_ahead=48).queued == 0
    [log] = ReminderLog.objects.filter(appointment=a, kind="reminder")
    assert log.status == "queued" and log.message.kind == "scheduling.reminder"
    assert OutboundMessage.objects.filter(kind="scheduling.reminder").count() == 1


def test_failed_smtp_is_retried_by_the_outbox_and_sent_once(world):
    day = tomorrow()
    a = book(world, world.cora, at(day, 10))
    OutboundMessage.objects.update(status="sent")
    with smtp_server() as (controller, inbox):
        controller.stop()  # the mail server is down
        run("--hours-ahead", "48")
        assert inbox.messages == []
    message = ReminderLog.objects.get(appointment=a, kind="reminder").message
    assert message.status == "pending" and message.attempts == 1 and message.last_error

    with smtp_server() as (_, inbox):
        later = message.next_attempt_at
        assert outbox.send_due(now=later).sent == 1
        assert outbox.send_due(now=later).sent == 0
        run("--hours-ahead", "48")
        assert len(inbox.to("cora@x.test")) == 1
    message.refresh_from_db()
    assert (message.status, message.attempts, message.last_error) == ("sent", 2, "")


def test_a_reminder_of_an_appointment_cancelled_before_it_went_is_not_sent(world):
    a = book(world, world.cora, at(tomorrow(), 10))
    OutboundMessage.objects.update(status="sent")
    queue_due_reminders(hours_ahead=48)
    booking.cancel_appointment(a, by=world.owner.user, reason="Ill", late_reason="Phoned in ill")
    with smtp_server() as (_, inbox):
        result = outbox.send_due()
        assert [str(m["subject"]).split(":")[0] for m in inbox.messages] == ["Cancelled"]
    assert result.cancelled == 1
    reminder = OutboundMessage.objects.get(kind="scheduling.reminder")
    assert (reminder.status, reminder.last_error) == (
        "cancelled",
        "the appointment is cancelled late (inside the cancellation window) now",
    )


def test_hours_ahead_must_be_sensible(db):
    with pytest.raises(CommandError, match="--hours-ahead must be more than 0"):
        run("--hours-ahead", "0")


@pytest.fixture
def shared_world(file_db, clinic, owner, therapist, therapist2, front_desk, make_client, screen_client, client_record):
    """The scheduling world built in a database file the test's threads share (file_db first)."""
    return build_world(clinic, owner, therapist, therapist2, front_desk, make_client, screen_client, client_record)


@pytest.mark.django_db(transaction=True)
def test_two_overlapping_runs_send_each_reminder_once(shared_world, settings):
    settings.BACKCARE_OUTBOX = {**settings.BACKCARE_OUTBOX, "SEND_ON_COMMIT": False}  # the outbox sends below
    world = shared_world
    day = tomorrow()
    clients = [world.cora] + [world.client(f"Par{n}") for n in range(3)]
    rooms = [world.room1, world.room2]
    therapists = [world.therapist, world.therapist2]
    made = []
    for n, client in enumerate(clients):
        made.append(book(world, client, at(day, 10 + n // 2 * 2), therapist=therapists[n % 2], room=rooms[n % 2]))
    OutboundMessage.objects.update(status="sent")  # the confirmations: not what this test is about
    barrier = threading.Barrier(2)
    results, errors = [], []

    def one_run() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(queue_due_reminders(hours_ahead=48))
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    with smtp_server(Inbox(delay=0.3)) as (_, inbox):
        threads = [threading.Thread(target=one_run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        assert sum(r.queued for r in results) == len(made)
        assert len(results) == 2
        assert outbox.send_due().sent == len(made)
        for client in clients:
            assert len(inbox.to(client.email)) == 1, client.email
    assert ReminderLog.objects.filter(message__status="sent", kind="reminder").count() == len(made)


@pytest.mark.parametrize(("offset_days", "zone"), [(1, "GMT"), (-1, "BST")])
def test_times_are_local_across_the_october_change(world, smtp, offset_days, zone):
    """10:00 local the day after the clocks go back is 10:00 GMT (10:00 UTC); the day before, 10:00 BST."""
    _, inbox = smtp
    day = next_transition(10) + timedelta(days=offset_days)
    a = book(world, world.cora, at(day, 10))
    assert a.starts_at.astimezone(at(day, 10).tzinfo).hour == 10
    assert send_due_reminders(hours_ahead=24, now=a.starts_at - timedelta(hours=20)).sent == 1
    [message] = inbox.messages
    assert f"at 10:00 {zone}" in str(message["subject"])
    assert f"{day:%A} {day.day} {day:%B %Y}, 10:00 {zone} to 11:00" in body_text(message)
    assert Appointment.objects.get(pk=a.pk).starts_at.utcoffset() == timedelta(0)
