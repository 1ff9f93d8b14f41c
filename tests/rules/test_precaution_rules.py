"""CLINICAL.md section 6: massage may go ahead, with changes."""

from __future__ import annotations

from typing import Any

import pytest
from rulecheck import cites, screening, too_firm_for

LOCAL_FINDINGS = [
    "open_wound",
    "burn",
    "bruise",
    "local_inflammation",
    "contagious_skin_condition",
    "recent_scar",
    "arthritis_flare",
    "implanted_device",
]
REGIONS = ["neck", "shoulder_left", "arm_right", "lower_back", "sacrum", "abdomen", "hip_left", "leg_right"]


# ---- regions to avoid -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("region", REGIONS)
@pytest.mark.parametrize("code", LOCAL_FINDINGS)
def test_a_local_finding_avoids_exactly_its_region(code: str, region: str) -> None:
    result = screening({"code": code, "region": region})
    assert result["decision"] == "proceed_with_precautions"
    assert result["precautions"]["avoid_regions"] == [region]
    assert result["plan"] is not None
    assert cites(result, "practice description, not evidence", "NYSED", "New York State Education Department", "Werner")


def test_a_bruise_on_the_right_arm_leaves_the_left_arm_alone() -> None:
    result = screening({"code": "bruise", "region": "arm_right"})
    assert "arm_right" in result["precautions"]["avoid_regions"]
    assert "arm_left" not in result["precautions"]["avoid_regions"]


def test_the_regions_of_several_local_findings_are_all_avoided() -> None:
    result = screening(
        {"code": "bruise", "region": "arm_right"},
        {"code": "burn", "region": "leg_left"},
        {"code": "open_wound", "region": "arm_right"},
    )
    assert result["precautions"]["avoid_regions"] == ["arm_right", "leg_left"]


@pytest.mark.parametrize("region", ["arm_left", "hip_right", "thigh_left", "foot_right", "shoulder_left", "chest"])
def test_an_unhealed_fracture_away_from_the_spine_avoids_its_region(region: str) -> None:
    result = screening({"code": "fracture_recent", "region": region})
    assert result["decision"] == "proceed_with_precautions"
    assert result["precautions"]["avoid_regions"] == [region]
    assert cites(result, "practice description, not evidence", "Werner")


@pytest.mark.parametrize("weeks_ago", [6, 9, 12])
def test_surgery_6_to_12_weeks_ago_gives_precautions_avoiding_its_region(weeks_ago: float) -> None:
    result = screening({"code": "recent_surgery", "region": "abdomen", "weeks_ago": weeks_ago})
    assert result["decision"] == "proceed_with_precautions"
    assert result["precautions"]["avoid_regions"] == ["abdomen"]
    assert cites(result, "practice description, not evidence", "NYSED", "New York State Education Department")


@pytest.mark.parametrize("weeks_ago", [5.9, None], ids=lambda w: f"weeks_ago={w}")
def test_surgery_under_6_weeks_ago_or_at_an_unknown_time_avoids_its_region_under_clearance(
    weeks_ago: float | None,
) -> None:
    finding: dict[str, Any] = {"code": "recent_surgery", "region": "abdomen"}
    if weeks_ago is not None:
        finding["weeks_ago"] = weeks_ago
    result = screening(finding)
    assert result["decision"] == "clearance_required"
    assert result["precautions"]["avoid_regions"] == ["abdomen"]


@pytest.mark.parametrize("weeks_ago", [13, 26])
def test_surgery_more_than_12_weeks_ago_needs_neither_clearance_nor_precautions(weeks_ago: float) -> None:
    result = screening({"code": "recent_surgery", "region": "abdomen", "weeks_ago": weeks_ago})
    assert result["decision"] == "proceed"
    assert result["precautions"]["avoid_regions"] == []


@pytest.mark.parametrize(
    ("region", "avoided"),
    [
        ("thigh_left", {"thigh_left", "leg_left", "foot_left"}),
        ("thigh_right", {"thigh_right", "leg_right", "foot_right"}),
        ("leg_left", {"leg_left", "foot_left"}),
        ("leg_right", {"leg_right", "foot_right"}),
        ("foot_left", {"foot_left"}),
    ],
)
def test_severe_varicose_veins_avoid_their_region_and_what_lies_below_on_that_leg(
    region: str, avoided: set[str]
) -> None:
    result = screening({"code": "varicose_veins_severe", "region": region})
    assert result["decision"] == "proceed_with_precautions"
    assert set(result["precautions"]["avoid_regions"]) == avoided
    assert cites(result, "Werner")


