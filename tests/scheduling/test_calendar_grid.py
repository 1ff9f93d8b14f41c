"""The calendar's time grid through the Django test client: its JSON feed (only live appointments of the visible
range, what each role reads, a constant number of queries, the canary escaped) and the drag's move (the move page's
checks, 409 on a taken time, audited); and closed days: no free time and no booking on a day nobody works or on a
public holiday, unless the owner opens the holiday (audited, the owner only)."""

from __future__ import annotations

import json
from datetime import time, timedelta

import holidays
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from sched_helpers import LONDON, at, future_day

from backcare.clinic.models import AuditEvent
from backcare.scheduling.models import Appointment, OpenedHoliday
from backcare.scheduling.services import booking, resources
from backcare.scheduling.services import holidays as holiday_service
from backcare.scheduling.services.availability import find_slots
from clinic_fixtures import login

SCRIPT = "<script>alert(1)</script>"


def book(world, client, start, *, therapist=None, room=None, by=None, **kw):
    return booking.book_appointment(
        client,
        world.massage,
        start,
        therapist=therapist or world.therapist,
        room=room or world.room1,
        by=by or world.front_desk.user,
        **kw,
    )


def events(client, day, last=None, **params):
    end = (last or day) + timedelta(days=1)
    query = {"start": f"{day.isoformat()}T00:00:00", "end": f"{end.isoformat()}T00:00:00", **params}
    response = client.get(reverse("calendar_events"), query)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    return json.loads(response.content)


def appointments_of(found):
    return {e["id"]: e for e in found if "id" in e}


def next_holiday(days_ahead=3):
    """The next GB public holiday at least `days_ahead` days away (outside the cancellation window)."""
    first = timezone.localdate(timezone=LONDON) + timedelta(days=days_ahead)
    known = holidays.country_holidays("GB", years=[first.year, first.year + 1])
    return min(d for d in known if d >= first)


def working_day_after(day):
    plain = day + timedelta(days=1)
    while plain in holidays.country_holidays("GB"):
        plain += timedelta(days=1)
    return plain


@pytest.fixture
def other(world, make_client):
    c = make_client(world.therapist2, username="otto", first_name="Otto", last_name="Other", email="otto@x.test")
    world.screen_client(c)
    return c


# --- the feed ---------------------------------------------------------------------------------------------------


def test_feed_gives_the_live_appointments_of_the_range_in_clinic_time(client, world, other):
    day = future_day(7)
    shown = book(world, world.cora, at(day, 10))
    cancelled = book(world, other, at(day, 12), therapist=world.therapist2, room=world.room2)
    booking.cancel_appointment(cancelled, by=world.front_desk.user, reason="ill")
    book(world, other, at(day + timedelta(days=1), 10), therapist=world.therapist2, room=world.room2)
    login(client, world.front_desk.user)
    found = appointments_of(events(client, day))
    assert list(found) == [str(shown.pk)]  # not the cancelled one, not the next day's
    event = found[str(shown.pk)]
    assert event["start"] == f"{day.isoformat()}T10:00:00" and event["end"] == f"{day.isoformat()}T11:00:00"
    assert event["title"] == "Cora Client · Remedial massage"
    assert event["editable"] is True and event["url"] == reverse("appointment_detail", args=[shown.pk])
    props = event["extendedProps"]
    assert props["therapistId"] == world.therapist.pk and props["roomId"] == world.room1.pk
    assert props["moveUrl"] == reverse("appointment_drop", args=[shown.pk])
    # Cancelled ones only when asked for, never movable.
    with_cancelled = appointments_of(events(client, day, cancelled="1"))
    assert with_cancelled[str(cancelled.pk)]["editable"] is False
    assert "appt-cancelled" in with_cancelled[str(cancelled.pk)]["classNames"]
    # One therapist or one room only.
    assert appointments_of(events(client, day, therapist=world.therapist2.pk)) == {}
    assert list(appointments_of(events(client, day, room=world.room1.pk))) == [str(shown.pk)]


