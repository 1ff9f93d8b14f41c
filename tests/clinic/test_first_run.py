"""Starting a clinic from nothing: on an empty database the sign-in page gives way to the first-run set-up, which
makes the clinic and its first owner once (also when two are sent at once) and is gone afterwards; a signed-in
account with no place in the clinic gets a page saying so instead of a redirect loop."""

from __future__ import annotations

import sqlite3
import tempfile
import threading
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections
from django.urls import reverse

from backcare.clinic.models import AuditEvent, Clinic, Installation, StaffMember
from backcare.clinic.services import first_run

STRONG = "lavender-orbit-kettle-42"


def form_data(**changes):
    data = {
        "name": "Harbour Back Clinic",
        "country": "ie",
        "time_zone": "Europe/Dublin",
        "address": "1 Quay Street, Galway",
        "phone": "+353 91 000000",
        "email": "desk@harbour.example",
        "emergency_number": "",
        "urgent_care_number": "",
        "display_name": "Orla Owner",
        "username": "orla",
        "owner_email": "orla@harbour.example",
        "password1": STRONG,
        "password2": STRONG,
    }
    data.update(changes)
    return data


@pytest.mark.django_db
def test_an_empty_database_shows_the_set_up_instead_of_a_bare_sign_in(client):
    assert first_run.needs_first_run()
    response = client.get(reverse("login"))
    assert response.status_code == 302 and response["Location"] == reverse("first_run")
    home = client.get("/", follow=True)
    assert home.redirect_chain[-1][0] == reverse("first_run")
    page = client.get(reverse("first_run")).content.decode()
    for name in ("name", "country", "time_zone", "phone", "email", "emergency_number", "urgent_care_number"):
        assert f'name="{name}"' in page, name
    assert 'name="password1"' in page and 'name="username"' in page


@pytest.mark.django_db
def test_set_up_makes_the_clinic_and_its_owner_and_signs_the_owner_in(client):
    response = client.post(reverse("first_run"), form_data())
    assert response.status_code == 302 and response["Location"] == reverse("home")
    clinic = Clinic.objects.get()
    assert (clinic.name, clinic.country, clinic.time_zone) == ("Harbour Back Clinic", "IE", "Europe/Dublin")
    assert (clinic.phone, clinic.email, clinic.emergency) == ("+353 91 000000", "desk@harbour.example", "112")
    owner = StaffMember.objects.get()
    assert owner.role == "owner" and owner.display_name == "Orla Owner" and owner.clinic == clinic
    assert owner.user.check_password(STRONG) and not owner.user.is_superuser
    assert Installation.objects.get().clinic == clinic
    event = AuditEvent.objects.get(action="clinic_set_up")
    assert event.user == owner.user and event.clinic_id == clinic.pk
    # Signed in: every owner sets up an authenticator app next, then reaches the dashboard.
    assert client.get(reverse("home"), follow=True).redirect_chain[-1][0] == reverse("two_factor_setup")


@pytest.mark.django_db
def test_once_a_clinic_exists_the_set_up_is_gone(client):
    assert client.post(reverse("first_run"), form_data()).status_code == 302
    client.logout()
    assert client.get(reverse("first_run")).status_code == 404
    assert client.post(reverse("first_run"), form_data(username="mallory", name="Other")).status_code == 404
    assert Clinic.objects.count() == 1 and not get_user_model().objects.filter(username="mallory").exists()
    assert client.get(reverse("login")).status_code == 200  # the sign-in page is back


@pytest.mark.django_db
def test_a_clinic_made_another_way_ends_the_set_up(client, clinic):
    assert not first_run.needs_first_run()
    assert client.get(reverse("first_run")).status_code == 404


