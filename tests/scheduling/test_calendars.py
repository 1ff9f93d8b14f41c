"""Calendar feeds behind secret addresses: what each feed lists and says, the clinic's time zone, tokens that are
only stored hashed, regenerated (the old address stops working), revoked and audited, and the page where therapists
and clients get their own address."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from icalendar import Calendar
from sched_helpers import at, future_day, next_transition

from backcare.clinic.models import AuditEvent
from backcare.scheduling import calendars
from backcare.scheduling.models import Appointment, CalendarToken
from backcare.scheduling.services import booking
from clinic_fixtures import login


def book(world, client, start, *, therapist=None, room=None):
    return booking.book_appointment(
        client,
        world.massage,
        start,
        therapist=therapist or world.therapist,
        room=room or world.room1,
        by=world.front_desk.user,
    )


def fetch(page, token):
    response = page.get(f"/calendar/{token}.ics")
    if response.status_code != 200:
        return response, None
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert "no-store" in response["Cache-Control"]
    return response, Calendar.from_ical(response.content)


def by_start(calendar):
    return {e.decoded("dtstart").astimezone(UTC): e for e in calendar.events}


def test_therapist_feed_lists_their_live_appointments_with_client_names_only(world, client):
    day = future_day(7)
    cora = book(world, world.cora, at(day, 10))
    bob = world.client("Bob")
    bobs = book(world, bob, at(day, 13), room=world.room2)
    elsewhere = book(world, world.client("Other"), at(day, 10), therapist=world.therapist2, room=world.room2)
    cancelled = book(world, world.client("Gone"), at(future_day(8), 10))
    booking.cancel_appointment(cancelled, by=world.front_desk.user)
    recent = book(world, world.client("Recent"), at(future_day(9), 10))
    old = book(world, world.client("Old"), at(future_day(10), 10))
    # Move two into the past directly (the booking service refuses past times): 10 and 40 days ago.
    for appointment, days in ((recent, 10), (old, 40)):
        start = (timezone.now() - timedelta(days=days)).replace(second=0, microsecond=0)
        Appointment.objects.filter(pk=appointment.pk).update(
            starts_at=start, ends_at=start + timedelta(hours=1), busy_from=start, busy_until=start + timedelta(hours=1)
        )
    recent.refresh_from_db()

    _, token = calendars.create_token(by=world.therapist.user, therapist=world.therapist)
    response, calendar = fetch(client, token)
    events = by_start(calendar)
    assert set(events) == {cora.starts_at, bobs.starts_at, recent.starts_at}
    assert len(calendar.events) == 3  # not therapist2's, not the cancelled one, not 40 days ago
    assert elsewhere.client.first_name == "Other"
    assert not any("Other" in str(e["summary"]) for e in calendar.events)
    assert str(events[cora.starts_at]["summary"]) == "Cora Client"
    assert str(events[bobs.starts_at]["summary"]) == bob.full_name
    assert str(events[bobs.starts_at]["location"]) == "Room 2"
    body = response.content.decode()
    assert "Remedial massage" not in body and "DESCRIPTION" not in body  # the client's name only
    assert str(calendar["x-wr-calname"]) == "Test Clinic: Theo Therapist"


def test_client_feed_in_the_clinic_zone_with_service_and_clinic_only(world, client, screen_client):
    day = next_transition(10) + timedelta(days=1)  # the day after the clocks go back
    a = book(world, world.cora, at(day, 10))
    other = book(world, world.client("Else"), at(day, 12))
    _, token = calendars.create_token(by=world.cora.user, client=world.cora)
    response, calendar = fetch(client, token)
    [event] = calendar.events
    assert event.decoded("dtstart") == a.starts_at
    assert event.decoded("dtstart").tzinfo.key == "Europe/London"
    assert event.decoded("dtstart").hour == 10
    assert str(event["summary"]) == "Remedial massage at Test Clinic"
    assert str(event["description"]) == "With Theo Therapist."
    assert "TZID=Europe/London" in response.content.decode()
    [vtimezone] = calendar.timezones
    assert str(vtimezone["tzid"]) == "Europe/London"
    assert other.starts_at not in by_start(calendar)
    # nothing from the clinical record
    body = response.content.decode().lower()
    for word in ("screen", "lower_back", "decision", "referral", "precaution"):
        assert word not in body


def test_a_moved_appointment_keeps_its_uid_with_a_higher_sequence(world, client):
    day = future_day(7)
    a = book(world, world.cora, at(day, 10))
    _, token = calendars.create_token(by=world.front_desk.user, client=world.cora)
    [before] = fetch(client, token)[1].events
    booking.reschedule_appointment(a, at(day, 15), by=world.front_desk.user)
    [after] = fetch(client, token)[1].events
    assert str(after["uid"]) == str(before["uid"])
    assert (int(before["sequence"]), int(after["sequence"])) == (0, 1)
    assert after.decoded("dtstart").astimezone(UTC) == at(day, 15).astimezone(UTC)


def test_tokens_are_stored_hashed_regenerated_revoked_and_audited(world, client):
    book(world, world.cora, at(future_day(7), 10))
    first_row, first = calendars.create_token(by=world.therapist.user, therapist=world.therapist)
    assert len(first) >= 40 and first not in first_row.token_hash
    assert CalendarToken.objects.filter(token_hash=first).count() == 0
    assert fetch(client, first)[0].status_code == 200

    _, second = calendars.rotate_token(by=world.owner.user, therapist=world.therapist)
    assert fetch(client, first)[0].status_code == 404  # the old address stops working at once
    assert fetch(client, second)[0].status_code == 200

    assert calendars.revoke_token(by=world.therapist.user, therapist=world.therapist) == 1
    assert fetch(client, second)[0].status_code == 404
    assert client.get("/calendar/not-a-real-token.ics").status_code == 404
    assert client.get("/calendar/.ics").status_code == 404

    actions = list(
        AuditEvent.objects.filter(object_type="calendartoken").order_by("at", "id").values_list("action", flat=True)
    )
    assert actions == ["create_calendar_token", "rotate_calendar_token", "revoke_calendar_token"]
    for event in AuditEvent.objects.filter(object_type="calendartoken"):
        assert first not in str(event.detail) and second not in str(event.detail)


def test_who_may_manage_which_address(world):
    with pytest.raises(PermissionDenied):
        calendars.create_token(by=world.therapist2.user, therapist=world.therapist)
    with pytest.raises(PermissionDenied):
        calendars.create_token(by=world.front_desk.user, therapist=world.therapist)
    other = world.client("Other")
    with pytest.raises(PermissionDenied):
        calendars.create_token(by=world.cora.user, client=other)
    calendars.create_token(by=world.owner.user, therapist=world.therapist)
    calendars.create_token(by=world.front_desk.user, client=other)
    assert CalendarToken.objects.filter(revoked_at__isnull=True).count() == 2


def test_therapist_gets_their_address_on_the_calendar_page(world, client):
    book(world, world.cora, at(future_day(7), 10))
    login(client, world.therapist.user)
    page = client.get("/calendar/subscribe/")
    assert page.status_code == 200
    assert b"You have no calendar address yet" in page.content
    nonce = page.context["nonce"]
    response = client.post("/calendar/subscribe/", {"nonce": nonce, "action": "new"})
    assert response.status_code == 302
    shown = client.get("/calendar/subscribe/")
    url = shown.context["new_url"]
    assert url.startswith("http://testserver/calendar/") and url.encode() in shown.content
    assert b"copy it now" in shown.content
    assert client.get("/calendar/subscribe/").context["new_url"] == ""  # shown only once
    # the same form sent twice makes nothing twice
    client.post("/calendar/subscribe/", {"nonce": nonce, "action": "new"})
    assert CalendarToken.objects.filter(therapist=world.therapist).count() == 1
    client.logout()
    token = url.rsplit("/", 1)[1].removesuffix(".ics")
    _, calendar = fetch(client, token)
    assert [str(e["summary"]) for e in calendar.events] == ["Cora Client"]


def test_client_stops_their_address_from_the_page(world, client):
    _, token = calendars.create_token(by=world.cora.user, client=world.cora)
    login(client, world.cora.user)
    nonce = client.get("/calendar/subscribe/").context["nonce"]
    client.post("/calendar/subscribe/", {"nonce": nonce, "action": "stop"})
    assert fetch(client, token)[0].status_code == 404
    assert AuditEvent.objects.filter(action="revoke_calendar_token", client=world.cora).exists()


def test_calendar_page_is_for_therapists_and_clients(world, client):
    assert client.get("/calendar/subscribe/").status_code == 302  # sign in first
    login(client, world.front_desk.user)
    assert client.get("/calendar/subscribe/").status_code == 403
