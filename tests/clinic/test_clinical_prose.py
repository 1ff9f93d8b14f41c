"""Clinical texts read as clinical prose: the pages show a decision in words, never its code in brackets."""

from __future__ import annotations

from django.urls import reverse

from backcare.clinic import documents
from clinic_fixtures import login


def test_review_page_and_referral_letter_name_decisions_in_words(client, therapist, client_record, screen_client):
    from backcare.clinic.services.referrals import create_referral

    screening = screen_client(client_record, "dvt_history")
    login(client, therapist.user)
    html = client.get(reverse("intake_review", args=[client_record.pk])).content.decode()
    assert "(clearance_required)" not in html
    referral = create_referral(client_record, staff=therapist, urgency="routine", reason="Clot.", screening=screening)
    letter = documents.referral_letter_html(referral)
    import re

    assert not re.search(r">[^<]*clearance_required[^<]*<", letter), "a raw decision code in the letter's text"


def test_sources_show_as_full_citations(client, therapist, client_record, screen_client):
    from backcare.clinical.rulebase import default_rule_base

    screening = screen_client(client_record, "dvt_history")
    login(client, therapist.user)
    html = client.get(reverse("client_detail", args=[client_record.pk])).content.decode()
    sources = default_rule_base().sources
    for short in screening.result["findings"][0]["sources"]:
        entry = next(e for e in sources.values() if short == e.short or short.startswith(e.short + ": "))
        assert entry.citation.replace("'", "&#x27;")[:60] in html, entry.id


def test_a_seed_document_is_marked_as_a_practice_description():
    from django.template import Context, Template

    from backcare.clinical.rulebase import default_rule_base

    seed = next(e for e in default_rule_base().sources.values() if e.id.startswith("seed-"))
    text = Template("{% load clinical %}{{ s|citation }}").render(Context({"s": f"{seed.short}: contraindications"}))
    assert "Describes practice; not evidence." in text and text.endswith("[contraindications]")
