"""The staff scheduling pages through the Django test client: the calendar (day and week, per therapist and per room),
an appointment's page, finding a free time, booking, moving, cancelling, overbooking, and a whole course."""

from __future__ import annotations

import html as html_lib
import itertools
import re
from datetime import UTC, timedelta

import pytest
from django.urls import reverse
from sched_helpers import LONDON, at, future_day, next_transition

from backcare.clinic.models import AuditEvent
from backcare.clinic.services import courses
from backcare.clinical.vocabulary import DECISION_TEXT
from backcare.scheduling.models import Appointment
from backcare.scheduling.services import booking
from clinic_fixtures import login


@pytest.fixture
def other(world, make_client):
    """Another client with a portal login, of the second therapist."""
    c = make_client(world.therapist2, username="otto", first_name="Otto", last_name="Other", email="otto@x.test")
    world.screen_client(c)
    return c


def book(world, client, start, *, therapist=None, room=None, service=None, by=None, **kw):
    return booking.book_appointment(
        client,
        service or world.massage,
        start,
        therapist=therapist or world.therapist,
        room=room or world.room1,
        by=by or world.front_desk.user,
        **kw,
    )


def users(world, other):
    return {
        "owner": world.owner.user,
        "therapist": world.therapist.user,
        "therapist2": world.therapist2.user,
        "front_desk": world.front_desk.user,
        "client": world.cora.user,
        "other_client": other.user,
    }


def span(start, end):
    """A time range as the calendar shows it (with an en dash)."""
    return f"{start}\u2013{end}"


def text(response):
    return html_lib.unescape(response.content.decode())


def booking_data(world, client, start, *, therapist=None, room=None, service=None, key="key-1", **extra):
    local = start.astimezone(LONDON)
    return {
        "client": client.pk,
        "service": (service or world.massage).pk,
        "day": local.date().isoformat(),
        "time": local.strftime("%H:%M"),
        "therapist": (therapist or world.therapist).pk,
        "room": (room or world.room1).pk,
        "submission_key": key,
        **extra,
    }


# --- who may see what -------------------------------------------------------------------------------------------------


STAFF_OK = {"owner": 200, "therapist": 200, "therapist2": 200, "front_desk": 200, "client": 403, "other_client": 403}


@pytest.mark.parametrize("role", list(STAFF_OK))
def test_staff_pages_per_role(client, world, other, role):
    appointment = book(world, world.cora, at(future_day(7), 10))
    login(client, users(world, other)[role])
    day = future_day(7).isoformat()
    pages = [
        reverse("calendar"),
        reverse("calendar") + f"?view=week&by=room&date={day}",
        reverse("appointment_detail", args=[appointment.pk]),
        reverse("slot_search"),
        reverse("slot_search") + f"?service={world.massage.pk}&date_from={day}&date_to={day}",
        reverse("appointment_book"),
        reverse("appointment_move", args=[appointment.pk]),
        reverse("appointment_cancel", args=[appointment.pk]),
    ]
    for url in pages:
        assert client.get(url).status_code == STAFF_OK[role], url


def test_anonymous_is_sent_to_login(client, world):
    for url in (reverse("calendar"), reverse("slot_search"), reverse("portal_appointments")):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("owner", 200),
        ("therapist", 200),
        ("therapist2", 404),
        ("front_desk", 200),
        ("client", 403),
        ("other_client", 403),
    ],
)
def test_course_booking_page_per_role(client, world, other, role, status):
    course = courses.start_course(world.cora, staff=world.therapist)
    login(client, users(world, other)[role])
    assert client.get(reverse("course_booking", args=[course.pk])).status_code == status


def test_other_clinics_appointments_are_not_found(client, world, make_staff, other):
    from django.contrib.auth import get_user_model

    from backcare.clinic.models import Clinic, StaffMember

    appointment = book(world, world.cora, at(future_day(7), 10))
    elsewhere = Clinic.objects.create(name="Elsewhere")
    user = get_user_model().objects.create_user(username="eve", password="x" * 12)
    StaffMember.objects.create(user=user, clinic=elsewhere, role="front_desk", display_name="Eve Elsewhere")
    login(client, user)
    assert client.get(reverse("appointment_detail", args=[appointment.pk])).status_code == 404
    assert client.post(reverse("appointment_cancel", args=[appointment.pk]), {"reason": "x"}).status_code == 404
    assert Appointment.objects.get(pk=appointment.pk).status == "booked"
    assert "Cora" not in text(client.get(reverse("calendar") + f"?date={future_day(7).isoformat()}"))


# --- the calendar -----------------------------------------------------------------------------------------------------


