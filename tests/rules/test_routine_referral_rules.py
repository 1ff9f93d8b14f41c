"""CLINICAL.md section 7: reasons for a routine medical appointment; the decision about massage is unchanged."""

from __future__ import annotations

from typing import Any

import pytest
from rulecheck import cites, group_rules, screening

from backcare.clinical.rulebase import Rule

# NICE NG65 features besides onset before 35, each a finding code.
IBP_FINDINGS = [
    "night_waking_second_half",
    "buttock_pain_alternating",
    "better_with_movement",
    "nsaid_response",
    "family_spondyloarthritis",
    "arthritis",
    "enthesitis",
    "psoriasis",
]
# Age 40 with a year of pain: onset at 39, under 45 but not before 35. The episode is assessed so that only the
# inflammatory pattern, not the unassessed chronic pain, can refer.
IBP_BASE: dict[str, Any] = {"age": 40, "pain__duration_weeks": 52, "pain__medically_assessed": True}
FOUR_FEATURES = ["night_waking_second_half", "buttock_pain_alternating", "better_with_movement", "enthesitis"]


def fired_ids(result: dict[str, Any]) -> list[str]:
    return [f["rule"] for f in result["findings"]]


def mentions_rheumatology(result: dict[str, Any]) -> bool:
    return any("rheumatolog" in f["summary"].lower() for f in result["findings"])


# ---- chronic pain nobody has assessed -------------------------------------------------------------------------


@pytest.mark.parametrize("weeks", [12.1, 13, 20, 520])
def test_pain_for_more_than_12_weeks_no_physician_has_assessed_gives_a_routine_referral_and_proceeds(
    weeks: float,
) -> None:
    result = screening(pain__duration_weeks=weeks, pain__medically_assessed=False)
    assert result["decision"] == "proceed"
    assert result["referral"] == "routine"
    assert result["plan"] is not None
    assert cites(result, "practice description, not evidence")
    chronic = next(f for f in result["findings"] if f["rule"] == "referral.chronic_unassessed")
    assert "care-process choice" in chronic["rationale"].lower()


@pytest.mark.parametrize("weeks", [3, 12])
def test_pain_for_12_weeks_or_less_gives_no_referral(weeks: float) -> None:
    result = screening(pain__duration_weeks=weeks, pain__medically_assessed=False)
    assert result["decision"] == "proceed"
    assert result["referral"] == "none"


def test_chronic_pain_a_physician_has_assessed_gives_no_referral() -> None:
    result = screening(pain__duration_weeks=20, pain__medically_assessed=True)
    assert result["decision"] == "proceed"
    assert result["referral"] == "none"


@pytest.mark.parametrize(
    "finding",
    [{"code": "bruise", "region": "arm_right"}, "anticoagulants", "bleeding_disorder", "hypertension_uncontrolled"],
    ids=lambda f: f if isinstance(f, str) else f["code"],
)
def test_chronic_unassessed_pain_leaves_the_decision_about_massage_unchanged(finding: str | dict[str, Any]) -> None:
    short = screening(finding, pain__duration_weeks=3, pain__medically_assessed=False)
    long = screening(finding, pain__duration_weeks=20, pain__medically_assessed=False)
    assert long["decision"] == short["decision"]
    assert long["precautions"] == short["precautions"]
    assert long["referral"] == "routine"


def test_chronic_unassessed_pain_never_lowers_a_stronger_referral() -> None:
    result = screening("dvt_suspected", pain__duration_weeks=20, pain__medically_assessed=False)
    assert result["decision"] == "refer_urgent"
    assert result["referral"] == "urgent"


# ---- inflammatory back pain (NICE NG65) -----------------------------------------------------------------------


def test_inflammatory_back_pain_with_4_features_is_referred_to_rheumatology() -> None:
    result = screening(*FOUR_FEATURES, **IBP_BASE)
    assert result["decision"] == "proceed"
    assert result["referral"] == "routine"
    assert mentions_rheumatology(result)
    assert cites(result, "NG65")


def test_back_pain_with_exactly_3_inflammatory_features_is_a_routine_referral_to_the_gp_for_hla_b27() -> None:
    # Contract 1.1 (NG65): exactly 3 criteria, the GP considers an HLA-B27 test; not the rheumatology referral.
    result = screening(*FOUR_FEATURES[:3], **IBP_BASE)
    assert result["decision"] == "proceed"
    assert result["referral"] == "routine"
    assert fired_ids(result) == ["referral.inflammatory_back_pain_three_criteria"]
    assert not mentions_rheumatology(result)
    assert "HLA-B27" in result["client_message"]["text"]
    assert cites(result, "NG65")


def test_back_pain_with_2_inflammatory_features_is_not_referred() -> None:
    result = screening(*FOUR_FEATURES[:2], **IBP_BASE)
    assert result["referral"] == "none"
    assert fired_ids(result) == []


