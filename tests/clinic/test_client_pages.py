"""The staff pages for clients: list, create, edit, record, sharing and the audit trail, for every role."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse

from backcare.clinic.models import AuditEvent, Client, Course
from clinic_fixtures import login

SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture(autouse=True)
def fresh_submission_keys(db):
    """One-time form keys live in the cache, which outlives a test's database."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def as_role(client, owner, therapist, therapist2, front_desk, client_record):
    """Log the Django test client in as one role: owner, therapist, therapist2, front_desk, client or anonymous."""
    users = {
        "owner": owner.user,
        "therapist": therapist.user,
        "therapist2": therapist2.user,
        "front_desk": front_desk.user,
        "client": client_record.user,
    }

    def log_in(role):
        client.logout()
        if role != "anonymous":
            login(client, users[role])
        return client

    return log_in


def contact_post(**changes):
    data = {
        "first_name": "Nina",
        "last_name": "Newman",
        "date_of_birth": "02/05/1979",
        "sex": "female",
        "email": "nina@x.test",
        "phone": "01234 567890",
        "address": "1 High Street",
        "physician_name": "Dr Grey",
        "physician_address": "Surgery Lane",
        "submission_key": "key-1",
    }
    data.update(changes)
    return data


# --- who may open what ---------------------------------------------------------------------------------------------

PAGE_STATUS = {
    # page: (owner, therapist, therapist2, front_desk, client)
    "client_list": (200, 200, 200, 200, 403),
    "client_create": (200, 200, 200, 200, 403),
    "client_detail": (200, 200, 404, 200, 403),
    "client_edit": (200, 200, 200, 200, 403),
    "client_share": (200, 403, 403, 403, 403),
    "client_audit": (200, 403, 403, 403, 403),
}
ROLES = ("owner", "therapist", "therapist2", "front_desk", "client")


@pytest.mark.parametrize("page", PAGE_STATUS)
def test_every_page_answers_each_role_as_expected(page, as_role, client_record):
    url = reverse(page) if page in ("client_list", "client_create") else reverse(page, args=[client_record.pk])
    for role, expected in zip(ROLES, PAGE_STATUS[page], strict=True):
        response = as_role(role).get(url)
        assert response.status_code == expected, (page, role, response.status_code)
    response = as_role("anonymous").get(url)
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_unknown_client_is_404_for_everyone_on_staff(as_role):
    for role in ("owner", "therapist", "front_desk"):
        assert as_role(role).get(reverse("client_detail", args=[99999])).status_code == 404


# --- the list --------------------------------------------------------------------------------------------------------


def test_list_shows_contact_details_to_front_desk_and_searches_by_name(as_role, make_client, therapist):
    make_client(therapist, first_name="Alma", last_name="Zed", phone="07700 900111", email="alma@x.test")
    make_client(None, first_name="Bert", last_name="Young", phone="07700 900222")
    page = as_role("front_desk").get(reverse("client_list")).content.decode()
    assert "Zed, Alma" in page and "07700 900111" in page and "alma@x.test" in page and "Young, Bert" in page
    found = as_role("front_desk").get(reverse("client_list"), {"q": "zed"}).content.decode()
    assert "Zed, Alma" in found and "Young, Bert" not in found
    both_words = as_role("front_desk").get(reverse("client_list"), {"q": "alma zed"}).content.decode()
    assert "Zed, Alma" in both_words
    none = as_role("front_desk").get(reverse("client_list"), {"q": "nobody"}).content.decode()
    assert "No client matches" in none


def test_therapist_sees_which_clients_are_their_own(as_role, make_client, client_record, therapist2):
    other = make_client(therapist2, first_name="Olga", last_name="Other", phone="07700 900333")
    page = as_role("therapist").get(reverse("client_list")).content.decode()
    assert "Your client" in page
    assert reverse("client_detail", args=[client_record.pk]) in page
    # Another therapist's client: name and contact details, but no link to the clinical record.
    assert "Other, Olga" in page and "07700 900333" in page
    assert f'href="{reverse("client_detail", args=[other.pk])}"' not in page
    assert reverse("client_edit", args=[other.pk]) in page


# --- creating and editing --------------------------------------------------------------------------------------------


def test_therapist_creates_a_client_who_is_theirs(as_role, therapist):
    response = as_role("therapist").post(reverse("client_create"), contact_post())
    new = Client.objects.get(last_name="Newman")
    assert response.status_code == 302 and response["Location"] == reverse("client_detail", args=[new.pk])
    assert new.therapist == therapist and new.date_of_birth == dt.date(1979, 5, 2)
    assert AuditEvent.objects.filter(action="create_client", client=new).exists()


