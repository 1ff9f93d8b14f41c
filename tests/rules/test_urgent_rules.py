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


# ---- contract 1.1: fracture after a sudden movement or lift -----------------------------------------------------


@pytest.mark.parametrize("fragile", FRAGILE_BONE)
def test_a_sudden_movement_or_lift_with_fragile_bone_no_physician_has_assessed_is_an_urgent_referral(
    fragile: str,
) -> None:
    bone_codes, bone_changes = FRAGILE_BONE[fragile]
    result = screening(*bone_codes, **bone_changes, pain__onset="sudden_movement", pain__medically_assessed=False)
    assert is_urgent_referral(result)
    assert "urgent.possible_fragility_fracture" in [f["rule"] for f in result["findings"]]
    assert cites(result, "CKS") and cites(result, "Downie") and cites(result, "ACR")


@pytest.mark.parametrize(("age", "urgent"), [(69, False), (70, True), (72, True)])
def test_a_sudden_movement_without_known_osteoporosis_is_urgent_from_age_70(age: int, urgent: bool) -> None:
    result = screening(age=age, pain__onset="sudden_movement", pain__medically_assessed=False)
    assert at_least_urgent(result) is urgent


def test_a_sudden_movement_with_fragile_bone_in_an_assessed_episode_is_not_urgent() -> None:
    result = screening("osteoporosis", age=75, pain__onset="sudden_movement", pain__medically_assessed=True)
    assert not at_least_urgent(result)


@pytest.mark.parametrize("onset", ["gradual", "after_exercise", "unknown"])
def test_other_onsets_with_fragile_bone_are_not_a_fracture_mechanism(onset: str) -> None:
    result = screening("corticosteroids_long_term", age=75, pain__onset=onset, pain__medically_assessed=False)
    assert not at_least_urgent(result)


# ---- contract 1.1: infection -----------------------------------------------------------------------------------

SPINAL_REGIONS = ["neck", "upper_back", "mid_back", "lower_back", "sacrum"]
RISK_FACTORS_1_1: dict[str, dict[str, Any] | str] = {
    "immunosuppression": "immunosuppression",
    "corticosteroids_long_term": "corticosteroids_long_term",
    "iv_drug_use": "iv_drug_use",
    "recent_infection": "recent_infection",
    "tuberculosis_active": "tuberculosis_active",
    "tuberculosis_history": "tuberculosis_history",
    "spinal_surgery_4_weeks": {"code": "recent_surgery", "region": "lower_back", "weeks_ago": 4},
    "spinal_surgery_unknown_weeks": {"code": "recent_surgery", "region": "neck"},
    "spinal_procedure_11_weeks": {"code": "spinal_procedure_recent", "weeks_ago": 11},
    "spinal_procedure_unknown_weeks": {"code": "spinal_procedure_recent", "region": "lower_back"},
    "spinal_surgery_history_11_weeks": {"code": "spinal_surgery_history", "weeks_ago": 11},
}
NOT_RISK_FACTORS: dict[str, dict[str, Any]] = {
    "spinal_procedure_12_weeks": {"code": "spinal_procedure_recent", "weeks_ago": 12},
    "spinal_surgery_12_weeks": {"code": "recent_surgery", "region": "lower_back", "weeks_ago": 12},
    "knee_surgery_4_weeks": {"code": "recent_surgery", "region": "leg_left", "weeks_ago": 4},
    "spinal_surgery_history_12_weeks": {"code": "spinal_surgery_history", "weeks_ago": 12},
    "spinal_surgery_history_unknown_weeks": {"code": "spinal_surgery_history"},
}


def within_24_hours(result: dict[str, Any]) -> bool:
    return (
        result["client_message"]["timeframe"] == "within_24_hours"
        and "today, within 24 hours" in result["client_message"]["text"]
    )


@pytest.mark.parametrize("assessed", [False, True])
@pytest.mark.parametrize("risk", RISK_FACTORS_1_1)
def test_fever_with_any_infection_risk_factor_is_urgent_within_24_hours(risk: str, assessed: bool) -> None:
    result = screening("fever", RISK_FACTORS_1_1[risk], pain__medically_assessed=assessed)
    assert is_urgent_referral(result)
    assert result["findings"][0]["rule"] == "urgent.possible_spinal_infection"
    assert result["findings"][0]["timeframe"] == "within_24_hours"
    assert within_24_hours(result)


@pytest.mark.parametrize("finding", NOT_RISK_FACTORS)
def test_fever_with_surgery_or_a_procedure_outside_the_12_weeks_or_the_spine_is_not_urgent(finding: str) -> None:
    result = screening("fever", NOT_RISK_FACTORS[finding], pain__medically_assessed=True)
    assert not at_least_urgent(result)
    assert result["decision"] == "postpone"


@pytest.mark.parametrize("region", SPINAL_REGIONS)
def test_surgery_in_any_spinal_region_is_a_risk_factor(region: str) -> None:
    result = screening("fever", {"code": "recent_surgery", "region": region, "weeks_ago": 8})
    assert is_urgent_referral(result)


