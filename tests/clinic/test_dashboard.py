"""The dashboard: one address, content by role, alerts for each state a client can be in."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from backcare.clinic.models import AuditEvent, Intake
from backcare.clinic.selectors import dashboard as dash
from backcare.clinic.services import courses, outcomes, referrals, sessions
from backcare.clinic.services.screening import record_clearance, treatment_gate
from clinic_fixtures import login

URL = "/dashboard/"


def ticks(n: int) -> list[bool]:
    return [True] * n + [False] * (24 - n)


def session(course, therapist, before=5, after=4, response="relaxed"):
    update = sessions.health_update(course, staff=therapist, new_findings=[], pain_now=before)
    return sessions.record_session(
        course,
        staff=therapist,
        health_update=update,
        techniques=["swedish_relaxation"],
        pressure=2,
        body_chart={"lower_back": {"treated": True}},
        pain_before=before,
        pain_after=after,
        response=response,
    )


def page(django_client, user):
    response = login(django_client, user).get(URL)
    assert response.status_code == 200
    return response.content.decode()


def alerts(django_client, user):
    return [(a.kind, a.client.full_name, a.text) for a in page_alerts(django_client, user)]


def page_alerts(django_client, user):
    response = login(django_client, user).get(URL)
    assert response.status_code == 200
    return response.context["alerts"]


def kinds_for(django_client, user, client):
    return sorted(a.kind for a in page_alerts(django_client, user) if a.client.pk == client.pk)


def test_url_name():
    assert reverse("dashboard") == URL


def test_anonymous_is_sent_to_login(client):
    response = client.get(URL)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_client_user_goes_to_portal(client, client_record):
    response = login(client, client_record.user).get(URL)
    assert response.status_code == 302 and response["Location"] == reverse("portal")


def test_clearance_pending_until_recorded(client, client_record, therapist, screen_client):
    screening = screen_client(client_record, "dvt_history")
    html = page(client, therapist.user)
    assert "Clearance pending" in html and "Past blood clot (DVT or pulmonary embolism)" in html
    assert reverse("clearance_create", args=[client_record.pk, screening.pk]) in html
    assert kinds_for(client, therapist.user, client_record) == ["clearance"]
    record_clearance(screening, given_by="Dr A. Jones, GP", given_on=dt.date.today(), note="Fine.", staff=therapist)
    assert treatment_gate(client_record).allowed
    assert kinds_for(client, therapist.user, client_record) == []


def test_reassessment_due_until_recorded(client, client_record, therapist, screen_client):
    screen_client(client_record)
    course = courses.start_course(client_record, staff=therapist, sessions_planned=4, reassess_after=1)
    outcomes.record_rmdq(client_record, ticked=ticks(10), timepoint="baseline", course=course, by=therapist.user)
    assert "reassessment" not in kinds_for(client, therapist.user, client_record)
    session(course, therapist, 6, 3)
    assert courses.reassessment_due(course)
    html = page(client, therapist.user)
    assert "Reassessment due" in html and reverse("rmdq_record", args=[course.pk]) in html
    outcomes.record_rmdq(client_record, ticked=ticks(4), timepoint="reassessment", course=course, by=therapist.user)
    assert not courses.reassessment_due(course)
    assert kinds_for(client, therapist.user, client_record) == []


@pytest.mark.parametrize(
    ("finding", "words"),
    [
        ("saddle_anaesthesia", "emergency department now"),
        ("dvt_suspected", "see a physician"),
        ("fever", "No massage today"),
    ],
)
def test_referral_suggested_by_screening_until_referred(
    client, client_record, therapist, screen_client, finding, words
):
    screening = screen_client(client_record, finding)
    found = [a for a in page_alerts(client, therapist.user) if a.kind == "referral"]
    assert len(found) == 1 and words in found[0].text
    assert found[0].url == reverse("referral_create", args=[client_record.pk])
    referrals.create_referral(
        client_record, staff=therapist, urgency="urgent", reason="As screened.", screening=screening
    )
    assert kinds_for(client, therapist.user, client_record) == []


def test_referral_suggested_after_guarding(client, client_record, therapist, screen_client):
    screen_client(client_record)
    course = courses.start_course(client_record, staff=therapist, sessions_planned=4)
    session(course, therapist, 5, 3, response="guarding")
    found = [a for a in page_alerts(client, therapist.user) if a.kind == "referral"]
    assert len(found) == 1 and "guarding against the pressure at session 1" in found[0].text
    referrals.create_referral(client_record, staff=therapist, urgency="routine", reason="Guarding.", course=course)
    assert "referral" not in kinds_for(client, therapist.user, client_record)


def test_referral_suggested_by_course_review(client, client_record, therapist, screen_client):
    screen_client(client_record)
    course = courses.start_course(client_record, staff=therapist, sessions_planned=2, reassess_after=1)
    outcomes.record_rmdq(client_record, ticked=ticks(10), timepoint="baseline", course=course, by=therapist.user)
    session(course, therapist, 5, 5)
    outcomes.record_rmdq(client_record, ticked=ticks(9), timepoint="reassessment", course=course, by=therapist.user)
    texts = [a.text for a in page_alerts(client, therapist.user) if a.kind == "referral"]
    assert texts == outcomes.review_course(course).prompts
    assert texts == [
        "No meaningful improvement at reassessment: change the technique, or refer the client to their physician."
    ]
    session(course, therapist, 5, 5)
    texts = [a.text for a in page_alerts(client, therapist.user) if a.kind == "referral"]
    assert texts == outcomes.review_course(course).prompts and len(texts) == 2
    referrals.create_referral(client_record, staff=therapist, urgency="routine", reason="No better.", course=course)
    assert kinds_for(client, therapist.user, client_record) == []


def test_no_prompt_when_improving(client, client_record, therapist, screen_client):
    screen_client(client_record)
    course = courses.start_course(client_record, staff=therapist, sessions_planned=2, reassess_after=2)
    session(course, therapist, 6, 4)
    session(course, therapist, 4, 2)
    assert outcomes.review_course(course).prompts == []
    assert "referral" not in kinds_for(client, therapist.user, client_record)


def test_intake_states(client, make_client, therapist, screen_client):
    make_client(therapist, first_name="Nora")
    draft = make_client(therapist, first_name="Dora")
    Intake.objects.create(client=draft, status=Intake.Status.DRAFT, answers={"pain": {}})
    submitted = make_client(therapist, first_name="Sam")
    Intake.objects.create(client=submitted, status=Intake.Status.SUBMITTED, submitted_at=dt.datetime.now(dt.UTC))
    reviewed = make_client(therapist, first_name="Rita")
    Intake.objects.create(client=reviewed, status=Intake.Status.REVIEWED)
    screen_client(reviewed)
    found = {a.client.first_name: a for a in page_alerts(client, therapist.user)}
    assert found["Nora"].text == "No intake yet." and found["Nora"].label == "Intake incomplete"
    assert found["Dora"].label == "Intake incomplete" and "not submitted" in found["Dora"].text
    assert found["Sam"].label == "Intake to review"
    assert found["Sam"].url == reverse("intake_review", args=[submitted.pk])
    assert "Rita" not in found


def test_therapist_sees_only_own_and_shared_clients(client, make_client, therapist, therapist2, owner, screen_client):
    from backcare.clinic.services.clients import share_client

    mine = make_client(therapist, first_name="Mine")
    theirs = make_client(therapist2, first_name="Theirs")
    shared = make_client(therapist2, first_name="Shared")
    for c in (mine, theirs, shared):
        screen_client(c, "fever")
    share_client(shared, therapist=therapist, staff=owner)
    names = {a.client.first_name for a in page_alerts(client, therapist.user)}
    assert names == {"Mine", "Shared"}
    html = page(client, therapist.user)
    assert "Theirs" not in html
    assert {a.client.first_name for a in page_alerts(client, owner.user)} == {"Mine", "Theirs", "Shared"}


def test_therapist_today_list(client, make_client, therapist, screen_client):
    active = make_client(therapist, first_name="Ada")
    screen_client(active)
    course = courses.start_course(active, staff=therapist, sessions_planned=4)
    session(course, therapist)
    idle = make_client(therapist, first_name="Idle")
    screen_client(idle)
    response = login(client, therapist.user).get(URL)
    today = response.context["today"]
    assert [r["client"].first_name for r in today] == ["Ada"]
    assert today[0]["seen_today"] and today[0]["done"] == 1
    html = response.content.decode()
    assert "1 of 4 sessions" in html and "seen today" in html
    assert reverse("health_update", args=[course.pk]) in html


def test_dashboard_views_are_audited(client, client_record, make_client, therapist, screen_client):
    screen_client(client_record, "fever")
    quiet = make_client(therapist, first_name="Quiet")
    screen_client(quiet)
    page(client, therapist.user)
    events = AuditEvent.objects.filter(action="view", user=therapist.user, detail__page="dashboard")
    assert events.count() == 1
    assert events.get().detail["clients"] == [client_record.pk]  # named; the client with nothing to show is not


def test_front_desk_sees_contacts_and_no_clinical_alerts(client, client_record, front_desk, screen_client):
    client_record.phone = "07700 900123"
    client_record.save()
    screen_client(client_record, "saddle_anaesthesia")
    response = login(client, front_desk.user).get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Client, Cora" in html and "07700 900123" in html and "cora@x.test" in html and "Theo Therapist" in html
    assert "alerts" not in response.context
    for word in ("Referral suggested", "Clearance pending", "emergency", "Needs attention", "screening"):
        assert word not in html
    assert not AuditEvent.objects.filter(action="view", user=front_desk.user).exists()


def test_owner_counts(client, make_client, owner, therapist, screen_client):
    improved = make_client(therapist, first_name="Better")
    screen_client(improved)
    course = courses.start_course(improved, staff=therapist, sessions_planned=1, reassess_after=1)
    session(course, therapist, 7, 3)
    courses.end_course(course, status="completed", staff=therapist)
    same = make_client(therapist, first_name="Same")
    screen_client(same)
    course2 = courses.start_course(same, staff=therapist, sessions_planned=3, reassess_after=2)
    session(course2, therapist, 5, 5)
    referrals.create_referral(same, staff=therapist, urgency="routine", reason="r1")
    referrals.create_referral(same, staff=therapist, urgency="urgent", reason="r2")
    referrals.create_referral(improved, staff=therapist, urgency="urgent", reason="r3")
    make_client(therapist, first_name="New")
    response = login(client, owner.user).get(URL)
    counts = response.context["counts"]
    assert counts["clients"] == 3 and counts["active"] == 1 and counts["completed"] == 1
    assert counts["referrals"] == [("Routine", 1), ("Urgent (within 24 hours)", 2), ("Emergency (now)", 0)]
    assert counts["scored"] == 2 and counts["improved"] == 1
    html = response.content.decode()
    assert "1 of 2" in html and "meaningful improvement in pain" in html
    assert "today" not in response.context


def _populate(make_client, therapist, screen_client, n):
    """n clients in a mix of states: clearance pending, referral due, course with sessions and scores, no intake."""
    for i in range(n):
        c = make_client(therapist, first_name=f"Client{i:02d}")
        kind = i % 5
        if kind == 0:
            screen_client(c, "dvt_history")
        elif kind == 1:
            screen_client(c, "fever")
        elif kind in (2, 3):
            screen_client(c)
            course = courses.start_course(c, staff=therapist, sessions_planned=2, reassess_after=1)
            outcomes.record_rmdq(c, ticked=ticks(8), timepoint="baseline", course=course, by=therapist.user)
            session(course, therapist, 6, 5, response="guarding" if kind == 3 else "relaxed")
        else:
            Intake.objects.create(client=c, status=Intake.Status.SUBMITTED)


def test_owner_dashboard_query_count_does_not_grow(
    client, make_client, owner, therapist, screen_client, django_assert_max_num_queries
):
    _populate(make_client, therapist, screen_client, 30)
    login(client, owner.user)
    # 27: a constant number (the test below holds it the same for 5 and 30 clients), two of them the appointments
    # on hold and the outbox's failure count.
    with django_assert_max_num_queries(27):
        response = client.get(URL)
    assert response.status_code == 200
    found = response.context["alerts"]
    kinds = {a.kind for a in found}
    assert kinds == {"clearance", "referral", "reassessment", "intake"}
    assert len({a.client.pk for a in found}) == 30
    events = AuditEvent.objects.filter(action="view", user=owner.user, detail__page="dashboard")
    assert events.count() == 1
    assert set(events.get().detail["clients"]) == {a.client.pk for a in found}


def test_owner_query_count_is_the_same_for_5_and_30_clients(client, make_client, owner, therapist, screen_client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    login(client, owner.user)
    _populate(make_client, therapist, screen_client, 5)
    with CaptureQueriesContext(connection) as few:
        client.get(URL)
    _populate(make_client, therapist, screen_client, 25)
    with CaptureQueriesContext(connection) as many:
        client.get(URL)
    assert len(many) == len(few), [q["sql"][:80] for q in many]


def test_therapist_dashboard_query_count_does_not_grow(
    client, make_client, therapist, screen_client, django_assert_max_num_queries
):
    _populate(make_client, therapist, screen_client, 30)
    login(client, therapist.user)
    # A constant number (the test below holds it the same for 5 and 30 clients): the page of alerts and the clients
    # today each load their clients' records in a fixed number of queries.
    with django_assert_max_num_queries(30):
        assert client.get(URL).status_code == 200


def test_bulk_rules_agree_with_the_services(make_client, therapist, screen_client):
    """The dashboard's bulk reading gives the same answers as the services, client by client."""
    from backcare.clinic.models import Client

    _populate(make_client, therapist, screen_client, 10)
    states = {s.client.pk: s for s in dash.load_states(Client.objects.all())}
    for c in Client.objects.all():
        state = states[c.pk]
        gate = treatment_gate(c)
        assert dash.clearance_pending(state) == gate.clearance_pending
        course = c.courses.first()
        if course is not None:
            assert dash.reassessment_due(state) == courses.reassessment_due(course)
            assert dash.review_prompts(state) == outcomes.review_course(course).prompts
        else:
            assert state.course is None and not dash.reassessment_due(state)
    # The page's flags are what the services say, or (clearance, review) a superset the service's rule then narrows.
    flagged = {c.pk for c in dash.needs_attention(Client.objects.all())}
    for c in Client.objects.all():
        state = states[c.pk]
        if dash.clearance_pending(state) or dash.review_prompts(state) or dash.reassessment_due(state):
            assert c.pk in flagged
        if dash.review_prompts(state):
            assert state.flags["flag_review"]
        assert bool(dash.alerts_of(state)) <= (c.pk in flagged)


