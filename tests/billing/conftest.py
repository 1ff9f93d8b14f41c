"""Shared set-up for the billing tests: a priced service, appointments, and sending the scheduler's status signal
as the day's transition service does (inside the transaction that changes the status)."""

from __future__ import annotations

import datetime as dt
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections
from django.utils import timezone

from testkit import *  # noqa: F403  # `from conftest import ...` finds the suite's helpers whichever conftest.py loaded last


@dataclass
class Billing:
    clinic: Any
    owner: Any
    therapist: Any
    front_desk: Any
    service: Any
    room: Any
    client: Any

    def appointment(self, days: int = 1, hour: int = 10, therapist: Any = None) -> Any:
        from backcare.scheduling.models import Appointment

        starts = dt.datetime.combine(timezone.localdate() + dt.timedelta(days=days), dt.time(hour), tzinfo=dt.UTC)
        ends = starts + dt.timedelta(hours=1)
        return Appointment.objects.create(
            clinic=self.clinic,
            client=self.client,
            therapist=therapist or self.therapist,
            room=self.room,
            service=self.service,
            starts_at=starts,
            ends_at=ends,
            busy_from=starts,
            busy_until=ends,
        )


@pytest.fixture
def billing(clinic: Any, owner: Any, therapist: Any, front_desk: Any, make_client: Any) -> Billing:
    from backcare.billing import services
    from backcare.scheduling.services import resources

    settings = services.settings_for(clinic)
    settings.currency = "GBP"
    settings.late_cancellation_fee = 2500
    settings.no_show_fee = 4000
    settings.legal_name = "Test Clinic Ltd"
    settings.save()
    room = resources.create_room(clinic, "Room 1", by=owner.user)
    service = resources.create_service(clinic, by=owner.user, name="Back massage", duration_minutes=60)
    services.set_price(service, 6000, by=owner.user)
    return Billing(clinic, owner, therapist, front_desk, service, room, make_client(therapist))


@pytest.fixture
def race_db(transactional_db: Any) -> Iterator[None]:
    """As tests/scheduling/test_race.py: SQLite's in-memory test database makes concurrent writers fail instead of
    wait, so the race runs on a file copy of it (WAL, like production); PostgreSQL threads just connect."""
    if connection.vendor != "sqlite" or not connection.is_in_memory_db():
        yield
        return
    folder = tempfile.mkdtemp(prefix="backcare-billing-race-")
    path = str(Path(folder) / "race.sqlite3")
    connection.ensure_connection()
    target = sqlite3.connect(path)
    connection.connection.backup(target)
    target.execute("PRAGMA journal_mode=WAL")
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
