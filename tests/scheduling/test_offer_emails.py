"""Emails offering a freed time to a waitlisted client, queued in the outbox with the hold and delivered to a real SMTP
server on loopback: sent only after the hold commits, saying the time, the therapist, until when it is held and
where to accept or decline it; exactly once per hold (also when two senders overlap); none without an address, for a
rolled-back hold, or for a hold that is no longer open; a failed send tried again while the hold is open."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from sched_helpers import LONDON, at, build_world, future_day
from test_reminders_smtp import Inbox, attachments, body_text, smtp_server

from backcare.common import outbox
from backcare.common.models import OutboundMessage
from backcare.scheduling import notifications
from backcare.scheduling.models import Appointment, ReminderLog
from backcare.scheduling.services import booking, waitlist
from clinic_fixtures import login


def _world(clinic, owner, therapist, therapist2, front_desk, make_client, screen_client, client_record):
    clinic.email = "desk@clinic.test"
    clinic.phone = "020 7946 0000"
    clinic.save()
    world = build_world(clinic, owner, therapist, therapist2, front_desk, make_client, screen_client, client_record)
    wanda = make_client(therapist, username="wanda", first_name="Wanda", last_name="Waiting", email="wanda@x.test")
    walter = make_client(therapist, username="walter", first_name="Walter", last_name="Next", email="walter@x.test")
    for c in (wanda, walter):
        screen_client(c)
    world.extra.update(wanda=wanda, walter=walter)
    return world


@pytest.fixture
def world(clinic, owner, therapist, therapist2, front_desk, make_client, screen_client, client_record):
    """Not the conftest's world: the clinic's details are set first, and two clients wait (also built by a test
    that needs the world in a database its threads share)."""
    return _world(clinic, owner, therapist, therapist2, front_desk, make_client, screen_client, client_record)


def booked_and_waiting(world, *waiting):
    """Cora's 10:00 appointment a week ahead, and the given clients waiting for that service on those days."""
    day = future_day(7)
    appointment = booking.book_appointment(
        world.cora, world.massage, at(day, 10), therapist=world.therapist, room=world.room1, by=world.front_desk.user
    )
    entries = [
        waitlist.join_waitlist(c, world.massage, day - timedelta(days=1), day + timedelta(days=1), by=c.user)
        for c in waiting
    ]
    return day, appointment, entries


def test_a_cancellation_emails_the_offer_after_it_commits(client, world, smtp, django_capture_on_commit_callbacks):
    _, inbox = smtp
    wanda = world.extra["wanda"]
    day, appointment, _ = booked_and_waiting(world, wanda)
    login(client, world.front_desk.user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("appointment_cancel", args=[appointment.pk]), {"reason": "Cora is ill"})
        assert response.status_code == 302
        assert inbox.to("wanda@x.test") == []  # not before the cancellation has committed
    hold = Appointment.objects.get(status="held", client=wanda)
    [message] = inbox.to("wanda@x.test")
    zone = at(day, 10).tzname()
    until = hold.hold_expires_at.astimezone(LONDON)
    assert (
        str(message["subject"])
        == f"A time has come free: Remedial massage on {day:%a} {day.day} {day:%b} at 10:00 {zone}"
    )
    assert str(message["reply-to"]) == "desk@clinic.test"
    body = body_text(message)
    assert "Hello Wanda," in body
    assert "Remedial massage with Theo Therapist" in body
    assert f"{day:%A} {day.day} {day:%B %Y}, 10:00 {zone} to 11:00" in body
    assert f"We are holding it for you for 30 minutes, until {until:%H:%M} {until.tzname()}" in body
    assert "Nothing is booked until you accept it." in body
    assert "To accept or decline it, sign in" in body and reverse("portal_appointments") in body
    assert "the time goes to the next person on the waitlist" in body
    assert attachments(message) == []  # nothing is booked yet: no calendar entry
    log = ReminderLog.objects.get(appointment=hold)
    assert (log.kind, log.status, log.recipient, log.message.status) == ("offered", "queued", "wanda@x.test", "sent")