def test_calendar_day_and_week_per_therapist_and_per_room(client, world, other):
    day = future_day(7)
    book(world, world.cora, at(day, 10))
    book(world, other, at(day, 14), therapist=world.therapist2, room=world.room2)
    login(client, world.front_desk.user)
    page = text(client.get(reverse("calendar") + f"?date={day.isoformat()}"))
    assert span("10:00", "11:00") in page and "Cora Client" in page and "Remedial massage" in page and "Room 1" in page
    assert span("14:00", "15:00") in page and "Otto Other" in page and "Room 2" in page
    assert "Theo Therapist" in page and "Tara Therapist" in page
    by_room = text(client.get(reverse("calendar") + f"?date={day.isoformat()}&by=room"))
    assert "Per room" in by_room and "Cora Client" in by_room
    # Per room, each entry names the therapist instead of the room.
    cora_entry = by_room.split("Cora Client", 1)[1].split("</li>", 1)[0]
    assert "Theo Therapist" in cora_entry
    week = text(client.get(reverse("calendar") + f"?date={day.isoformat()}&view=week"))
    assert "week of" in week and "Cora Client" in week and "Otto Other" in week
    # Another day shows none of them.
    other_day = text(client.get(reverse("calendar") + f"?date={(day + timedelta(days=1)).isoformat()}"))
    assert "Cora Client" not in other_day
    # A date that cannot be read shows today, not an error.
    assert client.get(reverse("calendar") + "?date=2025-02-31").status_code == 200


def test_times_are_shown_in_the_clinics_own_time_zone(client, world):
    from zoneinfo import ZoneInfo

    day = future_day(7)
    appointment = book(world, world.cora, at(day, 10))
    world.clinic.time_zone = "Asia/Tokyo"  # no daylight saving; London 10:00 is 18:00 or 19:00 there
    world.clinic.save()
    local = appointment.starts_at.astimezone(ZoneInfo("Asia/Tokyo"))
    expected = span(f"{local:%H:%M}", f"{local.hour + 1:02d}:00")
    login(client, world.front_desk.user)
    calendar_page = text(client.get(reverse("calendar") + f"?date={local.date().isoformat()}"))
    assert expected in calendar_page and "Asia/Tokyo" in calendar_page
    detail = text(client.get(reverse("appointment_detail", args=[appointment.pk])))
    assert expected in detail and span("10:00", "11:00") not in detail


def test_holds_are_shown_as_holds(client, world, other):
    from backcare.scheduling.services import waitlist

    day = future_day(7)
    entry = waitlist.join_waitlist(other, world.massage, day, day, by=world.front_desk.user)
    waitlist.place_hold(entry, therapist=world.therapist, room=world.room1, starts_at=at(day, 11, 30))
    login(client, world.therapist.user)
    page = text(client.get(reverse("calendar") + f"?date={day.isoformat()}"))
    assert "appt-held" in page and "Hold: offered to a waitlisted client until" in page and "Otto Other" in page


def test_front_desk_calendar_shows_no_clinical_data(client, world, make_client):
    flagged = make_client(world.therapist, first_name="Flora", last_name="Flagged", email="flora@x.test")
    screening = world.screen_client(flagged, "anticoagulants", {"code": "bruise", "region": "thigh_left"})
    assert screening.decision == "proceed_with_precautions" and screening.result["findings"]
    day = future_day(7)
    appointment = book(world, flagged, at(day, 10))
    login(client, world.front_desk.user)
    pages = [
        text(client.get(reverse("calendar") + f"?date={day.isoformat()}")),
        text(client.get(reverse("calendar") + f"?date={day.isoformat()}&view=week&by=room")),
        text(client.get(reverse("appointment_detail", args=[appointment.pk]))),
    ]
    for page in pages:
        assert "Flora Flagged" in page
        for finding in screening.result["findings"]:
            assert finding["title"] not in page
            assert finding["summary"] not in page
        assert DECISION_TEXT[screening.decision] not in page
        assert "precautions" not in page.lower() and "proceed" not in page.lower()


def test_names_are_escaped_on_the_calendar_and_appointment_pages(client, world, make_client):
    evil = make_client(world.therapist, first_name="<script>alert(1)</script>", last_name="Xss", email="x@x.test")
    world.screen_client(evil)
    day = future_day(7)
    appointment = book(world, evil, at(day, 10))
    login(client, world.front_desk.user)
    response = client.post(reverse("appointment_cancel", args=[appointment.pk]), {"reason": "<script>steal()</script>"})
    assert response.status_code == 302
    for url in (  # the calendar shows a cancelled appointment when asked to
        reverse("calendar") + f"?date={day.isoformat()}&cancelled=1",
        reverse("calendar") + f"?date={day.isoformat()}&view=week&cancelled=1",
        reverse("appointment_detail", args=[appointment.pk]),
    ):
        raw = client.get(url).content.decode()
        assert "<script>alert(1)" not in raw and "<script>steal()" not in raw
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in raw
        assert "&lt;script&gt;steal()&lt;/script&gt;" in raw


