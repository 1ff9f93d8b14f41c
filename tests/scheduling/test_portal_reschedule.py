"""The client moves their own appointment in the portal to another free time: the same search as booking online
(this service, the client free, the appointment's own time left out), only outside the clinic's cancellation window
(inside it the page says so and nothing moves), audited, and confirmed by email through the outbox."""

from __future__ import annotations

import html as html_lib
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from sched_helpers import at, future_day
from test_reminders_smtp import body_text

from backcare.clinic.models import AuditEvent
from backcare.common import outbox
from backcare.scheduling.models import Appointment
from backcare.scheduling.services import booking
from clinic_fixtures import login


@pytest.fixture
def other(world, make_client):
    c = make_client(world.therapist2, username="otto", first_name="Otto", last_name="Other", email="otto@x.test")
    world.screen_client(c)
    return c


def book(world, client, start, therapist=None):
    return booking.book_appointment(
        client,
        world.massage,
        start,
        therapist=therapist or world.therapist,
        room=world.room1,
        by=world.front_desk.user,
    )


def text(response):
    return html_lib.unescape(response.content.decode())


def move_url(appointment, day):
    return reverse("portal_reschedule", args=[appointment.pk]) + (
        f"?date_from={day.isoformat()}&date_to={day.isoformat()}&therapist="
    )


def slot_links(page, appointment):
    path = re.escape(reverse("portal_reschedule", args=[appointment.pk]))
    return [html_lib.unescape(u) for u in re.findall(rf'href="({path}\?[^"]*starts=[^"]*)"', page)]


def choose(client, appointment, day, hour):
    """The link of the free time at `hour` on `day`, followed: the page with the confirm form and its fields."""
    page = client.get(move_url(appointment, day)).content.decode()
    stamp = str(int(at(day, hour).timestamp()))
    [link] = [u for u in slot_links(page, appointment) if f"starts={stamp}" in u and "therapist=" in u][:1]
    chosen = client.get(link).content.decode()
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', chosen))
    return chosen, fields


def test_the_client_moves_their_appointment_and_is_told_by_email(client, world, smtp):
    _, inbox = smtp
    day = future_day(7)
    appointment = book(world, world.cora, at(day, 10))
    outbox.send_due()
    login(client, world.cora.user)
    listing = text(client.get(reverse("portal_appointments")))
    assert reverse("portal_reschedule", args=[appointment.pk]) in listing
    chosen, fields = choose(client, appointment, day + timedelta(days=1), 14)
    assert "Move my appointment</button>" in chosen
    response = client.post(reverse("portal_reschedule", args=[appointment.pk]), fields)
    assert response.status_code == 302 and response["Location"] == reverse("portal_appointments")
    appointment.refresh_from_db()
    assert appointment.starts_at == at(day + timedelta(days=1), 14) and appointment.status == "booked"
    event = AuditEvent.objects.filter(action="reschedule_appointment").get()
    assert event.user == world.cora.user and event.client_id == world.cora.pk
    assert outbox.send_due().sent == 1
    [message] = [m for m in inbox.to("cora@x.test") if "14:00" in body_text(m)]
    assert "moved" in str(message["subject"]).lower() or "rescheduled" in str(message["subject"]).lower()


def test_the_search_offers_other_times_and_the_appointment_does_not_block_itself(client, world):
    day = future_day(7)
    appointment = book(world, world.cora, at(day, 10))
    login(client, world.cora.user)
    page = client.get(move_url(appointment, day)).content.decode()
    stamps = {int(m) for m in re.findall(r"starts=(\d+)", page)}
    assert stamps and int(at(day, 10).timestamp()) not in stamps
    assert int(at(day, 10, 30).timestamp()) in stamps  # overlaps only the appointment being moved


def test_inside_the_window_the_page_refuses_with_a_clear_message(client, world):
    day = future_day(7)
    appointment = book(world, world.cora, at(day, 10))
    login(client, world.cora.user)
    _, fields = choose(client, appointment, day + timedelta(days=1), 14)
    world.clinic.cancellation_hours = 24 * 10
    world.clinic.phone = "01234 567890"
    world.clinic.save()
    page = text(client.get(reverse("portal_reschedule", args=[appointment.pk])))
    assert "cannot be moved online less than 240 hours before they start" in page
    assert "Please phone the clinic on 01234 567890" in page and "Move my appointment</button>" not in page
    response = client.post(reverse("portal_reschedule", args=[appointment.pk]), fields)
    assert response.status_code == 400 and "cannot be moved online" in text(response)
    assert Appointment.objects.get(pk=appointment.pk).starts_at == at(day, 10)
    assert not AuditEvent.objects.filter(action="reschedule_appointment").exists()


def test_a_taken_time_is_refused_with_409_and_nothing_moves(client, world, other):
    day = future_day(7)
    appointment = book(world, world.cora, at(day, 10))
    login(client, world.cora.user)
    _, fields = choose(client, appointment, day + timedelta(days=1), 14)
    book(world, other, at(day + timedelta(days=1), 14), therapist=world.therapist)
    response = client.post(reverse("portal_reschedule", args=[appointment.pk]), fields)
    assert response.status_code == 409 and "no longer free" in text(response)
    assert Appointment.objects.get(pk=appointment.pk).starts_at == at(day, 10)


def test_a_client_cannot_move_another_clients_appointment(client, world, other):
    theirs = book(world, other, at(future_day(7), 10))
    login(client, world.cora.user)
    assert client.get(reverse("portal_reschedule", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("portal_reschedule", args=[theirs.pk]), {}).status_code == 404


def test_a_cancelled_appointment_cannot_be_moved(client, world):
    appointment = book(world, world.cora, at(future_day(7), 10))
    booking.cancel_appointment(appointment, by=world.front_desk.user, reason="ill")
    login(client, world.cora.user)
    page = text(client.get(reverse("portal_reschedule", args=[appointment.pk])))
    assert "no longer booked, so it cannot be moved" in page


def test_a_damaged_time_is_named(client, world):
    appointment = book(world, world.cora, at(future_day(7), 10))
    login(client, world.cora.user)
    data = {"therapist": world.therapist.pk, "room": world.room1.pk, "starts": "soon"}
    response = client.post(reverse("portal_reschedule", args=[appointment.pk]), data)
    assert response.status_code == 400 and "Please choose a time again" in text(response)
