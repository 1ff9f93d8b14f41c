"""The clinic set-up pages through the Django test client: rooms (add, rename, close, reopen), services (add, edit,
deactivate), a therapist's weekly hours (a grid with several blocks a day) and absences; who may do what; bad input
answered beside its field with everything typed kept; and the booked appointments a change leaves out of place,
listed with links rather than silently broken."""

from __future__ import annotations

import html as html_lib
from datetime import time, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from sched_helpers import at, future_day

from backcare.clinic.models import AuditEvent
from backcare.scheduling.models import Absence, Appointment, Room, Service, WorkingHours
from backcare.scheduling.services import availability, booking, resources
from clinic_fixtures import login
from matrix_support import error_names_field, parse_html


def text(response):
    return html_lib.unescape(response.content.decode())


def book(world, start, *, room=None, therapist=None, client=None):
    return booking.book_appointment(
        client or world.cora,
        world.massage,
        start,
        therapist=therapist or world.therapist,
        room=room or world.room1,
        by=world.front_desk.user,
    )


def beside(response, name):
    """A message about field `name` is shown next to it (or names it)."""
    return error_names_field(parse_html(response.content.decode()), name)


def value_of(response, name):
    """The value the page puts back into input `name`."""
    [node] = [n for n in parse_html(response.content.decode()).walk() if n.attrs.get("name") == name]
    return node.attrs.get("value", "")


def users(world):
    return {
        "owner": world.owner.user,
        "therapist": world.therapist.user,
        "therapist2": world.therapist2.user,
        "front_desk": world.front_desk.user,
        "client": world.cora.user,
    }


# --- who may see and do what ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "overview", "rooms_services", "theos_hours"),
    [
        ("owner", 200, 200, 200),
        ("therapist", 200, 403, 200),
        ("therapist2", 200, 403, 403),
        ("front_desk", 200, 403, 200),
        ("client", 403, 403, 403),
    ],
)
def test_each_role_reaches_what_it_may(client, world, role, overview, rooms_services, theos_hours):
    login(client, users(world)[role])
    assert client.get(reverse("setup")).status_code == overview
    for url in (
        reverse("setup_room_add"),
        reverse("setup_room", args=[world.room1.pk]),
        reverse("setup_service_add"),
        reverse("setup_service", args=[world.massage.pk]),
    ):
        assert client.get(url).status_code == rooms_services, url
        posted = client.post(url, {"name": "Changed", "duration_minutes": "30"}).status_code
        assert posted in ((200, 302) if rooms_services == 200 else (rooms_services,)), url
    for name in ("setup_hours", "setup_absences"):
        assert client.get(reverse(name, args=[world.therapist.pk])).status_code == theos_hours, name
    if rooms_services != 200:
        assert sorted(Room.objects.values_list("name", flat=True)) == ["Room 1", "Room 2"]
        assert not Service.objects.filter(name="Changed").exists()


def test_anonymous_is_sent_to_login(client, world):
    for url in (reverse("setup"), reverse("setup_room_add"), reverse("setup_hours", args=[world.therapist.pk])):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_overview_shows_the_set_up_and_edit_links_only_to_those_who_may(client, world):
    login(client, world.front_desk.user)
    page = text(client.get(reverse("setup")))
    assert "Room 1" in page and "Remedial massage" in page and "First assessment" in page
    assert "5 / 10 min" in page and "Remedial" in page and "09:00-17:00" in page
    assert reverse("setup_room_add") not in page and reverse("setup_room", args=[world.room1.pk]) not in page
    assert reverse("setup_hours", args=[world.therapist.pk]) in page  # the front desk keeps the hours
    login(client, world.therapist.user)
    page = client.get(reverse("setup")).content.decode()
    assert reverse("setup_hours", args=[world.therapist.pk]) in page
    assert reverse("setup_hours", args=[world.therapist2.pk]) not in page
    login(client, world.owner.user)
    page = client.get(reverse("setup")).content.decode()
    for url in (
        reverse("setup_room_add"),
        reverse("setup_room", args=[world.room1.pk]),
        reverse("setup_service", args=[world.massage.pk]),
        reverse("setup_hours", args=[world.therapist2.pk]),
        reverse("setup_absences", args=[world.therapist2.pk]),
    ):
        assert url in page


