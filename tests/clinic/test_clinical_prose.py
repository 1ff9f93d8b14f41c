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
