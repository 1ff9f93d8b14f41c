"""CLINICAL.md section 5: massage only after the client's physician has been consulted."""

from __future__ import annotations

from typing import Any

import pytest
from rulecheck import SPINAL, cites, screening, too_firm_for

# ---- intense pain ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("intensity", [7, 8, 10])
def test_intense_pain_no_physician_has_assessed_needs_clearance_and_a_routine_referral(intensity: int) -> None:
    result = screening(pain__intensity=intensity, pain__medically_assessed=False)
    assert result["decision"] == "clearance_required"
    assert result["referral"] == "routine"
    assert result["plan"] is not None
    assert cites(result, "practice description, not evidence")


def test_pain_of_6_no_physician_has_assessed_needs_no_clearance() -> None:
    result = screening(pain__intensity=6, pain__medically_assessed=False)
    assert result["decision"] == "proceed"
    assert result["referral"] == "none"


def test_intense_pain_in_an_assessed_episode_needs_no_clearance() -> None:
    result = screening(pain__intensity=7, pain__medically_assessed=True)
    assert result["decision"] == "proceed"
    assert result["referral"] == "none"


# ---- conditions -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("region", ["chest", "arm_left", "abdomen"])
def test_active_cancer_in_an_assessed_episode_needs_clearance_moderate_pressure_and_avoids_the_site(
    region: str,
) -> None:
    result = screening({"code": "cancer_active", "region": region}, pain__medically_assessed=True)
    assert result["decision"] == "clearance_required"
    assert result["precautions"]["max_pressure"] == 3
    assert region in result["precautions"]["avoid_regions"]
    assert too_firm_for(3) <= set(result["precautions"]["avoid_techniques"])
    assert result["plan"] is not None
    assert cites(result, "Walton", "NCCIH")


def test_active_cancer_without_a_site_in_an_assessed_episode_still_needs_clearance_and_moderate_pressure() -> None:
    result = screening("cancer_active", pain__medically_assessed=True)
    assert result["decision"] == "clearance_required"
    assert result["precautions"]["max_pressure"] == 3


def test_advanced_osteoporosis_needs_clearance_lotioning_pressure_and_no_thai() -> None:
    result = screening("osteoporosis_severe")
    assert result["decision"] == "clearance_required"
    assert result["precautions"]["max_pressure"] == 2
    assert "thai" in result["precautions"]["avoid_techniques"]
    assert too_firm_for(2) <= set(result["precautions"]["avoid_techniques"])
    assert cites(result, "practice description, not evidence", "Werner")


def test_plain_osteoporosis_needs_no_clearance() -> None:
    result = screening("osteoporosis")
    assert result["decision"] == "proceed_with_precautions"


def test_a_bleeding_disorder_needs_clearance_and_lotioning_pressure() -> None:
    result = screening("bleeding_disorder")
    assert result["decision"] == "clearance_required"
    assert result["precautions"]["max_pressure"] == 2
    assert too_firm_for(2) <= set(result["precautions"]["avoid_techniques"])
    assert cites(result, "practice description, not evidence", "NCCIH")


def test_uncontrolled_high_blood_pressure_needs_clearance() -> None:
    result = screening("hypertension_uncontrolled")
    assert result["decision"] == "clearance_required"
    assert result["plan"] is not None
    assert cites(result, "practice description, not evidence", "Werner")


def test_controlled_high_blood_pressure_needs_no_clearance() -> None:
    result = screening("hypertension")
    assert result["decision"] == "proceed_with_precautions"


def test_heart_or_kidney_failure_needs_clearance_and_excludes_lymphatic_drainage() -> None:
    result = screening("heart_or_kidney_failure")
    assert result["decision"] == "clearance_required"
    assert "lymphatic_drainage" in result["precautions"]["avoid_techniques"]
    assert "lymphatic_drainage" not in result["plan"]["techniques"]
    assert cites(result, "NYSED", "New York State Education Department", "Lymph")


@pytest.mark.parametrize("pregnancy_weeks", [None, 10, 24])
def test_a_complicated_pregnancy_needs_clearance(pregnancy_weeks: int | None) -> None:
    result = screening("pregnancy_complicated", pregnancy_weeks=pregnancy_weeks)
    assert result["decision"] == "clearance_required"
    assert cites(result, "practice description, not evidence", "NCCIH")


def test_an_uncomplicated_pregnancy_needs_no_clearance() -> None:
    result = screening(pregnancy_weeks=24)
    assert result["decision"] == "proceed_with_precautions"