@pytest.mark.django_db
def test_bad_input_names_the_field_and_keeps_what_was_typed(client):
    data = form_data(
        country="Ireland", email="not-an-address", emergency_number="call 112", password1="password1", password2="x"
    )
    page = client.post(reverse("first_run"), data)
    assert page.status_code == 200
    body = page.content.decode()
    assert "Country:" in body and "Clinic email:" in body and "Emergency number: digits" in body
    assert "Password again: the two passwords differ." in body
    for typed in ("Ireland", "not-an-address", "call 112", "Harbour Back Clinic", "orla@harbour.example"):
        assert typed in body, typed
    assert STRONG not in body and not Clinic.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("weak", ["password123", "12345678901", "orla-orla", "short"])
def test_the_owner_password_must_be_strong(client, weak):
    body = client.post(reverse("first_run"), form_data(password1=weak, password2=weak)).content.decode()
    assert "Password: " in body and not Clinic.objects.exists()


@pytest.mark.django_db
def test_a_set_up_that_passed_the_check_after_another_won_makes_nothing(monkeypatch):
    """The race's loser: it saw no clinic, but the winner's row is there when it writes, so it fails whole."""
    first_run.start_clinic(_clinic(), _owner("first"))
    monkeypatch.setattr(first_run, "needs_first_run", lambda: True)  # as if the check ran before the winner committed
    with pytest.raises(first_run.AlreadySetUp):
        first_run.start_clinic(_clinic("Second"), _owner("second"))
    assert Clinic.objects.count() == 1 and not get_user_model().objects.filter(username="second").exists()


@pytest.fixture
def race_db(transactional_db):
    """SQLite's test database lives in memory, where concurrent writers fail with "table is locked" instead of
    waiting: copy it to a file (as in production) for the race, as tests/scheduling/test_race.py does. PostgreSQL
    needs nothing: every thread opens its own connection."""
    if connection.vendor != "sqlite" or not connection.is_in_memory_db():
        yield
        return
    path = str(Path(tempfile.mkdtemp(prefix="backcare-first-run-")) / "race.sqlite3")
    connection.ensure_connection()
    target = sqlite3.connect(path)
    connection.connection.backup(target)
    target.close()
    old_settings, old_wrapper = connections.settings["default"], connections["default"]
    connections.settings["default"] = {**old_settings, "NAME": path}
    connections["default"] = connections.create_connection("default")
    try:
        yield
    finally:
        connections["default"].close()
        connections.settings["default"] = old_settings
        connections["default"] = old_wrapper


@pytest.mark.django_db(transaction=True)
def test_two_set_ups_sent_at_once_make_one_clinic(race_db):
    """Eight set-ups at once, each in its own thread and database connection (SQLite in a file, as in production,
    or PostgreSQL with BACKCARE_TEST_DB=postgres): one clinic, one owner, the others refused."""
    barrier = threading.Barrier(8)
    results: list[str] = []

    def run(name: str) -> None:
        from django.db import connections

        try:
            barrier.wait()
            first_run.start_clinic(_clinic(name), _owner(name))
            results.append("made")
        except first_run.AlreadySetUp:
            results.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(f"owner{n}",)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["made"] + ["refused"] * 7
    assert Clinic.objects.count() == 1 and StaffMember.objects.count() == 1 and Installation.objects.count() == 1


def _clinic(name: str = "First") -> first_run.NewClinic:
    return first_run.NewClinic(name, "GB", "Europe/London", "", "", "", "", "")


def _owner(username: str) -> first_run.FirstOwner:
    return first_run.FirstOwner(username.title(), username, f"{username}@x.test", STRONG)


@pytest.mark.django_db
def test_a_signed_in_account_with_no_place_in_the_clinic_gets_a_clear_page_not_a_loop(client, clinic):
    admin = get_user_model().objects.create_superuser("operator", "op@x.test", STRONG)
    client.force_login(admin, backend="django.contrib.auth.backends.ModelBackend")
    home = client.get("/")
    assert home.status_code == 403
    body = " ".join(home.content.decode().split())
    assert "neither a member of the clinic" in body and "administration" in body and "Sign out" in body
    login = client.get(reverse("login"))  # the sign-in page sends a signed-in user home, which now stops there
    assert login.status_code == 302 and client.get(login["Location"]).status_code == 403