def test_the_link_is_absolute_when_the_sites_address_is_set(world, smtp, settings, django_capture_on_commit_callbacks):
    _, inbox = smtp
    settings.BACKCARE = {**settings.BACKCARE, "SITE_URL": "https://clinic.example/"}
    _, appointment, _ = booked_and_waiting(world, world.extra["wanda"])
    with django_capture_on_commit_callbacks(execute=True):
        booking.cancel_appointment(appointment, by=world.front_desk.user)
    body = body_text(inbox.to("wanda@x.test")[0])
    assert "https://clinic.example/portal/appointments/" in body and "on the clinic's website" not in body


def test_declining_passes_the_time_and_the_email_to_the_next_in_line(
    client, world, smtp, django_capture_on_commit_callbacks
):
    _, inbox = smtp
    wanda, walter = world.extra["wanda"], world.extra["walter"]
    _, appointment, _ = booked_and_waiting(world, wanda, walter)
    with django_capture_on_commit_callbacks(execute=True):
        booking.cancel_appointment(appointment, by=world.front_desk.user)
    hold = Appointment.objects.get(status="held")
    assert len(inbox.to("wanda@x.test")) == 1 and inbox.to("walter@x.test") == []
    login(client, wanda.user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("portal_offer", args=[hold.pk]), {"answer": "decline"})
    [message] = inbox.to("walter@x.test")
    assert "Hello Walter," in body_text(message)
    assert len(inbox.to("wanda@x.test")) == 1
    assert Appointment.objects.get(status="held").client == walter


def test_withdrawing_from_the_staff_waitlist_emails_the_next_in_line(
    client, world, smtp, django_capture_on_commit_callbacks
):
    _, inbox = smtp
    wanda, walter = world.extra["wanda"], world.extra["walter"]
    _, appointment, (first, _second) = booked_and_waiting(world, wanda, walter)
    with django_capture_on_commit_callbacks(execute=True):
        booking.cancel_appointment(appointment, by=world.front_desk.user)
    login(client, world.front_desk.user)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(reverse("staff_waitlist_withdraw", args=[first.pk])).status_code == 302
    assert len(inbox.to("walter@x.test")) == 1


def test_an_offer_goes_once(world, smtp, django_capture_on_commit_callbacks):
    _, inbox = smtp
    _, appointment, _ = booked_and_waiting(world, world.extra["wanda"])
    with django_capture_on_commit_callbacks(execute=True):
        booking.cancel_appointment(appointment, by=world.front_desk.user)
    hold = Appointment.objects.get(status="held")
    assert notifications.queue_offer(hold) is None  # asked again (a retry, a second worker): nothing more
    assert outbox.send_due().sent == 0
    assert len(inbox.to("wanda@x.test")) == 1
    assert ReminderLog.objects.filter(kind="offered").count() == 1


def test_no_email_without_an_address(world, smtp, django_capture_on_commit_callbacks):
    _, inbox = smtp
    wanda = world.extra["wanda"]
    wanda.email = ""
    wanda.save()
    _, appointment, _ = booked_and_waiting(world, wanda)
    with django_capture_on_commit_callbacks(execute=True):
        booking.cancel_appointment(appointment, by=world.front_desk.user)
    hold = Appointment.objects.get(status="held")
    assert hold.client == wanda  # the time is still held for her: she sees it in the portal
    assert inbox.to("wanda@x.test") == [] and not ReminderLog.objects.filter(kind="offered").exists()
    assert notifications.queue_offer(hold) is None


def test_a_hold_that_is_rolled_back_sends_nothing(world, smtp, django_capture_on_commit_callbacks):
    _, inbox = smtp
    day, _, (entry,) = booked_and_waiting(world, world.extra["wanda"])

    def failing_change() -> None:
        with transaction.atomic():
            waitlist.place_hold(entry, therapist=world.therapist2, room=world.room2, starts_at=at(day, 14))
            raise RuntimeError("the surrounding change failed")

    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError):
        failing_change()
    assert callbacks == [] and inbox.messages == []
    assert not Appointment.objects.filter(status="held").exists()


