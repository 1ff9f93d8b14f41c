"""Ids and numbers read from URLs and forms are ASCII digits only. Python's isdigit() and int() also take other
digits: int("\u00b3") raises, so a page answered 500; int("\u0661") is 1, so another spelling reached a record."""

from __future__ import annotations

import pytest
from django.urls import reverse

from backcare.common.ids import ascii_id
from backcare.scheduling.forms import decode_slot, epoch_to_utc
from clinic_fixtures import login

pytestmark = pytest.mark.django_db

ARABIC_INDIC = "".join(chr(0x0660 + n) for n in range(10))
NOT_ASCII = ["\u00b3", "\u0661\u0662", "\uff11", "\u00b2\u00b3", "7\n", " 7", "+7", "7_0", ""]


@pytest.mark.parametrize("text", NOT_ASCII)
def test_only_ascii_digits_are_an_id(text):
    assert ascii_id(text) is None


def test_ascii_digits_are_an_id_up_to_the_length_limit():
    assert ascii_id("42") == 42 and ascii_id("0" * 17 + "1") == 1
    assert ascii_id("1" * 19) is None, "longer than a database id"


@pytest.mark.parametrize("text", ["\u00b3", "\u0661\u0662", "\uff11"])
def test_a_slot_or_time_in_other_digits_is_unreadable_not_a_crash(text):
    assert decode_slot(f"{text}|1|1") is None
    assert decode_slot(f"1700000000|{text}|1") is None
    assert epoch_to_utc(text) is None


@pytest.mark.parametrize("text", ["\u00b3", "\u0661"])
def test_the_waitlist_page_ignores_a_client_in_other_digits(client, owner, make_client, therapist, text):
    cora = make_client(therapist)
    login(client, owner.user)
    response = client.get(reverse("staff_waitlist_add"), {"client": text})
    assert response.status_code == 200
    assert f'value="{cora.pk}" selected' not in response.content.decode()


def test_revoking_a_token_named_in_other_digits_is_refused_plainly(client, owner):
    from backcare.api import tokens
    from backcare.api.models import ApiToken

    tokens.create_token(owner.user, name="script", scopes=["read"])
    row = ApiToken.objects.get(user=owner.user)
    login(client, owner.user)
    other = str(row.pk).translate(str.maketrans("0123456789", ARABIC_INDIC))
    for junk in ("\u00b3", other):
        page = client.post(reverse("api_tokens"), {"action": "revoke", "token": junk}, follow=True)
        assert page.status_code == 200 and "not one of yours" in page.content.decode()
    row.refresh_from_db()
    assert row.revoked_at is None


def test_a_progress_chart_for_a_course_in_other_digits_is_not_found(client, therapist, client_record, screen_client):
    from backcare.clinic.services import courses

    screen_client(client_record)
    course = courses.start_course(client_record, staff=therapist, sessions_planned=4, reassess_after=2)
    login(client, therapist.user)
    url = reverse("progress_chart_svg", args=[client_record.pk])
    assert client.get(url, {"course": str(course.pk)}).status_code == 200
    other = str(course.pk).translate(str.maketrans("0123456789", ARABIC_INDIC))
    for junk in ("\u00b3", other, f" {course.pk}"):
        assert client.get(url, {"course": junk}).status_code == 404, junk