def test_hours_of_someone_who_is_not_a_therapist_are_not_found(client, world):
    login(client, world.owner.user)
    assert client.get(reverse("setup_hours", args=[world.front_desk.pk])).status_code == 404
    assert client.get(reverse("setup_absences", args=[999999])).status_code == 404


def test_the_navigation_links_to_the_set_up_and_the_waitlist(client, world):
    login(client, world.front_desk.user)
    page = client.get(reverse("calendar")).content.decode()
    assert f'href="{reverse("setup")}"' in page and f'href="{reverse("staff_waitlist")}"' in page
    login(client, world.cora.user)
    page = client.get(reverse("portal_appointments")).content.decode()
    assert f'href="{reverse("setup")}"' not in page and f'href="{reverse("staff_waitlist")}"' not in page


# --- rooms ----------------------------------------------------------------------------------------------------------


def test_owner_adds_a_room_and_it_can_be_booked(client, world):
    login(client, world.owner.user)
    response = client.post(reverse("setup_room_add"), {"name": "  Garden room "})
    assert response.status_code == 302
    room = Room.objects.get(name="Garden room")
    assert room.active and room.clinic == world.clinic
    assert AuditEvent.objects.filter(action="create_room", object_id=str(room.pk)).exists()
    day = future_day(7)
    book(world, at(day, 10), room=world.room1)
    book(world, at(day, 10), room=world.room2, therapist=world.therapist2, client=world.client())
    slots = availability.find_slots(world.massage, day, day, therapist=world.therapist)
    assert any(s.room.pk == room.pk for s in slots)
    assert "Garden room" in text(client.get(reverse("setup")))


def test_room_name_problems_are_named_and_the_typed_name_kept(client, world):
    login(client, world.owner.user)
    empty = client.post(reverse("setup_room_add"), {"name": ""})
    assert empty.status_code == 200 and beside(empty, "name")
    assert "Name: this is required." in text(empty)
    taken = client.post(reverse("setup_room_add"), {"name": "Room 1"})
    assert taken.status_code == 200 and beside(taken, "name")
    assert "There is already a room called Room 1." in text(taken) and value_of(taken, "name") == "Room 1"
    too_long = client.post(reverse("setup_room_add"), {"name": "R" * 101})
    assert "Name: use at most 100 characters." in text(too_long) and value_of(too_long, "name") == "R" * 101
    assert Room.objects.count() == 2


def test_the_same_room_form_sent_twice_makes_one_room(client, world):
    login(client, world.owner.user)
    first = client.post(reverse("setup_room_add"), {"name": "Room 3"})
    second = client.post(reverse("setup_room_add"), {"name": "Room 3"})
    assert first.status_code == 302 and second.status_code == 200
    assert Room.objects.filter(name="Room 3").count() == 1


def test_owner_renames_a_room(client, world):
    login(client, world.owner.user)
    url = reverse("setup_room", args=[world.room1.pk])
    clash = client.post(url, {"name": "Room 2"})
    assert clash.status_code == 200 and "There is already a room called Room 2." in text(clash)
    assert value_of(clash, "name") == "Room 2"
    response = client.post(url, {"name": "Treatment room A"})
    assert response.status_code == 302
    world.room1.refresh_from_db()
    assert world.room1.name == "Treatment room A"
    event = AuditEvent.objects.get(action="update_room")
    assert event.detail["before"]["name"] == "Room 1" and event.detail["after"]["name"] == "Treatment room A"