def test_a_hold_no_longer_open_is_not_emailed(world, smtp):
    _, inbox = smtp
    day, _, (entry,) = booked_and_waiting(world, world.extra["wanda"])
    outbox.send_due()  # Cora's booking confirmation
    hold = waitlist.place_hold(entry, therapist=world.therapist2, room=world.room2, starts_at=at(day, 14))
    Appointment.objects.filter(pk=hold.pk).update(hold_expires_at=timezone.now() - timedelta(seconds=1))
    other = waitlist.place_hold(entry, therapist=world.therapist2, room=world.room2, starts_at=at(day, 15, 30))
    waitlist.accept_hold(other, by=world.extra["wanda"].user)
    outbox.send_due()
    assert [str(m["subject"]).split(":")[0] for m in inbox.to("wanda@x.test")] == ["Booked"]  # no offer
    reasons = dict(OutboundMessage.objects.filter(kind="scheduling.offered").values_list("status", "last_error"))
    assert set(OutboundMessage.objects.filter(kind="scheduling.offered").values_list("last_error", flat=True)) == {
        "the offer has run out",
        "the offer is booked now",
    }
    assert reasons.keys() == {"cancelled"}


def test_a_failed_offer_is_sent_later_while_the_hold_is_open(world):
    day, _, (entry,) = booked_and_waiting(world, world.extra["wanda"])
    OutboundMessage.objects.update(status="sent")  # Cora's confirmation
    hold = waitlist.place_hold(entry, therapist=world.therapist2, room=world.room2, starts_at=at(day, 14))
    later = waitlist.place_hold(entry, therapist=world.therapist2, room=world.room2, starts_at=at(day, 16))
    with smtp_server() as (controller, _):
        controller.stop()
        assert outbox.send_due().retrying == 2  # never raises into the waitlist
    Appointment.objects.filter(pk=later.pk).update(hold_expires_at=timezone.now() - timedelta(seconds=1))
    with smtp_server() as (_, inbox):
        result = outbox.send_due(now=timezone.now() + timedelta(minutes=2))
        assert (result.sent, result.cancelled) == (1, 1)
        [message] = inbox.to("wanda@x.test")
        assert "at 14:00" in str(message["subject"])
    assert ReminderLog.objects.get(appointment=hold).message.status == "sent"
    late = ReminderLog.objects.get(appointment=later).message
    assert (late.status, late.last_error) == ("cancelled", "the offer has run out")


@pytest.mark.django_db(transaction=True)
def test_two_overlapping_senders_send_an_offer_once(
    file_db,
    clinic,
    owner,
    therapist,
    therapist2,
    front_desk,
    make_client,
    screen_client,
    client_record,
    settings,
):
    settings.BACKCARE_OUTBOX = {**settings.BACKCARE_OUTBOX, "SEND_ON_COMMIT": False}  # the two senders send it
    world = _world(clinic, owner, therapist, therapist2, front_desk, make_client, screen_client, client_record)
    day, _, (entry,) = booked_and_waiting(world, world.extra["wanda"])
    OutboundMessage.objects.update(status="sent")  # Cora's confirmation
    hold = booking.place(
        actor=booking.actor_for(booking.SYSTEM, clinic.pk),
        client=entry.client,
        service=entry.service,
        therapist=world.therapist2,
        room=world.room2,
        starts_at=at(day, 14),
        hold_minutes=30,
        entry=entry,
    )
    barrier = threading.Barrier(2)
    results, errors = [], []

    def send() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(outbox.send_due())
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    with smtp_server(Inbox(delay=0.3)) as (_, inbox):
        threads = [threading.Thread(target=send) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors
        assert len(inbox.to("wanda@x.test")) == 1
    assert sorted(r.sent for r in results) == [0, 1]
    assert ReminderLog.objects.get(appointment=hold, kind="offered").message.status == "sent"
