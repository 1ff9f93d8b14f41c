"""When a screening turns blocking, the client's future appointments are flagged to the front desk and the
therapist and their reminders are held (real SMTP on loopback)."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.urls import reverse
from sched_helpers import at, future_day
from test_reminders_smtp import smtp_server

from backcare.clinic.services import courses as course_service
from backcare.clinic.services.sessions import health_update
from backcare.scheduling.models import ReminderLog
from backcare.scheduling.services import booking
from clinic_fixtures import login


def test_a_blocking_health_update_holds_reminders_and_flags_the_appointment(world, client, therapist, front_desk):
    day = future_day(1)
    appointment = booking.book_appointment(
        world.cora, world.massage, at(day, 10), therapist=world.therapist, room=world.room1, by=front_desk.user
    )
    bob = world.client("Bob")
    booking.book_appointment(
        bob, world.massage, at(day, 12), therapist=world.therapist, room=world.room1, by=front_desk.user
    )
    course = course_service.start_course(world.cora, staff=therapist)
    update = health_update(course, staff=therapist, new_findings=[{"code": "fever"}], pain_now=4)
    assert update.blocks_treatment
    with smtp_server() as (_, inbox):
        call_command("send_outbox")  # the booking confirmations, queued with the bookings
        cora_before, bob_before = len(inbox.to(world.cora.email)), len(inbox.to(bob.email))
        call_command("send_reminders", "--hours-ahead", "48")
        call_command("send_outbox")  # the worker sends the reminders queued
        assert len(inbox.to(world.cora.email)) == cora_before  # held: no reminder
        assert len(inbox.to(bob.email)) == bob_before + 1  # reminders still go where the screening allows treatment
    assert not ReminderLog.objects.filter(appointment=appointment, kind="reminder").exists()
    for user in (front_desk.user, therapist.user):
        login(client, user)
        html = client.get(reverse("dashboard")).content.decode()
        assert "Appointments on hold: call the client" in html and world.cora.full_name in html
    login(client, world.cora.user)
    html = client.get(reverse("portal_appointments")).content.decode()
    assert "Your appointments are on hold." in html and "well again" in html  # what to do: wait, then rebook


def test_a_course_session_is_never_booked_with_a_therapist_who_cannot_open_the_record(world, therapist2, front_desk):
    from django.core.exceptions import ValidationError

    from backcare.scheduling.services.availability import suggest_course

    course = course_service.start_course(world.cora, staff=world.therapist)
    with pytest.raises(ValidationError, match="cannot open Cora Client's record"):
        booking.book_appointment(
            world.cora,
            world.massage,
            at(future_day(2), 10),
            therapist=therapist2,
            room=world.room1,
            by=front_desk.user,
            course=course,
        )
    slots = suggest_course(course, world.massage, future_day(1))
    assert slots and {s.therapist_id for s in slots} == {world.therapist.pk}
