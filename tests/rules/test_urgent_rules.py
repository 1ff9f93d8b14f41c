"""CLINICAL.md section 3: signs of a possible serious cause mean no massage and a physician within days."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from rulecheck import DECISIONS, REFERRALS, cites, screening

INFECTION_RISKS = ["immunosuppression", "iv_drug_use", "recent_infection"]
FRAGILE_BONE: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "osteoporosis": (("osteoporosis",), {}),
    "osteoporosis_severe": (("osteoporosis_severe",), {}),
    "corticosteroids_long_term": (("corticosteroids_long_term",), {}),
    "age_70": ((), {"age": 70}),
    "age_84": ((), {"age": 84}),
}
WEAK_FLAGS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "first_episode_at_55": ((), {"pain__first_episode": True, "age": 55}),
    "first_episode_at_17": ((), {"pain__first_episode": True, "age": 17}),
    "night_pain": (("night_pain",), {}),
    "thoracic_pain": (("thoracic_pain",), {}),
}
# Both first-episode flags at once would need two ages.
WEAK_PAIRS = [
    pair for pair in itertools.combinations(WEAK_FLAGS, 2) if not all(name.startswith("first_episode") for name in pair)
]


def screen_with(
    table: dict[str, tuple[tuple[str, ...], dict[str, Any]]], *names: str, **overrides: Any
) -> dict[str, Any]:
    """Screen a plain unassessed intake carrying the named entries of `table` (findings and changes)."""
    codes: list[str] = []
    changes: dict[str, Any] = {"pain__medically_assessed": False}
    for name in names:
        more_codes, more_changes = table[name]
        codes.extend(more_codes)
        changes.update(more_changes)
    return screening(*codes, **changes | overrides)


def is_urgent_referral(result: dict[str, Any]) -> bool:
    return result["decision"] == "refer_urgent" and result["referral"] == "urgent" and result["plan"] is None


def at_least_urgent(result: dict[str, Any]) -> bool:
    return DECISIONS.index(result["decision"]) >= DECISIONS.index("refer_urgent")


# ---- cancer ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["cancer_history", "cancer_active"])
def test_cancer_with_back_pain_no_physician_has_assessed_is_an_urgent_referral(code: str) -> None:
    result = screening(code, pain__medically_assessed=False)
    assert is_urgent_referral(result)
    assert cites(result, "Henschke", "Chou")


def test_cancer_history_when_the_episode_is_assessed_is_not_an_urgent_referral() -> None:
    result = screening("cancer_history", pain__medically_assessed=True)
    assert not at_least_urgent(result)
    assert result["referral"] in ("none", "routine")
    assert result["plan"] is not None


def test_active_cancer_when_the_episode_is_assessed_needs_clearance_rather_than_an_urgent_referral() -> None:
    result = screening("cancer_active", pain__medically_assessed=True)
    assert result["decision"] == "clearance_required"
    assert result["plan"] is not None


# ---- weight loss ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("assessed", [False, True])
def test_unexplained_weight_loss_is_an_urgent_referral_whether_or_not_the_pain_was_assessed(assessed: bool) -> None:
    result = screening("unexplained_weight_loss", pain__medically_assessed=assessed)
    assert is_urgent_referral(result)
    assert cites(result, "NG12", "CKS", "Clinical Knowledge Summaries")


# ---- infection ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("assessed", [False, True])
@pytest.mark.parametrize("risk", INFECTION_RISKS)
def test_fever_with_a_risk_factor_for_spinal_infection_is_an_urgent_referral(risk: str, assessed: bool) -> None:
    result = screening("fever", risk, pain__medically_assessed=assessed)
    assert is_urgent_referral(result)
    assert cites(result, "Chou", "CKS", "Clinical Knowledge Summaries")


def test_fever_with_immunosuppression_is_an_urgent_referral() -> None:
    result = screening("fever", "immunosuppression")
    assert result["decision"] == "refer_urgent"
    assert result["referral"] == "urgent"


@pytest.mark.parametrize("risk", INFECTION_RISKS)
def test_a_risk_factor_for_spinal_infection_without_fever_is_not_an_urgent_referral(risk: str) -> None:
    result = screening(risk, pain__medically_assessed=False)
    assert not at_least_urgent(result)


def test_fever_without_a_risk_factor_is_not_an_urgent_referral() -> None:
    result = screening("fever", pain__medically_assessed=False)
    assert not at_least_urgent(result)


# ---- trauma ---------------------------------------------------------------------------------------------------


def trauma(kind: str, how: str) -> tuple[tuple[str, ...], dict[str, Any]]:
    """A trauma reported as a finding or as how the pain started."""
    return ((kind,), {}) if how == "finding" else ((), {"pain__onset": kind})


@pytest.mark.parametrize("how", ["finding", "onset"])
def test_major_trauma_no_physician_has_assessed_is_an_urgent_referral(how: str) -> None:
    codes, changes = trauma("major_trauma", how)
    result = screening(*codes, **changes, pain__medically_assessed=False)
    assert is_urgent_referral(result)
    assert cites(result, "Downie", "ACR Appropriateness")


@pytest.mark.parametrize("how", ["finding", "onset"])
def test_major_trauma_in_an_assessed_episode_is_not_an_urgent_referral(how: str) -> None:
    codes, changes = trauma("major_trauma", how)
    result = screening(*codes, **changes, pain__medically_assessed=True)
    assert not at_least_urgent(result)


@pytest.mark.parametrize("fragile", FRAGILE_BONE)
@pytest.mark.parametrize("how", ["finding", "onset"])
def test_minor_trauma_with_fragile_bone_no_physician_has_assessed_is_an_urgent_referral(how: str, fragile: str) -> None:
    codes, changes = trauma("minor_trauma", how)
    bone_codes, bone_changes = FRAGILE_BONE[fragile]
    result = screening(*codes, *bone_codes, **changes, **bone_changes, pain__medically_assessed=False)
    assert is_urgent_referral(result)
    assert cites(result, "Downie", "Chou")


@pytest.mark.parametrize(("age", "urgent"), [(69, False), (70, True)])
@pytest.mark.parametrize("how", ["finding", "onset"])
def test_minor_trauma_without_fragile_bone_is_an_urgent_referral_only_from_age_70(
    how: str, age: int, urgent: bool
) -> None:
    codes, changes = trauma("minor_trauma", how)
    result = screening(*codes, **changes, age=age, pain__medically_assessed=False)
    assert at_least_urgent(result) is urgent


@pytest.mark.parametrize("fragile", FRAGILE_BONE)
@pytest.mark.parametrize("how", ["finding", "onset"])
def test_minor_trauma_with_fragile_bone_in_an_assessed_episode_is_not_an_urgent_referral(
    how: str, fragile: str
) -> None:
    codes, changes = trauma("minor_trauma", how)
    bone_codes, bone_changes = FRAGILE_BONE[fragile]
    result = screening(*codes, *bone_codes, **changes, **bone_changes, pain__medically_assessed=True)
    assert not at_least_urgent(result)


@pytest.mark.parametrize("fragile", ["osteoporosis", "osteoporosis_severe", "corticosteroids_long_term"])
def test_fragile_bone_without_any_trauma_is_not_an_urgent_referral(fragile: str) -> None:
    result = screening(fragile, age=75, pain__medically_assessed=False)
    assert not at_least_urgent(result)


# ---- thrombosis -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("assessed", [False, True])
@pytest.mark.parametrize("code", ["dvt_suspected", "phlebitis"])
def test_a_possible_blood_clot_is_an_urgent_referral_for_the_same_day(code: str, assessed: bool) -> None:
    result = screening(code, pain__medically_assessed=assessed)
    assert is_urgent_referral(result)
    assert result["findings"][0]["timeframe"] == "within_24_hours"
    assert result["client_message"]["timeframe"] == "within_24_hours"
    assert "today, within 24 hours" in result["client_message"]["text"]
    assert cites(result, "Werner", "practice description, not evidence")


def test_a_past_blood_clot_is_not_an_urgent_referral() -> None:
    result = screening("dvt_history", pain__medically_assessed=False)
    assert not at_least_urgent(result)


# ---- weak flags -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pair", WEAK_PAIRS, ids="+".join)
def test_two_weak_flags_in_an_episode_no_physician_has_assessed_are_an_urgent_referral(
    pair: tuple[str, str],
) -> None:
    result = screen_with(WEAK_FLAGS, *pair)
    assert is_urgent_referral(result)
    assert cites(result, "Finucane", "CKS", "Clinical Knowledge Summaries")


def test_three_weak_flags_in_an_unassessed_episode_are_an_urgent_referral() -> None:
    result = screen_with(WEAK_FLAGS, "first_episode_at_55", "night_pain", "thoracic_pain")
    assert is_urgent_referral(result)


@pytest.mark.parametrize("pair", WEAK_PAIRS, ids="+".join)
def test_two_weak_flags_in_an_assessed_episode_give_neither_an_urgent_nor_a_routine_referral(
    pair: tuple[str, str],
) -> None:
    result = screen_with(WEAK_FLAGS, *pair, pain__medically_assessed=True)
    assert result["decision"] == "proceed"
    assert result["referral"] == "none"


@pytest.mark.parametrize("flag", WEAK_FLAGS)
def test_one_weak_flag_alone_unassessed_gives_a_routine_referral_and_leaves_the_decision_unchanged(
    flag: str,
) -> None:
    result = screen_with(WEAK_FLAGS, flag)
    assert result["decision"] == "proceed"
    assert result["referral"] == "routine"
    assert cites(result, "Finucane", "CKS", "Clinical Knowledge Summaries")


@pytest.mark.parametrize("flag", WEAK_FLAGS)
def test_one_weak_flag_beside_a_bruise_keeps_the_decision_the_bruise_gives(flag: str) -> None:
    bruise = {"code": "bruise", "region": "arm_right"}
    without = screening(bruise, pain__medically_assessed=False)
    codes, changes = WEAK_FLAGS[flag]
    result = screening(bruise, *codes, **changes, pain__medically_assessed=False)
    assert result["decision"] == without["decision"] == "proceed_with_precautions"
    assert result["referral"] == "routine"


@pytest.mark.parametrize("flag", WEAK_FLAGS)
def test_one_weak_flag_in_an_assessed_episode_gives_no_referral(flag: str) -> None:
    result = screen_with(WEAK_FLAGS, flag, pain__medically_assessed=True)
    assert result["decision"] == "proceed"
    assert result["referral"] == "none"


@pytest.mark.parametrize(("age", "is_flag"), [(19, True), (20, False), (49, False), (50, True), (80, True)])
def test_a_first_episode_is_a_weak_flag_only_under_20_or_from_50(age: int, is_flag: bool) -> None:
    alone = screening(age=age, pain__first_episode=True, pain__medically_assessed=False)
    assert alone["referral"] == ("routine" if is_flag else "none")
    assert alone["decision"] == "proceed"
    with_night_pain = screening("night_pain", age=age, pain__first_episode=True, pain__medically_assessed=False)
    assert (with_night_pain["decision"] == "refer_urgent") is is_flag
    assert REFERRALS.index(with_night_pain["referral"]) >= REFERRALS.index("routine")


def test_a_recurrent_episode_at_55_is_not_a_weak_flag() -> None:
    result = screening("night_pain", age=55, pain__first_episode=False, pain__medically_assessed=False)
    assert result["decision"] == "proceed"
    assert result["referral"] == "routine"


# ---- the group ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "codes",
    [("dvt_suspected", "fever"), ("unexplained_weight_loss", "acute_illness"), ("phlebitis", "bleeding_disorder")],
    ids="+".join,
)
def test_an_urgent_referral_outranks_postponing_and_clearance(codes: tuple[str, ...]) -> None:
    result = screening(*codes)
    assert is_urgent_referral(result)
    assert result["findings"][0]["decision"] == "refer_urgent"
