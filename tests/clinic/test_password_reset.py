"""Password reset by email and password change, through the pages, with the email caught by a real SMTP server on
loopback (aiosmtpd): no account enumeration (same answer, similar time), rate limits per address and per client
address, and every other session of the user signed out after a change or a reset."""

from __future__ import annotations

import re
import statistics
import time

import pytest
from django.db import connection
from django.test import Client as PageClient
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from backcare.clinic.models import AuditEvent
from backcare.clinic.services.mail import wait_for_sent
from backcare.common.models import UserSession
from backcare.common.sessions import end_sessions_of
from clinic_fixtures import PASSWORD, login
from scheduling.test_reminders_smtp import Inbox, body_text, smtp_server

NEW_PASSWORD = "juniper-quarry-lantern-58"
RESET = reverse("password_reset")


@pytest.fixture
def inbox():
    with smtp_server() as (_controller, received):
        yield received


def ask_reset(page_client, email, ip="198.51.100.7"):
    response = page_client.post(RESET, {"email": email}, REMOTE_ADDR=ip)
    wait_for_sent()
    return response


def reset_link(inbox, address) -> str:
    messages = inbox.to(address)
    assert messages, f"no email to {address}"
    links = re.findall(r"https?://\S+/password/reset/\S+/", body_text(messages[-1]))
    assert len(links) == 1, links
    return links[0].split("testserver", 1)[1]


def set_new_password(page_client, link, password=NEW_PASSWORD):
    opened = page_client.get(link)
    assert opened.status_code == 302  # Django moves the token out of the address into the session
    form = page_client.get(opened["Location"])
    assert form.status_code == 200 and "Choose a new password" in form.content.decode()
    return page_client.post(opened["Location"], {"new_password1": password, "new_password2": password})


def signed_in(page_client) -> bool:
    response = page_client.get(reverse("dashboard"))
    return response.status_code in (200, 302) and not response.get("Location", "").startswith(reverse("login"))


def test_a_staff_member_resets_their_password_by_email(client, therapist, inbox):
    assert 'href="/password/reset/"' in client.get(reverse("login")).content.decode()
    response = ask_reset(client, "THEO@x.test")
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_done")
    assert "Check your email" in client.get(response["Location"]).content.decode()
    assert [str(m["subject"]) for m in inbox.to("theo@x.test")] == ["Choose a new Backcare password"]
    link = reset_link(inbox, "theo@x.test")
    assert "works once and for 60 minutes" in body_text(inbox.to("theo@x.test")[0])

    short = client.get(client.get(link)["Location"])
    done = client.post(short.wsgi_request.path, {"new_password1": "short", "new_password2": "short"})
    body = done.content.decode()
    assert done.status_code == 200 and "New password confirmation: This password is too short." in body

    response = set_new_password(client, link)
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_complete")
    assert "Your new password is saved" in client.get(response["Location"]).content.decode()
    therapist.user.refresh_from_db()
    assert therapist.user.check_password(NEW_PASSWORD) and not therapist.user.check_password(PASSWORD)
    assert AuditEvent.objects.filter(action="password_reset", user=therapist.user).count() == 1
    # The link works once.
    again = client.get(link)
    assert again.status_code == 200 and "This link cannot be used" in again.content.decode()


def test_a_client_resets_their_password_by_email(client, client_record, inbox):
    client_record.user.email = "cora@x.test"
    client_record.user.save()
    ask_reset(client, "cora@x.test")
    assert set_new_password(client, reset_link(inbox, "cora@x.test")).status_code == 302
    client_record.user.refresh_from_db()
    assert client_record.user.check_password(NEW_PASSWORD)


def test_the_answer_is_the_same_whether_or_not_an_account_has_the_address(client, therapist, inbox):
    known = ask_reset(client, "theo@x.test")
    unknown = ask_reset(client, "nobody@x.test")
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    page = client.get(known["Location"]).content.decode()
    assert page == client.get(unknown["Location"]).content.decode()
    assert inbox.to("nobody@x.test") == [] and len(inbox.to("theo@x.test")) == 1
    requested = AuditEvent.objects.filter(action="password_reset_requested").order_by("id")
    assert [e.detail["users"] for e in requested] == [[therapist.user.pk], []]


def test_the_answer_takes_as_long_whether_or_not_an_email_goes_out(client, therapist):
    """With a mail server that takes two seconds per message, asking for a known address is no slower (measured
    here: about 0.04 s for either; sending in the request made it 2 s)."""
    with smtp_server(Inbox(delay=2.0)) as (_controller, slow_inbox):
        client.post(RESET, {"email": "warm-up@x.test"}, REMOTE_ADDR="198.51.100.8")  # templates, first query
        timings: dict[str, list[float]] = {"theo@x.test": [], "nobody@x.test": []}
        for _ in range(3):
            for address in timings:
                started = time.perf_counter()
                response = client.post(RESET, {"email": address}, REMOTE_ADDR="198.51.100.8")
                timings[address].append(time.perf_counter() - started)
                assert response.status_code == 302
        wait_for_sent()
        assert len(slow_inbox.to("theo@x.test")) == 3
    known, unknown = (statistics.median(t) for t in timings.values())
    assert known < 1.0 and abs(known - unknown) < 0.5, timings