def test_feed_refuses_a_range_it_cannot_read_naming_the_field(client, world):
    login(client, world.front_desk.user)
    url = reverse("calendar_events")
    bad = client.get(url, {"start": "soon", "end": "2026-01-01"})
    assert bad.status_code == 400 and "Start: enter a date" in json.loads(bad.content)["errors"]["start"][0]
    long = client.get(url, {"start": "2026-01-01", "end": "2026-06-01"})
    assert long.status_code == 400 and "at most 42 days" in json.loads(long.content)["errors"]["end"][0]
    assert client.get(url, {"start": "2026-01-02", "end": "2026-01-01"}).status_code == 400


def test_what_each_role_reads_in_the_feed(client, world, other, make_client):
    flagged = make_client(world.therapist, first_name="Flora", last_name="Flagged", email="flora@x.test")
    screening = world.screen_client(flagged, "anticoagulants", {"code": "bruise", "region": "thigh_left"})
    day = future_day(7)
    own = book(world, flagged, at(day, 10))
    theirs = book(world, other, at(day, 10), therapist=world.therapist2, room=world.room2)
    overbooked = book(world, other, at(day, 10), room=world.room1, by=world.owner.user, override_reason="VIP client")

    login(client, world.owner.user)
    as_owner = appointments_of(events(client, day))
    assert set(as_owner) == {str(own.pk), str(theirs.pk), str(overbooked.pk)}
    assert as_owner[str(overbooked.pk)]["extendedProps"]["overbookReason"] == "VIP client"

    login(client, world.front_desk.user)
    raw = client.get(
        reverse("calendar_events"), {"start": day.isoformat(), "end": (day + timedelta(days=1)).isoformat()}
    ).content.decode()
    as_desk = appointments_of(json.loads(raw))
    assert set(as_desk) == set(as_owner) and "Flora Flagged" in as_desk[str(own.pk)]["title"]
    assert "VIP client" not in raw and "overbookReason" not in raw  # the owner's reason for overbooking
    for finding in screening.result["findings"]:
        assert finding["title"] not in raw and finding["summary"] not in raw
    assert "precaution" not in raw.lower() and "proceed" not in raw.lower()

    login(client, world.therapist.user)
    as_theo = appointments_of(events(client, day))
    assert as_theo[str(own.pk)]["title"] == "Flora Flagged · Remedial massage"
    busy = as_theo[str(theirs.pk)]
    assert busy["title"] == "Busy" and busy["editable"] is False and "url" not in busy
    assert "client" not in busy["extendedProps"] and "Otto" not in json.dumps(busy)

    client.force_login(other.user, backend="django.contrib.auth.backends.ModelBackend")
    assert client.get(reverse("calendar_events"), {"start": day.isoformat(), "end": day.isoformat()}).status_code == 403


def test_feed_query_count_does_not_grow_with_the_appointments(client, world, make_client):
    day = future_day(7)
    login(client, world.front_desk.user)
    book(world, world.cora, at(day, 9))
    events(client, day)  # the session and the user are read once
    with CaptureQueriesContext(connection) as few:
        events(client, day)
    for hour in range(10, 16):
        c = make_client(world.therapist, first_name=f"Client{hour}", last_name="Many", email=f"m{hour}@x.test")
        world.screen_client(c)
        odd = hour % 2
        book(
            world,
            c,
            at(day, hour),
            therapist=world.therapist if odd else world.therapist2,
            room=world.room1 if odd else world.room2,
        )
    with CaptureQueriesContext(connection) as many:
        found = events(client, day)
    assert len(appointments_of(found)) == 7
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]
    assert len(few) <= 10, [q["sql"] for q in few.captured_queries]  # sign-in and 2FA checks, clinic, rows, holidays


def test_the_canary_in_names_stays_text_in_the_feed(client, world, make_client):
    evil = make_client(world.therapist, first_name=SCRIPT, last_name='"><img src=x onerror=alert(1)>', email="e@x.test")
    world.screen_client(evil)
    day = future_day(7)
    appointment = book(world, evil, at(day, 10))
    login(client, world.front_desk.user)
    raw = client.get(
        reverse("calendar_events"), {"start": day.isoformat(), "end": (day + timedelta(days=1)).isoformat()}
    ).content.decode()
    assert "<script" not in raw and "<img" not in raw and "\\u003Cscript\\u003E" in raw
    event = appointments_of(json.loads(raw))[str(appointment.pk)]
    assert event["title"].startswith(SCRIPT)  # the same text, for FullCalendar to write with textContent