def _shown(event):
    return event.detail["clients"]


def test_therapist_query_count_is_the_same_for_5_and_30_clients(
    client, make_client, therapist, therapist2, owner, screen_client
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from backcare.clinic.services.clients import share_client

    login(client, therapist.user)
    _populate(make_client, therapist, screen_client, 5)
    shared = make_client(therapist2, first_name="Shared")
    screen_client(shared, "fever")
    share_client(shared, therapist=therapist, staff=owner)
    with CaptureQueriesContext(connection) as few:
        client.get(URL)
    _populate(make_client, therapist, screen_client, 25)
    _populate(make_client, therapist2, screen_client, 10)  # a colleague's clients: not read, not counted
    with CaptureQueriesContext(connection) as many:
        response = client.get(URL)
    assert len(many) == len(few), [q["sql"][:80] for q in many]
    assert "Shared" in {a.client.first_name for a in response.context["alerts"]}
    assert AuditEvent.objects.filter(user=therapist.user, action="view", detail__page="dashboard").count() == 2


def test_alerts_are_paged_with_one_audit_event_per_page(
    client, make_client, owner, therapist, screen_client, monkeypatch
):
    """Pages of a bounded number of clients, in name order; following "more" shows every alert once."""
    monkeypatch.setattr(dash, "PAGE_SIZE", 4)
    _populate(make_client, therapist, screen_client, 10)
    quiet = make_client(therapist, first_name="Aaron")  # screened and fine: never on a page
    screen_client(quiet)
    login(client, owner.user)
    url, pages, seen = URL, 0, []
    while url:
        response = client.get(url)
        assert response.status_code == 200
        found = response.context["alerts"]
        clients = list(dict.fromkeys(a.client.pk for a in found))
        assert 0 < len(clients) <= 4
        event = AuditEvent.objects.filter(user=owner.user, action="view", detail__page="dashboard").latest("pk")
        assert sorted(_shown(event)) == sorted(clients)
        seen += clients
        pages += 1
        url = response.context["more_url"]
        if url:
            assert 'rel="next"' in response.content.decode()
    assert pages == 3 and len(seen) == len(set(seen)) == 10 and quiet.pk not in seen
    assert AuditEvent.objects.filter(user=owner.user, action="view", detail__page="dashboard").count() == 3
    # The pages together show what one unpaged reading shows.
    from backcare.clinic.models import Client

    everything = dash.alerts_for(dash.load_states(Client.objects.all()))
    assert {a.client.pk for a in everything} == set(seen)


def test_today_list_is_bounded(client, make_client, therapist, screen_client, monkeypatch):
    monkeypatch.setattr(dash, "TODAY_LIMIT", 2)
    for name in ("Ann", "Ben", "Cid"):
        c = make_client(therapist, first_name=name)
        screen_client(c)
        courses.start_course(c, staff=therapist, sessions_planned=4)
    response = login(client, therapist.user).get(URL)
    assert [r["client"].first_name for r in response.context["today"]] == ["Ann", "Ben"]
    assert response.context["today_more"] and "See all your clients" in response.content.decode()


def test_a_bad_cursor_shows_the_first_page(client, client_record, owner, screen_client):
    screen_client(client_record, "fever")
    for after in ("abc", "٣", "999999"):
        response = login(client, owner.user).get(URL, {"after": after})
        assert response.status_code == 200
        assert [a.client.pk for a in response.context["alerts"]] == [client_record.pk]
