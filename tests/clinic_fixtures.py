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
    if text is None:
        # A transactional test empties the tables, the consent text its migration published among them: publish
        # it again, as the migration does, so the client can sign it (no course or session starts without).
        from importlib import import_module

        from django.apps import apps

        import_module("backcare.clinic.migrations.0002_audit_append_only_and_consent").publish_consent(apps, None)
        text = consent.current_consent_text()
    if consent.has_current_consent(client):
        return consent.current_consent(client)
    return consent.sign_consent(client, text, client.full_name, by=client.user)


def login(page_client: Any, user: Any) -> Any:
    """Log a Django test client in as this user (bypassing axes, which needs a request), past the second step of
    signing in where the user needs one (see `pass_second_factor`)."""
    page_client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    pass_second_factor(page_client, user)
    return page_client


# --- Two-factor sign-in ------------------------------------------------------------------------------------------


def enrol_app(user: Any) -> Any:
    """Give the user a confirmed authenticator app (a TOTP device) and recovery codes, as the set-up page does;
    returns the device, whose key tests use to compute real codes (`totp_code`)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from backcare.clinic.services import two_factor

    device = two_factor.app_device(user)
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=two_factor.APP_NAME, confirmed=True)
        two_factor._issue_recovery_codes(user)
    return device


def totp_code(device: Any, *, steps_ahead: int = 0) -> str:
    """The 6-digit code an authenticator app with this device's key shows now (or `steps_ahead` 30-second steps
    later, which the server also accepts for one step of clock drift), computed with django-otp's RFC 6238 code."""
    import time

    from django_otp.oath import TOTP

    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def fresh_totp_code(device: Any) -> str:
    """A code the server has not seen yet: now's, or the next step's when now's was used already (a real app's user
    would wait for it)."""
    import time

    device.refresh_from_db()
    now_t = int((time.time() - device.t0) // device.step)
    return totp_code(device, steps_ahead=0 if now_t > device.last_t else 1)


def pass_second_factor(page_client: Any, user: Any) -> None:
    """For a user who must use a second factor (every owner, staff of a clinic that requires it, anyone with an app):
    enrol an app if they have none and mark the test client's session as past the code step, as the code page does
    with django_otp.login. The code step itself is tested through the pages in tests/clinic/test_two_factor.py."""
    from django_otp import DEVICE_ID_SESSION_KEY

    from backcare.clinic.access import staff_of
    from backcare.clinic.services import two_factor

    staff = staff_of(user)
    if staff is None or not (two_factor.required_for(staff) or two_factor.has_app(user)):
        return
    device = enrol_app(user)
    session = page_client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