# --- the drag ----------------------------------------------------------------------------------------------------


def drop(client, appointment, day, time, therapist, room):
    url = reverse("appointment_drop", args=[appointment.pk])
    data = {"day": day.isoformat(), "time": time, "therapist": therapist.pk, "room": room.pk}
    response = client.post(url, data)
    return response.status_code, json.loads(response.content)


def test_dragging_moves_with_the_move_pages_checks(client, world, other):
    day = future_day(7)
    appointment = book(world, world.cora, at(day, 10))
    taken = book(world, other, at(day, 14), therapist=world.therapist)
    login(client, world.front_desk.user)
    status, answer = drop(client, appointment, day, "12:00", world.therapist, world.room1)
    assert status == 200 and answer["message"].startswith("Moved to ")
    appointment.refresh_from_db()
    assert appointment.starts_at == at(day, 12)
    assert AuditEvent.objects.filter(action="reschedule_appointment", object_id=str(appointment.pk)).exists()
    # Onto a taken time: 409, a message naming what is taken, nothing changed.
    status, answer = drop(client, appointment, day, "14:00", world.therapist, world.room1)
    assert status == 409 and "Not moved: the time is taken." in answer["message"] and answer["conflicts"]
    appointment.refresh_from_db()
    assert appointment.starts_at == at(day, 12) and taken.starts_at == at(day, 14)
    # Outside the therapist's hours: 400 with the booking service's words.
    status, answer = drop(client, appointment, day, "18:00", world.therapist, world.room1)
    assert status == 400 and "does not work" in answer["message"]
    # A time that is not a time.
    status, answer = drop(client, appointment, day, "noon", world.therapist, world.room1)
    assert status == 400 and "Time: enter a time" in answer["message"]


def test_dragging_inside_the_cancellation_window_asks_for_the_move_page(client, world):
    soon = timezone.localdate(timezone=LONDON) + timedelta(days=1)
    while soon in holidays.country_holidays("GB"):
        soon += timedelta(days=1)
    world.clinic.cancellation_hours = 24 * 30
    world.clinic.save()
    appointment = book(world, world.cora, at(soon, 10))
    login(client, world.front_desk.user)
    status, answer = drop(client, appointment, soon, "11:00", world.therapist, world.room1)
    assert status == 400 and "give a reason" in answer["message"] and "Move page" in answer["message"]
    appointment.refresh_from_db()
    assert appointment.starts_at == at(soon, 10)


def test_a_cancelled_appointment_is_not_dragged(client, world):
    day = future_day(7)
    appointment = book(world, world.cora, at(day, 10))
    booking.cancel_appointment(appointment, by=world.front_desk.user, reason="ill")
    login(client, world.front_desk.user)
    status, answer = drop(client, appointment, day, "12:00", world.therapist, world.room1)
    assert status == 400 and "Only a booked appointment" in answer["message"]


# --- closed days -------------------------------------------------------------------------------------------------


def test_no_free_time_on_a_day_nobody_works(world):
    day = future_day(7, weekday=2)
    no_wednesdays = {d: [(time(9), time(17))] for d in range(7) if d != 2}
    for t in (world.therapist, world.therapist2):
        resources.set_working_hours(t, no_wednesdays, by=world.owner.user)
    assert find_slots(world.massage, day, day) == []
    assert find_slots(world.massage, day - timedelta(days=1), day - timedelta(days=1))  # the day before: open
    with pytest.raises(ValidationError) as refused:
        book(world, world.cora, at(day, 10))
    assert "does not work" in str(refused.value.message_dict["starts_at"])


def test_a_public_holiday_is_closed_for_booking_until_the_owner_opens_it(world):
    day = next_holiday()
    name = holidays.country_holidays("GB")[day]
    assert find_slots(world.massage, day, day) == []
    assert find_slots(world.massage, day - timedelta(days=1), day + timedelta(days=1))  # the days around it
    with pytest.raises(ValidationError) as refused:
        book(world, world.cora, at(day, 10))
    assert f"closed on {day:%a %d %b %Y} ({name})" in " ".join(refused.value.message_dict["starts_at"])

    opened = holiday_service.open_holiday(world.clinic, day, by=world.owner.user)
    assert opened.name == name
    event = AuditEvent.objects.get(action="holiday_opened")
    assert event.detail == {"day": day.isoformat(), "name": name}
    assert find_slots(world.massage, day, day)
    assert book(world, world.cora, at(day, 10)).status == "booked"

    assert holiday_service.close_holiday(world.clinic, day, by=world.owner.user) is True
    assert AuditEvent.objects.filter(action="holiday_closed").count() == 1
    assert find_slots(world.massage, day, day) == []
    assert Appointment.objects.get(client=world.cora).status == "booked"  # what was booked stays booked


