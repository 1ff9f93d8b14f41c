"""Booking a course's proposal as sent back (`booking.book_course_proposal`, behind the thin `course_booking` view):
a damaged proposal is named and books nothing, a therapist who left meanwhile refuses the whole proposal, and the
service books it all or nothing without the page."""

from __future__ import annotations

import html as html_lib
import re

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from sched_helpers import at, future_day

from backcare.clinic.services import courses
from backcare.scheduling.models import Appointment
from backcare.scheduling.services import booking
from clinic_fixtures import login


def propose(client, world, course, start):
    url = reverse("course_booking", args=[course.pk]) + (
        f"?service={world.massage.pk}&start={start.isoformat()}&sessions={course.sessions_planned}"
    )
    page = client.get(url).content.decode()
    sessions = re.findall(r'name="session" value="([^"]+)"', page)
    key = re.search(r'name="submission_key" value="([^"]+)"', page).group(1)
    return {"service": world.massage.pk, "session": sessions, "submission_key": key}


def text(response):
    return html_lib.unescape(response.content.decode())


def test_a_damaged_proposal_is_named_and_books_nothing(client, world):
    course = courses.start_course(world.cora, staff=world.therapist)
    login(client, world.front_desk.user)
    data = propose(client, world, course, future_day(2))
    data["session"] = [*data["session"][:-1], "not|a|slot"]
    page = text(client.post(reverse("course_booking", args=[course.pk]), data))
    assert "Sessions: the proposal was damaged; please make a new proposal." in page
    assert not Appointment.objects.filter(course=course).exists()


def test_a_therapist_who_left_refuses_the_whole_proposal(client, world):
    course = courses.start_course(world.cora, staff=world.therapist)
    login(client, world.front_desk.user)
    data = propose(client, world, course, future_day(2))
    world.therapist.active = False
    world.therapist.save()
    page = text(client.post(reverse("course_booking", args=[course.pk]), data))
    assert "a therapist or room of the proposal is no longer available" in page
    assert not Appointment.objects.filter(course=course).exists()


def test_the_service_books_a_proposal_all_or_nothing(world):
    course = courses.start_course(world.cora, staff=world.therapist)
    first, second = at(future_day(3), 10), at(future_day(10), 10)
    sessions = [(first, world.therapist.pk, world.room1.pk), (second, world.therapist.pk, 999_999)]
    with pytest.raises(ValidationError):
        booking.book_course_proposal(course, world.massage, sessions, by=world.front_desk.user)
    assert not Appointment.objects.filter(course=course).exists()
    sessions[1] = (second, world.therapist.pk, world.room1.pk)
    made = booking.book_course_proposal(course, world.massage, sessions, by=world.front_desk.user, submission_key="k")
    assert [a.starts_at for a in made] == [first, second]
    assert booking.already_booked(course, "k") and not booking.already_booked(course, "other")
    state = booking.course_booking_state(course, gate_allowed=True)
    assert len(state.booked) == 2 and state.remaining == course.sessions_planned - 2 and state.bookable
