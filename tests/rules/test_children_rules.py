"""CLINICAL.md section 11: under 16 the adult guidance does not apply; 16 and over follow the adult rules."""

from __future__ import annotations

from typing import Any

import pytest
from rulecheck import DECISIONS, cites, screening

START_BACK_HIGH = {"agree": [True, False, False, False, True, True, True, True], "bothersomeness": "very_much"}
# The paediatric red flags that make an unassessed episode urgent, each as (findings, changes) on a 12-year-old.
PAEDIATRIC_FLAGS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "age_under_10": ((), {"age": 9}),
    "episode_over_4_weeks": ((), {"pain__duration_weeks": 4.5}),
    "night_pain": (("night_pain",), {}),
    "night_waking_second_half": (("night_waking_second_half",), {}),
    "morning_stiffness": (("morning_stiffness",), {}),
    "sciatica": (("sciatica",), {}),
    "bilateral_sciatica": (("bilateral_sciatica",), {}),
    "pain_worse_cough_strain": (("pain_worse_cough_strain",), {}),
}


def child(*codes: str, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"age": 12, "pain__duration_weeks": 2, "pain__medically_assessed": False}
    return screening(*codes, **base | changes)


def at_least(result: dict[str, Any], decision: str) -> bool:
    return DECISIONS.index(result["decision"]) >= DECISIONS.index(decision)


@pytest.mark.parametrize("age", [0, 5, 10, 12, 15])
@pytest.mark.parametrize("assessed", [False, True])
def test_under_16_always_needs_clearance_and_a_routine_referral(age: int, assessed: bool) -> None:
    result = screening(age=age, pain__duration_weeks=2, pain__medically_assessed=assessed)
    assert at_least(result, "clearance_required")
    assert result["referral"] in ("routine", "urgent", "emergency")
    assert "clearance.under_16" in [f["rule"] for f in result["findings"]]
    assert cites(result, "NG59") and cites(result, "Houghton")


@pytest.mark.parametrize("age", [16, 17])
def test_16_and_17_year_olds_follow_the_adult_rules(age: int) -> None:
    result = screening(age=age, pain__duration_weeks=2, pain__medically_assessed=True)
    assert result["decision"] == "proceed"
    assert result["referral"] == "none"


def test_an_adolescent_without_red_flags_is_clearance_not_urgent() -> None:
    result = screening(age=14, pain__duration_weeks=3, pain__medically_assessed=False, pain__onset="after_exercise")
    assert result["decision"] == "clearance_required"
    assert result["referral"] == "routine"
    assert result["plan"] is not None


@pytest.mark.parametrize("flag", PAEDIATRIC_FLAGS)
def test_a_paediatric_red_flag_in_an_unassessed_episode_is_at_least_an_urgent_referral(flag: str) -> None:
    codes, changes = PAEDIATRIC_FLAGS[flag]
    result = child(*codes, **changes)
    assert at_least(result, "refer_urgent")
    assert result["referral"] in ("urgent", "emergency")
    assert result["plan"] is None
    assert cites(result, "Paediatric Musculoskeletal Matters", "Perth", "ACR")


@pytest.mark.parametrize("flag", ["age_under_10", "episode_over_4_weeks", "night_pain", "morning_stiffness"])
def test_a_paediatric_red_flag_in_an_assessed_episode_stays_at_clearance(flag: str) -> None:
    codes, changes = PAEDIATRIC_FLAGS[flag]
    result = child(*codes, **changes | {"pain__medically_assessed": True})
    assert result["decision"] == "clearance_required"


@pytest.mark.parametrize(("age", "urgent"), [(9, True), (10, False)])
def test_under_10_stands_for_prepubertal(age: int, urgent: bool) -> None:
    assert at_least(child(age=age), "refer_urgent") is urgent


@pytest.mark.parametrize(("weeks", "urgent"), [(4, False), (4.1, True)])
def test_an_episode_over_4_weeks_is_a_paediatric_red_flag(weeks: float, urgent: bool) -> None:
    assert at_least(child(pain__duration_weeks=weeks), "refer_urgent") is urgent


@pytest.mark.parametrize("code", ["night_pain", "morning_stiffness", "pain_worse_cough_strain"])
def test_a_paediatric_red_flag_at_16_is_not_the_paediatric_rule(code: str) -> None:
    result = screening(code, age=16, pain__duration_weeks=2, pain__medically_assessed=False)
    assert "urgent.child_red_flags" not in [f["rule"] for f in result["findings"]]
    assert not at_least(result, "refer_urgent")


@pytest.mark.parametrize("code", ["fever", "systemically_unwell", "unexplained_weight_loss"])
@pytest.mark.parametrize("assessed", [False, True])
def test_fever_illness_or_weight_loss_in_a_child_is_urgent_within_24_hours(code: str, assessed: bool) -> None:
    result = child(code, pain__medically_assessed=assessed)
    assert at_least(result, "refer_urgent")
    assert result["findings"][0]["timeframe"] in ("within_24_hours", "now")
    assert result["client_message"]["timeframe"] in ("within_24_hours", "now")
    assert "within 24 hours" in result["client_message"]["text"]


def test_fever_in_an_adult_alone_is_not_the_paediatric_rule() -> None:
    result = screening("fever", age=16, pain__medically_assessed=True)
    assert result["decision"] == "postpone"


def test_start_back_is_not_scored_under_16_and_the_finding_says_why() -> None:
    result = screening(age=14, start_back=START_BACK_HIGH, pain__medically_assessed=False, goals=["sports_recovery"])
    assert result["plan"]["risk_group"] is None
    assert "psychological_support" not in result["plan"]["adjuncts"]
    assert "physiotherapy" not in result["plan"]["adjuncts"]
    assert "exercise" in result["plan"]["adjuncts"]
    summary = next(f["summary"] for f in result["findings"] if f["rule"] == "clearance.under_16")
    assert "validated in adults" in summary and "not used" in summary


def test_start_back_is_scored_from_16() -> None:
    result = screening(age=16, start_back=START_BACK_HIGH, pain__medically_assessed=True)
    assert result["plan"]["risk_group"] == "high"
    assert "psychological_support" in result["plan"]["adjuncts"]