# ---- recent surgery and fractures -----------------------------------------------------------------------------


@pytest.mark.parametrize("weeks_ago", [0, 3, 5.9, None], ids=lambda w: f"weeks_ago={w}")
def test_surgery_under_6_weeks_ago_or_at_an_unknown_time_needs_clearance_and_avoids_its_region(
    weeks_ago: float | None,
) -> None:
    finding: dict[str, Any] = {"code": "recent_surgery", "region": "abdomen"}
    if weeks_ago is not None:
        finding["weeks_ago"] = weeks_ago
    result = screening(finding)
    assert result["decision"] == "clearance_required"
    assert result["precautions"]["avoid_regions"] == ["abdomen"]
    assert cites(result, "practice description, not evidence", "NYSED", "New York State Education Department")


@pytest.mark.parametrize("weeks_ago", [6, 12, 13])
def test_surgery_6_weeks_ago_or_more_needs_no_clearance(weeks_ago: float) -> None:
    result = screening({"code": "recent_surgery", "region": "abdomen", "weeks_ago": weeks_ago})
    assert result["decision"] != "clearance_required"


@pytest.mark.parametrize("region", SPINAL)
def test_an_unhealed_spinal_fracture_needs_clearance_and_avoids_its_region(region: str) -> None:
    result = screening({"code": "fracture_recent", "region": region})
    assert result["decision"] == "clearance_required"
    assert result["precautions"]["avoid_regions"] == [region]
    assert cites(result, "practice description, not evidence", "Werner")


@pytest.mark.parametrize("region", ["arm_left", "hip_right", "thigh_left", "shoulder_right", "chest"])
def test_an_unhealed_fracture_away_from_the_spine_needs_no_clearance(region: str) -> None:
    result = screening({"code": "fracture_recent", "region": region})
    assert result["decision"] == "proceed_with_precautions"


# ---- arthritis and fibromyalgia -------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["fibromyalgia", "arthritis"])
def test_arthritis_or_fibromyalgia_with_an_unassessed_episode_needs_clearance(code: str) -> None:
    result = screening(code, pain__medically_assessed=False)
    assert result["decision"] == "clearance_required"
    assert result["plan"] is not None
    assert cites(result, "practice description, not evidence")


@pytest.mark.parametrize("code", ["fibromyalgia", "arthritis"])
def test_arthritis_or_fibromyalgia_with_an_assessed_episode_needs_no_clearance(code: str) -> None:
    result = screening(code, pain__medically_assessed=True)
    assert result["decision"] in ("proceed", "proceed_with_precautions")


# ---- the group ------------------------------------------------------------------------------------------------


def test_clearance_keeps_the_plan_and_every_precaution_of_the_rows_that_fired() -> None:
    result = screening(
        "osteoporosis_severe",
        "heart_or_kidney_failure",
        {"code": "recent_surgery", "region": "abdomen", "weeks_ago": 2},
    )
    assert result["decision"] == "clearance_required"
    assert result["precautions"]["max_pressure"] == 2
    assert {"thai", "lymphatic_drainage"} <= set(result["precautions"]["avoid_techniques"])
    assert result["precautions"]["avoid_regions"] == ["abdomen"]
    assert result["plan"] is not None


# ---- contract 1.1 ---------------------------------------------------------------------------------------------


def test_a_recent_heart_attack_or_stroke_needs_clearance() -> None:
    result = screening("recent_heart_attack_or_stroke")
    assert result["decision"] == "clearance_required"
    assert result["plan"] is not None
    assert cites(result, "Werner") and cites(result, "Walton")


def test_the_seed_only_rules_are_marked_as_care_process_choices() -> None:
    intense = screening(pain__intensity=8, pain__medically_assessed=False)
    arthritis = screening("fibromyalgia", pain__medically_assessed=False)
    for result, rule in (
        (intense, "clearance.intense_pain_unassessed"),
        (arthritis, "clearance.arthritis_or_fibromyalgia_unassessed"),
    ):
        finding = next(f for f in result["findings"] if f["rule"] == rule)
        assert "care-process choice" in finding["rationale"]
        assert all("practice description, not evidence" in s for s in finding["sources"])


def test_a_past_clot_names_the_choice_of_clearance_in_clinical_words() -> None:
    finding = screening("dvt_history")["findings"][0]
    assert "CLINICAL.md" not in finding["rationale"]
    assert "clearance_required" not in finding["rationale"]
    assert "Where sources disagree" in finding["rationale"]
