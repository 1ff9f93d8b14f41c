from __future__ import annotations

import ast
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backcare.clinical import instruments
from backcare.clinical.instruments import (
    BOTHERSOMENESS,
    INSTRUMENTS,
    MATCHED_CARE,
    MIC_PERCENT,
    ODI_MIC_POINTS,
    PAIN_MIC_POINTS,
    RMDQ_ITEMS,
    RMDQ_MIC_POINTS,
    START_BACK_COPYRIGHT,
    START_BACK_ITEMS,
    Change,
    StartBackScore,
    odi_change,
    pain_change,
    rmdq_change,
    score_rmdq,
    score_start_back,
    validate_nrs,
)

RANK = {"low": 0, "medium": 1, "high": 2}


def answers(physical: int, psychosocial: int) -> list[bool]:
    """Agree to the first `physical` of items 1-4 and the first `psychosocial` of items 5-8."""
    return [i < physical for i in range(4)] + [i < psychosocial for i in range(4)]


# --- STarT Back scoring ----------------------------------------------------------------------------------


def test_no_agreement_and_no_bother_scores_zero_and_low() -> None:
    assert score_start_back([False] * 8, "not_at_all") == StartBackScore(total=0, psychosocial=0, group="low")


def test_everything_agreed_and_extreme_bother_scores_nine_and_high() -> None:
    assert score_start_back([True] * 8, "extremely") == StartBackScore(total=9, psychosocial=5, group="high")


def test_total_of_three_is_low_risk() -> None:
    assert score_start_back(answers(3, 0), "moderately") == StartBackScore(3, 0, "low")


def test_total_of_four_with_low_subscale_is_medium_risk() -> None:
    assert score_start_back(answers(4, 0), "moderately") == StartBackScore(4, 0, "medium")


def test_subscale_of_three_with_total_four_is_medium_not_high() -> None:
    assert score_start_back(answers(1, 3), "not_at_all") == StartBackScore(4, 3, "medium")


def test_high_risk_needs_psychosocial_subscale_of_four() -> None:
    assert score_start_back(answers(0, 4), "not_at_all") == StartBackScore(4, 4, "high")


def test_total_above_four_with_subscale_of_four_is_high_not_medium() -> None:
    assert score_start_back(answers(4, 3), "very_much") == StartBackScore(8, 4, "high")


def test_subscale_of_three_alone_is_low_risk() -> None:
    assert score_start_back(answers(0, 3), "slightly") == StartBackScore(3, 3, "low")


@pytest.mark.parametrize(
    ("bothersomeness", "point"),
    [("not_at_all", 0), ("slightly", 0), ("moderately", 0), ("very_much", 1), ("extremely", 1)],
)
def test_item_nine_scores_only_for_very_much_or_extremely(bothersomeness: str, point: int) -> None:
    score = score_start_back(answers(0, 0), bothersomeness)
    assert (score.total, score.psychosocial) == (point, point)


def test_item_nine_tips_subscale_three_into_high_risk() -> None:
    assert score_start_back(answers(0, 3), "very_much").group == "high"
    assert score_start_back(answers(0, 3), "moderately").group == "low"


def test_items_one_to_four_never_count_towards_the_subscale() -> None:
    assert score_start_back(answers(4, 0), "not_at_all").psychosocial == 0


def test_matched_care_follows_the_stratified_care_trial() -> None:
    assert dict(MATCHED_CARE) == {
        "low": "self_management_advice",
        "medium": "physiotherapy",
        "high": "psychological_support",
    }


def test_score_exposes_its_matched_care() -> None:
    assert score_start_back(answers(0, 0), "not_at_all").care == "self_management_advice"
    assert score_start_back(answers(4, 0), "not_at_all").care == "physiotherapy"
    assert score_start_back(answers(0, 4), "not_at_all").care == "psychological_support"


