"""Writing a referral to the client's physician through the page, and the referral's own page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from backcare.clinic.models import AuditEvent, Referral
from clinic_fixtures import login

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(autouse=True)
def fresh_submission_keys(db):
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def as_role(client, owner, therapist, therapist2, front_desk, client_record):
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


def selected_urgency(html):
    """The urgency option the form shows as chosen ("" when none)."""
    select = html.split('name="urgency"')[1].split("</select>")[0]
    if "selected" not in select:
        return ""
    return select.split(" selected")[0].rsplit('value="', 1)[1].split('"')[0]


ROLE_STATUS = [("owner", 200), ("therapist", 200), ("therapist2", 404), ("front_desk", 403), ("client", 403)]


@pytest.mark.parametrize(("role", "status"), ROLE_STATUS)
def test_referral_pages_by_role(as_role, client_record, therapist, role, status):
    from backcare.clinic.services.referrals import create_referral

    referral = create_referral(client_record, staff=therapist, urgency="routine", reason="Check the hip.")
    assert as_role(role).get(reverse("referral_create", args=[client_record.pk])).status_code == status
    assert as_role(role).get(reverse("referral_detail", args=[referral.pk])).status_code == status
    if status != 200:
        post = as_role(role).post(
            reverse("referral_create", args=[client_record.pk]),
            {"urgency": "urgent", "reason": "x", "submission_key": "r"},
        )
        assert post.status_code == status
        assert Referral.objects.count() == 1
    assert as_role("anonymous").get(reverse("referral_detail", args=[referral.pk])).status_code == 302


@pytest.mark.parametrize(
    ("finding", "urgency", "title"),
    [
        ("fever", "routine", "Fever"),
        ("dvt_suspected", "urgent", "Possible blood clot (deep vein thrombosis or phlebitis)"),
        ("saddle_anaesthesia", "emergency", "Possible cauda equina syndrome"),
    ],
)
def test_form_is_prefilled_from_the_latest_screening(as_role, client_record, screen_client, finding, urgency, title):
    screen_client(client_record, finding)
    html = as_role("therapist").get(reverse("referral_create", args=[client_record.pk])).content.decode()
    assert selected_urgency(html) == urgency
    reason = html.split('name="reason"')[1].split("</textarea>")[0]
    assert title in reason


def test_no_prefill_when_the_screening_asks_for_no_referral(as_role, client_record, screen_client):
    screen_client(client_record, "anticoagulants")
    html = as_role("therapist").get(reverse("referral_create", args=[client_record.pk])).content.decode()
    assert selected_urgency(html) == ""
    assert "Blood-thinning medicines" not in html.split('name="reason"')[1].split("</textarea>")[0]


def test_creating_a_referral_links_screening_and_course(as_role, client_record, screen_client, therapist):
    from backcare.clinic.services.courses import start_course

    screening = screen_client(client_record, "anticoagulants")
    course = start_course(client_record, staff=therapist)
    response = as_role("therapist").post(
        reverse("referral_create", args=[client_record.pk]),
        {"urgency": "routine", "reason": "Bruising easily; please review medication.", "submission_key": "k1"},
    )
    referral = Referral.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("referral_detail", args=[referral.pk])
    assert referral.screening == screening and referral.course == course and referral.created_by == therapist
    assert [f["title"] for f in referral.findings] == ["Blood-thinning medicines"]
    assert AuditEvent.objects.filter(action="create_referral", client=client_record).exists()
    html = as_role("therapist").get(response["Location"]).content.decode()
    assert "Bruising easily; please review medication." in html
    assert reverse("referral_letter_pdf", args=[referral.pk]) in html
    assert reverse("course_detail", args=[course.pk]) in html
    assert "Blood-thinning medicines" in html
    assert AuditEvent.objects.filter(action="view", detail__page="referral", object_id=str(referral.pk)).exists()


def test_double_submission_creates_one_referral(as_role, client_record, screen_client):
    screen_client(client_record, "fever")
    data = {"urgency": "routine", "reason": "Fever with back pain.", "submission_key": "same"}
    first = as_role("therapist").post(reverse("referral_create", args=[client_record.pk]), data)
    second = as_role("therapist").post(reverse("referral_create", args=[client_record.pk]), data)
    assert Referral.objects.count() == 1
    assert first["Location"] == second["Location"]


def test_missing_reason_and_urgency_are_named_and_input_kept(as_role, client_record):
    url = reverse("referral_create", args=[client_record.pk])
    response = as_role("therapist").post(url, {"urgency": "", "reason": "   ", "submission_key": "k"})
    html = response.content.decode()
    assert "Urgency: choose routine, urgent or emergency." in html
    assert "Reason: give the reason for the referral." in html
    response = as_role("therapist").post(url, {"urgency": "urgent", "reason": "", "submission_key": "k"})
    assert selected_urgency(response.content.decode()) == "urgent"
    response = as_role("therapist").post(url, {"urgency": "someday", "reason": "Kept text", "submission_key": "k"})
    html = response.content.decode()
    assert "Urgency: choose one of the options in the list." in html and "Kept text" in html
    assert not Referral.objects.exists()


def test_script_in_the_reason_is_escaped(as_role, client_record):
    as_role("therapist").post(
        reverse("referral_create", args=[client_record.pk]),
        {"urgency": "routine", "reason": SCRIPT, "submission_key": "x"},
    )
    referral = Referral.objects.get()
    for role in ("therapist", "owner"):
        html = as_role(role).get(reverse("referral_detail", args=[referral.pk])).content.decode()
        assert SCRIPT not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    response = as_role("therapist").post(
        reverse("referral_create", args=[client_record.pk]), {"urgency": "", "reason": SCRIPT, "submission_key": "y"}
    )
    html = response.content.decode()
    assert SCRIPT not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_shared_therapist_may_refer(as_role, client_record, owner, therapist2):
    from backcare.clinic.services.clients import share_client

    share_client(client_record, therapist=therapist2, staff=owner)
    response = as_role("therapist2").post(
        reverse("referral_create", args=[client_record.pk]),
        {"urgency": "routine", "reason": "Covering colleague's client.", "submission_key": "s"},
    )
    assert response.status_code == 302
    assert Referral.objects.get().created_by == therapist2
