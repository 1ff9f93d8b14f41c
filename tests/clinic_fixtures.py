"""Fixtures for the clinic application: a clinic with one user of each role, and clients in useful states.

Loaded by the root conftest as a plugin. Passwords are the same for every test user: PASSWORD.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

PASSWORD = "correct-horse-battery-9"


@pytest.fixture
def clinic(db: Any) -> Any:
    from backcare.clinic.models import Clinic

    return Clinic.objects.create(name="Test Clinic", time_zone="Europe/London")


@pytest.fixture
def make_staff(clinic: Any) -> Any:
    from django.contrib.auth import get_user_model

    from backcare.clinic.models import StaffMember

    def make(role: str, username: str, name: str | None = None, **extra: Any) -> Any:
        user = get_user_model().objects.create_user(username=username, password=PASSWORD, email=f"{username}@x.test")
        return StaffMember.objects.create(
            user=user, clinic=clinic, role=role, display_name=name or username.title(), **extra
        )

    return make


@pytest.fixture
def owner(make_staff: Any) -> Any:
    return make_staff("owner", "olivia", "Olivia Owner")


@pytest.fixture
def therapist(make_staff: Any) -> Any:
    return make_staff("therapist", "theo", "Theo Therapist", qualified_techniques=["swedish_relaxation", "remedial"])


@pytest.fixture
def therapist2(make_staff: Any) -> Any:
    return make_staff("therapist", "tara", "Tara Therapist", qualified_techniques=["swedish_relaxation", "remedial"])


@pytest.fixture
def front_desk(make_staff: Any) -> Any:
    return make_staff("front_desk", "fred", "Fred Frontdesk")


@pytest.fixture
def make_client(clinic: Any) -> Any:
    from django.contrib.auth import get_user_model

    from backcare.clinic.models import Client

    def make(therapist: Any = None, username: str | None = None, **fields: Any) -> Any:
        user = None
        if username:
            user = get_user_model().objects.create_user(username=username, password=PASSWORD)
        defaults = {
            "first_name": "Cora",
            "last_name": "Client",
            "date_of_birth": dt.date(1985, 3, 14),
            "sex": "female",
            "email": "cora@x.test",
        }
        return Client.objects.create(clinic=clinic, therapist=therapist, user=user, **{**defaults, **fields})

    return make


@pytest.fixture
def client_record(make_client: Any, therapist: Any) -> Any:
    """A client of `therapist`, with a portal login (username "cora")."""
    return make_client(therapist, username="cora")


@pytest.fixture
def screen_client() -> Any:
    """Screen a client on an intake built like tests' make_intake: screen_client(client, *findings, **changes)."""
    from backcare.clinic.services.screening import run_screening
    from conftest import make_intake

    def screen(
        client: Any, *findings: Any, kind: str = "intake", by: Any = None, consent: bool = True, **changes: Any
    ) -> Any:
        if consent:
            sign(client)
        document = make_intake(*findings, **changes)
        document["id"] = f"client-{client.pk}"
        document["age"] = client.age_on()
        return run_screening(client, document, kind=kind, by=by)

    return screen


def sign(client: Any) -> Any:
    """The client's signature of the current consent text (as they give it in the portal), unless already signed."""
    from backcare.clinic.services import consent

    text = consent.current_consent_text()
    if text is None or consent.has_current_consent(client):
        return consent.current_consent(client)
    return consent.sign_consent(client, text, client.full_name, by=client.user)


def login(page_client: Any, user: Any) -> Any:
    """Log a Django test client in as this user (bypassing axes, which needs a request)."""
    page_client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return page_client