def test_closing_a_room_lists_its_booked_appointments_and_books_nothing_new_there(client, world):
    day = future_day(7)
    kept = book(world, at(day, 10), room=world.room1)
    login(client, world.owner.user)
    url = reverse("setup_room", args=[world.room1.pk])
    response = client.post(url, {"action": "close"}, follow=True)
    page = text(response)
    assert "“Room 1” is closed" in page and "1 appointment is still booked in it" in page
    assert "1 appointment still to come in this closed room" in page
    assert reverse("appointment_detail", args=[kept.pk]) in page and reverse("appointment_move", args=[kept.pk]) in page
    assert "Cora Client" in page
    world.room1.refresh_from_db()
    kept.refresh_from_db()
    assert not world.room1.active and kept.status == "booked"  # still booked: listed, never silently dropped
    assert AuditEvent.objects.get(action="close_room").detail["clashes"] == [kept.pk]
    slots = availability.find_slots(world.massage, day, day + timedelta(days=1))
    assert slots and all(s.room.pk == world.room2.pk for s in slots)
    assert "Closed" in text(client.get(reverse("setup")))
    # Moving the appointment to the open room empties the list.
    booking.reschedule_appointment(kept, kept.starts_at, by=world.front_desk.user, room=world.room2)
    assert "still to come in this closed room" not in text(client.get(url))
    reopened = text(client.post(url, {"action": "reopen"}, follow=True))
    assert "“Room 1” is open again" in reopened
    world.room1.refresh_from_db()
    assert world.room1.active and AuditEvent.objects.filter(action="reopen_room").exists()


# --- services -------------------------------------------------------------------------------------------------------