def test_front_desk_chooses_the_therapist(as_role, therapist2):
    form = as_role("front_desk").get(reverse("client_create")).content.decode()
    assert "Tara Therapist" in form
    as_role("front_desk").post(reverse("client_create"), contact_post(therapist=str(therapist2.pk)))
    assert Client.objects.get(last_name="Newman").therapist == therapist2


def test_therapist_field_refuses_someone_who_is_not_a_therapist(as_role, front_desk):
    response = as_role("owner").post(reverse("client_create"), contact_post(therapist=str(front_desk.pk)))
    assert response.status_code == 200
    assert "Therapist: choose a therapist of this clinic" in response.content.decode()
    assert not Client.objects.filter(last_name="Newman").exists()


def test_double_submission_creates_one_client(as_role):
    page = as_role("front_desk")
    first = page.post(reverse("client_create"), contact_post(submission_key="same-key"))
    second = page.post(reverse("client_create"), contact_post(submission_key="same-key"))
    assert Client.objects.filter(last_name="Newman").count() == 1
    new = Client.objects.get(last_name="Newman")
    assert first["Location"] == second["Location"] == reverse("client_detail", args=[new.pk])
    # A fresh form (a new key) is a new client.
    page.post(reverse("client_create"), contact_post(submission_key="other-key", first_name="Nora"))
    assert Client.objects.filter(last_name="Newman").count() == 2


def test_create_form_carries_a_one_time_key(as_role):
    one = as_role("front_desk").get(reverse("client_create")).content.decode()
    two = as_role("front_desk").get(reverse("client_create")).content.decode()
    assert 'name="submission_key"' in one

    def key(html):
        return html.split('name="submission_key" value="')[1].split('"')[0]

    assert key(one) and key(one) != key(two)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("31/02/1985", "Date of birth: enter a real date"),
        ("yesterday", "Date of birth: enter a real date"),
        ("01/01/2999", "Date of birth: this date is in the future"),
        ("", "Date of birth: this is required"),
    ],
)
def test_invalid_date_of_birth_names_the_field_and_keeps_the_input(as_role, typed, message):
    response = as_role("front_desk").post(reverse("client_create"), contact_post(date_of_birth=typed))
    html = response.content.decode()
    assert response.status_code == 200
    assert message in html
    assert 'value="Nina"' in html and 'value="Newman"' in html and 'value="01234 567890"' in html
    assert "Surgery Lane" in html and "1 High Street" in html
    if typed:
        assert f'value="{typed}"' in html
    assert 'aria-invalid="true"' in html
    assert not Client.objects.filter(last_name="Newman").exists()


def test_missing_name_and_bad_email_are_named(as_role):
    response = as_role("therapist").post(reverse("client_create"), contact_post(last_name="", email="not-an-email"))
    html = response.content.decode()
    assert "Last name: this is required." in html
    assert "Email: enter a valid email address" in html
    assert 'value="not-an-email"' in html


def test_a_refused_form_can_be_sent_again_with_the_same_key(as_role):
    page = as_role("front_desk")
    page.post(reverse("client_create"), contact_post(date_of_birth="bad", submission_key="k-retry"))
    page.post(reverse("client_create"), contact_post(submission_key="k-retry"))
    assert Client.objects.filter(last_name="Newman").count() == 1


def test_any_staff_edits_contact_details(as_role, client_record):
    url = reverse("client_edit", args=[client_record.pk])
    form = as_role("therapist2").get(url).content.decode()
    assert 'value="Cora"' in form and 'value="14/03/1985"' in form
    data = contact_post(first_name="Cora", last_name="Client", phone="0999", date_of_birth="14/03/1985")
    del data["submission_key"]
    response = as_role("front_desk").post(url, data)
    assert response.status_code == 302
    client_record.refresh_from_db()
    assert client_record.phone == "0999"
    event = AuditEvent.objects.get(action="update_client", client=client_record)
    assert "phone" in event.detail["changed"]


def test_edit_with_a_bad_date_keeps_the_input_and_saves_nothing(as_role, client_record):
    url = reverse("client_edit", args=[client_record.pk])
    data = contact_post(first_name="Changed", date_of_birth="32/13/1985")
    response = as_role("front_desk").post(url, data)
    html = response.content.decode()
    assert "Date of birth: enter a real date" in html and 'value="Changed"' in html
    client_record.refresh_from_db()
    assert client_record.first_name == "Cora"


# --- the record -------------------------------------------------------------------------------------------------------


