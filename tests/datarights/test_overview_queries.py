"""The owner's Data rights overview as the clinic grows: the records past their retention period come from one
aggregate query, a page at a time in client order, so the page costs the same number of queries for 5 such clients
as for 50."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from backcare.clinic.models import Client, Consent, ConsentText, Intake
from backcare.datarights import erasure as datarights
from matrix_support import _staff, login_as, parse_html

LONG_AGO = dt.timedelta(days=800)  # past a retention period of one year, with room for the clients to differ


@pytest.fixture
def clinic(db, settings):
    from backcare.clinic.models import Clinic

    settings.BACKCARE = {**settings.BACKCARE, "RETENTION_YEARS": 1}
    return Clinic.objects.create(name="Quiet Backs", time_zone="Europe/London", retention_years=1)


@pytest.fixture
def owner(clinic):
    return _staff(clinic, "owner", "olivia", "Olivia Owner")


def add_past_retention(clinic, count: int, *, start: int = 0) -> list[Client]:
    """`count` clients whose only clinical record is a consent signed long ago, a day apart (oldest first)."""
    text, _ = ConsentText.objects.get_or_create(version="t1", defaults={"title": "Consent", "body": "..."})
    base = timezone.now() - LONG_AGO
    clients = Client.objects.bulk_create(
        Client(
            clinic=clinic,
            first_name=f"Old{start + n}",
            last_name="Record",
            date_of_birth=dt.date(1960, 1, 1),
            created_at=base - dt.timedelta(days=1),
        )
        for n in range(count)
    )
    Consent.objects.bulk_create(
        Consent(client=c, text=text, signature=c.first_name, signed_at=base + dt.timedelta(days=start + n))
        for n, c in enumerate(clients)
    )
    return clients


def overview_queries(page_client, url) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as ctx:
        response = page_client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries), response.content.decode()


def listed_names(html: str) -> list[str]:
    """The first names in the list of records past their retention period, in order."""
    (section,) = [n for n in parse_html(html).walk() if n.attrs.get("id") == "past-retention"]
    rows = [" ".join(n.text().split()) for n in section.walk() if n.tag == "tr"]
    return [row.split()[0] for row in rows if row.startswith("Old")]


def test_overview_query_count_stays_the_same_from_5_to_50_clients_past_retention(client, clinic, owner):
    login_as(client, owner.user)
    url = reverse("datarights_overview")
    add_past_retention(clinic, 5)
    few, html = overview_queries(client, url)
    assert len(listed_names(html)) == 5
    add_past_retention(clinic, 45, start=5)
    many, html = overview_queries(client, url)
    assert len(listed_names(html)) == 50
    assert many == few, f"{few} queries for 5 clients past retention, {many} for 50"


def test_open_requests_cost_no_query_each(client, clinic, owner):
    """Each open request shows the day its record is kept until, computed in the same query as the list."""
    login_as(client, owner.user)
    url = reverse("datarights_overview")
    one, *others = add_past_retention(clinic, 6)
    datarights.request_erasure(one, by=owner.user, channel="letter")
    few, html = overview_queries(client, url)
    assert len(listed_names(html)) == 5  # the request takes its client out of the retention list
    for other in others:
        datarights.request_erasure(other, by=owner.user, channel="letter")
    many, html = overview_queries(client, url)
    assert listed_names(html) == [] and html.count("Waiting for you to confirm") == 6
    assert many == few


def test_the_list_is_paged_and_each_page_follows_the_last(client, clinic, owner, monkeypatch):
    clients = add_past_retention(clinic, 7)
    pages, after = [], None
    while True:
        page = datarights.past_retention_page(clinic, after=after, size=3)
        pages.append([d.client.pk for d in page.items])
        if page.next_after is None:
            break
        after = page.next_after
    assert pages == [[c.pk for c in clients[:3]], [c.pk for c in clients[3:6]], [clients[6].pk]]
    assert [d.client.pk for d in datarights.past_retention(clinic)] == [c.pk for c in clients]

    # The page follows the cursor through the link; a cursor that cannot be read (each would skip the first client
    # if it were read as its id) starts at the first.
    monkeypatch.setattr(datarights, "PAGE_SIZE", 4)
    login_as(client, owner.user)
    url = reverse("datarights_overview")
    html = client.get(url).content.decode()
    assert listed_names(html) == [c.first_name for c in clients[:4]]
    links = {" ".join(n.text().split()): n.attrs.get("href") for n in parse_html(html).walk() if n.tag == "a"}
    html = client.get(links["Next page"]).content.decode()
    assert listed_names(html) == [c.first_name for c in clients[4:]]
    assert "Next page" not in html and "Back to the first" in html
    first = str(clients[0].pk)
    arabic_indic = first.translate({ord(d): 0x0660 + int(d) for d in "0123456789"})
    for unreadable in ("nonsense", f"-{first}", f"+{first}", f" {first}", arabic_indic, f"{first}.0"):
        assert listed_names(client.get(url, {"after": unreadable}).content.decode())[0] == clients[0].first_name
    assert listed_names(client.get(url, {"after": first}).content.decode())[0] == clients[1].first_name


def test_the_one_query_agrees_with_the_rule_for_one_client(clinic, owner):
    """What moves the last contact moves it in the clinic's list as for one client; a draft questionnaire does not."""
    (old,) = add_past_retention(clinic, 1)
    assert [d.client.pk for d in datarights.past_retention(clinic)] == [old.pk]
    recent = timezone.now() - dt.timedelta(days=30)
    Intake.objects.create(client=old, status=Intake.Status.DRAFT, updated_at=recent)
    assert datarights.last_clinical_contact(old) < timezone.now() - LONG_AGO
    assert [d.client.pk for d in datarights.past_retention(clinic)] == [old.pk]
    submitted = Intake.objects.create(client=old, status=Intake.Status.SUBMITTED, updated_at=timezone.now() - LONG_AGO)
    Intake.objects.filter(pk=submitted.pk).update(reviewed_at=recent)  # reviewed long after it came in
    assert datarights.last_clinical_contact(old) == recent
    assert datarights.past_retention(clinic) == []
    status, why = datarights.retention_status(old)
    assert status is None and "kept until" in why


@pytest.mark.parametrize(
    "today", [dt.date(2028, 2, 29), dt.date(2028, 2, 28), dt.date(2028, 3, 1), dt.date(2027, 3, 1)]
)
@pytest.mark.parametrize("years", [1, 4, 8, 9])
def test_first_day_kept_matches_the_retention_rule_on_leap_days(today, years):
    first = datarights.first_day_kept(today, years)
    for offset in range(-5, 6):
        day = first + dt.timedelta(days=offset)
        assert (day < first) == (datarights.add_years(day, years) < today), (day, today, years)