def test_morning_stiffness_is_not_an_ng65_criterion() -> None:
    result = screening(*FOUR_FEATURES[:2], "morning_stiffness", **IBP_BASE)
    assert result["referral"] == "none"


def test_four_features_give_the_rheumatology_referral_and_not_the_three_feature_one() -> None:
    result = screening(*FOUR_FEATURES, **IBP_BASE)
    assert fired_ids(result) == ["referral.inflammatory_back_pain"]


@pytest.mark.parametrize("feature", IBP_FINDINGS)
def test_every_ng65_feature_counts_towards_the_three_and_the_four(feature: str) -> None:
    others = [f for f in IBP_FINDINGS if f != feature]
    assert fired_ids(screening(*others[:2], **IBP_BASE)) == []
    assert fired_ids(screening(*others[:2], feature, **IBP_BASE)) == ["referral.inflammatory_back_pain_three_criteria"]
    with_it = screening(*others[:3], feature, **IBP_BASE)
    assert with_it["referral"] == "routine"
    assert mentions_rheumatology(with_it)


@pytest.mark.parametrize(("age", "counts"), [(35, True), (36, False)])
def test_onset_before_35_counts_as_a_feature(age: int, counts: bool) -> None:
    # A year of pain: onset at 34 for a 35-year-old, at 35 for a 36-year-old.
    result = screening(*FOUR_FEATURES[:3], **IBP_BASE | {"age": age})
    assert result["referral"] == "routine"
    assert mentions_rheumatology(result) is counts
    two = screening(*FOUR_FEATURES[:2], **IBP_BASE | {"age": age})
    assert (two["referral"] == "routine") is counts


@pytest.mark.parametrize(("age", "referred"), [(45, True), (46, False)])
def test_three_features_are_referred_only_when_the_pain_began_before_45(age: int, referred: bool) -> None:
    result = screening(*FOUR_FEATURES[:3], **IBP_BASE | {"age": age})
    assert (result["referral"] == "routine") is referred


@pytest.mark.parametrize(("weeks", "referred"), [(12, False), (12.1, True)])
def test_three_features_are_referred_only_after_12_weeks(weeks: float, referred: bool) -> None:
    result = screening(*FOUR_FEATURES[:3], **IBP_BASE | {"pain__duration_weeks": weeks})
    assert (result["referral"] == "routine") is referred


# ---- past tuberculosis ------------------------------------------------------------------------------------------


def test_past_tuberculosis_with_unassessed_pain_is_a_routine_referral_and_massage_is_unchanged() -> None:
    result = screening("tuberculosis_history", pain__medically_assessed=False)
    assert result["decision"] == "proceed"
    assert result["referral"] == "routine"
    assert "referral.tuberculosis_history_unassessed" in fired_ids(result)
    assert cites(result, "NICE CKS")


def test_past_tuberculosis_with_assessed_pain_gives_no_referral() -> None:
    result = screening("tuberculosis_history", pain__medically_assessed=True)
    assert result["referral"] == "none"


@pytest.mark.parametrize(("age", "referred"), [(45, True), (46, False)])
def test_inflammatory_back_pain_is_referred_only_when_it_began_before_45(age: int, referred: bool) -> None:
    # A year of pain: onset at 44 for a 45-year-old, at 45 for a 46-year-old.
    result = screening(*FOUR_FEATURES, **IBP_BASE | {"age": age})
    assert (result["referral"] == "routine") is referred
    assert mentions_rheumatology(result) is referred


@pytest.mark.parametrize(("weeks", "referred"), [(12, False), (12.1, True), (13, True)])
def test_inflammatory_back_pain_is_referred_only_after_12_weeks(weeks: float, referred: bool) -> None:
    result = screening(*FOUR_FEATURES, **IBP_BASE | {"pain__duration_weeks": weeks})
    assert (result["referral"] == "routine") is referred
    assert mentions_rheumatology(result) is referred


def test_inflammatory_back_pain_leaves_the_decision_about_massage_unchanged() -> None:
    bruise = {"code": "bruise", "region": "arm_right"}
    without = screening(bruise, **IBP_BASE)
    result = screening(bruise, *FOUR_FEATURES, **IBP_BASE)
    assert result["decision"] == without["decision"] == "proceed_with_precautions"
    assert result["precautions"] == without["precautions"]
    assert result["referral"] == "routine"


def test_inflammatory_back_pain_is_referred_whether_or_not_the_episode_was_assessed() -> None:
    result = screening(*FOUR_FEATURES, **IBP_BASE | {"pain__medically_assessed": False})
    assert result["referral"] == "routine"
    assert mentions_rheumatology(result)


# ---- the group ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", group_rules("referral"), ids=lambda r: r.id)
def test_no_routine_referral_rule_changes_the_decision_about_massage(rule: Rule) -> None:
    assert rule.effect.decision == "proceed"
    assert not rule.effect.has_precautions
