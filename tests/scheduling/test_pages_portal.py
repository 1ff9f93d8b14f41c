"""The client's appointments in the portal: upcoming appointments, booking a free time when the screening allows it,
cancelling outside the cancellation window only, the waitlist, and accepting or declining an offered time."""

from __future__ import annotations

import html as html_lib
import re

import pytest
from django.urls import reverse
from sched_helpers import at, future_day

from backcare.clinic.models import AuditEvent
from backcare.scheduling.models import Appointment, WaitlistEntry
from backcare.scheduling.services import booking, waitlist
from clinic_fixtures import login


@pytest.fixture
def other(world, make_client):
    c = make_client(world.therapist2, username="otto", first_name="Otto", last_name="Other", email="otto@x.test")
    world.screen_client(c)
    return c


def book(world, client, start, *, therapist=None, room=None, service=None):
    return booking.book_appointment(
        client,
        service or world.massage,
        start,
        therapist=therapist or world.therapist,
        room=room or world.room1,
        by=world.front_desk.user,
    )


def text(response):
    return html_lib.unescape(response.content.decode())


def search_url(world, day, *, therapist=None, service=None):
    return reverse("portal_book") + (
        f"?service={(service or world.massage).pk}&date_from={day.isoformat()}&date_to={day.isoformat()}"
        f"&therapist={therapist.pk if therapist else ''}"
    )


def confirm_links(page):
    return [html_lib.unescape(u) for u in re.findall(r'href="([^"]*/portal/appointments/book/confirm/\?[^"]*)"', page)]


def confirm_form(client, url):
    page = client.get(url).content.decode()
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page))
    return page, fields


# --- who may see what -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"),
    [("owner", 403), ("therapist", 403), ("front_desk", 403), ("client", 200), ("other_client", 200)],
)
def test_portal_pages_per_role(client, world, other, role, status):
    user = {
        "owner": world.owner.user,
        "therapist": world.therapist.user,
        "front_desk": world.front_desk.user,
        "client": world.cora.user,
        "other_client": other.user,
    }[role]
    login(client, user)
    for url in (reverse("portal_appointments"), reverse("portal_book"), reverse("portal_waitlist")):
        assert client.get(url).status_code == status, url