def service_data(world, **changes):
    data = {
        "name": "Deep tissue",
        "duration_minutes": "50",
        "turnover_before_minutes": "5",
        "turnover_after_minutes": "10",
        "techniques": ["remedial"],
        "rooms": [str(world.room2.pk)],
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_owner_adds_a_service_with_turnover_techniques_and_rooms(client, world):
    login(client, world.owner.user)
    response = client.post(reverse("setup_service_add"), service_data(world, assessment="on"))
    assert response.status_code == 302
    service = Service.objects.get(name="Deep tissue")
    assert (service.duration_minutes, service.turnover_before_minutes, service.turnover_after_minutes) == (50, 5, 10)
    assert service.techniques == ["remedial"] and list(service.rooms.all()) == [world.room2]
    assert service.assessment and service.active
    assert AuditEvent.objects.get(action="create_service", object_id=str(service.pk)).detail["duration"] == 50
    day = future_day(7)
    slots = availability.find_slots(service, day, day)
    assert slots and {s.room.pk for s in slots} == {world.room2.pk}


@pytest.mark.parametrize(
    ("field", "typed", "message"),
    [
        ("duration_minutes", "481", "The length must be between 5 and 480 minutes."),
        ("duration_minutes", "4", "The length must be between 5 and 480 minutes."),
        ("duration_minutes", "abc", "Length (minutes): enter a whole number."),
        ("turnover_before_minutes", "121", "Turnover before must be between 0 and 120 minutes."),
        ("turnover_after_minutes", "-1", "Turnover after must be between 0 and 120 minutes."),
        ("name", "   ", "Name: this is required."),
    ],
)
def test_service_limits_are_named_beside_the_field_and_what_was_typed_is_kept(client, world, field, typed, message):
    """The limits are the service layer's (an appointment's busy time never exceeds 12 hours, which the availability
    search relies on); the page shows its message beside the field."""
    login(client, world.owner.user)
    response = client.post(reverse("setup_service_add"), service_data(world, **{field: typed}))
    assert response.status_code == 200
    page = text(response)
    assert message in page and beside(response, field)
    assert "nothing was saved yet" in page
    if field != "name":
        assert value_of(response, field) == typed
        assert value_of(response, "name") == "Deep tissue"
    assert not Service.objects.filter(name="Deep tissue").exists()


def test_unknown_technique_or_another_clinics_room_is_refused(client, world):
    from backcare.clinic.models import Clinic

    elsewhere = Room.objects.create(clinic=Clinic.objects.create(name="Elsewhere"), name="Far room")
    login(client, world.owner.user)
    response = client.post(
        reverse("setup_service_add"), service_data(world, techniques=["telekinesis"], rooms=[str(elsewhere.pk)])
    )
    assert response.status_code == 200 and beside(response, "techniques") and beside(response, "rooms")
    assert not Service.objects.filter(name="Deep tissue").exists()


def test_owner_edits_a_service_and_sees_bookings_that_no_longer_fit(client, world):
    day = future_day(7)
    kept = book(world, at(day, 10), room=world.room1)
    login(client, world.owner.user)
    url = reverse("setup_service", args=[world.massage.pk])
    form = client.get(url)
    assert value_of(form, "name") == "Remedial massage" and value_of(form, "duration_minutes") == "60"
    data = service_data(world, name="Remedial massage (long)", duration_minutes="90", active="on")
    response = client.post(url, data, follow=True)
    page = text(response)
    assert "“Remedial massage (long)” is saved." in page
    assert "1 appointment still to come in a room or with a therapist that no longer suits this service" in page
    assert reverse("appointment_move", args=[kept.pk]) in page
    world.massage.refresh_from_db()
    assert world.massage.duration_minutes == 90 and list(world.massage.rooms.all()) == [world.room2]
    kept.refresh_from_db()
    assert kept.status == "booked" and kept.ends_at - kept.starts_at == timedelta(minutes=60)  # keeps its time
    event = AuditEvent.objects.get(action="update_service")
    assert event.detail["before"]["duration"] == 60 and event.detail["after"]["duration"] == 90
    assert event.detail["clashes"] == [kept.pk]


def test_deactivating_a_service_stops_new_bookings_and_keeps_booked_ones(client, world):
    day = future_day(7)
    kept = book(world, at(day, 10))
    login(client, world.owner.user)
    url = reverse("setup_service", args=[world.massage.pk])
    data = service_data(world, name="Remedial massage", duration_minutes="60", rooms=None)  # "active" left unticked
    page = text(client.post(url, data, follow=True))
    assert "is saved and is no longer offered for booking" in page
    world.massage.refresh_from_db()
    assert not world.massage.active
    assert AuditEvent.objects.filter(action="deactivate_service").exists()
    kept.refresh_from_db()
    assert kept.status == "booked"
    assert "Not bookable" in text(client.get(reverse("setup")))
    assert "Remedial massage" not in text(client.get(reverse("slot_search")))
    with pytest.raises(ValidationError, match="Choose one of the clinic's services"):
        book(world, at(day, 14), client=world.client())


# --- weekly hours ---------------------------------------------------------------------------------------------------


def hours_post(rows=3, **blocks):
    """Form data for the grid: blocks as d{weekday}_{row}_{start|end}="HH:MM"."""
    return {"rows": str(rows), **blocks}


def test_hours_grid_shows_the_current_blocks(client, world):
    resources.set_working_hours(
        world.therapist,
        {0: [(time(9), time(12, 30)), (time(13, 30), time(17))], 2: [(time(8), time(12))]},
        by=world.owner.user,
    )
    login(client, world.therapist.user)
    response = client.get(reverse("setup_hours", args=[world.therapist.pk]))
    assert response.status_code == 200
    assert value_of(response, "d0_0_start") == "09:00" and value_of(response, "d0_0_end") == "12:30"
    assert value_of(response, "d0_1_start") == "13:30" and value_of(response, "d0_1_end") == "17:00"
    assert value_of(response, "d0_2_start") == ""  # a spare block
    assert value_of(response, "d2_0_start") == "08:00" and value_of(response, "d1_0_start") == ""


def test_owner_saves_several_blocks_a_day(client, world):
    login(client, world.owner.user)
    url = reverse("setup_hours", args=[world.therapist.pk])
    data = hours_post(
        d0_0_start="09:00", d0_0_end="12:30", d0_1_start="13:30", d0_1_end="17:00", d4_0_start="10:00", d4_0_end="14:00"
    )
    response = client.post(url, data, follow=True)
    assert "Theo Therapist's weekly hours are saved." in text(response)
    blocks = [(b.weekday, b.starts, b.ends) for b in WorkingHours.objects.filter(therapist=world.therapist)]
    assert blocks == [(0, time(9), time(12, 30)), (0, time(13, 30), time(17)), (4, time(10), time(14))]
    event = AuditEvent.objects.filter(action="set_working_hours").latest("pk")
    assert event.detail["after"] == ["Monday 09:00-12:30", "Monday 13:30-17:00", "Friday 10:00-14:00"]
    monday = future_day(7, weekday=0)
    starts = {s.starts_at for s in availability.find_slots(world.massage, monday, monday, therapist=world.therapist)}
    assert at(monday, 11, 30) in starts and at(monday, 12, 0) not in starts and at(monday, 13, 30) in starts


@pytest.mark.parametrize(
    ("blocks", "where", "message"),
    [
        ({"d0_0_start": "12:00", "d0_0_end": "11:00"}, None, "Monday: each block must end after it starts."),
        (
            {"d1_0_start": "09:00", "d1_0_end": "13:00", "d1_1_start": "12:00", "d1_1_end": "17:00"},
            None,
            "Tuesday: the blocks overlap.",
        ),
        ({"d2_1_start": "09:00"}, "d2_1_end", "Wednesday, block 2: give the end time too, or clear the start."),
        ({"d3_0_end": "17:00"}, "d3_0_start", "Thursday, block 1: give the start time too, or clear the end."),
        (
            {"d4_0_start": "25:99", "d4_0_end": "17:00"},
            "d4_0_start",
            "Friday, block 1 starts: enter a time as hours:minutes, for example 09:30.",
        ),
    ],
)
def test_bad_hours_are_named_and_nothing_is_saved_and_typed_times_are_kept(client, world, blocks, where, message):
    login(client, world.owner.user)
    url = reverse("setup_hours", args=[world.therapist.pk])
    before = list(WorkingHours.objects.filter(therapist=world.therapist).values_list("weekday", "starts", "ends"))
    data = hours_post(d6_0_start="10:00", d6_0_end="16:00", **blocks)
    response = client.post(url, data)
    assert response.status_code == 200
    page = text(response)
    assert message in page and "Nothing was saved" in page
    if where:
        assert beside(response, where)
    else:  # a whole day's message sits in that day's row
        day = message.split(":")[0]
        row = page.split(f'<th scope="row">{day}', 1)[1].split("</tr>", 1)[0]
        assert message in row and 'role="alert"' in row
    for name, typed in data.items():
        if name != "rows":
            assert value_of(response, name) == typed, name
    after = list(WorkingHours.objects.filter(therapist=world.therapist).values_list("weekday", "starts", "ends"))
    assert after == before


def test_an_incomplete_hours_form_changes_nothing(client, world):
    login(client, world.owner.user)
    response = client.post(reverse("setup_hours", args=[world.therapist.pk]), {})
    assert response.status_code == 200 and "The form was incomplete" in text(response)
    assert WorkingHours.objects.filter(therapist=world.therapist).count() == 7


def test_new_hours_list_the_appointments_left_outside_them(client, world):
    monday = future_day(7, weekday=0)
    outside = book(world, at(monday, 15))
    inside = book(world, at(monday, 10), client=world.client())
    login(client, world.front_desk.user)
    url = reverse("setup_hours", args=[world.therapist.pk])
    response = client.post(url, hours_post(d0_0_start="09:00", d0_0_end="13:00"), follow=True)
    page = text(response)
    assert "1 appointment is still booked outside these hours" in page
    assert "1 appointment still to come outside these hours" in page
    assert reverse("appointment_detail", args=[outside.pk]) in page
    assert reverse("appointment_move", args=[outside.pk]) in page
    assert reverse("appointment_detail", args=[inside.pk]) not in page
    outside.refresh_from_db()
    assert outside.status == "booked"
    event = AuditEvent.objects.filter(action="set_working_hours").latest("pk")
    assert event.detail["outside_hours"] == [outside.pk]
    assert resources.hours_clashes(world.therapist) == [outside]
    # Cancelled, it is no longer listed.
    booking.cancel_appointment(outside, by=world.front_desk.user, reason="moved by phone")
    assert "outside these hours" not in text(client.get(url))


def test_therapist_keeps_their_own_hours_but_not_anothers(client, world):
    login(client, world.therapist.user)
    own = client.post(
        reverse("setup_hours", args=[world.therapist.pk]), hours_post(d0_0_start="08:00", d0_0_end="12:00")
    )
    assert own.status_code == 302
    assert list(WorkingHours.objects.filter(therapist=world.therapist).values_list("starts", flat=True)) == [time(8)]
    before = WorkingHours.objects.filter(therapist=world.therapist2).count()
    other = reverse("setup_hours", args=[world.therapist2.pk])
    assert client.get(other).status_code == 403
    assert client.post(other, hours_post(d0_0_start="08:00", d0_0_end="09:00")).status_code == 403
    assert WorkingHours.objects.filter(therapist=world.therapist2).count() == before == 7


# --- absences -------------------------------------------------------------------------------------------------------


def test_absence_is_recorded_listed_with_its_clashes_and_removed(client, world):
    day = future_day(10)
    clash = book(world, at(day, 10))
    login(client, world.therapist.user)
    url = reverse("setup_absences", args=[world.therapist.pk])
    data = {"first_day": day.isoformat(), "last_day": (day + timedelta(days=1)).isoformat(), "kind": "sick"}
    page = text(client.post(url, {**data, "note": "Back next week"}, follow=True))
    assert "Sick recorded for Theo Therapist" in page and "1 appointment is still booked on those days" in page
    assert "1 appointment still to come during this absence" in page and "Back next week" in page
    assert reverse("appointment_move", args=[clash.pk]) in page
    absence = Absence.objects.get(therapist=world.therapist)
    assert absence.kind == "sick" and absence.note == "Back next week"
    assert AuditEvent.objects.get(action="add_absence").detail["clashes"] == [clash.pk]
    assert not availability.find_slots(world.massage, day, day, therapist=world.therapist)
    clash.refresh_from_db()
    assert clash.status == "booked"
    # Another therapist cannot remove it; the owner's front desk and Theo can.
    login(client, world.therapist2.user)
    assert client.post(reverse("setup_absence_remove", args=[absence.pk])).status_code == 403
    assert client.get(reverse("setup_absence_remove", args=[absence.pk])).status_code == 405
    assert Absence.objects.filter(pk=absence.pk).exists()
    login(client, world.front_desk.user)
    response = client.post(reverse("setup_absence_remove", args=[absence.pk]), follow=True)
    assert "The absence is removed" in text(response)
    assert not Absence.objects.filter(pk=absence.pk).exists()
    assert AuditEvent.objects.filter(action="remove_absence").exists()
    assert availability.find_slots(world.massage, day, day, therapist=world.therapist)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"last_day": "FIRST-1"}, "last_day", "The last day must be on or after the first."),
        ({"first_day": "31/02/2030"}, "first_day", "First day: enter a real date, for example 2025-03-14."),
        ({"last_day": "soon"}, "last_day", "Last day: enter a real date, for example 2025-03-14."),
        ({"kind": "party"}, "kind", "Kind: choose one of the options in the list."),
        ({"note": "n" * 201}, "note", "Note (optional): use at most 200 characters."),
        ({"first_day": "2001-01-01", "last_day": "2001-01-02"}, "first_day", "The first day is more than a year ago."),
        ({"last_day": "9999-12-31"}, "last_day", "Record at most 366 days at a time."),
    ],
)
def test_bad_absences_are_named_beside_the_field_and_typed_values_kept(client, world, changes, field, message):
    day = future_day(10)
    data = {"first_day": day.isoformat(), "last_day": day.isoformat(), "kind": "holiday", "note": "Training"}
    data.update({k: (day - timedelta(days=1)).isoformat() if v == "FIRST-1" else v for k, v in changes.items()})
    login(client, world.owner.user)
    response = client.post(reverse("setup_absences", args=[world.therapist.pk]), data)
    assert response.status_code == 200
    assert message in text(response) and beside(response, field)
    for name in ("first_day", "last_day", "note"):
        assert value_of(response, name) == data[name]
    assert not Absence.objects.exists()


def test_appointments_by_day_are_unchanged_by_viewing_the_pages(client, world):
    """Opening every set-up page writes nothing (no audit event, no appointment change)."""
    book(world, at(future_day(7), 10))
    before = (AuditEvent.objects.count(), list(Appointment.objects.values_list("status", "starts_at")))
    login(client, world.owner.user)
    for url in (
        reverse("setup"),
        reverse("setup_room", args=[world.room1.pk]),
        reverse("setup_service", args=[world.massage.pk]),
        reverse("setup_hours", args=[world.therapist.pk]),
        reverse("setup_absences", args=[world.therapist.pk]),
    ):
        assert client.get(url).status_code == 200
    assert (AuditEvent.objects.count(), list(Appointment.objects.values_list("status", "starts_at"))) == before
