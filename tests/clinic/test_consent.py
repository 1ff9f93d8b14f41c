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
    """Email an invitation through the staff page and return the link, as the client receives it."""
    url = reverse("invite_client", args=[client_obj.pk])
    page = page_client.get(url).content.decode()
    key = re.search(r'name="submission_key" value="([^"]+)"', page).group(1)
    before = len(mail.outbox)
    response = page_client.post(url, {"submission_key": key, "method": "email"})
    assert response.status_code == 302
    outbox.send_due()  # the worker sends what the invitation queued
    page = page_client.get(url).content.decode()
    assert f"The invitation was emailed to {client_obj.email}" in page and "/register/" not in page
    assert len(mail.outbox) == before + 1 and mail.outbox[-1].to == [client_obj.email]
    return re.search(r"(http\S+/register/\S+/)", mail.outbox[-1].body).group(1)


def registration(dob="14/03/1985", username="nina", password=NEW_PASSWORD, again=None):
    return {"date_of_birth": dob, "username": username, "password": password, "password_again": again or password}


def test_invitation_flow_end_to_end(client, make_client, therapist, settings):
    newbie = make_client(therapist, first_name="Nina", last_name="New", email="nina@x.test")
    login(client, therapist.user)
    link = invite(client, newbie)
    token = link.rstrip("/").rsplit("/", 1)[1]
    invitation = Invitation.objects.get(client=newbie)
    assert invitation.token_hash == token_hash(token) and token not in invitation.token_hash
    assert invitation.expires_at - invitation.created_at == dt.timedelta(days=settings.BACKCARE["INVITATION_DAYS"])
    assert token not in client.get(reverse("invite_client", args=[newbie.pk])).content.decode()
    assert AuditEvent.objects.filter(action="invite", client=newbie).count() == 1

    client.logout()
    path = reverse("register", args=[token])
    page = client.get(path).content.decode()
    assert "Welcome, Nina" in page and "Your date of birth" in page
    weak = client.post(path, registration(password="12345"))
    assert weak.status_code == 200
    body = weak.content.decode()
    assert "Password:" in body and "too short" in body and 'value="nina"' in body
    mismatch = client.post(path, registration(again="other-thing-99"))
    assert "The two passwords are not the same." in mismatch.content.decode()
    response = client.post(path, registration())
    assert response.status_code == 302 and response["Location"] == reverse("consent")
    newbie.refresh_from_db()
    assert newbie.user.username == "nina" and newbie.user.check_password(NEW_PASSWORD)
    assert Invitation.objects.get(client=newbie).used_at is not None
    assert client.get(reverse("portal")).status_code == 200  # signed in

    # The token works only once.
    client.logout()
    again = client.get(path)
    assert again.status_code == 410 and "already been used" in again.content.decode()
    again = client.post(path, registration(username="nina2"))
    assert again.status_code == 410


def test_expired_or_unknown_token_is_refused(client, make_client, therapist):
    newbie = make_client(therapist, first_name="Ed", last_name="Expired", email="")
    from backcare.clinic.services.consent import new_invitation

    invitation, token = new_invitation(newbie, therapist)
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    path = reverse("register", args=[token])
    response = client.get(path)
    assert response.status_code == 410 and "expired" in response.content.decode()
    response = client.post(path, registration(username="ed"))
    assert response.status_code == 410
    newbie.refresh_from_db()
    assert newbie.user is None
    assert client.get(reverse("register", args=["not-a-token"])).status_code == 404


def test_a_new_invitation_ends_the_earlier_link(client, make_client, therapist):
    newbie = make_client(therapist, first_name="Ola", last_name="Old", email="ola@x.test")
    login(client, therapist.user)
    first = invite(client, newbie)
    second = invite(client, newbie)
    client.logout()
    assert first != second
    assert client.get(first).status_code == 410
    assert client.post(first, registration(username="ola")).status_code == 410
    assert client.get(second).status_code == 200


def test_client_with_portal_access_cannot_be_invited(client, client_record, therapist):
    login(client, therapist.user)
    url = reverse("invite_client", args=[client_record.pk])
    client.post(url, {"submission_key": "k1", "method": "email"})
    assert not Invitation.objects.exists() and mail.outbox == []
    assert "already has portal access" in client.get(url).content.decode()


def test_a_client_without_email_is_told_to_hand_over(client, make_client, therapist):
    newbie = make_client(therapist, first_name="Ned", last_name="Nomail", email="")
    login(client, therapist.user)
    url = reverse("invite_client", args=[newbie.pk])
    assert "There is no email address on record" in client.get(url).content.decode()
    page = client.post(url, {"submission_key": "k2", "method": "email"}, follow=True).content.decode()
    assert "has no email address on record" in page
    assert not Invitation.objects.exists() and mail.outbox == []


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
    assert client.post(url, {"method": "email"}).status_code == 403
    assert not Invitation.objects.exists()


def test_invite_sent_twice_makes_one_invitation(client, make_client, therapist):
    newbie = make_client(therapist, first_name="Dee", last_name="Double", email="dee@x.test")
    login(client, therapist.user)
    url = reverse("invite_client", args=[newbie.pk])
    client.post(url, {"method": "email", "submission_key": "same"})
    client.post(url, {"method": "email", "submission_key": "same"})  # a double click
    outbox.send_due()
    assert Invitation.objects.filter(client=newbie).count() == 1 and len(mail.outbox) == 1


def test_an_invitation_waits_in_the_outbox_while_the_mail_server_is_down(client, make_client, therapist, settings):
    """Queued with the invitation, sent once the server answers; the page never shows the link, and the outbox row
    no longer keeps it once sent."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 2
    newbie = make_client(therapist, first_name="Mo", last_name="Mailless", email="mo@x.test")
    login(client, therapist.user)
    url = reverse("invite_client", args=[newbie.pk])
    page = client.post(url, {"method": "email", "submission_key": "k3"}, follow=True).content.decode()
    assert "The invitation was emailed to mo@x.test" in page and "/register/" not in page
    assert Invitation.objects.get(client=newbie).usable
    assert outbox.send_due().retrying == 1
    message = OutboundMessage.objects.get(kind="clinic.invitation")
    assert message.status == "pending" and message.secret and "/register/" in message.body_text
    assert message.client_id == newbie.pk and message.clinic_id == newbie.clinic_id

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"  # the mail server is back
    assert outbox.send_due(now=message.next_attempt_at).sent == 1
    [email] = mail.outbox
    assert email.to == ["mo@x.test"] and "/register/" in email.body
    message.refresh_from_db()
    assert message.status == "sent" and message.body_text == ""


def test_an_invitation_replaced_before_its_email_went_is_not_sent(make_client, therapist):
    from backcare.clinic.services.consent import send_invitation

    newbie = make_client(therapist, first_name="Rae", last_name="Replaced", email="rae@x.test")
    send_invitation(newbie, therapist)
    send_invitation(newbie, therapist)  # the first stops working
    result = outbox.send_due()
    assert (result.sent, result.cancelled) == (1, 1)
    assert len(mail.outbox) == 1
    first = OutboundMessage.objects.filter(kind="clinic.invitation").order_by("pk").first()
    assert (first.status, first.last_error) == (
        "cancelled",
        "the invitation has expired or was replaced by a newer one",
    )
