"""The owner runs the clinic's staff in the application: invites by email with a role (through the outbox, a link
that works once and expires, where the invitee chooses their password), picks a therapist's techniques from a
list, links to their hours, and deactivates a leaver (records stay; no sign-in, sessions ended, API tokens
revoked). The invitation really arrives over SMTP."""

from __future__ import annotations

import re

import pytest
from django.test import Client as PageClient
from django.urls import reverse

from backcare.api.models import ApiToken
from backcare.api.tokens import create_token, find_token
from backcare.clinic.models import AuditEvent, StaffMember
from backcare.clinic.services import staff as service
from backcare.common import outbox
from backcare.common.models import OutboundMessage
from clinic_fixtures import PASSWORD, login
from scheduling.test_reminders_smtp import body_text, smtp_server

CHOSEN = "marble-thistle-canoe-88"


def invite(page_client, **changes):
    data = {"display_name": "Nora New", "email": "Nora@Clinic.example", "role": "therapist"}
    data.update(changes)
    return page_client.post(reverse("staff_invite"), data)


def link_in(text: str) -> str:
    links = re.findall(r"https?://\S+/staff/join/\S+/", text)
    assert len(links) == 1, links
    return links[0].split("testserver", 1)[1]


def signs_in(username: str, password: str) -> bool:
    """Through the sign-in page, as a person would (the sign-in guard needs the request)."""
    response = PageClient().post(reverse("login"), {"username": username, "password": password})
    return response.status_code == 302


def join(page_client, link, password=CHOSEN):
    opened = page_client.get(link)
    assert opened.status_code == 302  # the token moves out of the address into the session, as a reset's does
    form = page_client.get(opened["Location"])
    assert form.status_code == 200 and "Choose your password" in form.content.decode()
    return page_client.post(opened["Location"], {"new_password1": password, "new_password2": password})


@pytest.mark.django_db
def test_the_owner_invites_a_therapist_with_techniques_and_the_invitation_is_queued(client, owner):
    login(client, owner.user)
    page = client.get(reverse("staff_invite")).content.decode()
    assert 'type="checkbox" name="qualified_techniques"' in page  # a list to tick, not JSON
    response = invite(client, qualified_techniques=["swedish_relaxation", "remedial"])
    assert response.status_code == 302 and response["Location"] == reverse("staff_list")
    member = StaffMember.objects.get(display_name="Nora New")
    assert (member.role, member.clinic_id, member.active) == ("therapist", owner.clinic_id, True)
    assert member.qualified_techniques == ["remedial", "swedish_relaxation"]
    assert member.user.username == "nora@clinic.example" and not member.user.has_usable_password()
    message = OutboundMessage.objects.get(kind="clinic.staff_invitation")
    assert message.to == ["nora@clinic.example"] and message.secret and message.clinic_id == owner.clinic_id
    assert "nora@clinic.example" in message.body_text  # the username
    event = AuditEvent.objects.get(action="staff_invite")
    assert event.user == owner.user and event.detail["role"] == "therapist"
    listing = client.get(reverse("staff_list")).content.decode()
    assert "Invited, not joined yet" in listing and reverse("setup_hours", args=[member.pk]) in listing


@pytest.mark.django_db
def test_an_address_that_has_an_account_is_refused_by_field_keeping_what_was_typed(client, owner, therapist):
    login(client, owner.user)
    body = invite(client, email=therapist.user.email, display_name="Typed Name").content.decode()
    assert f"Email: {therapist.user.email} already has an account here." in body
    assert "Typed Name" in body and not StaffMember.objects.filter(display_name="Typed Name").exists()
    bad = invite(client, email="nowhere", role="boss").content.decode()
    assert "Email: enter a valid email address" in bad and "Role: choose one of the options" in bad


@pytest.mark.django_db
def test_the_invitation_link_sets_the_password_once_and_signs_the_member_in(client, owner):
    login(client, owner.user)
    invite(client)
    link = link_in(OutboundMessage.objects.get(kind="clinic.staff_invitation").body_text)
    newcomer = PageClient()
    done = join(newcomer, link)
    assert done.status_code == 302 and done["Location"] == reverse("home")
    assert newcomer.get(reverse("dashboard")).status_code == 200  # signed in, as a therapist
    assert signs_in("nora@clinic.example", CHOSEN)
    assert AuditEvent.objects.filter(action="staff_joined").count() == 1
    again = PageClient().get(link, follow=True)
    assert "This link cannot be used" in again.content.decode()  # single use
    # The outbox would not send a copy any more either.
    assert (
        service.staff_invitation_still_open(OutboundMessage.objects.get()) == "the member of staff has joined already"
    )


