"""Security posture: password hashing, login throttling, idle time-out, CSRF, and the production configuration."""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.test import Client, override_settings
from django.utils import timezone
from test_demo import backcare

from backcare.clinic.middleware import LAST_SEEN
from backcare.web.settings import PASSWORD_HASHERS as PRODUCTION_HASHERS
from clinic_fixtures import PASSWORD, login

pytestmark = pytest.mark.django_db


def signed_in(page_client: Client) -> bool:
    return "_auth_user_id" in page_client.session


def attempt(page_client: Client, username: str, password: str) -> Any:
    return page_client.post("/login/", {"username": username, "password": password})


# --- passwords ----------------------------------------------------------------------------------------------


@override_settings(PASSWORD_HASHERS=PRODUCTION_HASHERS)
def test_passwords_are_stored_with_argon2():
    user = get_user_model().objects.create_user(username="newstaff", password=PASSWORD)
    assert user.password.startswith("argon2$argon2id$")
    assert PASSWORD not in user.password
    assert user.check_password(PASSWORD) and not user.check_password(PASSWORD + "x")


@override_settings(PASSWORD_HASHERS=PRODUCTION_HASHERS)
def test_an_older_hash_is_upgraded_to_argon2_at_sign_in(client, therapist):
    user = therapist.user
    user.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
    user.save()
    response = attempt(client, "theo", PASSWORD)
    assert response.status_code == 302 and signed_in(client)
    user.refresh_from_db()
    assert user.password.startswith("argon2$")


# --- login throttling (backcare.clinic.signin, django-axes) ------------------------------------------------------


def test_five_failed_sign_ins_lock_the_username(client, therapist, therapist2):
    for n in range(4):
        response = attempt(client, "theo", f"wrong-{n}")
        assert response.status_code == 200 and "did not match" in response.content.decode()
    locked = attempt(client, "theo", "wrong-5")
    assert locked.status_code == 429
    assert "Too many failed sign-in attempts" in locked.content.decode()
    # Now even the right password is refused, with the lockout page.
    refused = attempt(client, "theo", PASSWORD)
    assert refused.status_code == 429 and "Too many failed sign-in attempts" in refused.content.decode()
    assert not signed_in(client)
    # The lock is for that username: a colleague at the same desk still signs in.
    assert attempt(Client(), "tara", PASSWORD).status_code == 302


def test_the_lock_ends_after_the_wait(client, therapist):
    """The account's wait after five failures is a minute, then doubles, capped (tests/clinic/test_lockout.py)."""
    from backcare.clinic.models import SignInFailures

    assert settings.BACKCARE_LOGIN["FREE_FAILURES"] == 5
    for n in range(5):
        attempt(client, "theo", f"wrong-{n}")
    assert attempt(client, "theo", PASSWORD).status_code == 429
    # A few seconds before the minute ends it is still locked...
    SignInFailures.objects.update(last_failure_at=timezone.now() - dt.timedelta(seconds=55))
    assert attempt(client, "theo", PASSWORD).status_code == 429
    # ...and once it has passed, the right password works again.
    SignInFailures.objects.update(last_failure_at=timezone.now() - dt.timedelta(seconds=61))
    response = attempt(client, "theo", PASSWORD)
    assert response.status_code == 302 and signed_in(client)


def test_a_successful_sign_in_resets_the_count(client, therapist):
    for n in range(4):
        attempt(client, "theo", f"wrong-{n}")
    assert attempt(client, "theo", PASSWORD).status_code == 302
    client.logout()
    for n in range(4):
        assert attempt(client, "theo", f"wrong-again-{n}").status_code == 200
    assert attempt(client, "theo", PASSWORD).status_code == 302


# --- idle time-out ----------------------------------------------------------------------------------------------


def idle_for(page_client: Client, seconds: float) -> None:
    session = page_client.session
    session[LAST_SEEN] = time.time() - seconds
    session.save()


