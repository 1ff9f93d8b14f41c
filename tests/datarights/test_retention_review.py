"""Records nobody asked to erase: once a clinical record has outlived its retention period (last clinical contact +
the clinic's years) the owner's Data rights page lists it, the `retention` command counts it, and the owner deletes
it after checking; the audit trail keeps that it was. Nothing is deleted without the owner, and never a record that
must still be kept."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from backcare.clinic.models import AuditEvent, Client, Consent, Course, TreatmentSession
from backcare.datarights import erasure as datarights
from backcare.scheduling.models import Appointment
from matrix_support import login_as, parse_html


def at_noon(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)  # the world's clinic keeps UTC


def listed(clinic, now):
    return [d.client.pk for d in datarights.past_retention(clinic, now=now)]


def test_a_record_is_listed_the_day_after_its_retention_ends(world):
    x, y, z = world.x.client, world.y.client, world.z
    until = datarights.keep_until(x)
    assert until == datarights.add_years(datarights.last_clinical_contact(x).date(), 8)
    assert listed(world.clinic, at_noon(until)) == []  # the last day it is kept
    after = at_noon(until + dt.timedelta(days=1))
    assert set(listed(world.clinic, after)) == {x.pk, y.pk}  # z has no clinical record: no retention applies
    due = datarights.past_retention(world.clinic, now=after)[0]
    assert due.keep_until == datarights.keep_until(due.client)
    assert datarights.retention_status(z, now=after) == (None, "The client has no clinical record, so no retention "
                                                                "period applies.")  # fmt: skip

    # An erasure under way takes the record out of the list: the retention job deletes it on its own day.
    datarights.request_erasure(y, by=world.owner.user, channel="letter")
    assert listed(world.clinic, after) == [x.pk]
    assert "erasure request is under way" in datarights.retention_status(y, now=after)[1]

    # Anything added to the record later starts the period again.
    again = Consent.objects.create(client=x, text=Consent.objects.filter(client=x).first().text, signature="X again")
    Consent.objects.filter(pk=again.pk).update(signed_at=timezone.now() + dt.timedelta(days=5))
    assert listed(world.clinic, after) == []
    assert "kept until" in datarights.retention_status(x, now=after)[1]


def test_a_record_with_appointments_to_come_is_kept(world, settings):
    """With no retention at all the record could go at once, but the client is booked: they are still a client."""
    settings.BACKCARE = {**settings.BACKCARE, "RETENTION_YEARS": 0}
    world.clinic.retention_years = 0
    world.clinic.save()
    x = world.x.client
    Client.objects.filter(pk=x.pk).update(created_at=timezone.now() - dt.timedelta(days=30))
    booked = Appointment.objects.get(pk=world.x.ids["appointment"])
    assert booked.starts_at.date() > timezone.now().date()
    before = booked.starts_at - dt.timedelta(hours=1)
    status, why = datarights.retention_status(x, now=before)
    assert status is None and "appointments to come" in why
    assert x.pk not in listed(world.clinic, before)
    assert x.pk in listed(world.clinic, booked.ends_at + dt.timedelta(days=1))


def test_only_the_owner_deletes_and_only_what_is_due(world):
    x, y = world.x.client, world.y.client
    after = at_noon(datarights.keep_until(x) + dt.timedelta(days=1))
    for user in (world.therapist_a.user, world.front_desk.user, x.user):
        with pytest.raises(PermissionDenied):
            datarights.delete_past_retention(x, by=user, now=after)
    with pytest.raises(ValidationError, match="kept until"):
        datarights.delete_past_retention(x, by=world.owner.user)  # today: still within its period
    assert Client.objects.filter(pk=x.pk).exists()

    sessions = TreatmentSession.objects.filter(course__client=x).count()
    events = AuditEvent.objects.filter(client_id=x.pk).count()
    deleted = datarights.delete_past_retention(x, by=world.owner.user, now=after)
    assert deleted["clinic.Client"] == 1 and deleted["clinic.TreatmentSession"] == sessions > 0
    assert not Client.objects.filter(pk=x.pk).exists()
    assert not Course.objects.filter(client_id=x.pk).exists() and not Appointment.objects.filter(client_id=x.pk)
    assert AuditEvent.objects.filter(client_id=x.pk).count() == events + 1  # the trail stays, with one more
    event = AuditEvent.objects.get(client_id=x.pk, action="retention_deleted")
    assert event.detail["keep_until"] == (after.date() - dt.timedelta(days=1)).isoformat()
    assert event.detail["deleted"]["clinic.TreatmentSession"] == sessions
    assert Client.objects.filter(pk=y.pk).exists()  # only the one the owner chose


def run_retention_command(*args):
    out = io.StringIO()
    call_command("retention", *args, stdout=out, stderr=out)
    return out.getvalue()


def test_the_retention_command_counts_them_and_deletes_none(world):
    after = at_noon(datarights.keep_until(world.x.client) + dt.timedelta(days=1))
    out = run_retention_command("--now", after.isoformat())
    assert f"{world.clinic.name}: 2 record(s) past their retention period with no erasure request" in out
    assert "/data-rights/" in out
    assert Client.objects.filter(pk__in=[world.x.client.pk, world.y.client.pk]).count() == 2
    assert "past their retention period" not in run_retention_command()  # today: nothing is


def test_the_owner_reviews_and_deletes_on_the_data_rights_page(client, world, settings):
    """One year's retention, and a record last touched 400 days ago: due today, for real."""
    settings.BACKCARE = {**settings.BACKCARE, "RETENTION_YEARS": 1}
    world.clinic.retention_years = 1
    world.clinic.save()
    z = world.z
    long_ago = timezone.now() - dt.timedelta(days=400)
    consent = Consent.objects.create(client=z, text=Consent.objects.first().text, signature="Zed")
    Consent.objects.filter(pk=consent.pk).update(signed_at=long_ago)
    Client.objects.filter(pk=z.pk).update(created_at=long_ago)

    login_as(client, world.owner.user)
    page = parse_html(client.get(reverse("datarights_overview")).content.decode())
    review = reverse("client_retention_delete", args=[z.pk])
    rows = [" ".join(n.text().split()) for n in page.walk() if n.tag == "tr"]
    assert any(z.full_name in row and f"{long_ago:%-d %b %Y}" in row for row in rows), rows
    assert review in {n.attrs.get("href") for n in page.walk() if n.tag == "a"}

    text = " ".join(parse_html(client.get(review).content.decode()).text().split())
    assert "The retention period is over" in text and "Delete the record of" in text

    # Not ticked: nothing deleted, the reason named at the box.
    answer = client.post(review, {})
    assert answer.status_code == 200
    assert "Tick the box once you have checked" in answer.content.decode()
    assert Client.objects.filter(pk=z.pk).exists()

    answer = client.post(review, {"checked": "on"}, follow=True)
    assert answer.redirect_chain[-1][0] == reverse("datarights_overview")
    assert f"The record of {z.full_name} is deleted" in answer.content.decode()
    assert not Client.objects.filter(pk=z.pk).exists()
    assert AuditEvent.objects.filter(client_id=z.pk, action="retention_deleted", user=world.owner.user).exists()


def test_the_review_page_says_why_a_record_is_kept(client, world):
    login_as(client, world.owner.user)
    url = reverse("client_retention_delete", args=[world.x.client.pk])
    text = " ".join(parse_html(client.get(url).content.decode()).text().split())
    assert "The record is kept" in text and "kept until" in text and "Delete the record of" not in text
    answer = client.post(url, {"checked": "on"})
    assert answer.status_code == 200 and "kept until" in answer.content.decode()
    assert Client.objects.filter(pk=world.x.client.pk).exists()