def test_front_desk_sees_contact_card_and_nothing_clinical(as_role, client_record, screen_client):
    from backcare.clinical.vocabulary import DECISION_TEXT

    client_record.phone = "07700 900444"
    client_record.save()
    screening = screen_client(client_record, "dvt_history", "anticoagulants")
    html = as_role("front_desk").get(reverse("client_detail", args=[client_record.pk])).content.decode()
    assert "07700 900444" in html and "cora@x.test" in html and "Cora Client" in html
    for finding in screening.result["findings"]:
        assert finding["title"] not in html
        assert finding["rationale"] not in html
    for text in DECISION_TEXT.values():
        assert text not in html
    for word in ("clearance", "Screening", "Start course", "Referral", "No course or session"):
        assert word not in html
    # The therapist sees the same record with its clinical part.
    therapist_html = as_role("therapist").get(reverse("client_detail", args=[client_record.pk])).content.decode()
    assert screening.result["findings"][0]["title"] in therapist_html


def test_clinical_view_is_audited(as_role, client_record, therapist):
    as_role("therapist").get(reverse("client_detail", args=[client_record.pk]))
    event = AuditEvent.objects.filter(action="view", client=client_record).latest("at")
    assert event.user == therapist.user and event.detail["page"] == "client record"


def test_record_links_to_the_other_areas(as_role, client_record, screen_client, therapist):
    from backcare.clinic.services.courses import start_course
    from backcare.clinic.services.referrals import create_referral

    screen_client(client_record)
    course = start_course(client_record, staff=therapist)
    referral = create_referral(client_record, staff=therapist, urgency="routine", reason="Check.")
    html = as_role("therapist").get(reverse("client_detail", args=[client_record.pk])).content.decode()
    assert reverse("course_detail", args=[course.pk]) in html
    assert reverse("referral_detail", args=[referral.pk]) in html
    assert reverse("intake_review", args=[client_record.pk]) in html
    assert reverse("referral_create", args=[client_record.pk]) in html
    # A course is in progress, so no second one can start.
    assert "Start course" not in html


def test_progress_chart_and_portal_invitation(as_role, make_client, therapist, client_record):
    from backcare.clinic.models import Outcome

    new = make_client(therapist, first_name="Ivy")
    html = as_role("therapist").get(reverse("client_detail", args=[new.pk])).content.decode()
    assert reverse("invite_client", args=[new.pk]) in html and "Invite to portal" in html
    assert reverse("progress_chart_svg", args=[new.pk]) not in html
    Outcome.objects.create(client=new, instrument="pain_nrs", timepoint="intake", score=5)
    html = as_role("therapist").get(reverse("client_detail", args=[new.pk])).content.decode()
    assert f'<img class="progress-chart" src="{reverse("progress_chart_svg", args=[new.pk])}"' in html
    # client_record already has a portal login: no invitation button.
    html = as_role("therapist").get(reverse("client_detail", args=[client_record.pk])).content.decode()
    assert "Invite to portal" not in html


# --- the treatment gate on the record --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("finding", "label"),
    [("fever", "Postpone"), ("dvt_suspected", "Refer urgently"), ("saddle_anaesthesia", "Emergency referral")],
)
def test_blocking_decisions_show_the_hard_stop_and_no_start_button(
    as_role, client_record, screen_client, finding, label
):
    screen_client(client_record, finding)
    html = as_role("therapist").get(reverse("client_detail", args=[client_record.pk])).content.decode()
    assert "No course or session can start" in html and label in html
    assert "Start course" not in html
    assert reverse("course_start", args=[client_record.pk]) not in html


def test_no_screening_is_a_hard_stop(as_role, client_record):
    html = as_role("therapist").get(reverse("client_detail", args=[client_record.pk])).content.decode()
    assert "No course or session can start" in html and "no screening yet" in html
    assert "Start course" not in html


def test_pending_clearance_shows_what_is_missing_until_recorded(as_role, client_record, screen_client, therapist):
    from backcare.clinic.services.screening import record_clearance

    screening = screen_client(client_record, "dvt_history")
    url = reverse("client_detail", args=[client_record.pk])
    html = as_role("therapist").get(url).content.decode()
    assert "No course or session can start" in html
    assert "Past blood clot (DVT or pulmonary embolism)" in html
    assert reverse("clearance_create", args=[client_record.pk, screening.pk]) in html
    assert "Start course" not in html
    record_clearance(screening, given_by="Dr Jones, GP", given_on=dt.date.today(), note="Fine.", staff=therapist)
    html = as_role("therapist").get(url).content.decode()
    assert "No course or session can start" not in html
    assert "Start course" in html and reverse("course_start", args=[client_record.pk]) in html


def test_allowed_decision_offers_start_course(as_role, client_record, screen_client):
    screen_client(client_record, "anticoagulants")
    html = as_role("owner").get(reverse("client_detail", args=[client_record.pk])).content.decode()
    assert "No course or session can start" not in html
    assert "Start course" in html
    assert not Course.objects.exists()


# --- sharing and assignment ------------------------------------------------------------------------------------------


