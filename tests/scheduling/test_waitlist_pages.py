"""The staff waitlist page through the Django test client: who sees which entries, the filters, the times held for
waiting clients and until when, adding a client (bad input answered beside its field, typed values kept, a double
submission adding one entry) and withdrawing an entry (a held time then goes to the next in line)."""

from __future__ import annotations

import html as html_lib
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from sched_helpers import LONDON, at, future_day

from backcare.clinic.models import AuditEvent
from backcare.scheduling.models import Appointment, WaitlistEntry
from backcare.scheduling.services import booking, waitlist
from clinic_fixtures import login
from matrix_support import error_names_field, parse_html


@pytest.fixture
def otto(world, make_client):
    """A client of the second therapist."""
    c = make_client(world.therapist2, username="otto", first_name="Otto", last_name="Other", email="otto@x.test")
    world.screen_client(c)
    return c


def text(response):
    return html_lib.unescape(response.content.decode())


def join(world, client, day, *, days=2, therapist=None, note=""):
    return waitlist.join_waitlist(
        client,
        world.massage,
        day - timedelta(days=days),
        day + timedelta(days=days),
        by=world.front_desk.user,
        therapist=therapist,
        note=note,
    )


def value_of(response, name):
    [node] = [n for n in parse_html(response.content.decode()).walk() if n.attrs.get("name") == name]
    if node.tag == "select":
        chosen = [o for o in node.walk() if o.tag == "option" and "selected" in o.attrs]
        return chosen[0].attrs.get("value", "") if chosen else ""
    return node.attrs.get("value", "")


def rows(response):
    """The waitlist table's rows, as text."""
    body = text(response)
    if "<tbody>" not in body:
        return []
    return [r.split("</tr>")[0] for r in body.split("<tbody>", 1)[1].split("</tbody>", 1)[0].split("<tr>")[1:]]


# --- who sees what --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status", "sees_cora", "sees_otto"),
    [
        ("owner", 200, True, True),
        ("front_desk", 200, True, True),
        ("therapist", 200, True, False),
        ("therapist2", 200, False, True),
        ("client", 403, False, False),
    ],
)
def test_each_role_sees_the_entries_it_may(client, world, otto, role, status, sees_cora, sees_otto):
    day = future_day(7)
    join(world, world.cora, day, note="Mornings only")
    join(world, otto, day)
    user = {
        "owner": world.owner.user,
        "front_desk": world.front_desk.user,
        "therapist": world.therapist.user,
        "therapist2": world.therapist2.user,
        "client": world.cora.user,
    }[role]
    login(client, user)
    response = client.get(reverse("staff_waitlist"))
    assert response.status_code == status
    assert client.get(reverse("staff_waitlist_add")).status_code == status
    if status == 200:
        page = text(response)
        assert ("Cora Client" in page) is sees_cora and ("Mornings only" in page) is sees_cora
        assert ("Otto Other" in page) is sees_otto


def test_anonymous_is_sent_to_login(client, world):
    for url in (reverse("staff_waitlist"), reverse("staff_waitlist_add")):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_shared_client_is_the_therapists_too(client, world, otto):
    from backcare.clinic.services.clients import share_client

    join(world, world.cora, future_day(7))
    login(client, world.therapist2.user)
    assert "Cora Client" not in text(client.get(reverse("staff_waitlist")))
    share_client(world.cora, therapist=world.therapist2, staff=world.owner)
    assert "Cora Client" in text(client.get(reverse("staff_waitlist")))


# --- the list, its filters and the holds -----------------------------------------------------------------------------


def test_filters_by_status_service_and_therapist(client, world, otto):
    day = future_day(7)
    cora_entry = join(world, world.cora, day, therapist=world.therapist)
    otto_entry = waitlist.join_waitlist(otto, world.assessment, day, day + timedelta(days=3), by=world.front_desk.user)
    gone = join(world, world.client("Gina"), day)
    waitlist.leave_waitlist(gone, by=world.front_desk.user)
    login(client, world.front_desk.user)
    url = reverse("staff_waitlist")
    default = text(client.get(url))
    assert "Cora Client" in default and "Otto Other" in default and "Gina" not in default
    assert "Waiting or offered a time (2)" in default
    withdrawn = text(client.get(url, {"status": "withdrawn"}))
    assert "Gina" in withdrawn and "Cora Client" not in withdrawn
    by_service = text(client.get(url, {"status": "open", "service": world.assessment.pk}))
    assert "Otto Other" in by_service and "Cora Client" not in by_service
    by_therapist = text(client.get(url, {"therapist": world.therapist.pk}))
    assert "Cora Client" in by_therapist and "Otto Other" not in by_therapist
    everyone = rows(client.get(url, {"status": "all"}))
    assert len(everyone) == 3
    # A filter that cannot be read shows nothing rather than everything, and never an error.
    odd = client.get(url, {"status": "nonsense", "service": "abc"})
    assert odd.status_code == 200 and rows(odd) == []
    assert {cora_entry.status, otto_entry.status} == {"waiting"}


