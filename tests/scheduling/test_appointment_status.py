"""An appointment through the day: the allowed and the forbidden status changes, who may make them and when, the
time each status keeps, and `appointment_status_changed` (sent once, inside the change's transaction, so a receiver
that raises rolls the change back)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from sched_helpers import LONDON, at, build_world, future_day

from backcare.clinic.models import AuditEvent
from backcare.clinic.services import courses
from backcare.scheduling.models import Appointment
from backcare.scheduling.services import booking, status
from backcare.scheduling.signals import appointment_status_changed
from clinic_fixtures import login

S = Appointment.Status


@pytest.fixture
def world(clinic, owner, therapist, therapist2, front_desk, make_client, screen_client, client_record):
    return build_world(clinic, owner, therapist, therapist2, front_desk, make_client, screen_client, client_record)


@pytest.fixture
def signals():
    """Every appointment_status_changed sent, with whether it came inside a transaction."""
    sent = []

    def receiver(sender, appointment, old, new, by, **kwargs):
        sent.append((appointment.pk, old, new, by, connection.in_atomic_block))

    appointment_status_changed.connect(receiver, dispatch_uid="test-status-signals")
    yield sent
    appointment_status_changed.disconnect(dispatch_uid="test-status-signals")


def shifted(appointment, delta):
    """Move an appointment booked ahead back in time (what the clock does), keeping its length and turnover."""
    Appointment.objects.filter(pk=appointment.pk).update(
        starts_at=F("starts_at") + delta,
        ends_at=F("ends_at") + delta,
        busy_from=F("busy_from") + delta,
        busy_until=F("busy_until") + delta,
    )
    appointment.refresh_from_db()
    return appointment


def started(world, client=None, minutes_ago=10):
    """A booked appointment of `client` (Cora) with Theo that began `minutes_ago` minutes ago."""
    day = future_day(7)
    a = booking.book_appointment(
        client or world.cora,
        world.massage,
        at(day, 10),
        therapist=world.therapist,
        room=world.room1,
        by=world.front_desk.user,
    )
    return shifted(a, timezone.now() - timedelta(minutes=minutes_ago) - a.starts_at)


def test_the_day_flow_is_audited_and_signalled_once_per_change(world, signals):
    courses.start_course(world.cora, staff=world.therapist)
    a = started(world)
    status.change_status(a, S.ARRIVED, by=world.front_desk.user)
    status.start_note(a, by=world.therapist.user)
    status.change_status(a, S.COMPLETED, by=world.therapist.user)
    a.refresh_from_db()
    assert a.status == S.COMPLETED and a.status_changed_at is not None
    assert signals == [
        (a.pk, "booked", "arrived", world.front_desk.user, True),
        (a.pk, "arrived", "in_treatment", world.therapist.user, True),
        (a.pk, "in_treatment", "completed", world.therapist.user, True),
    ]
    events = AuditEvent.objects.filter(action="appointment_status", object_id=str(a.pk)).order_by("pk")
    assert [(e.detail["old"], e.detail["new"], e.client_id) for e in events] == [
        ("booked", "arrived", world.cora.pk),
        ("arrived", "in_treatment", world.cora.pk),
        ("in_treatment", "completed", world.cora.pk),
    ]


@pytest.mark.parametrize(
    ("path", "new"),
    [
        ((), S.COMPLETED),  # booked: it must begin first
        ((S.ARRIVED,), S.NO_SHOW),  # the client came
        ((S.ARRIVED,), S.ARRIVED),
        ((S.ARRIVED, S.COMPLETED), S.ARRIVED),  # nothing goes back
        ((S.ARRIVED, S.COMPLETED), S.IN_TREATMENT),
        ((S.NO_SHOW,), S.ARRIVED),  # a freed time never turns live again here
        ((), S.CANCELLED),  # cancelling is the cancel flow's (with its window and reason)
        ((), "held"),
        ((), "nonsense"),
    ],
)
def test_forbidden_changes_are_refused_naming_the_status(world, signals, path, new):
    a = started(world)
    for step in path:
        status.change_status(a, step, by=world.owner.user)
    before = len(signals)
    with pytest.raises(ValidationError) as error:
        status.change_status(a, new, by=world.owner.user)
    assert "status" in error.value.message_dict
    a.refresh_from_db()
    assert a.status == (path[-1] if path else S.BOOKED)
    assert len(signals) == before


def test_who_may_move_an_appointment(world, client_record):
    a = started(world)
    with pytest.raises(PermissionDenied):  # not Tara's appointment
        status.change_status(a, S.ARRIVED, by=world.therapist2.user)
    with pytest.raises(PermissionDenied):  # a client never
        status.change_status(a, S.ARRIVED, by=client_record.user)
    status.change_status(a, S.ARRIVED, by=world.front_desk.user)
    with pytest.raises(PermissionDenied):  # the front desk does not complete a visit (it writes no note)
        status.change_status(a, S.COMPLETED, by=world.front_desk.user)
    with pytest.raises(PermissionDenied):
        status.start_note(a, by=world.front_desk.user)
    status.change_status(a, S.COMPLETED, by=world.therapist.user)
    assert Appointment.objects.get(pk=a.pk).status == S.COMPLETED


def test_arrival_waits_for_the_day_and_no_show_for_the_start(world):
    ahead = booking.book_appointment(
        world.cora,
        world.massage,
        at(future_day(7), 10),
        therapist=world.therapist,
        room=world.room1,
        by=world.owner.user,
    )
    with pytest.raises(ValidationError, match="can be recorded on the day"):
        status.change_status(ahead, S.ARRIVED, by=world.front_desk.user)
    soon = shifted(ahead, timezone.now() + timedelta(minutes=2) - ahead.starts_at)
    with pytest.raises(ValidationError, match="has not begun yet"):
        status.change_status(soon, S.NO_SHOW, by=world.front_desk.user)
    assert status.moves_for(soon, staff=world.front_desk, clinical=False, now=timezone.now()) == [S.ARRIVED]
    begun = shifted(soon, -timedelta(minutes=5))
    assert status.moves_for(begun, staff=world.front_desk, clinical=False, now=timezone.now()) == [
        S.ARRIVED,
        S.NO_SHOW,
    ]
    assert status.moves_for(begun, staff=world.therapist, clinical=True, now=timezone.now()) == [
        S.ARRIVED,
        S.IN_TREATMENT,
        S.NO_SHOW,
    ]


def _taken(world, a):
    return booking.find_conflicts(
        therapist=world.therapist,
        room=world.room2,
        client=world.client(),
        span=(a.starts_at, a.ends_at),
        busy=(a.busy_from, a.busy_until),
        now=timezone.now(),
    )


@pytest.mark.parametrize("path", [(S.ARRIVED,), (S.IN_TREATMENT,), (S.ARRIVED, S.COMPLETED)])
def test_a_visit_going_ahead_keeps_its_time(world, path):
    a = started(world)
    for step in path:
        status.change_status(a, step, by=world.owner.user)
    assert _taken(world, a) == ["Theo Therapist is already booked " + _times(a)]


def test_a_no_show_frees_its_time(world):
    a = started(world)
    status.change_status(a, S.NO_SHOW, by=world.front_desk.user)
    assert _taken(world, a) == []


def _times(a):
    zone = LONDON
    return (
        f"{a.starts_at.astimezone(zone):%H:%M}-{a.ends_at.astimezone(zone):%H:%M} (with turnover "
        f"{a.busy_from.astimezone(zone):%H:%M}-{a.busy_until.astimezone(zone):%H:%M})"
    )


@pytest.mark.parametrize("kept", [S.ARRIVED, S.IN_TREATMENT, S.COMPLETED])
def test_the_database_refuses_a_second_appointment_over_a_kept_time(world, kept):
    """Written around the services, an overlapping row for the same therapist: PostgreSQL's exclusion constraint
    (migration 0009 widened it to the day's statuses) refuses it; SQLite has none, the services' check does it."""
    a = started(world)
    Appointment.objects.filter(pk=a.pk).update(status=kept)
    other = world.client()
    row = {
        "clinic": world.clinic,
        "client": other,
        "therapist": world.therapist,
        "room": world.room2,
        "service": world.massage,
        "starts_at": a.starts_at,
        "ends_at": a.ends_at,
        "busy_from": a.busy_from,
        "busy_until": a.busy_until,
    }
    if connection.vendor == "postgresql":
        with pytest.raises(IntegrityError), transaction.atomic():
            Appointment.objects.create(**row)
    else:
        assert _taken(world, a)
    Appointment.objects.filter(pk=a.pk).update(status=S.NO_SHOW)
    Appointment.objects.create(**row)  # a freed time takes the new row on both databases


def test_a_receiver_that_raises_rolls_the_change_back(world):
    a = started(world)
    before = AuditEvent.objects.filter(action="appointment_status").count()

    def refuse(sender, **kwargs):
        raise RuntimeError("billing is down")

    appointment_status_changed.connect(refuse, dispatch_uid="test-refuse")
    try:
        with pytest.raises(RuntimeError, match="billing is down"):
            status.change_status(a, S.ARRIVED, by=world.front_desk.user)
    finally:
        appointment_status_changed.disconnect(dispatch_uid="test-refuse")
    a.refresh_from_db()
    assert a.status == S.BOOKED and a.status_changed_at is None
    assert AuditEvent.objects.filter(action="appointment_status").count() == before


def test_cancelling_inside_the_window_is_a_late_cancellation(world, signals):
    early = booking.book_appointment(
        world.cora,
        world.massage,
        at(future_day(7), 10),
        therapist=world.therapist,
        room=world.room1,
        by=world.owner.user,
    )
    booking.cancel_appointment(early, by=world.front_desk.user, reason="Moving away")
    late = started(world, world.client(), minutes_ago=-120)  # two hours ahead: inside the 24-hour window
    with pytest.raises(ValidationError, match="give a reason"):
        booking.cancel_appointment(late, by=world.front_desk.user, reason="Ill")
    booking.cancel_appointment(late, by=world.front_desk.user, reason="Ill", late_reason="Phoned at 8")
    early.refresh_from_db()
    late.refresh_from_db()
    assert (early.status, late.status) == (S.CANCELLED, S.LATE_CANCELLED)
    assert late.late_change_reason == "Phoned at 8"
    assert [(old, new) for pk, old, new, by, inside in signals] == [
        ("booked", "cancelled"),
        ("booked", "late_cancelled"),
    ]
    assert all(inside and by == world.front_desk.user for *_, by, inside in signals)
    assert _taken(world, late) == []


def test_status_buttons_on_the_appointment_page(client, world):
    a = started(world)
    url = reverse("appointment_detail", args=[a.pk])
    login(client, world.front_desk.user)
    body = client.get(url).content.decode()
    assert "Arrived" in body and "Did not come" in body and "Start the session note" not in body
    response = client.post(reverse("appointment_status", args=[a.pk]), {"status": "arrived"})
    assert response.status_code == 302 and response["Location"] == url
    assert Appointment.objects.get(pk=a.pk).status == S.ARRIVED
    refused = client.post(reverse("appointment_status", args=[a.pk]), {"status": "completed"})
    assert refused.status_code == 403
    again = client.post(reverse("appointment_status", args=[a.pk]), {"status": "arrived"}, follow=True)
    assert "Status: An appointment that is arrived cannot become arrived." in again.content.decode()
    login(client, world.therapist.user)
    body = client.get(url).content.decode()
    assert "Start the session note" in body and "Completed" in body


def test_a_waitlist_offer_taken_or_declined_is_signalled(world, signals):
    from backcare.scheduling.services import waitlist

    day = future_day(7)
    entry = waitlist.join_waitlist(world.cora, world.massage, day, day, by=world.front_desk.user)
    hold = waitlist.place_hold(entry, therapist=world.therapist, room=world.room1, starts_at=at(day, 10))
    waitlist.accept_hold(hold, by=world.cora.user)
    other = world.client()
    second = waitlist.join_waitlist(other, world.massage, day, day, by=world.front_desk.user)
    declined = waitlist.place_hold(second, therapist=world.therapist, room=world.room1, starts_at=at(day, 12))
    waitlist.decline_hold(declined, by=world.front_desk.user)
    assert [(pk, old, new) for pk, old, new, _by, _inside in signals] == [
        (hold.pk, "held", "booked"),
        (declined.pk, "held", "declined"),
    ]
    assert signals[0][3] == world.cora.user and all(inside for *_, inside in signals)