@pytest.mark.parametrize("month", [3, 10])
def test_week_view_across_a_daylight_saving_change(client, world, month):
    """The clocks change early on Sunday: 09:00 local on the Saturday before and on the Sunday after are different UTC
    hours, and the week view shows both as 09:00."""
    sunday = next_transition(month)
    saturday = sunday - timedelta(days=1)
    before = book(world, world.cora, at(saturday, 9))
    after = book(world, world.cora, at(sunday, 9))
    assert before.starts_at.astimezone(UTC).hour != after.starts_at.astimezone(UTC).hour
    login(client, world.front_desk.user)
    page = text(client.get(reverse("calendar") + f"?view=week&date={sunday.isoformat()}"))
    assert page.count(span("09:00", "10:00")) == 2
    assert span("08:00", "09:00") not in page and span("10:00", "11:00") not in page
    assert saturday.strftime("%a %-d %b") in page and sunday.strftime("%a %-d %b") in page
    # Each 09:00 is in its own day's column of Theo's row.
    row = page.split("Theo Therapist</th>", 1)[1].split("</tr>", 1)[0]
    cells = row.split("<td")[1:]
    assert span("09:00", "10:00") in cells[5] and span("09:00", "10:00") in cells[6]
    # The free times on both sides start at 09:00 local too.
    search = text(
        client.get(
            reverse("slot_search")
            + f"?service={world.massage.pk}&date_from={saturday.isoformat()}&date_to={sunday.isoformat()}"
            + f"&therapist={world.therapist2.pk}"
        )
    )
    for day in (saturday, sunday):
        section = search.split(day.strftime("%A %-d %B"), 1)[1]
        assert re.search(r'class="slot-time">(\d\d:\d\d)<', section).group(1) == "09:00"


# --- finding a free time and booking ----------------------------------------------------------------------------------


def test_free_times_lead_to_a_booking(client, world):
    day = future_day(7)
    book(world, world.cora, at(day, 9), therapist=world.therapist2, room=world.room2)
    login(client, world.front_desk.user)
    url = reverse("slot_search") + (
        f"?service={world.massage.pk}&date_from={day.isoformat()}&date_to={day.isoformat()}"
        f"&therapist={world.therapist.pk}&client={world.cora.pk}"
    )
    page = client.get(url).content.decode()
    links = re.findall(r'href="([^"]*/appointments/book/\?[^"]*)"', page)
    assert links, "free times are offered"
    # Cora is busy 09:00-10:00 with Tara, so Theo's first time for her is 10:00.
    first = html_lib.unescape(links[0])
    assert "time=10%3A00" in first and f"client={world.cora.pk}" in first
    form_page = client.get(first)
    assert form_page.status_code == 200
    body = form_page.content.decode()
    key = re.search(r'name="submission_key" value="([^"]+)"', body).group(1)
    assert 'value="10:00"' in body
    response = client.post(reverse("appointment_book"), booking_data(world, world.cora, at(day, 10), key=key))
    appointment = Appointment.objects.get(client=world.cora, therapist=world.therapist)
    assert response.status_code == 302 and response["Location"] == reverse("appointment_detail", args=[appointment.pk])
    assert appointment.starts_at == at(day, 10) and appointment.status == "booked" and not appointment.override
    assert appointment.submission_key == key
    assert AuditEvent.objects.filter(action="book_appointment", object_id=str(appointment.pk)).exists()
    detail = text(client.get(response["Location"]))
    assert "Booked: Cora Client, Remedial massage" in detail


def test_double_submission_books_once(client, world):
    day = future_day(7)
    login(client, world.front_desk.user)
    data = booking_data(world, world.cora, at(day, 10), key="same-key")
    first = client.post(reverse("appointment_book"), data)
    second = client.post(reverse("appointment_book"), data)
    assert Appointment.objects.count() == 1
    assert first.status_code == second.status_code == 302 and first["Location"] == second["Location"]
    assert "already made" in text(client.get(second["Location"]))