def test_a_time_held_for_a_waiting_client_is_shown_with_its_expiry(client, world):
    day = future_day(7)
    appointment = booking.book_appointment(
        world.cora, world.massage, at(day, 10), therapist=world.therapist, room=world.room1, by=world.front_desk.user
    )
    wanda = world.client("Wanda")
    entry = join(world, wanda, day)
    booking.cancel_appointment(appointment, by=world.front_desk.user, reason="ill")
    hold = Appointment.objects.get(status="held")
    assert hold.waitlist_entry_id == entry.pk
    login(client, world.front_desk.user)
    response = client.get(reverse("staff_waitlist"), {"status": "offered"})
    [row] = rows(response)
    until = hold.hold_expires_at.astimezone(LONDON)
    assert "Wanda" in row and "Offered a slot" in row
    assert f"{day:%a} {day.day} {day:%b}, 10:00" in row and "with Theo Therapist" in row
    assert f"held until {until:%H:%M}" in row
    assert reverse("appointment_detail", args=[hold.pk]) in row
    # When the hold runs out, the entry is shown as such until the scheduled job frees it.
    Appointment.objects.filter(pk=hold.pk).update(hold_expires_at=timezone.now() - timedelta(seconds=1))
    [row] = rows(client.get(reverse("staff_waitlist"), {"status": "offered"}))
    assert "the offer has run out" in row and "held until" not in row


# --- adding ---------------------------------------------------------------------------------------------------------


def add_data(world, client_record, **changes):
    day = future_day(7)
    data = {
        "client": str(client_record.pk),
        "service": str(world.massage.pk),
        "therapist": str(world.therapist.pk),
        "earliest": day.isoformat(),
        "latest": (day + timedelta(days=5)).isoformat(),
        "note": "Prefers afternoons",
    }
    data.update(changes)
    return data


def test_front_desk_adds_a_client_and_the_entry_is_audited(client, world):
    login(client, world.front_desk.user)
    form = client.get(reverse("staff_waitlist_add") + f"?client={world.cora.pk}")
    assert value_of(form, "client") == str(world.cora.pk) and value_of(form, "therapist") == str(world.therapist.pk)
    response = client.post(reverse("staff_waitlist_add"), add_data(world, world.cora), follow=True)
    page = text(response)
    assert "Cora Client is on the waitlist for Remedial massage" in page and "Prefers afternoons" in page
    entry = WaitlistEntry.objects.get(client=world.cora)
    assert (
        entry.status == "waiting" and entry.therapist == world.therapist and entry.created_by == world.front_desk.user
    )
    event = AuditEvent.objects.get(action="join_waitlist")
    assert event.client == world.cora and event.user == world.front_desk.user


def test_the_same_form_sent_twice_adds_one_entry(client, world):
    login(client, world.front_desk.user)
    data = add_data(world, world.cora)
    first = client.post(reverse("staff_waitlist_add"), data)
    second = client.post(reverse("staff_waitlist_add"), data, follow=True)
    assert first.status_code == 302 and "already on the waitlist for these days" in text(second)
    assert WaitlistEntry.objects.filter(client=world.cora).count() == 1


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"client": ""}, "client", "Client: this is required."),
        ({"earliest": "31/02/2031"}, "earliest", "First suitable day: enter a real date, for example 2025-03-14."),
        ({"latest": "next week"}, "latest", "Last suitable day: enter a real date, for example 2025-03-14."),
        ({"latest": "EARLIEST-1"}, "latest", "Last suitable day: it must be on or after the first suitable day."),
        ({"latest": "EARLIEST+100"}, "latest", "Last suitable day: choose at most three months."),
        ({"earliest": "2020-01-01", "latest": "2020-01-05"}, "latest", "The last suitable day has already passed."),
        ({"service": "99999"}, "service", "Service: choose one of the options in the list."),
        ({"note": "n" * 201}, "note", "Note (optional): use at most 200 characters."),
    ],
)
def test_bad_input_is_named_beside_its_field_and_kept(client, world, changes, field, message):
    data = add_data(world, world.cora)
    earliest = future_day(7)
    for k, v in changes.items():
        if v == "EARLIEST-1":
            changes[k] = (earliest - timedelta(days=1)).isoformat()
        elif v == "EARLIEST+100":
            changes[k] = (earliest + timedelta(days=100)).isoformat()
    data.update(changes)
    login(client, world.front_desk.user)
    response = client.post(reverse("staff_waitlist_add"), data)
    assert response.status_code == 200
    page = text(response)
    assert message in page and "nothing was saved yet" in page
    assert error_names_field(parse_html(response.content.decode()), field)
    for name in ("earliest", "latest", "note"):
        assert value_of(response, name) == data[name]
    assert not WaitlistEntry.objects.exists()


