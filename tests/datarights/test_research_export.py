"""The de-identified research export of outcomes (owner only): no direct identifiers, free text, exact dates or ids;
a new random pseudonym per client per export; every (age band, sex) group holds at least k = 5 people; clients who
withdrew consent or asked for erasure are left out."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections import defaultdict

import pytest
from datarights_support import read_csv
from django.urls import reverse
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from backcare.clinic.models import AuditEvent, Client, Consent
from backcare.clinic.services import consent, courses, outcomes
from backcare.datarights import erasure as datarights
from backcare.datarights import research as datarights_research
from backcare.datarights.research import K_ANONYMITY, anonymise_groups
from clinic_fixtures import login

_numbers = itertools.count(1)
WITHDREW_SCORE, ERASURE_SCORE = 23, 22  # RMDQ scores nobody else has


@pytest.fixture
def people(clinic, owner, therapist, screen_client):
    """make(age, sex, rmdq=...) adds a client with consent, a course, a baseline Roland-Morris and a pain score."""
    made = []

    def make(age, sex, rmdq=8):
        n = next(_numbers)
        today = timezone.localdate()
        client = Client.objects.create(
            clinic=clinic,
            therapist=therapist,
            first_name=f"Firstname{n}x",
            last_name=f"Lastname{n}x",
            date_of_birth=today.replace(year=today.year - age) - dt.timedelta(days=40),
            sex=sex,
            email=f"person{n}@mail.test",
            phone=f"07700 900{n:03d}",
            address=f"{n} Hidden Lane",
            physician_name=f"Dr Secret{n}",
        )
        consent.sign_consent(client, consent.current_consent_text(), client.full_name, by=owner.user)
        screen_client(client)
        course = courses.start_course(client, staff=therapist, goals=f"Private goal {n}")
        outcomes.record_rmdq(
            client, ticked=[True] * rmdq + [False] * (24 - rmdq), timepoint="baseline", course=course, by=therapist.user
        )
        outcomes.record_pain(client, score=6, timepoint="session", course=course, session=None, by=therapist.user)
        made.append(client)
        return client

    make.made = made
    return make


def export(page_client, user):
    login(page_client, user)
    response = page_client.get(reverse("research_export"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert re.fullmatch(
        r'attachment; filename="research-outcomes-\d{4}-\d\d-\d\d\.csv"', response["Content-Disposition"]
    )
    return response.content.decode("utf-8"), read_csv(response.content)


def groups_of(rows):
    members = defaultdict(set)
    for row in rows:
        members[(row["age_band"], row["sex"])].add(row["participant"])
    return members


def test_research_csv_is_de_identified_k_anonymous_and_leaves_out_who_must_be(client, owner, people):
    for _ in range(6):
        people(45, "female")
    for _ in range(5):
        people(35, "male")
    people(55, "other")
    people(57, "other")
    people(72, "male")
    people(25, "female")
    withdrew = people(46, "female", rmdq=WITHDREW_SCORE)
    Consent.objects.filter(client=withdrew).update(withdrawn_at=timezone.now())
    erasing = people(44, "female", rmdq=ERASURE_SCORE)
    datarights.request_erasure(erasing, by=owner.user, channel="phone")

    text, rows = export(client, owner.user)
    assert list(rows[0]) == list(datarights_research.RESEARCH_HEADER)

    # No direct identifier, free text, exact date or id of any fixture client appears anywhere.
    for person in people.made:
        for value in (
            person.first_name,
            person.last_name,
            person.email,
            person.phone,
            person.address,
            person.physician_name,
            person.date_of_birth.isoformat(),
            person.date_of_birth.strftime("%d/%m/%Y"),
            person.courses.get().goals,
        ):
            assert value not in text, value
    assert not re.search(r"\d{4}-\d\d-\d\d|\d\d/\d\d/\d{4}", text), "an exact date is in the file"
    assert all(re.fullmatch(r"P[0-9a-f]{8}", row["participant"]) for row in rows)

    # Who is left out: the consent withdrawn and the erasure asked; the small groups that stayed below k.
    scores = {int(row["score"]) for row in rows}
    assert WITHDREW_SCORE not in scores and ERASURE_SCORE not in scores
    members = groups_of(rows)
    assert all(len(ids) >= K_ANONYMITY for ids in members.values()), members
    assert len(members[("40-49", "female")]) == 6 and len(members[("30-39", "male")]) == 5
    participants = {row["participant"] for row in rows}
    assert len(participants) == 11  # the 4 in groups too small even when widened are suppressed
    assert len(rows) == 22  # a Roland-Morris and a pain score each

    # Course-level data, timepoints, and days since the course started (not dates).
    row = next(r for r in rows if r["instrument"] == "rmdq")
    assert row["timepoint"] == "baseline" and row["score"] == "8" and row["days_since_course_start"] == "0"
    assert row["course"] == "1" and row["sessions_planned"].isdigit() and row["techniques"]

    event = AuditEvent.objects.filter(action="research_export").latest("at")
    assert event.user == owner.user and event.client_id is None
    assert event.detail["participants"] == 11 and event.detail["suppressed_small_groups"] == 4
    assert event.detail["excluded"]["withdrew_consent"] == 1 and event.detail["excluded"]["asked_for_erasure"] == 1

    # One more person makes the widened group big enough: everyone is in, the small ones as "any".
    people(66, "female")
    _, rows = export(client, owner.user)
    members = groups_of(rows)
    assert len(members[("any", "any")]) == 5
    assert all(len(ids) >= K_ANONYMITY for ids in members.values())
    assert len({row["participant"] for row in rows}) == 16


def test_pseudonyms_are_new_for_every_export(client, owner, people):
    for _ in range(5):
        people(45, "female")
    _, first = export(client, owner.user)
    _, second = export(client, owner.user)
    one, two = {r["participant"] for r in first}, {r["participant"] for r in second}
    assert len(one) == len(two) == 5
    assert one.isdisjoint(two)


@pytest.mark.parametrize("who", ["therapist", "front_desk"])
def test_research_export_is_for_the_owner_only(client, request, people, who):
    people(45, "female")
    login(client, request.getfixturevalue(who).user)
    assert client.get(reverse("research_export")).status_code == 403
    assert client.get(reverse("datarights_overview")).status_code == 403
    assert not AuditEvent.objects.filter(action="research_export").exists()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 100), st.sampled_from(["female", "male", "other", "unknown"])), max_size=60),
    st.integers(2, 6),
)
def test_every_group_left_is_at_least_k_and_only_generalises(population, k):
    people = {f"p{i}": person for i, person in enumerate(population)}
    result = anonymise_groups(people, k)
    sizes = defaultdict(int)
    for value in result.values():
        sizes[value] += 1
    assert all(size >= k for size in sizes.values())
    for p, (band, sex) in result.items():
        age, true_sex = people[p]
        assert sex in (true_sex, "any")
        assert band in (datarights_research.age_band(age), datarights_research.wide_age_band(age), "any")
    if len(population) >= k:
        assert result, "with at least k people, everyone fits the widest group"