def test_conflicting_booking_gives_409_a_message_and_keeps_the_form(client, world, other):
    day = future_day(7)
    book(world, world.cora, at(day, 10))
    login(client, world.front_desk.user)
    response = client.post(
        reverse("appointment_book"), booking_data(world, other, at(day, 10, 30), room=world.room2, key="k2")
    )
    assert response.status_code == 409
    page = text(response)
    assert "This time is not free, so nothing was booked" in page
    assert "Theo Therapist is already booked 10:00-11:00 (with turnover 09:55-11:10)" in page
    # What was typed is kept: the time, the room and the client picked by name (a hidden field and its name shown).
    assert 'value="10:30"' in page and f'<option value="{world.room2.pk}" selected>' in page
    assert f'<input type="hidden" name="client" value="{other.pk}"' in page and "Client: Otto Other" in page
    assert "Overbook deliberately" not in page
    assert Appointment.objects.count() == 1


def test_invalid_booking_names_the_field(client, world):
    login(client, world.front_desk.user)
    data = booking_data(world, world.cora, at(future_day(7), 10))
    data["time"] = "25:99"
    response = client.post(reverse("appointment_book"), data)
    assert response.status_code == 200
    assert "Time: enter a time as hours:minutes" in text(response)
    data["time"] = "07:00"  # before Theo's hours
    response = client.post(reverse("appointment_book"), data)
    assert "Theo Therapist does not work" in text(response)
    assert not Appointment.objects.exists()


def test_front_desk_never_reads_the_screening_decision_when_booking_is_stopped(client, world, make_client):
    blocked = make_client(world.therapist, first_name="Bea", last_name="Blocked", email="bea@x.test")
    world.screen_client(blocked, "fever")
    login(client, world.front_desk.user)
    response = client.post(reverse("appointment_book"), booking_data(world, blocked, at(future_day(7), 10)))
    page = text(response)
    assert "cannot be booked for treatment at the moment" in page
    assert DECISION_TEXT["postpone"] not in page and "fever" not in page.lower()
    login(client, world.therapist.user)
    page = text(client.post(reverse("appointment_book"), booking_data(world, blocked, at(future_day(7), 10))))
    assert "No course or session can start" in page
    assert not Appointment.objects.exists()


def test_only_the_owner_may_overbook_with_a_reason(client, world, other):
    day = future_day(7)
    book(world, world.cora, at(day, 10))
    login(client, world.front_desk.user)
    sneaky = booking_data(world, other, at(day, 10), room=world.room2, key="fd", overbook="on", override_reason="Hm")
    assert client.post(reverse("appointment_book"), sneaky).status_code == 409
    login(client, world.owner.user)
    page = text(client.get(reverse("appointment_book")))
    assert "Overbook deliberately" in page
    no_reason = booking_data(world, other, at(day, 10), room=world.room2, key="o1", overbook="on")
    response = client.post(reverse("appointment_book"), no_reason)
    assert response.status_code == 200 and "Reason for overbooking: say why" in text(response)
    with_reason = {**no_reason, "key": "o2", "override_reason": "Emergency slot agreed with Theo"}
    response = client.post(reverse("appointment_book"), with_reason)
    assert response.status_code == 302
    overbooked = Appointment.objects.get(client=other)
    assert overbooked.override and overbooked.override_reason == "Emergency slot agreed with Theo"
    assert AuditEvent.objects.filter(action="overbook_appointment").exists()
    assert "Overbooked" in text(client.get(reverse("calendar") + f"?date={day.isoformat()}"))


# --- moving and cancelling --------------------------------------------------------------------------------------------


def test_moving_into_a_taken_slot_is_refused(client, world, other):
    day = future_day(7)
    mine = book(world, world.cora, at(day, 10))
    book(world, other, at(day, 14))
    login(client, world.front_desk.user)
    data = {"day": day.isoformat(), "time": "14:00", "therapist": world.therapist.pk, "room": world.room1.pk}
    response = client.post(reverse("appointment_move", args=[mine.pk]), data)
    assert response.status_code == 409
    page = text(response)
    assert "This time is not free, so nothing was moved" in page
    assert "Theo Therapist is already booked 14:00-15:00" in page and 'value="14:00"' in page
    mine.refresh_from_db()
    assert mine.starts_at == at(day, 10)


def test_moving_to_a_free_time(client, world):
    day = future_day(7)
    mine = book(world, world.cora, at(day, 10))
    login(client, world.therapist.user)
    page = client.get(reverse("appointment_move", args=[mine.pk])).content.decode()
    assert "Free times for Remedial massage" in page and "/move/?" in page
    data = {"day": day.isoformat(), "time": "15:00", "therapist": world.therapist2.pk, "room": world.room2.pk}
    response = client.post(reverse("appointment_move", args=[mine.pk]), data)
    assert response.status_code == 302
    mine.refresh_from_db()
    assert mine.starts_at == at(day, 15) and mine.therapist == world.therapist2 and mine.room == world.room2
    assert "Moved to" in text(client.get(response["Location"]))