def test_a_therapist_adds_only_their_own_clients(client, world, otto):
    login(client, world.therapist.user)
    assert "Client, Cora" in text(client.get(reverse("staff_waitlist_add"), {"client_q": "cora"}))
    assert "No client matches “otto”" in text(client.get(reverse("staff_waitlist_add"), {"client_q": "otto"}))
    chosen = text(client.get(reverse("staff_waitlist_add"), {"client": otto.pk}))
    assert "Otto" not in chosen
    response = client.post(reverse("staff_waitlist_add"), add_data(world, otto))
    assert response.status_code == 200
    assert "Client: this client cannot be chosen here; find them by name again." in text(response)
    assert not WaitlistEntry.objects.exists()
    assert client.post(reverse("staff_waitlist_add"), add_data(world, world.cora)).status_code == 302
    assert WaitlistEntry.objects.get().client == world.cora


def test_adding_a_client_who_cannot_be_offered_a_time_yet_says_so(client, world):
    unscreened = world.client("Una", screened=False)
    login(client, world.front_desk.user)
    page = text(client.post(reverse("staff_waitlist_add"), add_data(world, unscreened), follow=True))
    assert "Una Number" in page and "No time can be offered to them yet" in page
    assert "only a first assessment can be booked" in page
    assert WaitlistEntry.objects.get().client == unscreened


# --- withdrawing ----------------------------------------------------------------------------------------------------


def test_withdrawing_an_entry(client, world, otto):
    entry = join(world, world.cora, future_day(7))
    login(client, world.therapist2.user)  # not Cora's therapist: the entry is not theirs to see
    assert client.post(reverse("staff_waitlist_withdraw", args=[entry.pk])).status_code == 404
    login(client, world.cora.user)
    assert client.post(reverse("staff_waitlist_withdraw", args=[entry.pk])).status_code == 403
    entry.refresh_from_db()
    assert entry.status == "waiting"
    login(client, world.therapist.user)
    assert client.get(reverse("staff_waitlist_withdraw", args=[entry.pk])).status_code == 405
    page = text(client.post(reverse("staff_waitlist_withdraw", args=[entry.pk]), follow=True))
    assert "Cora Client is no longer on the waitlist" in page
    entry.refresh_from_db()
    assert entry.status == "withdrawn"
    assert AuditEvent.objects.get(action="leave_waitlist").user == world.therapist.user
    again = text(client.post(reverse("staff_waitlist_withdraw", args=[entry.pk]), follow=True))
    assert "nothing changed" in again


def test_withdrawing_an_entry_with_a_held_time_passes_the_time_to_the_next_in_line(client, world):
    day = future_day(7)
    appointment = booking.book_appointment(
        world.cora, world.massage, at(day, 10), therapist=world.therapist, room=world.room1, by=world.front_desk.user
    )
    first, second = join(world, world.client("Wanda"), day), join(world, world.client("Walter"), day)
    booking.cancel_appointment(appointment, by=world.front_desk.user)
    held = Appointment.objects.get(status="held")
    assert held.waitlist_entry_id == first.pk
    login(client, world.front_desk.user)
    assert client.post(reverse("staff_waitlist_withdraw", args=[first.pk])).status_code == 302
    held.refresh_from_db()
    first.refresh_from_db()
    second.refresh_from_db()
    assert held.status == "declined" and first.status == "withdrawn"
    passed_on = Appointment.objects.get(status="held")
    assert passed_on.waitlist_entry_id == second.pk and passed_on.starts_at == at(day, 10)
    assert second.status == "offered"
    assert AuditEvent.objects.get(action="leave_waitlist").detail == {"declined_holds": [held.pk]}
