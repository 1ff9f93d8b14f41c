"""The "Today" page (a therapist's own day, the whole clinic's for the front desk and the owner, names only for the
front desk, what each appointment needs, in a fixed number of queries) and the session note started from an
appointment, which belongs to it and completes it."""

from __future__ import annotations

import datetime as dt
from datetime import datetime, time, timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from backcare.clinic.models import AuditEvent, TreatmentSession
from backcare.clinic.services import courses as course_service
from backcare.scheduling.models import Appointment
from backcare.scheduling.services import booking, resources
from backcare.scheduling.services.availability import clinic_zone
from backcare.scheduling.signals import appointment_status_changed
from clinic_fixtures import login

S = Appointment.Status
ALL_DAY = {d: [(time(0), time(23, 59))] for d in range(7)}


def noon_zone() -> str:
    """A zone in which it is now about midday, so that "a few minutes ago" is today whenever the suite runs."""
    hours_ahead = 12 - timezone.now().astimezone(dt.UTC).hour  # -11 to +12
    return f"Etc/GMT{-hours_ahead:+d}"  # the Etc zones' signs are inverted: Etc/GMT-3 is three hours ahead of UTC


@pytest.fixture
def day(clinic, owner, therapist, therapist2, front_desk, client_record, screen_client) -> dict[str, Any]:
    clinic.time_zone = noon_zone()
    clinic.save(update_fields=["time_zone"])
    room = resources.create_room(clinic, "Room 1", by=owner.user)
    room2 = resources.create_room(clinic, "Room 2", by=owner.user)
    massage = resources.create_service(
        clinic, by=owner.user, name="Remedial massage", duration_minutes=10, techniques=["remedial"]
    )
    for t in (therapist, therapist2):
        resources.set_working_hours(t, ALL_DAY, by=owner.user)
    screen_client(client_record)
    return {"room": room, "room2": room2, "massage": massage}


def today_at(
    therapist: Any, client: Any, day: dict[str, Any], *, minutes_from_now: int = 0, at: Any = None, room: Any = None
) -> Any:
    """An appointment booked a week ahead at the same wall-clock time, then moved to today (what the clock does
    for a booking): `minutes_from_now`, or the local time `at`."""
    zone = clinic_zone(therapist.clinic)
    if at is None:
        target = (
            (timezone.now() + timedelta(minutes=minutes_from_now)).astimezone(zone).replace(second=0, microsecond=0)
        )
    else:
        target = datetime.combine(timezone.localdate(timezone=zone), at, tzinfo=zone)
    ahead = datetime.combine(target.date() + timedelta(days=7), target.time(), tzinfo=zone)
    a = booking.book_appointment(
        client, day["massage"], ahead, therapist=therapist, room=room or day["room"], by=therapist.user
    )
    delta = target - a.starts_at
    Appointment.objects.filter(pk=a.pk).update(
        starts_at=F("starts_at") + delta,
        ends_at=F("ends_at") + delta,
        busy_from=F("busy_from") + delta,
        busy_until=F("busy_until") + delta,
    )
    a.refresh_from_db()
    return a


def test_a_therapist_sees_their_own_day_with_what_each_needs(
    client, day, therapist, therapist2, client_record, make_client, screen_client
):
    course_service.start_course(client_record, staff=therapist)
    now_on = today_at(therapist, client_record, day, minutes_from_now=-5)
    flagged = make_client(therapist, first_name="Flora", last_name="Flagged", email="flora@x.test")
    screen_client(flagged)
    ended = today_at(therapist, flagged, day, minutes_from_now=-30)
    screen_client(flagged, "dvt_history")  # since booked: a physician's clearance is needed
    other = make_client(therapist2, first_name="Otto", last_name="Other", email="otto@x.test")
    screen_client(other)
    today_at(therapist2, other, day, minutes_from_now=-5, room=day["room2"])
    login(client, therapist.user)
    page = client.get(reverse("today"))
    assert page.status_code == 200
    rows = {r.appointment.pk: r for r in page.context["rows"]}
    assert set(rows) == {now_on.pk, ended.pk}  # not Tara's
    assert [n.kind for n in rows[now_on.pk].needs] == ["health_update"]
    assert [n.kind for n in rows[ended.pk].needs] == ["clearance", "health_update", "note"]
    assert [m for m, _ in rows[now_on.pk].moves] == [S.ARRIVED, S.IN_TREATMENT, S.NO_SHOW]
    body = page.content.decode()
    assert "Otto" not in body and "Clearance needed" in body and "Note due" in body
    assert 'href="/today/"' in body  # in the nav
    zone = clinic_zone(therapist.clinic)
    assert f"{now_on.starts_at.astimezone(zone):%H:%M}" in body  # in the clinic's time, not UTC
    assert AuditEvent.objects.filter(action="view", detail__page="today's appointments").count() == 2


def test_the_front_desk_sees_the_whole_clinic_with_names_only(
    client, day, therapist, therapist2, front_desk, client_record, make_client, screen_client
):
    a = today_at(therapist, client_record, day, minutes_from_now=-5)
    screen_client(client_record, "dvt_history")
    other = make_client(therapist2, first_name="Otto", last_name="Other", email="otto@x.test")
    screen_client(other)
    b = today_at(therapist2, other, day, minutes_from_now=-40, room=day["room2"])
    login(client, front_desk.user)
    page = client.get(reverse("today"))
    rows = page.context["rows"]
    assert [r.appointment.pk for r in rows] == [b.pk, a.pk]
    assert all(not r.clinical and not r.needs for r in rows)
    assert [m for m, _ in rows[1].moves] == [S.ARRIVED, S.NO_SHOW]
    body = page.content.decode()
    for clinical in ("Needs", "Clearance needed", "Health update due", "Note due", "Start the session note"):
        assert clinical not in body
    assert "Cora Client" in body and "Otto Other" in body and "Tara Therapist" in body
    assert not AuditEvent.objects.filter(action="view", detail__page="today's appointments").exists()
    response = client.post(reverse("appointment_status", args=[a.pk]), {"status": "arrived", "back": "today"})
    assert response.status_code == 302 and response["Location"] == reverse("today")
    assert Appointment.objects.get(pk=a.pk).status == S.ARRIVED


