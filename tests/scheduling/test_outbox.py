"""The outbox (backcare.common.outbox) against a real SMTP server on loopback: no email is lost while the mail
server is down, each arrives exactly once when it is back, also with two workers at once (SQLite and PostgreSQL);
an email queued in a transaction that rolls back never goes; a claim whose worker died is taken back after its
lease; retries back off and end in "failed", which the owner sees and can retry."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from sched_helpers import LONDON, at, future_day
from test_reminders_smtp import Inbox, attachments, body_text, smtp_server

from backcare.clinic.models import AuditEvent
from backcare.common import outbox
from backcare.common.models import OutboundMessage
from backcare.scheduling.locking import BookingConflict
from backcare.scheduling.models import Appointment
from backcare.scheduling.services import booking
from clinic_fixtures import login


@contextmanager
def started_again(port: int, inbox: Inbox) -> Iterator[None]:
    """The same mail server (same port, same mailbox) started again after it was stopped."""
    controller = Controller(inbox, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    try:
        yield
    finally:
        with suppress(Exception):
            controller.stop()


def booking_form(world, client, start, key):
    local = start.astimezone(LONDON)
    return {
        "client": client.pk,
        "service": world.massage.pk,
        "day": local.date().isoformat(),
        "time": local.strftime("%H:%M"),
        "therapist": world.therapist.pk,
        "room": world.room1.pk,
        "submission_key": key,
    }


def book(world, client, start, **kw):
    return booking.book_appointment(
        client, world.massage, start, therapist=world.therapist, room=world.room1, by=world.front_desk.user, **kw
    )


def test_mail_server_down_while_booking_then_the_email_arrives_exactly_once(
    client, world, settings, django_capture_on_commit_callbacks
):
    """The issue's test: stop the mail server, book through the page, run the worker; start it again, run the
    worker: the confirmation arrives once."""
    settings.BACKCARE_OUTBOX = {**settings.BACKCARE_OUTBOX, "BACKOFF_SECONDS": 1}
    with smtp_server() as (controller, inbox):
        port = controller.port
        controller.stop()  # the mail server is down
        login(client, world.front_desk.user)
        with django_capture_on_commit_callbacks(execute=True):  # the commit, and its best-effort kick, really run
            response = client.post(
                reverse("appointment_book"), booking_form(world, world.cora, at(future_day(7), 10), "k")
            )
        assert response.status_code == 302  # the booking stands
        appointment = Appointment.objects.get(client=world.cora, status="booked")
        [message] = OutboundMessage.objects.all()
        assert message.kind == "scheduling.booked" and message.to == ["cora@x.test"]
        assert message.status == "pending" and message.attempts == 1  # the kick tried, and failed
        assert "ConnectionRefusedError" in message.last_error

        call_command("send_outbox")  # the worker, before the backoff is over: it waits
        message.refresh_from_db()
        assert (message.status, message.attempts) == ("pending", 1)
        time.sleep(max((message.next_attempt_at - timezone.now()).total_seconds(), 0) + 0.05)
        call_command("send_outbox")  # after the backoff, still down: recorded, and a longer backoff
        message.refresh_from_db()
        assert (message.status, message.attempts) == ("pending", 2) and "Connection refused" in message.last_error
        assert message.next_attempt_at > timezone.now()
        assert inbox.messages == []

        time.sleep(max((message.next_attempt_at - timezone.now()).total_seconds(), 0) + 0.05)
        with started_again(port, inbox):
            call_command("send_outbox")
            call_command("send_outbox")
            [email] = inbox.to("cora@x.test")
    message.refresh_from_db()
    assert (message.status, message.attempts, message.last_error) == ("sent", 3, "")
    assert str(email["subject"]).startswith("Booked: Remedial massage on")
    assert "Your appointment at Test Clinic is booked" in body_text(email)
    [ics] = attachments(email)
    assert ics.get_param("method") == "REQUEST" and f"appointment-{appointment.pk}-" in ics.get_content()
    assert str(email["message-id"]) == outbox.message_id(message)


def test_an_email_queued_in_a_transaction_that_rolls_back_is_never_sent(
    world, smtp, django_capture_on_commit_callbacks
):
    _, inbox = smtp

    def failing_change() -> None:
        with transaction.atomic():
            book(world, world.cora, at(future_day(7), 10))
            assert OutboundMessage.objects.count() == 1  # queued inside the booking's transaction
            raise RuntimeError("the surrounding change failed")

    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError):
        failing_change()
    taken = book(world, world.cora, at(future_day(7), 12))
    with pytest.raises(BookingConflict):
        book(world, world.client("Other"), at(future_day(7), 12))  # refused: its email goes with it
    assert callbacks == []
    assert list(OutboundMessage.objects.values_list("context__appointment", flat=True)) == [taken.pk]
    assert outbox.send_due().sent == 1
    assert [m["to"] for m in inbox.messages] == ["cora@x.test"]


def test_the_same_event_is_queued_once(world):
    a = book(world, world.cora, at(future_day(7), 10))
    from backcare.scheduling import notifications

    assert notifications.queue_confirmation(a, "booked") is None  # asked again (a double submission, a retry)
    assert OutboundMessage.objects.count() == 1
    first, created = outbox.enqueue_email(key="k-1", kind="test.x", to=["a@x.test"], subject="S", body="B")
    again, created_again = outbox.enqueue_email(key="k-1", kind="test.x", to=["b@x.test"], subject="T", body="C")
    assert created and not created_again and again.pk == first.pk and again.to == ["a@x.test"]


def test_a_claim_whose_worker_died_is_taken_back_after_the_lease(world, smtp):
    _, inbox = smtp
    book(world, world.cora, at(future_day(7), 10))
    now = timezone.now()
    [claimed] = outbox.claim(now=now, worker="died-half-way", limit=5)  # and then the worker died
    assert claimed.status == "sending" and claimed.attempts == 1
    assert outbox.send_due(now=now).claimed == 0  # another worker leaves it while the lease stands
    lease = timedelta(seconds=outbox.option("LEASE_SECONDS"))
    assert outbox.send_due(now=now + lease - timedelta(seconds=1)).claimed == 0
    assert outbox.send_due(now=now + lease + timedelta(seconds=1)).sent == 1
    claimed.refresh_from_db()
    assert (claimed.status, claimed.attempts) == ("sent", 2) and claimed.claimed_by != "died-half-way"
    assert len(inbox.to("cora@x.test")) == 1
    assert outbox.send_due(now=now + 3 * lease).claimed == 0


def test_a_confirmation_that_is_no_longer_true_is_not_sent(world):
    day = future_day(7)
    a = book(world, world.cora, at(day, 10))  # queued while the mail server is down (nothing runs it)
    booking.reschedule_appointment(a, at(day, 15), by=world.front_desk.user)
    with smtp_server() as (_, inbox):
        result = outbox.send_due()
        [moved] = inbox.to("cora@x.test")
    assert (result.sent, result.cancelled) == (1, 1)
    assert "15:00" in str(moved["subject"])
    booked = OutboundMessage.objects.get(kind="scheduling.booked")
    assert (booked.status, booked.last_error) == (
        "cancelled",
        "the appointment was moved; its new time has its own email",
    )


def test_retries_back_off_end_in_failed_and_the_owner_sees_and_retries_them(
    client, world, settings, django_capture_on_commit_callbacks
):
    settings.BACKCARE_OUTBOX = {**settings.BACKCARE_OUTBOX, "MAX_ATTEMPTS": 3}
    a = book(world, world.cora, at(future_day(7), 10))
    message = OutboundMessage.objects.get()
    assert message.max_attempts == 3 and message.clinic_id == world.clinic.pk
    now = timezone.now()
    waits = []
    with smtp_server() as (controller, _):
        controller.stop()
        for _ in range(3):
            result = outbox.send_due(now=now)
            message.refresh_from_db()
            waits.append(message.next_attempt_at - now)
            now = message.next_attempt_at
        assert outbox.send_due(now=now + timedelta(days=1)).claimed == 0  # given up: nothing more is tried
    assert result.failed == 1
    assert (message.status, message.attempts) == ("failed", 3) and "Connection refused" in message.last_error
    assert waits[:2] == [timedelta(seconds=60), timedelta(seconds=120)]  # doubling

    login(client, world.owner.user)
    dashboard = client.get(reverse("dashboard")).content.decode()
    assert "1 email to clients could not be sent" in dashboard and reverse("outbox") in dashboard
    page = client.get(reverse("outbox")).content.decode()
    assert "Booking confirmation" in page and "cora@x.test" in page and "Failed" in page
    assert "Connection refused" in page and "3 of 3" in page
    assert "Your appointment at Test Clinic is booked" not in page  # never a body
    for role in (world.front_desk, world.therapist):
        login(client, role.user)
        assert client.get(reverse("outbox")).status_code == 403
        assert client.post(reverse("outbox_retry", args=[message.pk])).status_code == 403
    message.refresh_from_db()
    assert message.status == "failed"

    login(client, world.owner.user)
    with smtp_server() as (_, inbox), django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("outbox_retry", args=[message.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("outbox")
    assert len(inbox.to("cora@x.test")) == 1  # the retry's kick sent it at once
    message.refresh_from_db()
    assert message.status == "sent"
    event = AuditEvent.objects.get(action="outbox_retry")
    assert event.user == world.owner.user and event.client == a.client
    assert event.detail["status_before"] == "failed"
    again = client.post(reverse("outbox_retry", args=[message.pk]), follow=True).content.decode()
    assert "This email is sent: there is nothing to retry." in again
    assert "Nothing is waiting" in client.get(reverse("outbox")).content.decode()


def test_send_outbox_exits_1_when_an_email_fails_for_good(world, settings):
    settings.BACKCARE_OUTBOX = {**settings.BACKCARE_OUTBOX, "MAX_ATTEMPTS": 1}
    book(world, world.cora, at(future_day(7), 10))
    with smtp_server() as (controller, _):
        controller.stop()
        with pytest.raises(CommandError, match=r"1 email\(s\) failed after their last attempt") as failed:
            call_command("send_outbox")
    assert failed.value.returncode == 1
    assert OutboundMessage.objects.get().status == "failed"


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_send_each_email_once(
    file_db,
    settings,
):
    """On SQLite (a file, as in production) and on PostgreSQL (FOR UPDATE SKIP LOCKED)."""
    settings.BACKCARE_OUTBOX = {**settings.BACKCARE_OUTBOX, "BATCH": 2, "SEND_ON_COMMIT": False}
    count = 24
    for n in range(count):
        with transaction.atomic():
            outbox.enqueue_email(key=f"race-{n}", kind="test.race", to=[f"r{n}@x.test"], subject=f"N{n}", body="b")
    barrier = threading.Barrier(2)
    results, errors = [], []

    def work(name: str) -> None:
        try:
            barrier.wait(timeout=10)
            results.append(outbox.send_due(worker=name))
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    with smtp_server(Inbox(delay=0.02)) as (_, inbox):
        threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        assert sorted(inbox.subjects()) == sorted(f"N{n}" for n in range(count))  # each once
    assert sum(r.sent for r in results) == count
    assert all(r.sent > 0 for r in results), [r.sent for r in results]  # both really worked
    assert set(OutboundMessage.objects.values_list("status", flat=True)) == {"sent"}
    assert set(OutboundMessage.objects.values_list("attempts", flat=True)) == {1}


def test_a_worker_told_to_stop_finishes_the_email_in_hand_and_gives_the_rest_back(db, smtp):
    _, inbox = smtp
    for n in range(3):
        outbox.enqueue_email(key=f"stop-{n}", kind="test.stop", to=[f"s{n}@x.test"], subject=f"S{n}", body="b")
    asked = []

    def stopping() -> bool:
        asked.append(True)
        return len(asked) > 1  # told to stop while the first email is being sent

    result = outbox.send_due(worker="w", stopping=stopping)
    assert result.sent == 1 and inbox.subjects() == ["S0"]
    rest = OutboundMessage.objects.exclude(status="sent")
    assert {(m.status, m.attempts, m.claimed_by) for m in rest} == {("pending", 0, "")}  # due again, uncounted
    assert outbox.send_due().sent == 2
    assert inbox.subjects() == ["S0", "S1", "S2"]


def test_old_sent_emails_lose_their_bodies_and_keep_what_happened(world, smtp):
    book(world, world.cora, at(future_day(7), 10))
    assert outbox.send_due().sent == 1
    message = OutboundMessage.objects.get()
    assert outbox.prune() == 0  # sent just now: kept
    assert outbox.prune(now=timezone.now() + timedelta(days=31)) == 1
    message.refresh_from_db()
    assert (message.body_text, message.attachments, message.status) == ("", [], "sent")
    assert message.to == ["cora@x.test"] and message.subject.startswith("Booked:")
