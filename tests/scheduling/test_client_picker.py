"""Staff find the client to book by name, never from a list of every client: the booking form, the free-time search
and the waitlist carry the client as a hidden id chosen from a paged name search (backcare.clinic.search), limited
to the clients the user may pick, in a constant number of queries however many clients the clinic has."""

from __future__ import annotations

import html as html_lib
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from sched_helpers import future_day

from backcare.clinic.models import Client, Clinic
from clinic_fixtures import login

PICKER_PAGES = ("appointment_book", "slot_search", "staff_waitlist_add")


def text(response):
    return html_lib.unescape(response.content.decode())


def result_links(response):
    """The client links of the picker's results, as (name, query parameters)."""
    body = response.content.decode()
    box = body.split("data-client-results", 1)[1].split("</section>", 1)[0]
    return [
        (html_lib.unescape(name), parse_qs(urlsplit(html_lib.unescape(href)).query))
        for href, name in re.findall(r'<li><a href="([^"]+)">([^<]+)</a>', box)
    ]


def many(world, count, last_name="Walker"):
    Client.objects.bulk_create(
        Client(
            clinic=world.clinic,
            first_name=f"Person{i:03d}",
            last_name=last_name,
            date_of_birth=world.cora.date_of_birth,
            sex="female",
        )
        for i in range(count)
    )


@pytest.mark.parametrize("page", PICKER_PAGES)
def test_no_page_lists_every_client(client, world, page):
    many(world, 3)
    login(client, world.front_desk.user)
    body = text(client.get(reverse(page)))
    assert 'name="client_q"' in body
    assert '<select name="client"' not in body
    assert "Walker" not in body and "Cora" not in body


@pytest.mark.parametrize("page", PICKER_PAGES)
def test_search_finds_the_client_and_choosing_keeps_the_rest_of_the_page(client, world, page):
    login(client, world.front_desk.user)
    response = client.get(reverse(page), {"client_q": "cor", "service": world.massage.pk})
    links = result_links(response)
    assert [name for name, _ in links] == ["Client, Cora"]
    params = links[0][1]
    assert params["client"] == [str(world.cora.pk)] and params["service"] == [str(world.massage.pk)]
    chosen = text(client.get(reverse(page), {k: v[0] for k, v in params.items()}))
    assert "Client: <strong>Cora Client</strong>" in chosen and "Choose another client" in chosen
    assert f'name="client" value="{world.cora.pk}"' in chosen
    assert 'name="client_q"' not in chosen


def test_booking_from_the_chosen_client_books_them(client, world):
    login(client, world.front_desk.user)
    day = future_day(7)
    page = text(client.get(reverse("appointment_book"), {"client": world.cora.pk, "day": day.isoformat()}))
    key = re.search(r'name="submission_key" value="([^"]+)"', page).group(1)
    data = {
        "client": world.cora.pk,
        "service": world.massage.pk,
        "day": day.isoformat(),
        "time": "10:00",
        "therapist": world.therapist.pk,
        "room": world.room1.pk,
        "submission_key": key,
    }
    assert client.post(reverse("appointment_book"), data).status_code == 302
    assert world.cora.appointments.count() == 1


def test_a_missing_client_is_named_and_the_search_is_offered(client, world):
    login(client, world.front_desk.user)
    data = {"service": world.massage.pk, "day": future_day(7).isoformat(), "time": "10:00"}
    body = text(client.post(reverse("appointment_book"), data))
    assert "Client: this is required." in body and 'name="client_q"' in body
    assert 'value="10:00"' in body


def test_results_are_paged(client, world):
    many(world, 45)
    login(client, world.front_desk.user)
    first = client.get(reverse("appointment_book"), {"client_q": "walker"})
    assert len(result_links(first)) == 20 and "Page 1 of 3" in text(first)
    last = client.get(reverse("appointment_book"), {"client_q": "walker", "client_page": 3})
    assert [n for n, _ in result_links(last)] == [f"Walker, Person{i:03d}" for i in range(40, 45)]


def test_only_clients_of_the_users_reach_are_found_or_accepted(client, world):
    elsewhere = Clinic.objects.create(name="Elsewhere", time_zone="Europe/London")
    stranger = Client.objects.create(
        clinic=elsewhere, first_name="Cora", last_name="Stranger", date_of_birth=world.cora.date_of_birth, sex="female"
    )
    login(client, world.front_desk.user)
    assert [n for n, _ in result_links(client.get(reverse("appointment_book"), {"client_q": "cora"}))] == [
        "Client, Cora"
    ]
    chosen = text(client.get(reverse("appointment_book"), {"client": stranger.pk}))
    assert "Stranger" not in chosen and 'name="client_q"' in chosen
    data = {
        "client": stranger.pk,
        "service": world.massage.pk,
        "day": future_day(7).isoformat(),
        "time": "10:00",
        "therapist": world.therapist.pk,
        "room": world.room1.pk,
    }
    body = text(client.post(reverse("appointment_book"), data))
    assert "Client: this client cannot be chosen here; find them by name again." in body
    assert not stranger.appointments.exists()


def queries_for(client, url, params):
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url, params).status_code == 200
    return len(captured)


@pytest.mark.parametrize("page", PICKER_PAGES)
def test_query_count_does_not_grow_with_the_clients(client, world, page):
    login(client, world.front_desk.user)
    url = reverse(page)
    many(world, 5)
    few_search = queries_for(client, url, {"client_q": "walker"})
    few_chosen = queries_for(client, url, {"client": world.cora.pk})
    many(world, 120, last_name="Walkerson")
    assert queries_for(client, url, {"client_q": "walker"}) == few_search
    assert queries_for(client, url, {"client": world.cora.pk}) == few_chosen


def test_the_search_script_is_a_static_file(client, world):
    login(client, world.front_desk.user)
    body = client.get(reverse("appointment_book")).content.decode()
    assert re.search(r'<script src="[^"]*scheduling/client_picker\.js" defer></script>', body)
    assert "<script>" not in body