def test_seven_answers_are_rejected_with_the_count() -> None:
    with pytest.raises(ValueError, match=r"exactly 8 .*got 7"):
        score_start_back([False] * 7, "slightly")


def test_nine_answers_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"exactly 8 .*got 9"):
        score_start_back([False] * 9, "slightly")


def test_non_boolean_answers_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"True .*or False"):
        score_start_back([1, 0, 0, 0, 0, 0, 0, 0], "slightly")  # type: ignore[list-item]


def test_unknown_bothersomeness_is_rejected_by_name() -> None:
    with pytest.raises(ValueError, match=r"'very'.*not_at_all, slightly, moderately, very_much, extremely"):
        score_start_back([False] * 8, "very")


def test_start_back_ships_nine_items_in_published_order() -> None:
    assert len(START_BACK_ITEMS) == 9
    assert START_BACK_ITEMS[0] == "My back pain has spread down my leg(s) at some time in the last 2 weeks"
    assert START_BACK_ITEMS[4].endswith("a condition like mine to be physically active")
    assert START_BACK_ITEMS[8] == "Overall, how bothersome has your back pain been in the last 2 weeks?"


def test_bothersomeness_labels_are_mildest_first() -> None:
    assert list(BOTHERSOMENESS.values()) == ["Not at all", "Slightly", "Moderately", "Very much", "Extremely"]


def test_bothersomeness_codes_match_the_intake_contract() -> None:
    from backcare.clinical.vocabulary import BOTHERSOMENESS as CONTRACT_CODES

    assert tuple(BOTHERSOMENESS) == CONTRACT_CODES


def test_copyright_notice_names_keele_and_the_commercial_licence() -> None:
    assert "copyright Keele University 2007" in START_BACK_COPYRIGHT
    assert "Commercial use requires a licence from Keele University." in START_BACK_COPYRIGHT
    assert INSTRUMENTS["start_back"].licence == START_BACK_COPYRIGHT


agree_lists = st.lists(st.booleans(), min_size=8, max_size=8)
bother_codes = st.sampled_from(list(BOTHERSOMENESS))


@given(agree_lists, bother_codes)
def test_total_and_subscale_stay_in_range_and_subscale_never_exceeds_total(
    agree: list[bool], bothersomeness: str
) -> None:
    score = score_start_back(agree, bothersomeness)
    assert 0 <= score.total <= 9
    assert 0 <= score.psychosocial <= 5
    assert score.psychosocial <= score.total


@given(agree_lists, bother_codes, st.integers(min_value=0, max_value=7))
def test_agreeing_to_one_more_item_never_lowers_the_group(agree: list[bool], bothersomeness: str, item: int) -> None:
    more = list(agree)
    more[item] = True
    before = score_start_back(agree, bothersomeness).group
    after = score_start_back(more, bothersomeness).group
    assert RANK[after] >= RANK[before]


@given(agree_lists, st.integers(min_value=0, max_value=3))
def test_more_bothersome_pain_never_lowers_the_group(agree: list[bool], step: int) -> None:
    codes = list(BOTHERSOMENESS)
    before = score_start_back(agree, codes[step]).group
    after = score_start_back(agree, codes[step + 1]).group
    assert RANK[after] >= RANK[before]


# --- Pain NRS --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 5, 10])
def test_nrs_accepts_whole_numbers_zero_to_ten(value: int) -> None:
    assert validate_nrs(value) == value


@pytest.mark.parametrize("value", [-1, 11, 2.5, True, "3"])
def test_nrs_rejects_values_outside_zero_to_ten_naming_them(value: object) -> None:
    with pytest.raises(ValueError, match=f"Pain NRS .*0 to 10, got {value!r}"):
        validate_nrs(value)  # type: ignore[arg-type]


# --- Roland-Morris ---------------------------------------------------------------------------------------


