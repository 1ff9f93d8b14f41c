"""The therapist's view of a screening: decision, findings with their sources, precautions in words, the plan."""

from __future__ import annotations

import html as html_lib

import pytest
from django.template import Context, Template
from django.urls import reverse

from backcare.clinic.templatetags.clinical import citation
from backcare.clinical.vocabulary import DECISION_TEXT, REFERRAL_TEXT
from clinic_fixtures import login


@pytest.fixture
def record_page(client, therapist, client_record):
    def get():
        login(client, therapist.user)
        response = client.get(reverse("client_detail", args=[client_record.pk]))
        assert response.status_code == 200
        return html_lib.unescape(response.content.decode())

    return get


def test_findings_with_rationale_region_and_sources(record_page, client_record, screen_client):
    screening = screen_client(client_record, "anticoagulants", {"code": "bruise", "region": "thigh_left"})
    page = record_page()
    assert "Proceed with precautions" in page
    assert DECISION_TEXT["proceed_with_precautions"] in page
    assert REFERRAL_TEXT["none"] in page
    for finding in screening.result["findings"]:
        assert finding["title"] in page
        assert finding["rationale"] in page
        for source in finding["sources"]:
            assert citation(source) in page  # the registry's full citation, with the section cited
    assert "Region: Left thigh" in page


def test_precautions_in_words_and_on_the_body_map(record_page, client_record, screen_client):
    screen_client(client_record, "anticoagulants", {"code": "bruise", "region": "thigh_left"})
    raw_page = record_page()
    # Maximum pressure with the pressure scale's word; techniques to avoid by name, never as codes.
    assert "Level 3 of 5 (moderate) at most" in raw_page
    assert "Deep-tissue massage" in raw_page and "Friction (rubbing) massage for contractures" in raw_page
    assert "deep_tissue" not in raw_page
    # The region to avoid is marked on the body map.
    assert 'class="region avoid" data-region="thigh_left"' in raw_page
    assert 'class="region" data-region="thigh_right"' in raw_page


def test_positioning_in_words(record_page, client_record, screen_client):
    screen_client(client_record, pregnancy_weeks=20)
    page = record_page()
    assert "Pregnancy, from 13 weeks" in page
    assert "Side-lying position (pregnancy from 13 weeks)" in page
    assert "No lying face down" in page
    assert "no_prone" not in page


def test_plan_with_each_rationale_item_and_sources(record_page, client_record, screen_client):
    screening = screen_client(client_record, "anticoagulants")
    plan = screening.result["plan"]
    page = record_page()
    assert "Remedial (therapeutic) massage" in page
    assert f"{plan['sessions']} sessions over {plan['weeks']} weeks, reassessed after session" in page
    assert "Exercise programme: back exercises, staying active" in page
    for item in plan["rationale"]:
        assert item["text"] in page
        for source in item["sources"]:
            assert citation(source) in page
    assert "Alongside massage: Exercise programme" in page
    assert "What the evidence says" in page
    assert f"Rule base version {screening.result['rule_base']['version']}" in page


def test_blocking_screening_shows_referral_and_no_plan(record_page, client_record, screen_client):
    screen_client(client_record, "saddle_anaesthesia")
    page = record_page()
    assert "Emergency referral" in page
    assert DECISION_TEXT["refer_emergency"] in page
    assert REFERRAL_TEXT["emergency"] in page
    assert "Possible cauda equina syndrome" in page
    assert "No plan: this decision does not allow treatment." in page


def test_clean_screening_says_so(record_page, client_record, screen_client):
    screen_client(client_record)
    page = record_page()
    assert DECISION_TEXT["proceed"] in page
    assert "Nothing in the intake needs a precaution." in page


def test_latest_screening_is_shown_and_earlier_ones_listed(record_page, client_record, screen_client, therapist):
    import datetime as dt

    from backcare.clinic.services.assessments import Assessment
    from backcare.clinic.services.screening import run_screening

    first = screen_client(client_record, "fever")
    # The review withdraws the fever (a postpone), so it records the medical assessment that allows it.
    seen = Assessment("Dr A. Jones, GP", "", dt.date.today(), "Viral illness, recovered.", "The fever has passed.")
    run_screening(
        client_record,
        dict(first.document, findings=[]),
        kind="review",
        by=therapist.user,
        assessment=seen,
    )
    page = record_page()
    assert "Earlier screenings" in page
    assert "Screening after the therapist's review" in page
    assert "No course or session can start" not in page  # the latest screening decides


def test_vocabulary_filters_turn_codes_into_words():
    template = Template(
        "{% load clinical %}{{ 'thigh_left'|region }}|{{ 4|pressure }}|{{ 'heat'|adjunct }}|"
        "{{ 'no_prone'|positioning }}|{{ 'refer_urgent'|decision_label }}|{{ 'deep_tissue'|words:'techniques' }}|"
        "{{ 'unknown_code'|region }}|{{ 9|pressure }}"
    )
    rendered = template.render(Context({}))
    assert rendered == (
        "Left thigh|firm|Superficial heat|No lying face down|Refer urgently|Deep-tissue massage|unknown code|"
    )