def test_severe_varicose_veins_on_the_left_thigh_leave_the_right_leg_alone() -> None:
    result = screening({"code": "varicose_veins_severe", "region": "thigh_left"})
    assert {"thigh_left", "leg_left", "foot_left"} <= set(result["precautions"]["avoid_regions"])
    assert not {"thigh_right", "leg_right", "foot_right"} & set(result["precautions"]["avoid_regions"])


# ---- pressure and techniques ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "names"),
    [
        ("anticoagulants", ("NCCIH", "NYSED", "New York State Education Department")),
        ("osteoporosis", ("Werner", "NYSED", "New York State Education Department")),
        ("corticosteroids_long_term", ("Werner", "NYSED", "New York State Education Department")),
        ("reduced_sensation", ("NYSED", "New York State Education Department")),
    ],
)
def test_a_finding_that_limits_pressure_to_moderate_excludes_every_firmer_technique(
    code: str, names: tuple[str, ...]
) -> None:
    result = screening(code)
    assert result["decision"] == "proceed_with_precautions"
    assert result["precautions"]["max_pressure"] == 3
    assert too_firm_for(3) <= set(result["precautions"]["avoid_techniques"])
    assert not set(result["plan"]["techniques"]) & too_firm_for(3)
    assert cites(result, *names)


@pytest.mark.parametrize("code", ["osteoporosis", "corticosteroids_long_term"])
def test_bone_fragility_excludes_thai_massage(code: str) -> None:
    result = screening(code)
    assert "thai" in result["precautions"]["avoid_techniques"]


def test_the_smallest_pressure_limit_wins() -> None:
    result = screening("anticoagulants", "bleeding_disorder")
    assert result["precautions"]["max_pressure"] == 2
    assert too_firm_for(2) <= set(result["precautions"]["avoid_techniques"])


@pytest.mark.parametrize("code", ["sciatica", "herniated_disc"])
def test_sciatica_or_a_herniated_disc_excludes_deep_tissue_and_thai_and_provoking_positions(code: str) -> None:
    result = screening(code)
    assert result["decision"] == "proceed_with_precautions"
    assert {"deep_tissue", "thai"} <= set(result["precautions"]["avoid_techniques"])
    assert not {"deep_tissue", "thai"} & set(result["plan"]["techniques"])
    # No positioning code names "a position that provokes leg symptoms": the finding must say it.
    assert any("position" in f["summary"].lower() for f in result["findings"])
    assert cites(result, "Werner", "KNGF")


# ---- pregnancy ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("weeks", [0, 8, 12])
def test_pregnancy_under_13_weeks_means_no_deep_abdominal_or_sacral_work(weeks: int) -> None:
    result = screening(pregnancy_weeks=weeks)
    assert result["decision"] == "proceed_with_precautions"
    assert result["precautions"]["positioning"] == ["no_deep_abdominal_sacral"]
    assert cites(result, "NYSED", "New York State Education Department")


@pytest.mark.parametrize("weeks", [13, 20, 40])
def test_pregnancy_from_13_weeks_means_side_lying_not_prone_and_no_deep_abdominal_or_sacral_work(
    weeks: int,
) -> None:
    result = screening(pregnancy_weeks=weeks)
    assert result["decision"] == "proceed_with_precautions"
    assert set(result["precautions"]["positioning"]) == {"side_lying", "no_prone", "no_deep_abdominal_sacral"}
    assert cites(result, "NYSED", "New York State Education Department", "Mueller")


def test_no_pregnancy_means_no_pregnancy_positioning() -> None:
    result = screening(pregnancy_weeks=None)
    assert result["precautions"]["positioning"] == []
    assert result["decision"] == "proceed"


# ---- history that calls for care ------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["hypertension", "spinal_surgery_history", "joint_replacement"])
def test_a_history_that_calls_for_care_gives_precautions(code: str) -> None:
    result = screening(code)
    assert result["decision"] == "proceed_with_precautions"
    assert result["plan"] is not None
    assert cites(result, "Werner", "Walton")


