"""CLINICAL.md sections 1 and 12: every finding has a time frame, and the client message leads with the strongest
instruction, states the referral and time frame in words, never contradicts itself and names no telephone number."""

from __future__ import annotations

import re
from typing import Any

import pytest
from rulecheck import screening

from backcare.clinical.rulebase import default_rule_base

WORDS = {
    "now": "call emergency services or go to the emergency department now",
    "within_24_hours": "today, within 24 hours",
    "within_days": "within the next few days",
    "routine": "at a routine appointment",
}
TIMEFRAMES = ("none", "routine", "within_days", "within_24_hours", "now")
TELEPHONE = re.compile(r"\b(999|911|112|111|000)\b|\d{3,}")
# One case per time frame, and mixtures where the referral comes from a weaker finding than the lead.
CASES: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
    "cauda_equina": (("saddle_anaesthesia", "bruise"), {}),
    "infection": (("fever", "corticosteroids_long_term"), {}),
    "cancer_unassessed": (("cancer_history",), {"pain__medically_assessed": False}),
    "fever_alone": (("fever",), {}),
    "illness_and_intense_pain": (("acute_illness",), {"pain__intensity": 8, "pain__medically_assessed": False}),
    "bleeding_and_night_pain": (("bleeding_disorder", "night_pain"), {"pain__medically_assessed": False}),
    "bruise": (({"code": "bruise", "region": "arm_left"},), {}),
    "nothing": ((), {}),
    "clot_and_chronic": (("dvt_suspected",), {"pain__duration_weeks": 20, "pain__medically_assessed": False}),
}


def case(name: str) -> dict[str, Any]:
    codes, changes = CASES[name]
    return screening(*codes, **changes)


@pytest.mark.parametrize("rule", default_rule_base().rules, ids=lambda r: r.id)
def test_every_finding_has_the_time_frame_its_referral_gives(rule: Any) -> None:
    referral = rule.effect.referral
    expected = {"emergency": {"now"}, "urgent": {"within_days", "within_24_hours"}, "routine": {"routine"}}
    assert rule.timeframe in expected.get(referral, {"none"})


@pytest.mark.parametrize(
    "rule_id",
    [
        "urgent.possible_spinal_infection",
        "urgent.infection_risk_unwell",
        "urgent.cancer_spinal_symptoms",
        "urgent.aortic_aneurysm_unassessed",
        "urgent.possible_thrombosis",
        "urgent.child_systemic",
    ],
)
def test_the_rules_clinical_md_times_within_24_hours_are(rule_id: str) -> None:
    assert default_rule_base().rule(rule_id).timeframe == "within_24_hours"


@pytest.mark.parametrize("name", CASES)
def test_the_message_leads_with_the_first_finding_and_states_the_results_time_frame(name: str) -> None:
    result = case(name)
    message = result["client_message"]
    assert message["text"].strip()
    if not result["findings"]:
        assert message["lead_rule"] is None and message["timeframe"] == "none"
        assert "no reason to delay massage" in message["text"]
        return
    assert message["lead_rule"] == result["findings"][0]["rule"]
    assert result["findings"][0]["decision"] == result["decision"]
    shortest = max(result["findings"], key=lambda f: TIMEFRAMES.index(f["timeframe"]))["timeframe"]
    assert message["timeframe"] == shortest
    if shortest != "none":
        first_sentences = message["text"].split("Also noted:")[0]
        assert WORDS[shortest] in first_sentences


@pytest.mark.parametrize("name", CASES)
def test_the_message_never_contradicts_its_decision_or_referral(name: str) -> None:
    result = case(name)
    text = result["client_message"]["text"].split("Also noted:")[0].lower()
    if result["decision"] in ("postpone", "refer_urgent", "refer_emergency"):
        assert "can go ahead" not in text and "may go ahead" not in text
        assert not any(t in text for t in ("pressure", "technique"))
    if result["referral"] in ("urgent", "emergency"):
        assert "routine appointment" not in text
        assert "no need" not in text
    # Weaker findings follow as reasons only: their titles, never their summaries.
    for finding in result["findings"][1:]:
        assert finding["summary"] not in result["client_message"]["text"]


@pytest.mark.parametrize("name", CASES)
def test_no_text_the_engine_produces_contains_a_telephone_number(name: str) -> None:
    result = case(name)
    texts = [result["client_message"]["text"]]
    texts += [f[k] for f in result["findings"] for k in ("title", "summary", "rationale")]
    for text in texts:
        assert not TELEPHONE.search(text), text


def test_an_emergency_says_emergency_services_now_with_no_number() -> None:
    result = case("cauda_equina")
    assert result["client_message"]["timeframe"] == "now"
    assert result["findings"][0]["timeframe"] == "now"
    assert "call emergency services or go to the emergency department now" in result["client_message"]["text"]


def test_a_referral_from_a_weaker_finding_is_stated_in_the_opening() -> None:
    # Clearance leads (bleeding disorder, no referral of its own); night pain adds a routine referral.
    result = case("bleeding_and_night_pain")
    assert result["client_message"]["lead_rule"] == "clearance.bleeding_disorder"
    assert result["referral"] == "routine"
    assert "at a routine appointment" in result["client_message"]["text"].split("Also noted:")[0]


def test_an_urgent_referral_does_not_repeat_the_weaker_routine_advice() -> None:
    result = case("clot_and_chronic")
    text = result["client_message"]["text"]
    assert "today, within 24 hours" in text
    assert "routine appointment" not in text
    assert "Also noted: Pain for more than 12 weeks, not assessed" in text


def test_known_cancer_with_nerve_root_pain_names_the_acute_oncology_service() -> None:
    result = screening("cancer_active", "sciatica", pain__medically_assessed=True)
    assert "within 24 hours" in result["client_message"]["text"]
    assert "acute oncology service" in result["client_message"]["text"]


def test_findings_are_ordered_by_decision_then_referral_then_time_frame() -> None:
    result = screening("dvt_suspected", "cancer_history", "fever", "iv_drug_use", pain__medically_assessed=False)
    keys = [
        (f["decision"], f["referral"], TIMEFRAMES.index(f["timeframe"]))
        for f in result["findings"]
        if f["decision"] == "refer_urgent"
    ]
    assert [k[2] for k in keys] == sorted((k[2] for k in keys), reverse=True)
    assert result["findings"][0]["timeframe"] == "within_24_hours"


def test_the_result_names_the_contract_it_meets() -> None:
    assert case("nothing")["rule_base"]["contract"] == "1.1"