def test_rmdq_ships_twenty_four_statements_in_order() -> None:
    assert len(RMDQ_ITEMS) == 24
    assert len(set(RMDQ_ITEMS)) == 24
    assert RMDQ_ITEMS[0] == "I stay at home most of the time because of my back."
    assert RMDQ_ITEMS[12] == "My back is painful almost all the time."
    assert RMDQ_ITEMS[23] == "I stay in bed most of the time because of my back."


def test_rmdq_scores_the_number_ticked() -> None:
    ticked = [False] * 24
    for i in (0, 5, 12, 23):
        ticked[i] = True
    assert score_rmdq(ticked) == 4


def test_rmdq_scores_zero_to_twenty_four() -> None:
    assert score_rmdq([False] * 24) == 0
    assert score_rmdq([True] * 24) == 24


@pytest.mark.parametrize("count", [0, 23, 25])
def test_rmdq_rejects_wrong_number_of_answers_with_the_count(count: int) -> None:
    with pytest.raises(ValueError, match=f"exactly 24 answers.*got {count}"):
        score_rmdq([False] * count)


def test_rmdq_rejects_non_boolean_answers() -> None:
    with pytest.raises(ValueError, match=r"True .*or False"):
        score_rmdq([0] * 24)  # type: ignore[list-item]


# --- Meaningful change -----------------------------------------------------------------------------------


def test_thresholds_follow_ostelo_2008() -> None:
    assert (PAIN_MIC_POINTS, RMDQ_MIC_POINTS, ODI_MIC_POINTS, MIC_PERCENT) == (2, 5, 10, 30)


def test_pain_falling_seven_to_four_is_described_as_meaningful() -> None:
    change = pain_change(7, 4)
    assert change.points == 3
    assert change.percent == pytest.approx(300 / 7)
    assert change.meaningful
    assert not change.worse
    assert change.describe() == "Pain fell from 7 to 4 (3 points, 43%): a meaningful improvement."


def test_pain_improving_exactly_two_points_is_meaningful_though_under_thirty_percent() -> None:
    change = pain_change(8, 6)
    assert change.percent == 25.0
    assert change.meaningful


def test_pain_improving_one_point_by_a_third_is_meaningful() -> None:
    change = pain_change(3, 2)
    assert change.points == 1
    assert change.meaningful


def test_pain_improving_one_point_by_a_fifth_is_not_meaningful() -> None:
    change = pain_change(5, 4)
    assert not change.meaningful
    assert not change.worse
    assert change.describe() == "Pain fell from 5 to 4 (1 point, 20%): an improvement, but not yet a meaningful one."


def test_pain_improving_exactly_thirty_percent_is_meaningful() -> None:
    change = pain_change(10, 7)
    assert change.percent == 30.0
    assert change.meaningful


def test_rmdq_improving_exactly_thirty_percent_is_meaningful_below_five_points() -> None:
    change = rmdq_change(10, 7)
    assert change.points == 3
    assert change.percent == 30.0
    assert change.meaningful


def test_rmdq_improving_twenty_nine_percent_below_five_points_is_not_meaningful() -> None:
    change = rmdq_change(14, 10)
    assert change.percent == pytest.approx(28.57, abs=0.01)
    assert not change.meaningful


def test_rmdq_improving_exactly_five_points_is_meaningful_under_thirty_percent() -> None:
    change = rmdq_change(24, 19)
    assert change.percent == pytest.approx(20.83, abs=0.01)
    assert change.meaningful


def test_rmdq_improving_four_points_under_thirty_percent_is_not_meaningful() -> None:
    assert not rmdq_change(24, 20).meaningful


def test_baseline_of_zero_has_no_percent_and_cannot_improve_meaningfully() -> None:
    change = pain_change(0, 0)
    assert change.percent is None
    assert not change.meaningful
    assert not change.worse
    assert change.describe() == "Pain stayed at 0: no change."


def test_rising_from_zero_is_worse_without_a_percent() -> None:
    change = pain_change(0, 3)
    assert change == Change("Pain", 0, 3, -3, None, meaningful=False, worse=True)
    assert change.describe() == "Pain rose from 0 to 3 (3 points): worse than at baseline."