@pytest.mark.django_db
def test_an_invitation_expires_and_is_no_password_reset(client, owner, settings):
    login(client, owner.user)
    invite(client)
    member = StaffMember.objects.get(display_name="Nora New")
    tokens = service.invitation_tokens
    days = settings.BACKCARE["STAFF_INVITATION_DAYS"]
    old = tokens._make_token_with_timestamp(
        member.user, tokens._num_seconds(tokens._now()) - days * 86400 - 60, tokens.secret
    )
    assert not tokens.check_token(member.user, old)
    fresh = tokens.make_token(member.user)
    assert tokens.check_token(member.user, fresh)
    from django.contrib.auth.tokens import default_token_generator

    assert not default_token_generator.check_token(member.user, fresh)  # its own salt: not a reset link
    assert not tokens.check_token(member.user, default_token_generator.make_token(member.user))


@pytest.mark.django_db
def test_the_owner_changes_role_and_techniques_from_checkboxes(client, owner, therapist):
    login(client, owner.user)
    page = client.get(reverse("staff_edit", args=[therapist.pk])).content.decode()
    assert page.count('name="qualified_techniques"') > 3 and "checked" in page
    response = client.post(
        reverse("staff_edit", args=[therapist.pk]),
        {"display_name": "Theo T.", "role": "therapist", "qualified_techniques": ["connective_tissue"]},
    )
    assert response.status_code == 302
    therapist.refresh_from_db()
    assert therapist.display_name == "Theo T." and therapist.qualified_techniques == ["connective_tissue"]
    changed = AuditEvent.objects.get(action="staff_update").detail["changed"]
    assert changed["qualified_techniques"] == [["swedish_relaxation", "remedial"], ["connective_tissue"]]
    bad = client.post(reverse("staff_edit", args=[therapist.pk]), {"display_name": "", "role": "therapist"})
    assert "Name: this is required." in bad.content.decode()


@pytest.mark.django_db
def test_the_last_owner_stays_an_owner(client, owner):
    login(client, owner.user)
    body = client.post(
        reverse("staff_edit", args=[owner.pk]), {"display_name": "Olivia", "role": "therapist"}
    ).content.decode()
    assert "Role: the clinic needs an owner" in body
    owner.refresh_from_db()
    assert owner.role == "owner"


@pytest.mark.django_db
def test_a_deactivated_leaver_keeps_their_records_but_cannot_sign_in(client, owner, therapist, client_record):
    their_session = login(PageClient(), therapist.user)
    assert their_session.get(reverse("dashboard")).status_code == 200
    _, token = create_token(therapist.user, name="phone", scopes=["read"])
    login(client, owner.user)
    response = client.post(reverse("staff_deactivate", args=[therapist.pk]))
    assert response.status_code == 302
    therapist.refresh_from_db()
    therapist.user.refresh_from_db()
    assert not therapist.active and not therapist.user.is_active
    assert not signs_in(therapist.user.username, PASSWORD)
    after = their_session.get(reverse("dashboard"))
    assert after.status_code == 302 and after["Location"].startswith(reverse("login"))  # the session ended
    assert ApiToken.objects.get(user=therapist.user).revoked_at is not None
    assert "revoked" in find_token(token).detail
    client_record.refresh_from_db()
    assert client_record.therapist_id == therapist.pk  # the records stay theirs
    event = AuditEvent.objects.get(action="staff_deactivate")
    assert event.detail["api_tokens_revoked"] == 1 and event.detail["sessions_ended"] == 1
    assert "Deactivated" in client.get(reverse("staff_list")).content.decode()


@pytest.mark.django_db
def test_the_owner_cannot_deactivate_themselves(client, owner):
    login(client, owner.user)
    client.post(reverse("staff_deactivate", args=[owner.pk]))
    owner.refresh_from_db()
    assert owner.active and owner.user.is_active


@pytest.mark.django_db
def test_staff_of_another_clinic_are_not_found(client, owner):
    from django.contrib.auth import get_user_model

    from backcare.clinic.models import Clinic

    other = Clinic.objects.create(name="Elsewhere")
    stranger = StaffMember.objects.create(
        user=get_user_model().objects.create_user("stranger", password=PASSWORD),
        clinic=other,
        role="therapist",
        display_name="Stranger",
    )
    login(client, owner.user)
    assert client.get(reverse("staff_edit", args=[stranger.pk])).status_code == 404
    assert client.post(reverse("staff_deactivate", args=[stranger.pk])).status_code == 404
    stranger.refresh_from_db()
    assert stranger.active


@pytest.mark.django_db
def test_the_staff_invitation_arrives_over_smtp_and_its_link_works(client, owner):
    login(client, owner.user)
    with smtp_server() as (_controller, inbox):
        invite(client)
        assert outbox.send_due().sent == 1
        messages = inbox.to("nora@clinic.example")
    assert len(messages) == 1
    assert "invited" in messages[0]["Subject"]
    link = link_in(body_text(messages[0]))
    assert OutboundMessage.objects.get().body_text == ""  # a secret body is blanked once sent
    assert join(PageClient(), link).status_code == 302