def _queries(page_client: Any) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = page_client.get(reverse("today"))
    assert response.status_code == 200
    return len(captured)


@pytest.mark.parametrize("role", ["therapist", "front_desk"])
def test_today_reads_in_a_fixed_number_of_queries(
    client, day, role, therapist, owner, front_desk, make_client, screen_client
):
    def add(n: int, start: int) -> None:
        for i in range(n):
            c = make_client(therapist, first_name=f"Day{start + i}", last_name="Client", email=f"d{start + i}@x.test")
            screen_client(c)
            minutes = 60 + 10 * (start + i)
            a = today_at(therapist, c, day, at=time(minutes // 60, minutes % 60))
            if (start + i) % 4 == 2:
                screen_client(c, "dvt_history")  # some need a clearance, loaded for them only
            if i % 3 == 1:
                Appointment.objects.filter(pk=a.pk).update(status=S.ARRIVED)

    reader = {"therapist": therapist, "owner": owner, "front_desk": front_desk}[role]
    login(client, reader.user)
    add(3, 0)
    few = _queries(client)
    add(27, 3)
    many = _queries(client)
    assert len(client.get(reverse("today")).context["rows"]) == 30
    assert many == few, f"{few} queries for 3 appointments, {many} for 30"


def session_data(page: Any) -> dict[str, Any]:
    form = page.context["form"]
    return {
        "submission_key": form.initial["submission_key"],
        "subjective": "Sore after gardening.",
        "treated": ["lower_back"],
        "tension_lower_back": "2",
        "pain_lower_back": "4",
        "techniques": ["remedial"],
        "pressure": "3",
        "response": "relaxed",
        "pain_before": "4",
        "pain_after": "2",
        "aftercare": form.initial["aftercare"],
    }


def test_a_note_started_from_the_appointment_belongs_to_it_and_completes_it(client, day, therapist, client_record):
    course = course_service.start_course(client_record, staff=therapist)
    a = today_at(therapist, client_record, day, minutes_from_now=-5)
    sent: list[tuple[str, str]] = []

    def receiver(sender: Any, appointment: Any, old: str, new: str, **kwargs: Any) -> None:
        sent.append((old, new))

    appointment_status_changed.connect(receiver, dispatch_uid="test-today-note")
    try:
        login(client, therapist.user)
        started = client.post(reverse("appointment_start_note", args=[a.pk]), {"back": "today"})
        assert started.status_code == 302 and started["Location"] == reverse("health_update", args=[course.pk])
        assert Appointment.objects.get(pk=a.pk).status == S.IN_TREATMENT
        update = client.post(started["Location"], {"anything_new": "no", "pain_now": "4", "once": ""})
        assert update.status_code == 302, update.content.decode()[:2000]
        page = client.get(update["Location"])
        saved = client.post(update["Location"], session_data(page))
        assert saved.status_code == 302, saved.content.decode()[:3000]
    finally:
        appointment_status_changed.disconnect(dispatch_uid="test-today-note")
    session = TreatmentSession.objects.get(course=course)
    a.refresh_from_db()
    assert a.session == session and a.status == S.COMPLETED
    assert sent == [("booked", "in_treatment"), ("in_treatment", "completed")]
    event = AuditEvent.objects.filter(action="appointment_status", object_id=str(a.pk)).latest("pk")
    assert event.detail["session"] == session.pk and event.detail["new"] == "completed"
    detail = client.get(reverse("appointment_detail", args=[a.pk])).content.decode()
    assert reverse("session_detail", args=[session.pk]) in detail
    again = client.post(reverse("appointment_start_note", args=[a.pk]))
    assert again["Location"] == reverse("session_detail", args=[session.pk])  # one note per appointment


def test_a_hard_stop_still_blocks_the_note_started_from_the_appointment(
    client, day, therapist, client_record, screen_client
):
    course_service.start_course(client_record, staff=therapist)
    a = today_at(therapist, client_record, day, minutes_from_now=-5)
    screen_client(client_record, "fever")  # the latest screening postpones treatment
    login(client, therapist.user)
    response = client.post(reverse("appointment_start_note", args=[a.pk]), follow=True)
    body = response.content.decode()
    assert "The session note cannot start: The latest screening says:" in body
    assert Appointment.objects.get(pk=a.pk).status == S.BOOKED
    assert not TreatmentSession.objects.exists()


def test_a_note_recorded_without_starting_it_from_the_appointment_completes_the_arrived_visit(
    client, day, therapist, front_desk, client_record
):
    from backcare.scheduling.services import status

    course = course_service.start_course(client_record, staff=therapist)
    a = today_at(therapist, client_record, day, minutes_from_now=-5)
    status.change_status(a, S.ARRIVED, by=front_desk.user)
    login(client, therapist.user)
    update = client.post(reverse("health_update", args=[course.pk]), {"anything_new": "no", "pain_now": "4"})
    page = client.get(update["Location"])
    assert client.post(update["Location"], session_data(page)).status_code == 302
    a.refresh_from_db()
    assert a.status == S.COMPLETED and a.session == TreatmentSession.objects.get(course=course)