def test_a_session_idle_for_over_30_minutes_is_signed_out(client, therapist):
    login(client, therapist.user)
    assert client.get("/dashboard/").status_code == 200
    idle_for(client, 31 * 60)
    response = client.get("/dashboard/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert not signed_in(client)
    page = client.get(response["Location"])
    assert "signed out after a period of inactivity" in page.content.decode()


def test_a_session_idle_for_less_than_30_minutes_stays(client, therapist):
    login(client, therapist.user)
    assert client.get("/dashboard/").status_code == 200
    idle_for(client, 29 * 60)
    assert client.get("/dashboard/").status_code == 200
    assert signed_in(client)
    assert time.time() - client.session[LAST_SEEN] < 60, "each request counts as activity"


def test_the_session_cookie_is_short_lived_and_not_readable_by_scripts():
    assert settings.SESSION_IDLE_SECONDS == 30 * 60
    assert settings.SESSION_COOKIE_AGE <= 30 * 60
    assert settings.SESSION_COOKIE_HTTPONLY and settings.SESSION_EXPIRE_AT_BROWSER_CLOSE


# --- CSRF --------------------------------------------------------------------------------------------------------


def test_a_post_without_the_csrf_token_is_refused(therapist):
    browser = Client(enforce_csrf_checks=True)
    refused = attempt(browser, "theo", PASSWORD)
    assert refused.status_code == 403 and not signed_in(browser)
    page = browser.get("/login/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token
    response = browser.post("/login/", {"username": "theo", "password": PASSWORD, "csrfmiddlewaretoken": token[1]})
    assert response.status_code == 302 and signed_in(browser)


def test_signing_out_needs_the_csrf_token(therapist):
    browser = login(Client(enforce_csrf_checks=True), therapist.user)
    assert browser.post("/logout/").status_code == 403
    assert browser.get("/dashboard/").status_code == 200


# --- production configuration (the real command, as an operator runs it) ------------------------------------


PRODUCTION = {
    "BACKCARE_ENV": "production",
    "BACKCARE_SECRET_KEY": "k3y-" + "Qx7vN2pL9zR4tW8m" * 4,
    "BACKCARE_AUDIT_KEY": "2026-1:" + "aUd1tK3y" * 5,
    "BACKCARE_ALLOWED_HOSTS": "clinic.example.org",
}


def test_production_settings_pass_the_deployment_check(tmp_path):
    done = backcare(tmp_path, "manage", "check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


@pytest.mark.parametrize("secret", [None, ""], ids=["unset", "empty"])
@pytest.mark.parametrize("command", [["manage", "check"], ["serve"]], ids=["check", "serve"])
def test_production_refuses_to_start_without_a_secret_key(tmp_path, secret, command):
    env = {k: v for k, v in PRODUCTION.items() if k != "BACKCARE_SECRET_KEY"}
    if secret is not None:
        env["BACKCARE_SECRET_KEY"] = secret
    done = backcare(tmp_path, *command, **env)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "backcare: configuration: BACKCARE_SECRET_KEY must be set in production (50 or more random characters)"
    )
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_a_bad_setting_names_the_variable(tmp_path):
    done = backcare(tmp_path, "manage", "check", BACKCARE_IDLE_MINUTES="half an hour")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "BACKCARE_IDLE_MINUTES must be a whole number" in done.stderr


def test_production_refuses_debug_pages(tmp_path):
    done = backcare(tmp_path, "manage", "check", BACKCARE_DEBUG="true", **PRODUCTION)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "BACKCARE_DEBUG must not be on in production" in done.stderr


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("abc", "it has 3"),
        ("x" * 49, "it has 49"),
        ("ab" * 30, "it uses only 2 different characters"),
    ],
    ids=["3 characters", "49 characters", "2 different characters"],
)
@pytest.mark.parametrize("command", [["manage", "check"], ["serve"]], ids=["check", "serve"])
def test_production_refuses_a_short_or_simple_secret_key(tmp_path, secret, why, command):
    done = backcare(tmp_path, *command, **{**PRODUCTION, "BACKCARE_SECRET_KEY": secret})
    assert done.returncode == 2 and "Traceback" not in done.stderr and done.stdout == ""
    assert done.stderr.strip() == (
        "backcare: configuration: BACKCARE_SECRET_KEY must be 50 or more random characters with at least 5 different"
        f" ones in production ({why}); make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )
    assert secret not in done.stderr


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/login/", "text/plain"), ("/api/clients", "application/problem+json"), ("/fhir/Bundle/$import", "fhir")],
)
def test_a_declared_body_over_the_limit_is_refused_under_any_server(client, clinic, path, content_type):
    """`backcare serve` refuses it in waitress (tests/clinic/test_serve.py); this holds under another WSGI server.
    (A clinic exists: on an empty database the sign-in page sends everyone to the first-run set-up.)"""
    too_big = str(settings.MAX_REQUEST_BYTES + 1)
    response = client.post(path, data="x", content_type="application/octet-stream", CONTENT_LENGTH=too_big)
    assert response.status_code == 413 and content_type in response["Content-Type"]
    assert "larger than 11 MB" in response.content.decode()
    fits = client.post("/login/", {"username": "nobody", "password": "x"})
    assert fits.status_code == 200
