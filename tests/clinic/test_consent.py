"""Invitations, registration from the link, and the typed consent signature."""

from __future__ import annotations

import datetime as dt
import re

from django.core import mail
from django.urls import reverse
from django.utils import timezone

from backcare.clinic.models import AuditEvent, Consent, ConsentText, Invitation
from backcare.clinic.services.consent import current_consent_text, token_hash
from backcare.common import outbox
from backcare.common.models import OutboundMessage
from clinic_fixtures import login

NEW_PASSWORD = "walnut-harbour-lantern-42"


def invite(page_client, client_obj) -> str:
    """Make an invitation through the staff page and return the link shown once."""
    url = reverse("invite_client", args=[client_obj.pk])
    page = page_client.get(url).content.decode()
    key = re.search(r'name="submission_key" value="([^"]+)"', page).group(1)
    response = page_client.post(url, {"submission_key": key})
    assert response.status_code == 302
    page = page_client.get(url).content.decode()
    return re.search(r"<code>(http[^<]+)</code>", page).group(1)


def test_invitation_flow_end_to_end(client, make_client, front_desk, settings):
    newbie = make_client(None, first_name="Nina", last_name="New", email="nina@x.test")
    login(client, front_desk.user)
    link = invite(client, newbie)
    token = link.rstrip("/").rsplit("/", 1)[1]
    invitation = Invitation.objects.get(client=newbie)
    assert invitation.token_hash == token_hash(token) and token not in invitation.token_hash
    assert invitation.expires_at - invitation.created_at == dt.timedelta(days=settings.BACKCARE["INVITATION_DAYS"])
    assert outbox.send_due().sent == 1  # the worker sends what the invitation queued
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["nina@x.test"] and link in mail.outbox[0].body
    # Shown once: a second look no longer shows the link.
    assert link not in client.get(reverse("invite_client", args=[newbie.pk])).content.decode()
    assert AuditEvent.objects.filter(action="invite", client=newbie).count() == 1

    client.logout()
    path = reverse("register", args=[token])
    page = client.get(path).content.decode()
    assert "Welcome, Nina" in page
    weak = client.post(path, {"username": "nina", "password": "12345", "password_again": "12345"})
    assert weak.status_code == 200
    body = weak.content.decode()
    assert "Password:" in body and "too short" in body and 'value="nina"' in body
    mismatch = client.post(path, {"username": "nina", "password": NEW_PASSWORD, "password_again": "other-thing-99"})
    assert "The two passwords are not the same." in mismatch.content.decode()
    response = client.post(path, {"username": "nina", "password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("consent")
    newbie.refresh_from_db()
    assert newbie.user.username == "nina" and newbie.user.check_password(NEW_PASSWORD)
    assert Invitation.objects.get(client=newbie).used_at is not None
    assert client.get(reverse("portal")).status_code == 200  # signed in

    # The token works only once.
    client.logout()
    again = client.get(path)
    assert again.status_code == 410 and "already been used" in again.content.decode()
    again = client.post(path, {"username": "nina2", "password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
    assert again.status_code == 410


def test_expired_or_unknown_token_is_refused(client, make_client, therapist):
    newbie = make_client(therapist, first_name="Ed", last_name="Expired", email="")
    from backcare.clinic.services.consent import create_invitation

    invitation, token = create_invitation(newbie, therapist)
    assert len(mail.outbox) == 0  # no email address: nothing sent
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    path = reverse("register", args=[token])
    response = client.get(path)
    assert response.status_code == 410 and "expired" in response.content.decode()
    response = client.post(path, {"username": "ed", "password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
    assert response.status_code == 410
    newbie.refresh_from_db()
    assert newbie.user is None
    assert client.get(reverse("register", args=["not-a-token"])).status_code == 404


def test_new_invitation_replaces_the_old_one(client, make_client, therapist):
    from backcare.clinic.services.consent import create_invitation

    newbie = make_client(therapist, first_name="Ola", last_name="Old", email="")
    _, first = create_invitation(newbie, therapist)
    _, second = create_invitation(newbie, therapist)
    assert client.get(reverse("register", args=[first])).status_code == 410
    assert client.get(reverse("register", args=[second])).status_code == 200


def test_client_with_portal_access_cannot_be_invited(client, client_record, therapist):
    login(client, therapist.user)
    url = reverse("invite_client", args=[client_record.pk])
    client.post(url, {"submission_key": "k1"})
    assert not Invitation.objects.exists()
    assert "already has portal access" in client.get(url).content.decode()


def test_consent_signature_must_match_the_name(client, client_record):
    login(client, client_record.user)
    url = reverse("consent")
    page = client.get(url).content.decode()
    assert "Consent to massage therapy" in page and "Version 1" in page
    assert "<strong>What massage is for.</strong>" in page
    response = client.post(url, {"signature": "Someone Else", "version": "1"})
    assert response.status_code == 200
    body = response.content.decode()
    assert "does not match the name on your record" in body and 'value="Someone Else"' in body
    assert not Consent.objects.exists()
    response = client.post(url, {"signature": "  cora   CLIENT ", "version": "1"})
    assert response.status_code == 302 and response["Location"] == reverse("portal_intake")
    consent = Consent.objects.get(client=client_record)
    assert consent.text == current_consent_text() and consent.text.version == "1"
    assert consent.signature == "cora CLIENT" and consent.signed_at is not None
    client.post(url, {"signature": "Cora Client", "version": "1"})
    assert Consent.objects.count() == 1
    assert AuditEvent.objects.filter(action="sign", client=client_record).count() == 1
    assert "You signed this version" in client.get(url).content.decode()


def test_a_new_consent_version_must_be_signed_again(client, client_record):
    login(client, client_record.user)
    client.post(reverse("consent"), {"signature": "Cora Client", "version": "1"})
    assert client.get(reverse("portal_intake")).status_code == 200
    ConsentText.objects.create(version="2", title="Consent to massage therapy", body="# Consent\n\nNew text.")
    response = client.get(reverse("portal_intake"))
    assert response.status_code == 302 and response["Location"] == reverse("consent")
    page = client.get(reverse("consent")).content.decode()
    assert "Version 2" in page and "New text." in page
    stale = client.post(reverse("consent"), {"signature": "Cora Client", "version": "1"})
    assert "newer version" in stale.content.decode()
    client.post(reverse("consent"), {"signature": "Cora Client", "version": "2"})
    assert client.get(reverse("portal_intake")).status_code == 200


def test_only_staff_can_invite(client, make_client, client_record):
    newbie = make_client(None, first_name="Ann", last_name="On")
    url = reverse("invite_client", args=[newbie.pk])
    response = client.post(url)
    assert response.status_code == 302 and reverse("login") in response["Location"]
    login(client, client_record.user)
    assert client.post(url).status_code == 403
    assert not Invitation.objects.exists()


def test_invite_sent_twice_makes_one_invitation(client, make_client, therapist):
    newbie = make_client(therapist, first_name="Dee", last_name="Double", email="dee@x.test")
    login(client, therapist.user)
    url = reverse("invite_client", args=[newbie.pk])
    client.post(url)  # the client page's button (no key)
    client.post(url)  # a double click
    outbox.send_due()
    assert Invitation.objects.filter(client=newbie).count() == 1 and len(mail.outbox) == 1
    assert "<code>http" in client.get(url).content.decode()


def test_an_invitation_waits_in_the_outbox_while_the_mail_server_is_down(client, make_client, therapist, settings):
    """Queued with the invitation, sent once the server answers; its row never keeps the link after sending."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 2
    newbie = make_client(therapist, first_name="Mo", last_name="Mailless", email="mo@x.test")
    login(client, therapist.user)
    link = invite(client, newbie)
    assert "/register/" in link
    assert Invitation.objects.filter(client=newbie).count() == 1
    assert AuditEvent.objects.get(action="invite", client=newbie).detail["emailed"] is True
    assert outbox.send_due().retrying == 1
    message = OutboundMessage.objects.get(kind="clinic.invitation")
    assert message.status == "pending" and message.secret and link in message.body_text
    assert message.client_id == newbie.pk and message.clinic_id == newbie.clinic_id

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"  # the mail server is back
    assert outbox.send_due(now=message.next_attempt_at).sent == 1
    [email] = mail.outbox
    assert email.to == ["mo@x.test"] and link in email.body
    message.refresh_from_db()
    assert message.status == "sent" and message.body_text == "" and link not in str(message.attachments)


def test_an_invitation_used_or_replaced_before_its_email_went_is_not_sent(make_client, therapist):
    from backcare.clinic.services.consent import create_invitation

    newbie = make_client(therapist, first_name="Rae", last_name="Replaced", email="rae@x.test")
    create_invitation(newbie, therapist)
    create_invitation(newbie, therapist)  # the first stops working
    result = outbox.send_due()
    assert (result.sent, result.cancelled) == (1, 1)
    assert len(mail.outbox) == 1
    first = OutboundMessage.objects.filter(kind="clinic.invitation").order_by("pk").first()
    assert (first.status, first.last_error) == (
        "cancelled",
        "the invitation has expired or was replaced by a newer one",
    )