def test_a_past_blood_clot_gives_at_least_precautions_and_at_most_clearance() -> None:
    result = screening("dvt_history")
    assert result["decision"] in ("proceed_with_precautions", "clearance_required")
    assert result["plan"] is not None
    assert cites(result, "Werner", "Walton")


def test_immunosuppression_without_fever_is_screened_with_a_rule_and_massage_can_go_ahead() -> None:
    result = screening("immunosuppression")
    assert result["findings"]
    assert result["decision"] in ("proceed", "proceed_with_precautions")
    assert cites(result, "Werner", "Walton")


def test_cancer_history_in_an_assessed_episode_is_screened_with_a_rule_and_massage_can_go_ahead() -> None:
    result = screening("cancer_history", pain__medically_assessed=True)
    assert result["findings"]
    assert result["decision"] in ("proceed", "proceed_with_precautions")
    assert result["referral"] in ("none", "routine")
    assert cites(result, "Werner", "Walton")


# ---- the group ------------------------------------------------------------------------------------------------


def test_precautions_are_the_union_of_every_row_that_fired() -> None:
    result = screening(
        "anticoagulants",
        "sciatica",
        {"code": "bruise", "region": "arm_right"},
        {"code": "varicose_veins_severe", "region": "leg_left"},
        pregnancy_weeks=20,
    )
    precautions = result["precautions"]
    assert result["decision"] == "proceed_with_precautions"
    assert set(precautions["avoid_regions"]) == {"arm_right", "leg_left", "foot_left"}
    assert precautions["max_pressure"] == 3
    assert {"deep_tissue", "thai"} | too_firm_for(3) <= set(precautions["avoid_techniques"])
    assert set(precautions["positioning"]) == {"side_lying", "no_prone", "no_deep_abdominal_sacral"}


# ---- contract 1.1 ---------------------------------------------------------------------------------------------

LIMBS = ["shoulder_left", "shoulder_right", "arm_left", "arm_right", "hip_left", "hip_right", "groin"]
LIMBS += ["thigh_left", "thigh_right", "leg_left", "leg_right", "foot_left", "foot_right"]


def avoided(result: dict[str, Any]) -> set[str]:
    return set(result["precautions"]["avoid_regions"])


@pytest.mark.parametrize(
    ("region", "limb"),
    [
        ("arm_left", {"shoulder_left", "arm_left"}),
        ("shoulder_right", {"shoulder_right", "arm_right"}),
        ("leg_left", {"hip_left", "thigh_left", "leg_left", "foot_left", "groin"}),
        ("foot_right", {"hip_right", "thigh_right", "leg_right", "foot_right", "groin"}),
        ("upper_back", {"upper_back"}),
    ],
)
def test_lymphoedema_avoids_the_whole_limb_drainage_and_pressure_over_moderate(region: str, limb: set[str]) -> None:
    result = screening({"code": "lymphoedema", "region": region})
    assert result["decision"] == "proceed_with_precautions"
    assert limb <= avoided(result)
    assert "lymphatic_drainage" in result["precautions"]["avoid_techniques"]
    assert result["precautions"]["max_pressure"] <= 3
    assert too_firm_for(3) <= set(result["precautions"]["avoid_techniques"])
    assert cites(result, "Werner") and cites(result, "Lymphology")


def test_lymphoedema_of_the_left_arm_leaves_the_right_arm() -> None:
    assert "arm_right" not in avoided(screening({"code": "lymphoedema", "region": "arm_left"}))


def test_lymphoedema_without_a_region_avoids_every_limb() -> None:
    assert set(LIMBS) <= avoided(screening("lymphoedema"))


def test_lymphoedema_never_gets_lymphatic_drainage_even_for_oedema() -> None:
    result = screening({"code": "lymphoedema", "region": "arm_left"}, goals=["oedema"])
    assert "lymphatic_drainage" not in result["plan"]["techniques"]
    assert result["plan"]["techniques"]


@pytest.mark.parametrize(
    ("region", "below"),
    [("thigh_left", {"thigh_left", "leg_left", "foot_left"}), ("leg_right", {"leg_right", "foot_right"})],
)
def test_arterial_disease_avoids_its_region_and_below_it_on_that_limb(region: str, below: set[str]) -> None:
    result = screening({"code": "peripheral_arterial_disease", "region": region})
    assert result["decision"] == "proceed_with_precautions"
    assert below <= avoided(result)
    assert cites(result, "Werner")