def test_only_the_owner_opens_a_holiday_and_only_a_holiday(world):
    day = next_holiday()
    for user in (world.front_desk.user, world.therapist.user):
        with pytest.raises(PermissionDenied):
            holiday_service.open_holiday(world.clinic, day, by=user)
    with pytest.raises(ValidationError) as refused:
        holiday_service.open_holiday(world.clinic, working_day_after(day), by=world.owner.user)
    assert "is not a public holiday" in str(refused.value)
    assert not OpenedHoliday.objects.exists()


def test_a_country_without_known_holidays_closes_nothing(world):
    world.clinic.country = "ZZ"
    world.clinic.save()
    day = next_holiday()
    assert holiday_service.closed_days(world.clinic, day, day) == {}
    assert find_slots(world.massage, day, day)


def test_a_course_search_skips_a_closed_holiday(world):
    from backcare.clinic.services import courses
    from backcare.scheduling.services.availability import suggest_course

    day = next_holiday()
    course = courses.start_course(world.cora, staff=world.therapist)
    slots = suggest_course(course, world.massage, day, sessions=1)
    assert slots and slots[0].local(LONDON).date() != day


# --- the pages ---------------------------------------------------------------------------------------------------


def test_the_calendar_shows_a_closed_holiday(client, world):
    day = next_holiday()
    name = holidays.country_holidays("GB")[day]
    login(client, world.front_desk.user)
    page = client.get(reverse("calendar") + f"?date={day.isoformat()}").content.decode()
    assert f"Closed for booking on {day:%A} {day.day} {day:%B}: {name}" in page
    assert f"Closed ({name})" in page and "Free times" not in page
    found = events(client, day)
    assert {"title": f"Closed: {name}", "allDay": True} in [
        {k: e[k] for k in ("title", "allDay")} for e in found if e.get("extendedProps", {}).get("kind") == "holiday"
    ]
    assert any(e.get("display") == "background" for e in found)


def test_the_calendar_page_carries_the_time_grid_under_the_csp(client, world):
    login(client, world.front_desk.user)
    response = client.get(reverse("calendar"))
    page = response.content.decode()
    policy = response["Content-Security-Policy"]
    nonce = page.split('<meta name="csp-nonce" content="', 1)[1].split('"', 1)[0]
    assert f"'nonce-{nonce}'" in policy.split("style-src", 1)[1].split(";", 1)[0]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "vendor/fullcalendar/index.global.min.js" in page and "calendar-grid.js" in page
    assert 'id="cal-grid-config" type="application/json"' in page
    assert '<table class="calendar' in page  # the HTML grid stays, for pages without JavaScript


def test_owner_opens_a_holiday_from_the_holidays_page(client, world):
    day = next_holiday()
    name = holidays.country_holidays("GB")[day]
    login(client, world.owner.user)
    url = reverse("setup_holidays")
    page = client.get(url, {"year": day.year}).content.decode()
    assert name in page and "Open this day" in page
    response = client.post(url, {"day": day.isoformat(), "action": "open"})
    assert response.status_code == 302 and OpenedHoliday.objects.filter(day=day).exists()
    page = client.get(url, {"year": day.year}).content.decode()
    assert "Close again" in page and "opened by Olivia Owner" in page
    bad = client.post(url, {"day": "not a day", "action": "open"})
    assert bad.status_code == 400 and "Day: enter a real date" in bad.content.decode()
    bad = client.post(url, {"day": working_day_after(day).isoformat(), "action": "open"})
    assert bad.status_code == 400 and "is not a public holiday" in bad.content.decode()
    login(client, world.front_desk.user)
    assert client.get(url).status_code == 403