def test_worsening_is_flagged_and_never_meaningful() -> None:
    change = rmdq_change(8, 12)
    assert change.points == -4
    assert change.percent == -50.0
    assert change.worse
    assert not change.meaningful
    assert change.describe() == "Roland-Morris score rose from 8 to 12 (4 points, 50% higher): worse than at baseline."


def test_no_change_is_neither_meaningful_nor_worse() -> None:
    change = rmdq_change(9, 9)
    assert (change.points, change.percent, change.meaningful, change.worse) == (0, 0.0, False, False)


def test_odi_needs_ten_points() -> None:
    assert odi_change(50, 40).meaningful
    assert not odi_change(50, 41).meaningful


def test_odi_ignores_the_percent_rule() -> None:
    change = odi_change(20, 12)
    assert change.percent == 40.0
    assert not change.meaningful
    assert (
        change.describe()
        == "Oswestry score fell from 20 to 12 (8 points): an improvement, but not yet a meaningful one."
    )


def test_odi_accepts_the_full_zero_to_hundred_range() -> None:
    change = odi_change(100, 0)
    assert change.points == 100
    assert change.meaningful


@pytest.mark.parametrize(
    ("change", "baseline", "current", "message"),
    [
        (pain_change, 11, 4, "Pain baseline must be a whole number from 0 to 10, got 11"),
        (pain_change, 5, -1, "Pain current score must be a whole number from 0 to 10, got -1"),
        (rmdq_change, 25, 4, "Roland-Morris score baseline must be a whole number from 0 to 24, got 25"),
        (odi_change, 40, 101, "Oswestry score current score must be a whole number from 0 to 100, got 101"),
        (odi_change, 40.5, 30, "Oswestry score baseline must be a whole number from 0 to 100, got 40.5"),
    ],
)
def test_out_of_range_scores_are_rejected_naming_what_is_wrong(
    change: Callable[[int, int], Change], baseline: int, current: int, message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        change(baseline, current)


@given(st.integers(min_value=0, max_value=24), st.integers(min_value=0, max_value=24))
def test_rmdq_points_are_baseline_minus_current(baseline: int, current: int) -> None:
    change = rmdq_change(baseline, current)
    assert change.points == baseline - current
    assert change.worse == (current > baseline)
    assert not (change.meaningful and change.worse)


@given(st.integers(min_value=0, max_value=10), st.integers(min_value=0, max_value=10))
def test_pain_points_are_baseline_minus_current(baseline: int, current: int) -> None:
    assert pain_change(baseline, current).points == baseline - current


@given(st.integers(min_value=0, max_value=100), st.integers(min_value=0, max_value=100))
def test_odi_is_meaningful_exactly_from_ten_points(baseline: int, current: int) -> None:
    change = odi_change(baseline, current)
    assert change.points == baseline - current
    assert change.meaningful == (baseline - current >= 10)


# --- Descriptions and purity -----------------------------------------------------------------------------


def test_instruments_describe_ranges_for_display() -> None:
    ranges = {key: (i.minimum, i.maximum) for key, i in INSTRUMENTS.items()}
    assert ranges == {"start_back": (0, 9), "pain_nrs": (0, 10), "rmdq": (0, 24), "odi": (0, 100)}
    assert all(key == i.key for key, i in INSTRUMENTS.items())


def test_odi_is_described_as_licensed_and_ships_no_items() -> None:
    assert "Mapi Research Trust" in INSTRUMENTS["odi"].licence
    assert not any("ODI_ITEMS" in name or "OSWESTRY_ITEMS" in name for name in dir(instruments))


def test_module_imports_only_the_standard_library() -> None:
    tree = ast.parse(Path(instruments.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    roots = {name.split(".")[0] for name in imported}
    assert roots <= set(sys.stdlib_module_names) | {"__future__"}
