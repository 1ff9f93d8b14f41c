"""The client's page shows their appointments (next and past, with statuses) and the buttons that book for them,
to the front desk as to the clinicians; the front desk still reads nothing clinical there."""

from __future__ import annotations

import html as html_lib
from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from sched_helpers import at, future_day

from backcare.clinic.services import courses
from backcare.clinical.vocabulary import DECISION_TEXT
from backcare.scheduling.models import Appointment
from backcare.scheduling.services import booking
from clinic_fixtures import login


def text(response):
    return html_lib.unescape(response.content.decode())


def book(world, client, start):
    return booking.book_appointment(
        client, world.massage, start, therapist=world.therapist, room=world.room1, by=world.front_desk.user
    )


def past(world, client, days_ago, status):
    """An appointment in the past, written as the day left it."""
    start = timezone.now() - timedelta(days=days_ago)
    return Appointment.objects.create(
        clinic=world.clinic,
        client=client,
        therapist=world.therapist,
        room=world.room1,
        service=world.massage,
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        busy_from=start,
        busy_until=start + timedelta(hours=1),
        status=status,
    )


def test_front_desk_sees_next_and_past_appointments_with_statuses(client, world):
    coming = book(world, world.cora, at(future_day(5), 10))
    past(world, world.cora, 7, Appointment.Status.COMPLETED)
    past(world, world.cora, 14, Appointment.Status.NO_SHOW)
    login(client, world.front_desk.user)
    page = text(client.get(reverse("client_detail", args=[world.cora.pk])))
    upcoming, earlier = page.split("<h3>Coming up</h3>", 1)[1].split("<h3>Past</h3>", 1)
    assert reverse("appointment_detail", args=[coming.pk]) in upcoming and "Booked" in upcoming
    assert "Completed" in earlier and "Did not come" in earlier
    assert earlier.index("Completed") < earlier.index("Did not come")  # newest first


def test_the_buttons_open_booking_with_the_client_chosen(client, world):
    login(client, world.front_desk.user)
    page = text(client.get(reverse("client_detail", args=[world.cora.pk])))
    assert f"{reverse('appointment_book')}?client={world.cora.pk}" in page
    assert f"{reverse('slot_search')}?client={world.cora.pk}" in page
    assert f"{reverse('staff_waitlist_add')}?client={world.cora.pk}" in page
    assert "No course to book yet" in page
    booking_page = text(client.get(reverse("appointment_book"), {"client": world.cora.pk}))
    assert "Client: Cora Client" in booking_page


def test_an_active_course_can_be_booked_from_the_page(client, world):
    course = courses.start_course(world.cora, staff=world.therapist)
    login(client, world.front_desk.user)
    page = text(client.get(reverse("client_detail", args=[world.cora.pk])))
    assert reverse("course_booking", args=[course.pk]) in page
    assert client.get(reverse("course_booking", args=[course.pk])).status_code == 200


def test_front_desk_reads_no_clinical_decision(client, world):
    blocked = world.client("Bea")
    world.screen_client(blocked, "fever")
    login(client, world.front_desk.user)
    page = text(client.get(reverse("client_detail", args=[blocked.pk])))
    assert "cannot be booked for treatment at the moment because of their health screening" in page
    assert not any(str(label) in page for label in DECISION_TEXT.values())
    assert "Intake" not in page and "Referrals" not in page


def test_the_therapist_sees_the_appointments_too(client, world):
    book(world, world.cora, at(future_day(5), 10))
    login(client, world.therapist.user)
    page = text(client.get(reverse("client_detail", args=[world.cora.pk])))
    assert "<h3>Coming up</h3>" in page and "Remedial massage with" in page


def test_the_page_reads_a_bounded_number_of_queries(client, world):
    login(client, world.front_desk.user)
    url = reverse("client_detail", args=[world.cora.pk])
    past(world, world.cora, 3, Appointment.Status.COMPLETED)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for days in range(4, 40):
        past(world, world.cora, days, Appointment.Status.COMPLETED)
    with CaptureQueriesContext(connection) as more:
        page = text(client.get(url))
    assert len(more) == len(few)
    assert "Only the latest ones are shown." in page