@pytest.mark.parametrize("assessed", [False, True])
def test_fever_with_diabetes_is_urgent_within_24_hours(assessed: bool) -> None:
    result = screening("fever", "diabetes", pain__medically_assessed=assessed)
    assert is_urgent_referral(result)
    assert within_24_hours(result)
    assert cites(result, "Yusuf")


@pytest.mark.parametrize("risk", RISK_FACTORS_1_1)
def test_a_risk_factor_with_feeling_unwell_is_urgent_within_24_hours_without_a_fever(risk: str) -> None:
    result = screening("systemically_unwell", RISK_FACTORS_1_1[risk], pain__medically_assessed=True)
    assert is_urgent_referral(result)
    assert result["findings"][0]["rule"] == "urgent.infection_risk_unwell"
    assert within_24_hours(result)
    assert cites(result, "Yusuf")


def test_diabetes_with_feeling_unwell_but_no_fever_is_not_urgent() -> None:
    result = screening("systemically_unwell", "diabetes", pain__medically_assessed=True)
    assert not at_least_urgent(result)
    assert result["decision"] == "postpone"


@pytest.mark.parametrize("risk", ["corticosteroids_long_term", "spinal_procedure_recent", "diabetes"])
def test_a_risk_factor_alone_is_not_urgent(risk: str) -> None:
    assert not at_least_urgent(screening(risk, pain__medically_assessed=True))


def test_the_fever_after_a_spinal_injection_vignette_is_urgent_though_the_episode_was_assessed() -> None:
    procedure = {"code": "spinal_procedure_recent", "region": "lower_back", "weeks_ago": 4}
    result = screening("sciatica", procedure, "fever", pain__medically_assessed=True)
    assert is_urgent_referral(result)
    assert within_24_hours(result)


# ---- contract 1.1: known cancer with spinal or nerve-root symptoms -------------------------------------------

CANCER_SYMPTOMS = ["sciatica", "bilateral_sciatica", "thoracic_pain", "night_pain", "pain_worse_cough_strain"]


@pytest.mark.parametrize("symptom", CANCER_SYMPTOMS)
@pytest.mark.parametrize(
    ("cancer", "assessed"), [("cancer_active", True), ("cancer_active", False), ("cancer_history", False)]
)
def test_known_cancer_with_spinal_or_nerve_root_symptoms_is_urgent_within_24_hours(
    cancer: str, assessed: bool, symptom: str
) -> None:
    result = screening(cancer, symptom, pain__medically_assessed=assessed)
    assert at_least_urgent(result)
    assert result["referral"] in ("urgent", "emergency")
    rules = [f["rule"] for f in result["findings"]]
    assert "urgent.cancer_spinal_symptoms" in rules
    assert result["client_message"]["timeframe"] in ("within_24_hours", "now")
    assert "within 24 hours" in result["client_message"]["text"] or "now" in result["client_message"]["text"]
    assert cites(result, "NG234")


@pytest.mark.parametrize("symptom", CANCER_SYMPTOMS)
def test_past_cancer_in_an_assessed_episode_with_these_symptoms_is_not_the_24_hour_rule(symptom: str) -> None:
    result = screening("cancer_history", symptom, pain__medically_assessed=True)
    assert "urgent.cancer_spinal_symptoms" not in [f["rule"] for f in result["findings"]]


def test_active_cancer_without_spinal_symptoms_in_an_assessed_episode_is_not_urgent() -> None:
    result = screening("cancer_active", pain__medically_assessed=True)
    assert result["decision"] == "clearance_required"


def test_pain_worse_on_coughing_alone_in_an_adult_changes_nothing() -> None:
    for assessed in (False, True):
        result = screening("pain_worse_cough_strain", pain__medically_assessed=assessed)
        assert result["decision"] == "proceed"
        assert result["referral"] == "none"
        assert result["findings"] == []


# ---- contract 1.1: aneurysm and tuberculosis --------------------------------------------------------------------


def test_a_known_aneurysm_with_unassessed_back_pain_is_urgent_within_24_hours() -> None:
    result = screening("aortic_aneurysm", pain__medically_assessed=False)
    assert is_urgent_referral(result)
    assert within_24_hours(result)
    assert "emergency services" in result["client_message"]["text"]  # at once if it turns sudden or severe
    assert cites(result, "NG156") and cites(result, "Werner")


def test_a_known_aneurysm_with_assessed_back_pain_needs_clearance_and_no_abdominal_work() -> None:
    result = screening("aortic_aneurysm", pain__medically_assessed=True)
    assert result["decision"] == "clearance_required"
    assert "abdomen" in result["precautions"]["avoid_regions"]
    assert "no_deep_abdominal_sacral" in result["precautions"]["positioning"]


def test_active_tuberculosis_with_unassessed_back_pain_is_an_urgent_referral() -> None:
    result = screening("tuberculosis_active", pain__medically_assessed=False)
    assert is_urgent_referral(result)
    assert cites(result, "CKS") and cites(result, "Yusuf")
