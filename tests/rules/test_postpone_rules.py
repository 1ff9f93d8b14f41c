"""CLINICAL.md section 4: a passing condition means no massage today."""

from __future__ import annotations

import pytest
from rulecheck import REFERRALS, cites, screening


@pytest.mark.parametrize("assessed", [False, True])
def test_fever_alone_postpones_the_massage_with_at_least_a_routine_referral(assessed: bool) -> None:
    result = screening("fever", pain__medically_assessed=assessed)
    assert result["decision"] == "postpone"
    assert REFERRALS.index(result["referral"]) >= REFERRALS.index("routine")
    assert result["plan"] is None
    assert cites(result, "Werner", "practice description, not evidence")


@pytest.mark.parametrize("code", ["acute_illness", "systemically_unwell", "impaired_consent"])
@pytest.mark.parametrize("assessed", [False, True])
def test_a_passing_condition_postpones_the_massage(code: str, assessed: bool) -> None:
    result = screening(code, pain__medically_assessed=assessed)
    assert result["decision"] == "postpone"
    assert result["plan"] is None
    assert cites(result, "Werner", "practice description, not evidence", "NYSED", "New York State Education Department")


def test_impaired_consent_postpones_the_massage_citing_the_nysed_precautions() -> None:
    result = screening("impaired_consent")
    assert result["decision"] == "postpone"
    assert cites(result, "NYSED", "New York State Education Department")


def test_a_contagious_skin_condition_with_no_region_is_widespread_and_postpones_the_massage() -> None:
    result = screening("contagious_skin_condition")
    assert result["decision"] == "postpone"
    assert result["plan"] is None
    assert cites(result, "Werner", "practice description, not evidence")


@pytest.mark.parametrize("region", ["arm_left", "lower_back", "foot_right"])
def test_a_contagious_skin_condition_in_one_region_does_not_postpone_but_avoids_that_region(region: str) -> None:
    result = screening({"code": "contagious_skin_condition", "region": region})
    assert result["decision"] == "proceed_with_precautions"
    assert result["precautions"]["avoid_regions"] == [region]
    assert result["plan"] is not None


def test_a_widespread_contagious_skin_condition_postpones_even_beside_a_local_one() -> None:
    result = screening("contagious_skin_condition", {"code": "contagious_skin_condition", "region": "arm_left"})
    assert result["decision"] == "postpone"


@pytest.mark.parametrize("code", ["fever", "acute_illness", "systemically_unwell", "impaired_consent"])
def test_postponing_outranks_clearance_and_precautions(code: str) -> None:
    others = ["bleeding_disorder", "anticoagulants", {"code": "bruise", "region": "arm_right"}]
    result = screening(*others, code, pain__intensity=8, pain__medically_assessed=False)
    assert result["decision"] == "postpone"
    assert result["plan"] is None
    assert result["findings"][0]["decision"] == "postpone"


@pytest.mark.parametrize("code", ["fever", "acute_illness", "systemically_unwell", "impaired_consent"])
def test_a_passing_condition_gives_way_to_an_emergency(code: str) -> None:
    result = screening(code, "bladder_dysfunction")
    assert result["decision"] == "refer_emergency"
    assert result["referral"] == "emergency"


# ---- contract 1.1 ---------------------------------------------------------------------------------------------


def test_active_tuberculosis_in_an_assessed_episode_postpones_with_at_least_a_routine_referral() -> None:
    result = screening("tuberculosis_active", pain__medically_assessed=True)
    assert result["decision"] == "postpone"
    assert REFERRALS.index(result["referral"]) >= REFERRALS.index("routine")
    assert result["plan"] is None
    assert "no longer infectious" in result["findings"][0]["summary"]
    assert cites(result, "NG33") and cites(result, "Werner")


def test_a_postponing_message_never_says_massage_may_go_ahead() -> None:
    for code in ("fever", "acute_illness", "systemically_unwell", "impaired_consent", "tuberculosis_active"):
        text = screening(code, pain__medically_assessed=True)["client_message"]["text"].lower()
        assert "go ahead" not in text, code
