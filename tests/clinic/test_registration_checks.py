"""Registering from an invitation: the date of birth is checked, with limited tries; and the in-clinic hand-over, in
which the staff member is signed out and the client sets their own password on the clinic's device."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from backcare.clinic.models import AuditEvent, Invitation
from backcare.clinic.services.consent import HANDOVER_MINUTES, INVITATION_CHECKS, new_invitation
from clinic_fixtures import login

NEW_PASSWORD = "walnut-harbour-lantern-42"
RIGHT_DOB = "14/03/1985"  # make_client's default


def registration(dob=RIGHT_DOB, username="cora.c"):
    return {"date_of_birth": dob, "username": username, "password": NEW_PASSWORD, "password_again": NEW_PASSWORD}


@pytest.fixture
def invited(make_client, therapist):
    newbie = make_client(therapist, email="cora@x.test")
    _, token = new_invitation(newbie, therapist)
    return newbie, reverse("register", args=[token])


def test_a_wrong_date_of_birth_is_refused_by_name_and_keeps_what_was_typed(client, invited):
    newbie, path = invited
    response = client.post(path, registration(dob="15/03/1985"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Your date of birth: This is not the date of birth the clinic has for you." in body
    assert f"{INVITATION_CHECKS - 1} tries left" in body
    assert 'value="cora.c"' in body and 'value="15/03/1985"' in body
    newbie.refresh_from_db()
    assert newbie.user is None and Invitation.objects.get(client=newbie).failed_checks == 1
    assert client.post(path, registration()).status_code == 302
    newbie.refresh_from_db()
    assert newbie.user.username == "cora.c"


def test_a_date_that_is_not_a_date_is_named_and_not_counted(client, invited):
    newbie, path = invited
    body = client.post(path, registration(dob="next tuesday")).content.decode()
    assert "Your date of birth: Enter a date as day/month/year" in body and 'value="next tuesday"' in body
    body = client.post(path, {**registration(), "date_of_birth": ""}).content.decode()
    assert "Your date of birth: This field is required." in body
    assert Invitation.objects.get(client=newbie).failed_checks == 0


def test_after_too_many_wrong_dates_the_link_stops_working(client, invited):
    newbie, path = invited
    for n in range(INVITATION_CHECKS - 1):
        response = client.post(path, registration(dob=f"0{n + 1}/01/1970"))
        assert response.status_code == 200
    last = client.post(path, registration(dob="01/02/1970"))
    assert last.status_code == 410 and "stopped after too many wrong dates of birth" in last.content.decode()
    # Now even the right date of birth gets nothing.
    assert client.post(path, registration()).status_code == 410
    assert client.get(path).status_code == 410
    newbie.refresh_from_db()
    assert newbie.user is None
    stopped = AuditEvent.objects.get(action="invitation_stopped", client=newbie)
    assert stopped.detail == {"failed_checks": INVITATION_CHECKS}


# --- the in-clinic hand-over ------------------------------------------------------------------------------------------


def start_handover(page_client, staff, client_obj):
    login(page_client, staff.user)
    url = reverse("invite_client", args=[client_obj.pk])
    page = page_client.get(url).content.decode()
    key = re.search(r'name="submission_key" value="([^"]+)"', page).group(1)
    staff_session = page_client.session.session_key
    response = page_client.post(url, {"submission_key": key, "method": "handover"})
    return staff_session, response


def test_a_hand_over_signs_the_staff_member_out_and_the_client_registers_on_the_device(client, make_client, therapist):
    newbie = make_client(therapist, first_name="Hana", last_name="Hand", email="")
    staff_session, response = start_handover(client, therapist, newbie)
    assert response.status_code == 302 and response["Location"] == reverse("register_handover")
    # The staff member is signed out: their session is gone, and staff pages ask for a sign-in.
    assert client.session.session_key != staff_session
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("dashboard"))["Location"].startswith(reverse("login"))
    # No page shows the secret: only a hash is stored, and the device's page has no link in it.
    page = client.get(reverse("register_handover"))
    body = page.content.decode()
    assert page.status_code == 200 and "Welcome, Hana" in body and "This is the clinic's device" in body
    token = client.session["backcare_handover_token"]
    assert token not in body and "/register/" not in body
    assert mail.outbox == []

    wrong = client.post(reverse("register_handover"), registration(dob="01/01/2000", username="hana"))
    assert "This is not the date of birth the clinic has for you" in wrong.content.decode()
    done = client.post(reverse("register_handover"), registration(username="hana"))
    assert done.status_code == 302 and done["Location"] == reverse("consent")
    newbie.refresh_from_db()
    assert newbie.user.username == "hana" and newbie.user.check_password(NEW_PASSWORD)
    assert "backcare_handover_token" not in client.session
    started = AuditEvent.objects.get(action="invite", client=newbie)
    assert started.user == therapist.user and started.detail["method"] == "handover"
    registered = AuditEvent.objects.get(action="register", client=newbie)
    assert registered.user == newbie.user and registered.detail["method"] == "handover"
    assert registered.detail["invited_by"] == "Theo Therapist (Therapist)"


def test_a_hand_over_lasts_minutes_and_works_once(client, make_client, owner, therapist):
    newbie = make_client(therapist, first_name="Hana", last_name="Hand", email="")
    start_handover(client, owner, newbie)
    invitation = Invitation.objects.get(client=newbie)
    assert invitation.method == "handover"
    assert invitation.expires_at - invitation.created_at == dt.timedelta(minutes=HANDOVER_MINUTES)
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    response = client.post(reverse("register_handover"), registration(username="hana"))
    assert response.status_code == 410 and "expired" in response.content.decode()


def test_the_hand_over_page_opens_only_after_staff_start_one(client, client_record):
    response = client.get(reverse("register_handover"))
    assert response.status_code == 404 and "hands you their device" in response.content.decode()
    login(client, client_record.user)
    assert client.get(reverse("register_handover")).status_code == 409
