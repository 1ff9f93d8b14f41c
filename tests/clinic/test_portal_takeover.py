"""Finding 1 of the attack test: an insider took over a client's portal from the invitation page.

Front desk, or a therapist who may not see the client, opened /clients/<id>/invite/, posted it and read the
registration link off the page; registering from it gave the whole clinical record (/portal/my-data/export.zip),
let them sign consent as the client and locked the real client out, while the audit named the client. The attack
is replayed here step by step; the tests assert that no step gets through.
"""

from __future__ import annotations

import importlib
import re

import pytest
from django.apps import apps as django_apps
from django.core import mail
from django.test import Client as PageClient
from django.urls import reverse

from backcare.clinic.models import AuditEvent, Consent, Invitation
from backcare.clinic.services.consent import InvitationProblem
from backcare.common import outbox
from clinic_fixtures import login

NEW_PASSWORD = "walnut-harbour-lantern-42"
LINK = re.compile(r"/register/([A-Za-z0-9_\-]{20,})/")


def seen_links(*responses) -> list[str]:
    return [m for r in responses for m in LINK.findall(r.content.decode("utf-8", "replace"))]


def replay_takeover(insider_user, victim) -> list[str]:
    """The attack as the outside test ran it. Returns the steps that got through (an empty list: none did)."""
    got: list[str] = []
    browser = login(PageClient(), insider_user)
    url = reverse("invite_client", args=[victim.pk])
    page = browser.get(url)
    key = re.search(r'name="submission_key" value="([^"]+)"', page.content.decode())
    data = {"submission_key": key.group(1) if key else "k-1"}
    responses = [page]
    for method in ("email", "handover", ""):
        responses.append(browser.post(url, {**data, "method": method}, follow=True))
    responses.append(browser.get(url))
    tokens = seen_links(*responses)
    if not tokens:
        return got
    got.append("the registration link was shown to the insider")
    browser.logout()
    path = reverse("register", args=[tokens[-1]])
    browser.post(
        path,
        {
            "username": "insider-as-client",
            "password": NEW_PASSWORD,
            "password_again": NEW_PASSWORD,
            "date_of_birth": victim.date_of_birth.strftime("%d/%m/%Y"),  # staff see it on the contact card
        },
    )
    victim.refresh_from_db()
    if victim.user is None or victim.user.username != "insider-as-client":
        return got
    got.append("registered as the client")
    if browser.get(reverse("portal_export")).status_code == 200:
        got.append("downloaded the whole record")
    browser.post(reverse("consent"), {"signature": victim.full_name, "version": "1"})
    if Consent.objects.filter(client=victim).exists():
        got.append("signed consent as the client")
    got.append("the real client is locked out")
    return got


@pytest.mark.parametrize("insider", ["front_desk", "therapist2"])
def test_front_desk_or_another_therapist_cannot_take_over_a_clients_portal(request, insider, make_client, therapist):
    victim = make_client(therapist, first_name="Vera", last_name="Victim", email="vera@x.test")
    staff = request.getfixturevalue(insider)
    assert replay_takeover(staff.user, victim) == []
    victim.refresh_from_db()
    assert victim.user is None
    assert not Invitation.objects.filter(client=victim).exists()
    assert mail.outbox == []


@pytest.mark.parametrize("insider", ["front_desk", "therapist2"])
def test_the_invitation_page_is_refused_to_front_desk_and_other_therapists(
    request, insider, client, make_client, therapist
):
    victim = make_client(therapist, first_name="Vera", last_name="Victim", email="vera@x.test")
    login(client, request.getfixturevalue(insider).user)
    url = reverse("invite_client", args=[victim.pk])
    expected = 403 if insider == "front_desk" else 404  # as for the clinical record (backcare.clinic.access)
    assert client.get(url).status_code == expected
    assert client.post(url, {"method": "email", "submission_key": "k"}).status_code == expected
    assert client.post(url, {"method": "handover", "submission_key": "k"}).status_code == expected
    assert not AuditEvent.objects.filter(action__startswith="invite").exists()


def test_a_therapist_the_client_is_only_shared_with_cannot_invite(client, make_client, therapist, therapist2, owner):
    from backcare.clinic.services.clients import share_client

    victim = make_client(therapist, first_name="Vera", last_name="Victim", email="vera@x.test")
    share_client(victim, therapist=therapist2, staff=owner)
    login(client, therapist2.user)
    response = client.post(reverse("invite_client", args=[victim.pk]), {"method": "email", "submission_key": "k"})
    assert response.status_code == 403
    assert not Invitation.objects.filter(client=victim).exists()


@pytest.mark.parametrize("sender", ["owner", "therapist"])
def test_even_the_owner_or_the_clients_therapist_never_sees_the_link(request, sender, make_client, therapist):
    victim = make_client(therapist, first_name="Vera", last_name="Victim", email="vera@x.test")
    assert replay_takeover(request.getfixturevalue(sender).user, victim) == []
    victim.refresh_from_db()
    assert victim.user is None
    # The invitation went to the client's own address instead (through the outbox).
    outbox.send_due()
    assert [m.to for m in mail.outbox] == [["vera@x.test"]]
    assert len(LINK.findall(mail.outbox[0].body)) == 1


def test_the_audit_names_who_sent_the_invitation_and_who_registered(client, make_client, therapist):
    victim = make_client(therapist, first_name="Vera", last_name="Victim", email="vera@x.test")
    login(client, therapist.user)
    client.post(reverse("invite_client", args=[victim.pk]), {"method": "email", "submission_key": "k-audit"})
    sent = AuditEvent.objects.get(action="invite", client=victim)
    assert sent.user == therapist.user and "Theo Therapist" in sent.actor
    assert sent.detail["method"] == "email" and sent.detail["sent_to"] == "vera@x.test"
    outbox.send_due()
    token = LINK.findall(mail.outbox[0].body)[0]
    client.logout()
    client.post(
        reverse("register", args=[token]),
        {"username": "vera", "password": NEW_PASSWORD, "password_again": NEW_PASSWORD, "date_of_birth": "14/03/1985"},
    )
    victim.refresh_from_db()
    registered = AuditEvent.objects.get(action="register", client=victim)
    assert registered.user == victim.user and registered.actor == "Vera Victim (client)"
    assert registered.detail["invited_by"] == "Theo Therapist (Therapist)"
    assert registered.detail["method"] == "email"
    assert registered.detail["invitation_sent_at"] == Invitation.objects.get(client=victim).created_at.isoformat()


def test_links_made_before_the_fix_stop_working(make_client, therapist):
    """Links made before this change were shown to staff: the migration ends every one still open."""
    from django.utils import timezone

    from backcare.clinic.services.consent import find_invitation, new_invitation

    migration = importlib.import_module("backcare.clinic.migrations.0006_invitation_checks")
    victim = make_client(therapist, first_name="Vera", last_name="Victim", email="vera@x.test")
    _, token = new_invitation(victim, therapist)
    used = make_client(therapist, first_name="Una", last_name="Used", email="una@x.test")
    done, _ = new_invitation(used, therapist)
    Invitation.objects.filter(pk=done.pk).update(used_at=timezone.now())
    migration.end_links_shown_to_staff(django_apps, None)
    with pytest.raises(InvitationProblem, match="expired"):
        find_invitation(token)
    assert Invitation.objects.get(pk=done.pk).used_at is not None
