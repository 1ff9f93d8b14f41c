"""Fixtures of the scheduling tests: the clinic `world` (sched_helpers.build_world), a real SMTP server on loopback
(`smtp`), a database threads can share (`file_db`), and for the browser tests the live server's clinic
(`live_world`). A module that needs more takes `world` and adds to it."""

from __future__ import annotations

import datetime as dt
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.db import connection, connections
from sched_helpers import World, build_world
from test_reminders_smtp import Inbox, smtp_server

from clinic_fixtures import PASSWORD, enrol_app, sign
from testkit import *  # noqa: F403  # `from conftest import ...` finds the suite's helpers whichever conftest.py loaded last


@pytest.fixture
def world(
    clinic: Any,
    owner: Any,
    therapist: Any,
    therapist2: Any,
    front_desk: Any,
    make_client: Any,
    screen_client: Any,
    client_record: Any,
) -> World:
    return build_world(clinic, owner, therapist, therapist2, front_desk, make_client, screen_client, client_record)


@pytest.fixture
def smtp() -> Iterator[tuple[Controller, Inbox]]:
    """A real SMTP server on 127.0.0.1 and a free port, with Django's email settings pointing at it."""
    with smtp_server() as running:
        yield running


@pytest.fixture
def file_db(_browser_db_baseline: None, transactional_db: Any) -> Iterator[None]:
    """Threads need a database they can share. pytest-django's SQLite test database is in memory (shared cache),
    where a second writer fails with "table is locked" instead of waiting, so copy it to a file (as production
    runs) for this test; on PostgreSQL each thread opens its own connection anyway. `_browser_db_baseline` puts the
    migrations' rows back after the module, as the flush that ends a transactional test removes them."""
    if connection.vendor != "sqlite" or not connection.is_in_memory_db():
        yield
        return
    path = str(Path(tempfile.mkdtemp(prefix="backcare-reminders-")) / "db.sqlite3")
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


@pytest.fixture
def live_world(live_clinic: Any, live_therapist: Any) -> dict[str, Any]:
    from django.contrib.auth import get_user_model

    from backcare.clinic.models import StaffMember
    from backcare.clinic.services.clients import create_client
    from backcare.clinic.services.screening import run_screening
    from backcare.scheduling.services import resources
    from conftest import make_intake

    users = get_user_model().objects
    owner = StaffMember.objects.create(
        user=users.create_user(username="olivia", password=PASSWORD),
        clinic=live_clinic,
        role="owner",
        display_name="Olivia Owner",
    )
    StaffMember.objects.create(
        user=users.create_user(username="fred", password=PASSWORD),
        clinic=live_clinic,
        role="front_desk",
        display_name="Fred Frontdesk",
    )
    room = resources.create_room(live_clinic, "Room 1", by=owner.user)
    service = resources.create_service(live_clinic, by=owner.user, name="Remedial massage", duration_minutes=60)
    resources.set_working_hours(live_therapist, {d: [(dt.time(9), dt.time(17))] for d in range(7)}, by=owner.user)
    client = create_client(
        staff=live_therapist,
        therapist=live_therapist,
        first_name="Nora",
        last_name="Fielding",
        date_of_birth=dt.date(1979, 6, 2),
        sex="female",
        email="nora@x.test",
    )
    document = make_intake()
    document["id"], document["age"] = f"client-{client.pk}", client.age_on()
    run_screening(client, document, kind="intake")
    sign(client)  # no treatment is booked without signed consent
    enrol_app(owner.user)  # owners sign in with an authenticator app
    return {"owner": owner, "room": room, "service": service, "client": client}