def test_one_address_gets_at_most_three_emails_an_hour(client, therapist, inbox, settings):
    assert settings.BACKCARE["RESET_PER_ADDRESS"] == 3
    for n in range(5):
        response = ask_reset(client, "theo@x.test", ip=f"198.51.100.{n + 10}")
        assert response.status_code == 302 and response["Location"] == reverse("password_reset_done")
    assert len(inbox.to("theo@x.test")) == 3


def test_one_client_address_is_refused_after_its_hourly_limit(client, therapist, inbox, settings):
    settings.BACKCARE = {**settings.BACKCARE, "RESET_PER_IP": 4}
    for n in range(4):
        assert ask_reset(client, f"someone{n}@x.test", ip="203.0.113.5").status_code == 302
    refused = ask_reset(client, "theo@x.test", ip="203.0.113.5")
    assert refused.status_code == 429 and "More than 4 password resets" in refused.content.decode()
    assert inbox.to("theo@x.test") == []
    assert ask_reset(client, "theo@x.test", ip="203.0.113.6").status_code == 302  # another address is served
    assert len(inbox.to("theo@x.test")) == 1


def test_a_bad_address_is_named_and_kept(client):
    response = client.post(RESET, {"email": "not an address"})
    body = response.content.decode()
    assert response.status_code == 200 and "Email address: enter an address such as name@example.org." in body
    assert 'value="not an address"' in body
    assert "Email address: this field is required." in client.post(RESET, {}).content.decode()


def sign_in(username: str) -> PageClient:
    browser = PageClient()
    assert browser.post(reverse("login"), {"username": username, "password": PASSWORD}).status_code == 302
    return browser


def test_a_reset_signs_out_every_session_of_the_user(client, therapist, front_desk, inbox):
    laptop, phone, colleague = sign_in("theo"), sign_in("theo"), sign_in("fred")
    assert signed_in(laptop) and signed_in(phone)
    ask_reset(client, "theo@x.test")
    set_new_password(client, reset_link(inbox, "theo@x.test"))
    assert not signed_in(laptop) and not signed_in(phone)
    assert signed_in(colleague)
    users = [s.get_decoded().get("_auth_user_id") for s in UserSession.objects.all()]
    assert str(therapist.user.pk) not in users and str(front_desk.user.pk) in users
    assert list(UserSession.objects.exclude(user_id=None).values_list("user_id", flat=True)) == [front_desk.user.pk]
    event = AuditEvent.objects.get(action="password_reset")
    assert event.detail == {"other_sessions_ended": 2}


def test_a_change_keeps_this_session_and_signs_out_the_others(therapist):
    here, elsewhere = sign_in("theo"), sign_in("theo")
    url = reverse("password_change")
    wrong = here.post(url, {"old_password": "wrong", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert "Old password: Your old password was entered incorrectly." in wrong.content.decode()
    mismatch = here.post(url, {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": "other-1"})
    assert "New password confirmation: The two password fields" in mismatch.content.decode()
    response = here.post(url, {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("password_change_done")
    assert "Your other sessions have been signed out" in here.get(response["Location"]).content.decode()
    assert signed_in(here) and not signed_in(elsewhere)
    therapist.user.refresh_from_db()
    assert therapist.user.check_password(NEW_PASSWORD)
    assert AuditEvent.objects.get(action="password_change").detail == {"other_sessions_ended": 1}


def test_a_client_changes_their_password_from_the_portal(client, client_record):
    login(client, client_record.user)
    assert f'href="{reverse("password_change")}"' in client.get(reverse("portal")).content.decode()
    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    client_record.user.refresh_from_db()
    assert client_record.user.check_password(NEW_PASSWORD)


def test_ending_a_users_sessions_is_one_delete_however_many_sessions_the_clinic_has(therapist, front_desk):
    for _ in range(3):
        sign_in("fred")
    mine = [sign_in("theo") for _ in range(2)]
    with CaptureQueriesContext(connection) as few:
        assert end_sessions_of(therapist.user.pk) == 2
    for _ in range(20):
        sign_in("fred")
    mine = [sign_in("theo") for _ in range(2)]
    with CaptureQueriesContext(connection) as many:
        assert end_sessions_of(therapist.user.pk) == 2
    assert len(many) == len(few) == 1, many.captured_queries  # one DELETE ... WHERE user_id = %s
    assert not any(signed_in(b) for b in mine)
    assert UserSession.objects.filter(user_id=front_desk.user.pk).count() == 23
