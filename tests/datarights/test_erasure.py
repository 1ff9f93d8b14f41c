"""Erasure requests: asked from the portal or recorded by the owner, confirmed by the owner (step 1: what may go
goes now, the clinical record is kept and marked), then the `retention` command (step 2: the clinical record goes
when its retention has ended). The audit trail stays through both."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from axes.models import AccessLog
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client as PageClient
from django.urls import reverse
from django.utils import timezone

from backcare.clinic.models import (
    AuditEvent,
    Clearance,
    Client,
    Consent,
    Course,
    ErasureRequest,
    Intake,
    Invitation,
    Outcome,
    Referral,
    Screening,
    TreatmentSession,
)
from backcare.common.models import OutboundMessage
from backcare.datarights import erasure as datarights
from backcare.scheduling import calendars
from backcare.scheduling.models import Appointment, CalendarToken, ReminderLog, WaitlistEntry
from matrix_support import PASSWORD, login_as

KEPT = {
    "consents": lambda c: Consent.objects.filter(client=c).count(),
    "intakes": lambda c: Intake.objects.filter(client=c).exclude(status="draft").count(),
    "screenings": lambda c: Screening.objects.filter(client=c).count(),
    "clearances": lambda c: Clearance.objects.filter(client=c).count(),
    "courses": lambda c: Course.objects.filter(client=c).count(),
    "sessions": lambda c: TreatmentSession.objects.filter(course__client=c).count(),
    "outcomes": lambda c: Outcome.objects.filter(client=c).count(),
    "referrals": lambda c: Referral.objects.filter(client=c).count(),
    "appointments": lambda c: Appointment.objects.filter(client=c).count(),
}


@pytest.fixture
def x_extras(world):
    """What step 1 deletes that the world does not hold yet for X: a calendar feed, an invitation, a draft intake,
    a reminder email log with the address."""
    x = world.x.client
    calendars.create_token(by=x.user, client=x)
    Invitation.objects.create(client=x, token_hash="0" * 64, expires_at=timezone.now() + dt.timedelta(days=3))
    Intake.objects.create(client=x, status=Intake.Status.DRAFT, answers={"notes": "half finished"})
    booked = Appointment.objects.get(pk=world.x.ids["appointment"])
    assert ReminderLog.objects.get(appointment=booked, kind="booked").recipient == x.email  # queued by the booking
    assert OutboundMessage.objects.filter(client_id=x.pk, to=[x.email]).exists()
    return x


def portal_login(page_client, username):
    return page_client.post(reverse("login"), {"username": username, "password": PASSWORD})


def kept(client):
    return {name: count(client) for name, count in KEPT.items()}


def test_client_asks_in_the_portal_and_the_owner_confirms(client, world, x_extras):
    x, y = world.x.client, world.y.client
    username, user_id = x.user.username, x.user.pk
    before = kept(x)
    other_before = kept(y)
    old_session = PageClient()
    assert portal_login(old_session, username).status_code == 302  # the real login page works before
    assert AccessLog.objects.filter(username=username).exists()

    login_as(client, x.user)
    page = client.get(reverse("portal_erasure")).content.decode()
    assert "Ask us to erase your data" in page
    assert "8 years" in page and "Portal login" in page and "Session notes" in page
    assert "audit trail" in page

    # The confirmation step: the box must be ticked.
    response = client.post(reverse("portal_erasure"), {"action": "request"})
    assert response.status_code == 200
    assert "Tick the box to confirm that you want your data erased." in response.content.decode()
    assert not ErasureRequest.objects.filter(client=x).exists()

    response = client.post(reverse("portal_erasure"), {"action": "request", "understood": "on"})
    assert response.status_code == 302
    client.post(reverse("portal_erasure"), {"action": "request", "understood": "on"})  # twice: still one
    erasure = ErasureRequest.objects.get(client=x)
    assert erasure.status == "requested" and erasure.channel == "portal"
    x.refresh_from_db()
    assert x.erasure_requested_at is not None
    assert AuditEvent.objects.filter(client=x, action="erasure_requested", user_id=user_id).count() == 1
    assert "Your request is waiting" in client.get(reverse("portal_erasure")).content.decode()
    assert kept(x) == before and x.user_id == user_id  # nothing erased before the owner confirms

    # The owner sees it, and must tick the identity check.
    login_as(client, world.owner.user)
    assert "Waiting for your confirmation" in client.get(reverse("client_erasure", args=[x.pk])).content.decode()
    response = client.post(reverse("client_erasure", args=[x.pk]), {"action": "confirm"})
    assert response.status_code == 200
    assert "Tick the box once you have checked who made the request." in response.content.decode()
    assert get_user_model().objects.filter(pk=user_id).exists()

    response = client.post(reverse("client_erasure", args=[x.pk]), {"action": "confirm", "identity_checked": "on"})
    assert response.status_code == 302

    # Gone: login and its sessions, contact details, invitations, feeds, waitlist, future appointments, drafts.
    x.refresh_from_db()
    assert x.user_id is None and not get_user_model().objects.filter(pk=user_id).exists()
    assert (x.email, x.phone, x.address) == ("", "", "")
    assert not Invitation.objects.filter(client=x).exists()
    assert not CalendarToken.objects.filter(client=x).exists()
    assert not WaitlistEntry.objects.filter(client=x).exists()
    assert not Intake.objects.filter(client=x, status="draft").exists()
    assert Appointment.objects.get(pk=world.x.ids["hold"]).status == "declined"
    cancelled = Appointment.objects.get(pk=world.x.ids["appointment"])
    assert cancelled.status == "cancelled" and cancelled.cancel_reason == datarights.CANCEL_REASON
    assert Appointment.objects.get(pk=world.x.ids["overbooked_appointment"]).status == "cancelled"
    assert not Appointment.objects.filter(client=x, starts_at__gt=timezone.now(), status="booked").exists()
    assert set(ReminderLog.objects.filter(appointment__client=x).values_list("recipient", flat=True)) == {""}
    emails = OutboundMessage.objects.filter(client_id=x.pk)
    assert {(tuple(m.to), m.body_text, m.status) for m in emails} == {((), "", "cancelled")}  # none will go
    assert not AccessLog.objects.filter(username=username).exists()  # the throttle's log of the good login
    refused = portal_login(PageClient(), username)
    assert refused.status_code == 200 and "_auth_user_id" not in refused.wsgi_request.session
    response = old_session.get(reverse("portal"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))

    # Kept: the clinical record, and who it belongs to.
    assert kept(x) == before
    assert x.first_name.endswith("first name X") and x.date_of_birth == dt.date(1980, 6, 1)
    erasure.refresh_from_db()
    last = datarights.last_clinical_contact(x).astimezone(dt.UTC).date()
    assert erasure.status == "confirmed" and erasure.keep_until == datarights.add_years(last, 8)
    event = AuditEvent.objects.get(client=x, action="erasure_confirmed")
    assert event.user == world.owner.user
    assert event.detail["deleted"]["portal_login"] == 1 and event.detail["keep_until"] == erasure.keep_until.isoformat()
    assert sorted(event.detail["contact_fields_erased"]) == ["address", "email", "phone"]
    page = client.get(reverse("client_erasure", args=[x.pk])).content.decode()
    assert "Erasure confirmed" in page and erasure.keep_until.strftime("%-d %B %Y") in page

    # The other client is untouched.
    y.refresh_from_db()
    assert y.user is not None and y.email and kept(y) == other_before
    assert Appointment.objects.get(pk=world.y.ids["appointment"]).status == "booked"

    # Confirming again changes nothing.
    events = AuditEvent.objects.count()
    datarights.confirm_erasure(erasure, by=world.owner.user)
    assert AuditEvent.objects.count() == events


def test_client_can_withdraw_before_the_owner_confirms(client, world):
    x = world.x.client
    login_as(client, x.user)
    client.post(reverse("portal_erasure"), {"action": "request", "understood": "on"})
    response = client.post(reverse("portal_erasure"), {"action": "withdraw"})
    assert response.status_code == 302
    erasure = ErasureRequest.objects.get(client=x)
    assert erasure.status == "withdrawn"
    x.refresh_from_db()
    assert x.erasure_requested_at is None and x.user is not None
    assert AuditEvent.objects.filter(client=x, action="erasure_withdrawn").exists()
    # A withdrawn request cannot be confirmed.
    with pytest.raises(Exception, match="withdrawn"):
        datarights.confirm_erasure(erasure, by=world.owner.user)


def test_owner_records_a_request_by_phone_with_clear_messages_for_bad_input(client, world):
    x = world.x.client
    url = reverse("client_erasure", args=[x.pk])
    login_as(client, world.owner.user)
    page = client.post(url, {"action": "record", "requested_on": "31/02/2024"}).content.decode()
    assert "How the client asked: choose one of the options." in page
    assert "Day the request was made: enter a real date" in page and 'value="31/02/2024"' in page
    future = (timezone.localdate() + dt.timedelta(days=3)).strftime("%d/%m/%Y")
    page = client.post(url, {"action": "record", "channel": "phone", "requested_on": future}).content.decode()
    assert "cannot be in the future" in page and f'value="{future}"' in page
    page = client.post(url, {"action": "record", "channel": "portal"}).content.decode()
    assert "choose one of the options" in page
    page = client.post(url, {"action": "nonsense"}).content.decode()
    assert "Choose what to do" in page
    assert not ErasureRequest.objects.exists()

    yesterday = timezone.localdate() - dt.timedelta(days=1)
    data = {"action": "record", "channel": "phone", "requested_on": yesterday.strftime("%d/%m/%Y")}
    response = client.post(url, data)
    assert response.status_code == 302
    erasure = ErasureRequest.objects.get(client=x)
    assert erasure.channel == "phone" and erasure.recorded_by == world.owner
    assert erasure.requested_at.date() == yesterday
    page = client.get(url).content.decode()
    assert datarights.respond_by(erasure).strftime("%-d %B %Y") in page

    # The owner can withdraw it for the client.
    assert client.post(url, {"action": "withdraw"}).status_code == 302
    assert ErasureRequest.objects.get(client=x).status == "withdrawn"


@pytest.mark.parametrize("role", ["therapist_a", "therapist_b", "front_desk", "client_x"])
def test_only_the_owner_records_or_confirms(client, world, role):
    login_as(client, world.users[role])
    url = reverse("client_erasure", args=[world.x.client.pk])
    response = client.post(url, {"action": "record", "channel": "phone"})
    assert response.status_code == 403
    assert not ErasureRequest.objects.exists()


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("retention", *args, stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


def table_counts():
    return {
        m.__name__: m.objects.count()
        for m in (Client, Consent, Intake, Screening, Clearance, Course, TreatmentSession, Outcome, Referral)
    } | {"Appointment": Appointment.objects.count(), "AuditEvent": AuditEvent.objects.count()}


def test_retention_deletes_only_expired_records_and_keeps_the_audit_trail(world, django_capture_on_commit_callbacks):
    x, y, z = world.x.client, world.y.client, world.z
    owner = world.owner.user
    for c in (x, z):
        datarights.confirm_erasure(datarights.request_erasure(c, by=owner, channel="letter"), by=owner)
    x_until = ErasureRequest.objects.get(client=x).keep_until
    z_until = ErasureRequest.objects.get(client=z).keep_until
    today = timezone.now().astimezone(dt.UTC).date()  # the world's clinic keeps UTC
    assert z_until == today  # no clinical record: nothing to keep
    assert x_until > today + dt.timedelta(days=365 * 7)
    letter = Path(Clearance.objects.get(client=x).letter.path)
    assert letter.exists()
    y_before = kept(y)

    # A dry run lists what would go and changes nothing.
    before = table_counts()
    out = run("--dry-run", "--now", (x_until + dt.timedelta(days=1)).isoformat())
    assert f"Would delete the record of client {x.pk}" in out and f"Would delete the record of client {z.pk}" in out
    assert "Dry run: 2 record(s) due" in out
    assert table_counts() == before and letter.exists()

    # On the last day of retention nothing goes; the day after, only the expired one.
    assert "0 record(s) deleted" in run("--now", z_until.isoformat())
    assert Client.objects.filter(pk=z.pk).exists()
    z_events = AuditEvent.objects.filter(client_id=z.pk).count()
    out = run("--now", (z_until + dt.timedelta(days=1)).isoformat())
    assert f"Deleted the record of client {z.pk}" in out and "1 record(s) deleted" in out
    assert not Client.objects.filter(pk=z.pk).exists()
    assert Client.objects.filter(pk=x.pk).exists() and kept(x)["sessions"] > 0
    assert AuditEvent.objects.filter(client_id=z.pk).count() == z_events + 1  # the old events stay, one more

    # Eight years on, X's clinical record goes with everything about X; the letter file after the commit.
    x_events = AuditEvent.objects.filter(client_id=x.pk).count()
    with django_capture_on_commit_callbacks(execute=True):
        out = run("--now", f"{x_until + dt.timedelta(days=1)}T09:00")
    assert f"Deleted the record of client {x.pk}" in out
    assert not Client.objects.filter(pk=x.pk).exists()
    assert all(count == 0 for count in kept(x).values())
    assert not letter.exists()
    assert kept(y) == y_before and Client.objects.filter(pk=y.pk).exists()
    assert AuditEvent.objects.filter(client_id=x.pk).count() == x_events + 1
    done = AuditEvent.objects.get(client_id=x.pk, action="erasure_completed")
    assert done.detail["deleted"]["clinic.TreatmentSession"] == y_before["sessions"]  # X and Y were built alike
    assert done.detail["keep_until"] == x_until.isoformat()

    # Running again is harmless.
    events = AuditEvent.objects.count()
    assert "0 record(s) deleted" in run("--now", "2100-01-01")
    assert AuditEvent.objects.count() == events


def test_retention_keeps_a_record_that_grew_after_the_confirmation(world):
    """Anything added after the owner confirmed keeps the record longer; nothing makes it go sooner."""
    z = world.z
    owner = world.owner.user
    today = timezone.now().astimezone(dt.UTC).date()  # the world's clinic keeps UTC
    erasure = datarights.confirm_erasure(datarights.request_erasure(z, by=owner, channel="phone"), by=owner)
    assert erasure.keep_until == today
    Consent.objects.create(client=z, text=Consent.objects.first().text, signature="Z")
    assert datarights.effective_keep_until(erasure) == datarights.add_years(today, 8)
    assert "0 record(s) deleted" in run("--now", (today + dt.timedelta(days=2)).isoformat())
    assert Client.objects.filter(pk=z.pk).exists()


def test_retention_command_from_the_command_line(cli):
    usage = cli("retention", "--help")
    assert usage.returncode == 0 and "--dry-run" in usage.stdout and "--now" in usage.stdout
    bad = cli("retention", "--now", "next tuesday")
    assert bad.returncode == 1
    assert "--now: 'next tuesday' is not a date or time" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_add_years_handles_the_leap_day():
    assert datarights.add_years(dt.date(2024, 2, 29), 8) == dt.date(2032, 2, 29)
    assert datarights.add_years(dt.date(2024, 2, 29), 1) == dt.date(2025, 2, 28)
    assert datarights.add_years(dt.date(2025, 3, 14), 8) == dt.date(2033, 3, 14)


def test_retention_is_the_clinics_period_but_never_below_the_installations_minimum(world, settings):
    x = world.x.client
    last = datarights.last_clinical_contact(x).astimezone(dt.UTC).date()
    world.clinic.retention_years = 10
    world.clinic.save()
    assert datarights.keep_until(x) == datarights.add_years(last, 10)
    world.clinic.retention_years = 3
    world.clinic.save()
    settings.BACKCARE = {**settings.BACKCARE, "RETENTION_YEARS": 7}
    x.refresh_from_db()
    assert datarights.keep_until(x) == datarights.add_years(last, 7)
