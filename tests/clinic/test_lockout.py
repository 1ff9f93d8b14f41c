"""Sign-in throttling that nobody can turn against someone else (backcare.clinic.signin; README, "Sign-in
throttling"). Before: five failures for one username from one address locked that username there, so behind the
proxy, where every client was 127.0.0.1, a stranger's five tries locked the owner out for everyone; and guesses
spread over addresses had no cap at all."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from clinic_fixtures import PASSWORD

pytestmark = pytest.mark.django_db

PROXY = "127.0.0.1"  # behind a proxy that does not pass the client's address, every client is this


def attempt(browser: Client, username: str, password: str, address: str = PROXY) -> Any:
    return browser.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def sign_out(browser: Client) -> None:
    """Sign out as a person does (the test client's logout() would also forget the device cookie)."""
    assert browser.post("/logout/").status_code == 302
    assert "_auth_user_id" not in browser.session


def wait_minutes(response: Any) -> int:
    assert response.status_code == 429, response.status_code
    found = re.search(r"Try again in (\d+) minutes?", response.content.decode())
    assert found, response.content.decode()[:500]
    return int(found[1])


def age_failures(key: str, by: dt.timedelta) -> None:
    """Let time pass for an account's (or device's) failures."""
    from backcare.clinic.models import SignInFailures

    row = SignInFailures.objects.get(key=key)
    row.last_failure_at -= by
    row.save()


def test_a_wrong_password_flood_from_one_address_does_not_lock_other_users(owner, therapist, therapist2):
    desk = Client()  # the owner's own computer: she has signed in on it before
    assert attempt(desk, "olivia", PASSWORD).status_code == 302
    sign_out(desk)
    stranger = Client()
    for n in range(40):
        assert attempt(stranger, "olivia", f"guess-{n}").status_code in (200, 429)
    assert attempt(stranger, "olivia", PASSWORD).status_code == 429, "the stranger cannot go on guessing"
    # The owner, at the same address, on her own computer, signs in at once.
    assert attempt(desk, "olivia", PASSWORD).status_code == 302
    # Colleagues elsewhere are not touched, nor is a colleague's computer at that address.
    assert attempt(Client(), "tara", PASSWORD, address="198.51.100.7").status_code == 302
    colleague = Client()
    assert attempt(colleague, "theo", PASSWORD, address="198.51.100.8").status_code == 302
    sign_out(colleague)
    assert attempt(colleague, "theo", PASSWORD).status_code == 302


def test_per_account_guesses_from_many_addresses_hit_the_cap(therapist):
    refused_right_password = 0
    for n in range(12):
        response = attempt(Client(), "theo", f"guess-{n}", address=f"203.0.113.{n + 1}")
        if n < 4:
            assert response.status_code == 200 and "did not match" in response.content.decode()
            continue
        # From the fifth failure on, the account must wait, whatever the address.
        waited = wait_minutes(response)
        right = attempt(Client(), "theo", PASSWORD, address=f"192.0.2.{n + 1}")
        assert wait_minutes(right) == waited, "during the wait even the right password from elsewhere is refused"
        refused_right_password += 1
        age_failures("account:theo", dt.timedelta(minutes=waited, seconds=1))
    assert refused_right_password == 8
    # After the wait the right password works, and the count starts again.
    assert attempt(Client(), "theo", PASSWORD, address="192.0.2.200").status_code == 302
    from backcare.clinic.models import SignInFailures

    assert not SignInFailures.objects.filter(key="account:theo").exists()


def test_the_delay_grows_and_is_capped(therapist, settings):
    assert settings.BACKCARE_LOGIN["MAX_DELAY_MINUTES"] == 15
    waits = []
    for n in range(10):
        response = attempt(Client(), "theo", f"guess-{n}", address=f"203.0.113.{n + 1}")
        if response.status_code == 429:
            waits.append(wait_minutes(response))
            age_failures("account:theo", dt.timedelta(minutes=waits[-1], seconds=1))
    assert waits == [1, 2, 4, 8, 15, 15]


def test_trying_during_the_wait_does_not_lengthen_it(therapist):
    for n in range(6):
        attempt(Client(), "theo", f"guess-{n}", address=f"203.0.113.{n + 1}")
        if n == 4:
            age_failures("account:theo", dt.timedelta(minutes=1, seconds=1))
    from backcare.clinic.models import SignInFailures

    before = SignInFailures.objects.get(key="account:theo")
    for n in range(20):
        assert attempt(Client(), "theo", f"more-{n}", address="203.0.113.99").status_code == 429
    after = SignInFailures.objects.get(key="account:theo")
    assert (after.failures, after.last_failure_at) == (before.failures, before.last_failure_at)
    age_failures("account:theo", dt.timedelta(minutes=2, seconds=1))
    assert attempt(Client(), "theo", PASSWORD, address="192.0.2.1").status_code == 302


def test_failures_are_forgotten_after_a_day(therapist):
    for n in range(5):
        attempt(Client(), "theo", f"guess-{n}", address=f"203.0.113.{n + 1}")
    age_failures("account:theo", dt.timedelta(hours=24, minutes=1))
    assert attempt(Client(), "theo", "one-more", address="203.0.113.50").status_code == 200


def test_an_address_guessing_many_accounts_is_locked_for_the_cool_off_only(therapist, therapist2, settings):
    from axes.models import AccessAttempt

    assert settings.AXES_FAILURE_LIMIT == 20
    spray = "203.0.113.66"
    for n in range(19):
        assert attempt(Client(), f"user{n}", "Winter2026!", address=spray).status_code == 200
    assert attempt(Client(), "user19", "Winter2026!", address=spray).status_code == 429
    assert attempt(Client(), "theo", PASSWORD, address=spray).status_code == 429, "the address is locked"
    assert attempt(Client(), "theo", PASSWORD, address="198.51.100.1").status_code == 302, "the account is not"
    for _ in range(10):
        attempt(Client(), "tara", "x", address=spray)
    cool_off = dt.timedelta(minutes=settings.BACKCARE_LOGIN["COOLOFF_MINUTES"])
    AccessAttempt.objects.update(attempt_time=timezone.now() - cool_off - dt.timedelta(seconds=5))
    assert attempt(Client(), "tara", PASSWORD, address=spray).status_code == 302, "trying on did not extend it"


def test_a_stolen_device_cookie_has_its_own_limit(therapist):
    device = Client()
    assert attempt(device, "theo", PASSWORD).status_code == 302
    sign_out(device)
    for n in range(4):
        assert attempt(device, "theo", f"guess-{n}").status_code == 200
    assert wait_minutes(attempt(device, "theo", "guess-5")) == 1
    assert wait_minutes(attempt(device, "theo", PASSWORD)) == 1
    # The account itself was not touched: theo signs in on another computer.
    assert attempt(Client(), "theo", PASSWORD, address="192.0.2.9").status_code == 302


def test_a_device_cookie_is_for_its_own_user_and_password(therapist, therapist2):
    from backcare.clinic.signin import DEVICE_COOKIE

    device = Client()
    assert attempt(device, "theo", PASSWORD).status_code == 302
    cookie = device.cookies[DEVICE_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    sign_out(device)
    for n in range(5):
        attempt(Client(), "tara", f"guess-{n}", address=f"203.0.113.{n + 1}")
    assert attempt(device, "tara", PASSWORD).status_code == 429, "theo's computer is not trusted for tara"
    therapist.user.set_password(PASSWORD + "-new")
    therapist.user.save()
    for n in range(5):
        attempt(Client(), "theo", f"guess-{n}", address=f"203.0.113.{n + 1}")
    assert attempt(device, "theo", PASSWORD + "-new").status_code == 429, "a changed password ends the trust"