def test_owner_shares_and_unshares_with_another_therapist(as_role, client_record, therapist2):
    url = reverse("client_detail", args=[client_record.pk])
    share = reverse("client_share", args=[client_record.pk])
    assert as_role("therapist2").get(url).status_code == 404
    response = as_role("owner").post(share, {"action": "share", "share-therapist": therapist2.pk})
    assert response.status_code == 302
    assert as_role("therapist2").get(url).status_code == 200
    assert "Shared with you" in as_role("therapist2").get(reverse("client_list")).content.decode()
    assert AuditEvent.objects.filter(action="share_client", client=client_record).exists()
    as_role("owner").post(share, {"action": "unshare", "therapist": therapist2.pk})
    assert as_role("therapist2").get(url).status_code == 404


def test_only_the_owner_may_share(as_role, client_record, therapist2):
    share = reverse("client_share", args=[client_record.pk])
    for role in ("therapist", "therapist2", "front_desk", "client"):
        response = as_role(role).post(share, {"action": "share", "share-therapist": therapist2.pk})
        assert response.status_code == 403
    assert not client_record.shared_with.exists()


def test_sharing_with_a_non_therapist_is_refused_with_a_message(as_role, client_record, front_desk):
    share = reverse("client_share", args=[client_record.pk])
    response = as_role("owner").post(share, {"action": "share", "share-therapist": front_desk.pk})
    assert response.status_code == 200
    assert "Therapist: choose a therapist of this clinic" in response.content.decode()
    assert not client_record.shared_with.exists()


def test_owner_reassigns_the_therapist(as_role, client_record, therapist2):
    share = reverse("client_share", args=[client_record.pk])
    as_role("owner").post(share, {"action": "assign", "assign-therapist": therapist2.pk})
    client_record.refresh_from_db()
    assert client_record.therapist == therapist2
    assert as_role("therapist").get(reverse("client_detail", args=[client_record.pk])).status_code == 404
    assert as_role("therapist2").get(reverse("client_detail", args=[client_record.pk])).status_code == 200
    assert AuditEvent.objects.filter(action="assign_therapist", client=client_record).exists()


# --- the audit trail -------------------------------------------------------------------------------------------------


def test_audit_trail_newest_first_and_paginated(as_role, client_record, therapist):
    from backcare.clinic import audit

    for n in range(55):
        audit.record(therapist.user, "view", client=client_record, detail={"page": f"page number {n}"})
    first = as_role("owner").get(reverse("client_audit", args=[client_record.pk])).content.decode()
    assert "Page number 54" in first and not re.search(r"Page number 0\b", first)
    assert first.index("Page number 54") < first.index("Page number 53")
    assert "Theo Therapist (Therapist)" in first
    second = as_role("owner").get(reverse("client_audit", args=[client_record.pk]), {"page": 2}).content.decode()
    assert re.search(r"Page number 0\b", second)


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_audit_trail_cannot_be_changed(as_role, client_record, method):
    page = as_role("owner")
    before = AuditEvent.objects.count()
    response = getattr(page, method)(reverse("client_audit", args=[client_record.pk]))
    assert response.status_code == 405
    assert AuditEvent.objects.count() == before


def test_record_pages_refuse_writes_they_do_not_take(as_role, client_record):
    for name in ("client_detail",):
        assert as_role("owner").post(reverse(name, args=[client_record.pk])).status_code == 405
    assert as_role("owner").delete(reverse("client_list")).status_code == 405


# --- escaping --------------------------------------------------------------------------------------------------------


def test_script_in_a_name_is_escaped_on_every_page(as_role, make_client, therapist, screen_client):
    evil = make_client(therapist, first_name=SCRIPT, last_name=SCRIPT, physician_name=SCRIPT, address=SCRIPT)
    screen_client(evil, "dvt_history")
    screening = evil.screenings.get()
    urls = [
        reverse("client_list"),
        reverse("client_detail", args=[evil.pk]),
        reverse("client_edit", args=[evil.pk]),
        reverse("client_share", args=[evil.pk]),
        reverse("client_audit", args=[evil.pk]),
        reverse("clearance_create", args=[evil.pk, screening.pk]),
        reverse("referral_create", args=[evil.pk]),
    ]
    for role in ("owner", "front_desk"):
        for url in urls:
            response = as_role(role).get(url)
            if role == "front_desk" and response.status_code == 403:
                continue  # clinical and owner-only pages are refused to the front desk
            assert response.status_code == 200, (role, url)
            html = response.content.decode()
            assert SCRIPT not in html, (role, url)
            assert ESCAPED in html, (role, url)


def test_script_typed_into_the_create_form_is_escaped_when_shown_again(as_role):
    response = as_role("front_desk").post(
        reverse("client_create"), contact_post(first_name=SCRIPT, date_of_birth="nonsense")
    )
    html = response.content.decode()
    assert SCRIPT not in html and "&lt;script&gt;" in html