def test_arterial_disease_without_a_region_avoids_both_lower_legs_and_feet() -> None:
    assert {"leg_left", "leg_right", "foot_left", "foot_right"} <= avoided(screening("peripheral_arterial_disease"))


@pytest.mark.parametrize(("weeks", "applies"), [(0, True), (5.9, True), (6, False), (None, True)])
def test_postpartum_under_6_weeks_avoids_the_legs_and_deep_abdominal_work(weeks: float | None, applies: bool) -> None:
    finding: dict[str, Any] = {"code": "postpartum"} | ({} if weeks is None else {"weeks_ago": weeks})
    result = screening(finding)
    legs = {"thigh_left", "thigh_right", "leg_left", "leg_right"}
    assert (legs <= avoided(result)) is applies
    assert ("no_deep_abdominal_sacral" in result["precautions"]["positioning"]) is applies
    assert result["referral"] == "none"
    if applies:
        assert result["decision"] == "proceed_with_precautions"
        assert cites(result, "RCOG")


def test_an_acute_soft_tissue_injury_avoids_its_region() -> None:
    result = screening({"code": "acute_soft_tissue_injury", "region": "thigh_right"})
    assert "thigh_right" in avoided(result)
    assert cites(result, "NHS inform")


def test_an_acute_soft_tissue_injury_without_a_region_avoids_the_painful_regions() -> None:
    result = screening("acute_soft_tissue_injury", pain__regions=["lower_back", "buttock_left"])
    assert {"lower_back", "buttock_left"} <= avoided(result)


def test_a_hernia_avoids_its_region_and_deep_abdominal_work() -> None:
    result = screening({"code": "hernia", "region": "groin"})
    assert "groin" in avoided(result)
    assert "no_deep_abdominal_sacral" in result["precautions"]["positioning"]


def test_a_hernia_without_a_region_avoids_the_abdomen_and_groin() -> None:
    assert {"abdomen", "groin"} <= avoided(screening("hernia"))


@pytest.mark.parametrize(("weeks", "applies"), [(1.9, True), (2, False), (None, True)])
def test_a_spinal_procedure_under_2_weeks_ago_avoids_its_region(weeks: float | None, applies: bool) -> None:
    finding: dict[str, Any] = {"code": "spinal_procedure_recent", "region": "lower_back"}
    finding |= {} if weeks is None else {"weeks_ago": weeks}
    result = screening(finding)
    assert ("lower_back" in avoided(result)) is applies


def test_a_spinal_procedure_without_a_region_avoids_the_spinal_regions_in_pain() -> None:
    result = screening("spinal_procedure_recent", pain__regions=["lower_back", "sacrum", "leg_left"])
    assert {"lower_back", "sacrum"} <= avoided(result)
    assert "leg_left" not in avoided(result)
    finding = next(f for f in result["findings"] if f["rule"] == "precautions.spinal_procedure_recent")
    assert "care-process choice" in finding["rationale"]


@pytest.mark.parametrize("code", ["epilepsy", "massage_oil_allergy", "diabetes"])
def test_epilepsy_oil_allergy_and_diabetes_are_at_least_precautions(code: str) -> None:
    result = screening(code)
    assert result["decision"] == "proceed_with_precautions"
    assert result["referral"] == "none"
    assert cites(result, "Werner")


def test_epilepsy_names_the_oils_to_avoid_and_the_seizure_plan() -> None:
    finding = screening("epilepsy")["findings"][0]
    assert "seizure plan" in finding["rationale"] and "rosemary" in finding["rationale"]
    assert any("Epilepsy Society" in s for s in finding["sources"])


def test_sciatica_names_kngf_only_as_disagreeing_and_nice_as_the_support() -> None:
    finding = screening("sciatica")["findings"][0]
    assert any("NG59" in s and "1.2.7" in s for s in finding["sources"])
    kngf = [s for s in finding["sources"] if "KNGF" in s]
    assert kngf and all("against" in s for s in kngf)
    assert "KNGF 2021 advises against massage" in finding["rationale"]
    assert "not a treatment for the sciatica" in finding["summary"]
