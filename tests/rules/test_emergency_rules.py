"""CLINICAL.md section 2: signs of cauda equina syndrome or cord compression mean emergency care now, no massage."""

from __future__ import annotations

import pytest
from rulecheck import DECISIONS, REFERRALS, cites, screening

CAUDA_EQUINA = ["saddle_anaesthesia", "bladder_dysfunction", "bowel_incontinence", "sexual_dysfunction_new"]
CORD_COMPRESSION = ["leg_weakness_progressive", "gait_disturbance"]


@pytest.mark.parametrize("assessed", [False, True])
@pytest.mark.parametrize("code", CAUDA_EQUINA)
def test_a_sign_of_cauda_equina_sends_the_client_to_emergency_care(code: str, assessed: bool) -> None:
    result = screening(code, pain__medically_assessed=assessed)
    assert result["decision"] == "refer_emergency"
    assert result["referral"] == "emergency"
    assert result["plan"] is None
    assert cites(result, "CKS", "Clinical Knowledge Summaries", "BASS", "Finucane")


def test_saddle_anaesthesia_sends_the_client_to_emergency_care() -> None:
    result = screening("saddle_anaesthesia")
    assert result["decision"] == "refer_emergency"
    assert result["referral"] == "emergency"
    assert result["findings"][0]["decision"] == "refer_emergency"


@pytest.mark.parametrize("assessed", [False, True])
@pytest.mark.parametrize("code", CORD_COMPRESSION)
def test_a_progressive_neurological_deficit_sends_the_client_to_emergency_care(code: str, assessed: bool) -> None:
    result = screening(code, pain__medically_assessed=assessed)
    assert result["decision"] == "refer_emergency"
    assert result["referral"] == "emergency"
    assert result["plan"] is None
    assert cites(result, "Chou", "NG234")


@pytest.mark.parametrize("assessed", [False, True])
def test_sciatica_in_both_legs_alone_is_at_least_an_urgent_referral(assessed: bool) -> None:
    result = screening("bilateral_sciatica", pain__medically_assessed=assessed)
    assert DECISIONS.index(result["decision"]) >= DECISIONS.index("refer_urgent")
    assert REFERRALS.index(result["referral"]) >= REFERRALS.index("urgent")
    assert result["plan"] is None
    assert cites(result, "BASS", "CKS", "Clinical Knowledge Summaries", "Finucane")


def test_sciatica_in_one_leg_is_neither_an_emergency_nor_an_urgent_referral() -> None:
    result = screening("sciatica", pain__medically_assessed=False)
    assert DECISIONS.index(result["decision"]) < DECISIONS.index("postpone")
    assert REFERRALS.index(result["referral"]) < REFERRALS.index("urgent")
    assert result["plan"] is not None


def test_a_plain_intake_without_warning_signs_is_not_sent_to_emergency_care() -> None:
    result = screening()
    assert result["decision"] == "proceed"
    assert result["referral"] == "none"
    assert result["findings"] == []


@pytest.mark.parametrize("code", CAUDA_EQUINA + CORD_COMPRESSION)
def test_an_emergency_sign_outranks_every_other_finding_and_is_listed_first(code: str) -> None:
    others = ["fever", "cancer_history", "anticoagulants", {"code": "bruise", "region": "arm_right"}]
    result = screening(*others, code, pain__medically_assessed=False, pain__intensity=9)
    assert result["decision"] == "refer_emergency"
    assert result["referral"] == "emergency"
    assert result["plan"] is None
    assert result["findings"][0]["decision"] == "refer_emergency"


# ---- contract 1.1 ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("assessed", [False, True])
def test_chest_pain_or_breathlessness_with_back_pain_is_an_emergency(assessed: bool) -> None:
    result = screening("chest_pain_or_breathlessness", pain__medically_assessed=assessed)
    assert result["decision"] == "refer_emergency" and result["referral"] == "emergency"
    assert result["plan"] is None
    assert result["findings"][0]["timeframe"] == "now"
    assert cites(result, "CG95") and cites(result, "NG158") and cites(result, "ESC 2014")


@pytest.mark.parametrize("with_aneurysm", [False, True])
@pytest.mark.parametrize("assessed", [False, True])
def test_sudden_severe_pain_is_an_emergency_with_or_without_a_known_aneurysm(
    with_aneurysm: bool, assessed: bool
) -> None:
    codes = ["sudden_severe_pain"] + (["aortic_aneurysm"] if with_aneurysm else [])
    result = screening(*codes, pain__medically_assessed=assessed)
    assert result["decision"] == "refer_emergency" and result["referral"] == "emergency"
    assert result["client_message"]["lead_rule"] == "emergency.sudden_severe_pain"
    assert "emergency services" in result["client_message"]["text"]
    assert cites(result, "NG156")
