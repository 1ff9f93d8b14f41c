"""The data-rights pages as each role meets them: the links that lead there, the explanations, the owner's overview."""

from __future__ import annotations

from django.urls import reverse

from backcare.clinic.models import AuditEvent
from backcare.datarights import erasure as datarights
from matrix_support import login_as, parse_html


def text_of(page_client, url):
    return " ".join(parse_html(page_client.get(url).content.decode()).text().split())


def links(page_client, url):
    page = parse_html(page_client.get(url).content.decode())
    return {" ".join(n.text().split()): n.attrs.get("href") for n in page.walk() if n.tag == "a"}


def test_portal_links_to_the_download_and_the_erasure_request(client, world):
    login_as(client, world.x.client.user)
    found = links(client, reverse("portal"))
    assert found["Download my records"] == reverse("portal_export")
    assert found["Ask us to erase my data"] == reverse("portal_erasure")


def test_client_page_links_by_role(client, world):
    url = reverse("client_detail", args=[world.x.client.pk])
    export = reverse("client_export", args=[world.x.client.pk])
    erasure = reverse("client_erasure", args=[world.x.client.pk])
    login_as(client, world.owner.user)
    owner_links = set(links(client, url).values())
    assert export in owner_links and erasure in owner_links
    login_as(client, world.therapist_a.user)
    therapist_links = set(links(client, url).values())
    assert export in therapist_links and erasure not in therapist_links
    login_as(client, world.front_desk.user)
    desk_links = set(links(client, url).values())
    assert export not in desk_links and erasure not in desk_links


def test_owner_dashboard_links_to_data_rights(client, world):
    login_as(client, world.owner.user)
    assert reverse("datarights_overview") in links(client, reverse("dashboard")).values()
    login_as(client, world.therapist_a.user)
    assert reverse("datarights_overview") not in links(client, reverse("dashboard")).values()


def test_portal_erasure_page_explains_what_goes_what_stays_and_why(client, world):
    world.clinic.retention_years = 10
    world.clinic.save()
    login_as(client, world.x.client.user)
    page = text_of(client, reverse("portal_erasure"))
    assert "Erased as soon as the clinic confirms" in page
    assert "Portal login: 1" in page and "Future appointments (cancelled)" in page
    plan = datarights.erasure_plan(world.x.client)
    assert f"Kept until {plan.keep_until:%-d %B %Y}, then deleted" in page
    assert "keep clinical records for 10 years after the last treatment" in page
    assert "audit trail" in page and "never deleted" in page
    assert AuditEvent.objects.filter(client=world.x.client, action="view", detail__page="erasure request").exists()


def test_overview_lists_open_requests_with_their_state(client, world):
    owner = world.owner.user
    datarights.request_erasure(world.y.client, by=owner, channel="letter")
    confirmed = datarights.confirm_erasure(datarights.request_erasure(world.z, by=owner, channel="phone"), by=owner)
    login_as(client, owner)
    html = client.get(reverse("datarights_overview")).content.decode()
    page = " ".join(parse_html(html).text().split())
    assert "Waiting for you to confirm" in page
    assert f"Confirmed {confirmed.confirmed_at:%-d %b %Y}" in page
    assert world.x.client.last_name not in html
    assert reverse("client_erasure", args=[world.y.client.pk]) in html
    assert reverse("research_export") in html
    assert "at least 5" in page


def test_the_client_page_shows_an_erasure_request(client, world):
    datarights.request_erasure(world.x.client, by=world.x.client.user)
    login_as(client, world.therapist_a.user)
    page = text_of(client, reverse("client_detail", args=[world.x.client.pk]))
    assert "asked on" in page and "for their data to be erased" in page