def test_cancelling_with_a_reason_and_the_late_window(client, world):
    day = future_day(7)
    appointment = book(world, world.cora, at(day, 10))
    login(client, world.front_desk.user)
    response = client.post(reverse("appointment_cancel", args=[appointment.pk]), {"reason": ""})
    assert response.status_code == 200 and "Reason for cancelling: this is required." in text(response)
    # Inside the window (make the window longer than a week), staff must give a late reason.
    world.clinic.cancellation_hours = 24 * 10
    world.clinic.save()
    page = text(client.get(reverse("appointment_cancel", args=[appointment.pk])))
    assert "Reason for the late cancellation" in page
    response = client.post(reverse("appointment_cancel", args=[appointment.pk]), {"reason": "Client ill"})
    assert "give a reason" in text(response)
    assert Appointment.objects.get(pk=appointment.pk).status == "booked"
    response = client.post(
        reverse("appointment_cancel", args=[appointment.pk]), {"reason": "Client ill", "late_reason": "Phoned at 8"}
    )
    assert response.status_code == 302
    appointment.refresh_from_db()
    assert appointment.status == "late_cancelled" and appointment.cancel_reason == "Client ill"
    assert appointment.late_change_reason == "Phoned at 8"
    again = client.post(reverse("appointment_cancel", args=[appointment.pk]), {"reason": "again"})
    assert again.status_code == 302 and "already cancelled" in text(client.get(again["Location"]))


# --- a whole course ---------------------------------------------------------------------------------------------------


def propose(client, world, course, start):
    url = reverse("course_booking", args=[course.pk]) + (
        f"?service={world.massage.pk}&start={start.isoformat()}&sessions={course.sessions_planned}"
    )
    page = client.get(url).content.decode()
    sessions = re.findall(r'name="session" value="([^"]+)"', page)
    key = re.search(r'name="submission_key" value="([^"]+)"', page).group(1)
    return page, {"service": world.massage.pk, "session": sessions, "submission_key": key}


def test_course_booking_books_every_session(client, world):
    course = courses.start_course(world.cora, staff=world.therapist)
    login(client, world.front_desk.user)
    start = future_day(2)
    page, data = propose(client, world, course, start)
    assert "Book all 4 sessions" in page and len(data["session"]) == course.sessions_planned == 4
    response = client.post(reverse("course_booking", args=[course.pk]), data)
    assert response.status_code == 302
    made = list(Appointment.objects.filter(course=course).order_by("starts_at"))
    assert len(made) == 4 and all(a.therapist == world.therapist and a.status == "booked" for a in made)
    assert all((b.starts_at - a.starts_at).days >= 5 for a, b in itertools.pairwise(made))
    after = text(client.get(response["Location"]))
    assert "All 4 sessions are booked" in after and "4 booked, 0 still to book" in after
    # The same form sent again books nothing more.
    again = client.post(reverse("course_booking", args=[course.pk]), data)
    assert again.status_code == 302 and "already booked" in text(client.get(again["Location"]))
    assert Appointment.objects.filter(course=course).count() == 4


def test_course_booking_is_all_or_nothing(client, world, other):
    course = courses.start_course(world.cora, staff=world.therapist)
    login(client, world.therapist.user)
    _, data = propose(client, world, course, future_day(2))
    # Someone takes the third proposed time meanwhile.
    third = sorted(data["session"])[2].split("|")
    from datetime import datetime

    taken = datetime.fromtimestamp(int(third[0]), tz=UTC)
    book(world, other, taken, therapist=world.therapist, room=world.room2)
    response = client.post(reverse("course_booking", args=[course.pk]), data)
    assert response.status_code == 409
    page = text(response)
    assert "Session 3" in page and "Theo Therapist is already booked" in page and "none of the sessions" in page
    assert not Appointment.objects.filter(course=course).exists()


def test_course_booking_stops_while_the_screening_blocks(client, world):
    course = courses.start_course(world.cora, staff=world.therapist)
    world.screen_client(world.cora, "fever")
    login(client, world.front_desk.user)
    page = text(client.get(reverse("course_booking", args=[course.pk]) + f"?service={world.massage.pk}"))
    assert "No sessions can be booked" in page and "Propose times" not in page
    assert DECISION_TEXT["postpone"] not in page