def test_client_sees_only_their_own_appointments(client, world, other):
    day = future_day(7)
    mine = book(world, world.cora, at(day, 10))
    theirs = book(world, other, at(day, 12), therapist=world.therapist2, room=world.room2)
    login(client, world.cora.user)
    page = text(client.get(reverse("portal_appointments")))
    assert day.strftime("%A %-d %B %Y") + " at 10:00" in page and "Remedial massage with Theo Therapist" in page
    assert "12:00" not in page and "Tara Therapist" not in page
    assert reverse("portal_cancel", args=[mine.pk]) in page
    # Another client's appointment is not found, whatever the URL.
    assert client.get(reverse("portal_cancel", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("portal_cancel", args=[theirs.pk])).status_code == 404
    assert Appointment.objects.get(pk=theirs.pk).status == "booked"


# --- booking ----------------------------------------------------------------------------------------------------------


def test_client_books_a_free_time_with_their_own_therapist(client, world):
    login(client, world.cora.user)
    form_page = client.get(reverse("portal_book")).content.decode()
    assert f'<option value="{world.therapist.pk}" selected>' in form_page  # their own therapist first
    day = future_day(7)
    page = client.get(search_url(world, day, therapist=world.therapist)).content.decode()
    links = confirm_links(page)
    assert links and 'class="slot-who">Tara' not in page and 'class="slot-who">Theo' in page
    confirm, fields = confirm_form(client, links[0])
    assert "Book this appointment" in confirm and "09:00" in confirm
    response = client.post(reverse("portal_book_confirm"), fields)
    assert response.status_code == 302 and response["Location"] == reverse("portal_appointments")
    appointment = Appointment.objects.get(client=world.cora)
    assert appointment.starts_at == at(day, 9) and appointment.therapist == world.therapist
    assert appointment.created_by == world.cora.user
    assert AuditEvent.objects.filter(action="book_appointment", client=world.cora).exists()
    assert "Your appointment is booked" in text(client.get(response["Location"]))
    # Sent twice: still one appointment.
    again = client.post(reverse("portal_book_confirm"), fields)
    assert again.status_code == 302 and Appointment.objects.filter(client=world.cora).count() == 1


def test_time_taken_meanwhile_gives_409_and_books_nothing(client, world, other):
    login(client, world.cora.user)
    day = future_day(7)
    links = confirm_links(client.get(search_url(world, day, therapist=world.therapist)).content.decode())
    _, fields = confirm_form(client, links[0])
    book(world, other, at(day, 9), therapist=world.therapist, room=world.room2)
    response = client.post(reverse("portal_book_confirm"), fields)
    assert response.status_code == 409
    assert "Sorry, this time is no longer free" in text(response)
    assert not Appointment.objects.filter(client=world.cora).exists()


def test_no_free_times_with_own_therapist_suggests_any(client, world):
    from backcare.scheduling.services import resources

    day = future_day(7)
    resources.add_absence(world.therapist, day, day, by=world.owner.user)
    login(client, world.cora.user)
    page = text(client.get(search_url(world, day, therapist=world.therapist)))
    assert "There are no free times on these days" in page and "Show times with any therapist" in page
    anyone = client.get(search_url(world, day)).content.decode()
    assert confirm_links(anyone) and 'class="slot-who">Tara Therapist' in anyone


@pytest.mark.parametrize(
    ("finding", "words"),
    [
        ("dvt_history", "the clinic needs to record that your doctor agrees massage is safe"),
        ("dvt_suspected", "please see a doctor first"),
        ("saddle_anaesthesia", "please get medical help now"),
        ("fever", "massage should wait until you are well again"),
    ],
)
def test_client_cannot_book_while_the_screening_stops_it(client, world, finding, words):
    world.screen_client(world.cora, finding)
    login(client, world.cora.user)
    for url in (reverse("portal_appointments"), reverse("portal_book"), reverse("portal_waitlist")):
        page = text(client.get(url))
        assert words in page, url
        assert "Show free times" not in page and "Join the waitlist</button>" not in page
    # Sending the booking anyway books nothing and says why.
    day = future_day(7)
    fields = {
        "service": world.massage.pk,
        "therapist": world.therapist.pk,
        "room": world.room1.pk,
        "starts": int(at(day, 10).timestamp()),
        "submission_key": "k",
    }
    response = client.post(reverse("portal_book_confirm"), fields)
    assert response.status_code == 400 and words in text(response)
    assert not Appointment.objects.exists()


def test_unscreened_client_may_book_only_a_first_assessment(client, world, make_client):
    new = make_client(world.therapist, username="nina", first_name="Nina", last_name="New", email="nina@x.test")
    login(client, new.user)
    page = text(client.get(reverse("portal_book")))
    assert "health questionnaire" in page
    assert "First assessment" in page and "Remedial massage" not in page
    day = future_day(7)
    links = confirm_links(client.get(search_url(world, day, service=world.assessment)).content.decode())
    _, fields = confirm_form(client, links[0])
    assert client.post(reverse("portal_book_confirm"), fields).status_code == 302
    assert Appointment.objects.get(client=new).service == world.assessment


# --- cancelling -------------------------------------------------------------------------------------------------------


def test_client_cancels_outside_the_window_only(client, world):
    day = future_day(7)
    appointment = book(world, world.cora, at(day, 10))
    login(client, world.cora.user)
    response = client.post(reverse("portal_cancel", args=[appointment.pk]), {"reason": "Away that week"})
    assert response.status_code == 302
    appointment.refresh_from_db()
    assert appointment.status == "cancelled" and appointment.cancel_reason == "Away that week"

    late = book(world, world.cora, at(day, 14))
    world.clinic.cancellation_hours = 24 * 10
    world.clinic.phone = "01234 567890"
    world.clinic.save()
    listing = text(client.get(reverse("portal_appointments")))
    assert (
        reverse("portal_cancel", args=[late.pk]) not in listing and "please phone the clinic on 01234 567890" in listing
    )
    page = text(client.get(reverse("portal_cancel", args=[late.pk])))
    assert "cannot be cancelled online" in page and "Cancel the appointment</button>" not in page
    response = client.post(reverse("portal_cancel", args=[late.pk]), {"reason": "Please"})
    assert response.status_code == 400
    assert Appointment.objects.get(pk=late.pk).status == "booked"


# --- waitlist and offered times ---------------------------------------------------------------------------------------


def test_joining_the_waitlist_once(client, world):
    login(client, world.cora.user)
    day = future_day(7)
    data = {
        "service": world.massage.pk,
        "therapist": world.therapist.pk,
        "earliest": day.isoformat(),
        "latest": day.isoformat(),
        "note": "Mornings",
    }
    assert client.post(reverse("portal_waitlist"), data).status_code == 302
    assert client.post(reverse("portal_waitlist"), data).status_code == 302
    entry = WaitlistEntry.objects.get(client=world.cora)
    assert entry.note == "Mornings" and entry.therapist == world.therapist
    page = text(client.get(reverse("portal_appointments")))
    assert "On the waitlist" in page and "Remedial massage with Theo Therapist" in page
    bad = {**data, "earliest": (day.replace(year=day.year + 1)).isoformat()}
    response = client.post(reverse("portal_waitlist"), bad)
    assert response.status_code == 200 and "Last day that suits you: it must be on or after the first day" in text(
        response
    )
    client.post(reverse("portal_waitlist_leave", args=[entry.pk]))
    assert WaitlistEntry.objects.get(pk=entry.pk).status == "withdrawn"


@pytest.fixture
def offered(world, other):
    """A time freed by Otto's cancellation, held for Cora from the waitlist."""
    day = future_day(7)
    freed = book(world, other, at(day, 10))
    waitlist.join_waitlist(world.cora, world.massage, day, day, by=world.cora.user)
    booking.cancel_appointment(freed, by=world.front_desk.user)
    return Appointment.objects.get(status="held", client=world.cora)


def test_accepting_an_offered_time(client, world, offered):
    login(client, world.cora.user)
    page = text(client.get(reverse("portal_appointments")))
    assert "A time offered to you" in page and "Accept this time" in page
    response = client.post(reverse("portal_offer", args=[offered.pk]), {"answer": "accept"})
    assert response.status_code == 302
    offered.refresh_from_db()
    assert offered.status == "booked"
    assert "the time is booked for you" in text(client.get(response["Location"]))
    again = client.post(reverse("portal_offer", args=[offered.pk]), {"answer": "accept"})
    assert "already accepted" in text(client.get(again["Location"]))


def test_declining_an_offered_time(client, world, offered):
    login(client, world.cora.user)
    client.post(reverse("portal_offer", args=[offered.pk]), {"answer": "decline"})
    offered.refresh_from_db()
    assert offered.status == "declined"


def test_another_client_cannot_answer_the_offer(client, world, other, offered):
    login(client, other.user)
    assert client.post(reverse("portal_offer", args=[offered.pk]), {"answer": "accept"}).status_code == 404
    assert client.get(reverse("portal_offer", args=[offered.pk])).status_code == 405
    offered.refresh_from_db()
    assert offered.status == "held"
