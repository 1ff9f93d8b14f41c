"""A reminder states the clinic's fee policy (billing hears `reminder_policy`) when the clinic charges fees, and
says nothing of fees when it does not: delivered to a real SMTP server on loopback."""

from __future__ import annotations

from django.core.management import call_command
from sched_helpers import at, future_day
from test_reminders_smtp import body_text

from backcare.billing import services as billing
from backcare.common.models import OutboundMessage
from backcare.scheduling.services import booking


def remind(world, client):
    booking.book_appointment(
        client, world.massage, at(future_day(1), 10), therapist=world.therapist, room=world.room1,
        by=world.front_desk.user,
    )  # fmt: skip
    OutboundMessage.objects.update(status="sent")  # the booking's confirmation: not what this test is about
    call_command("send_reminders", "--hours-ahead", "48")
    call_command("send_outbox")


def test_the_reminder_states_the_cancellation_window_and_the_fees(world, smtp):
    _, inbox = smtp
    world.clinic.cancellation_hours = 48
    world.clinic.save()
    settings = billing.settings_for(world.clinic)
    settings.late_cancellation_fee, settings.no_show_fee, settings.currency = 2500, 4000, "GBP"
    settings.save()
    remind(world, world.cora)
    [mail] = inbox.to("cora@x.test")
    text = " ".join(body_text(mail).split())
    assert "less than 48 hours before" in text
    assert "late-cancellation fee of £25.00" in text
    assert "no-show fee of £40.00" in text


def test_no_fee_is_mentioned_when_the_clinic_charges_none(world, smtp):
    _, inbox = smtp
    settings = billing.settings_for(world.clinic)
    settings.late_cancellation_fee, settings.no_show_fee = 0, 0
    settings.save()
    remind(world, world.cora)
    [mail] = inbox.to("cora@x.test")
    text = body_text(mail)
    assert "less than 24 hours" in text and "fee" not in text
