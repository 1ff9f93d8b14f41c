"""The controlled vocabulary, read from the screening contract's schemas (the single source of codes and words)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

CONTRACT = resources.files("backcare.clinical") / "contract"

DECISIONS: tuple[str, ...] = (
    "proceed",
    "proceed_with_precautions",
    "clearance_required",
    "postpone",
    "refer_urgent",
    "refer_emergency",
)
"""Least severe first, so a decision's index is its severity."""

REFERRALS: tuple[str, ...] = ("none", "routine", "urgent", "emergency")
"""Least urgent first, so a referral's index is its urgency."""

TIMEFRAMES: tuple[str, ...] = ("none", "routine", "within_days", "within_24_hours", "now")
"""Least urgent first, so a time frame's index is its urgency (CLINICAL.md section 1)."""

NO_PLAN_DECISIONS = frozenset({"postpone", "refer_urgent", "refer_emergency"})

CONTRACT_VERSION = "1.1"
"""The version of CLINICAL.md the shipped rule base meets (the result's rule_base.contract)."""


def load_contract(name: str) -> Any:
    return json.loads((CONTRACT / name).read_text(encoding="utf-8"))


def _one_of(node: dict[str, Any]) -> dict[str, str]:
    return {item["const"]: item.get("description", item["const"]) for item in node["oneOf"]}


@cache
def intake_schema() -> dict[str, Any]:
    schema: dict[str, Any] = load_contract("intake.schema.json")
    return schema


@cache
def screening_schema() -> dict[str, Any]:
    schema: dict[str, Any] = load_contract("screening.schema.json")
    return schema


_intake = intake_schema()
_result = screening_schema()
_plan = _result["properties"]["plan"]["oneOf"][1]["properties"]

REGIONS: dict[str, str] = _one_of(_intake["$defs"]["region"])
FINDINGS: dict[str, str] = _one_of(_intake["$defs"]["finding"])
GOALS: dict[str, str] = _one_of(_intake["$defs"]["goal"])
REGION_INDEX: dict[str, int] = {r: i for i, r in enumerate(REGIONS)}
ONSETS: tuple[str, ...] = tuple(_intake["properties"]["pain"]["properties"]["onset"]["enum"])
SEXES: tuple[str, ...] = tuple(_intake["properties"]["sex"]["enum"])
BOTHERSOMENESS: tuple[str, ...] = tuple(_intake["properties"]["start_back"]["properties"]["bothersomeness"]["enum"])
DECISION_TEXT: dict[str, str] = _one_of(_result["$defs"]["decision"])
REFERRAL_TEXT: dict[str, str] = _one_of(_result["$defs"]["referral"])
TIMEFRAME_TEXT: dict[str, str] = _one_of(_result["$defs"]["timeframe"])
TECHNIQUE_TEXT: dict[str, str] = _one_of(_result["$defs"]["technique"])
POSITIONING: dict[str, str] = _one_of(_result["properties"]["precautions"]["properties"]["positioning"]["items"])
ADJUNCTS: dict[str, str] = _one_of(_plan["adjuncts"]["items"])

_techniques = load_contract("techniques.json")
TECHNIQUES: dict[str, str] = {code: t["name"] for code, t in _techniques.items()}
LEAST_PRESSURE: dict[str, int] = {code: t["least_pressure"] for code, t in _techniques.items()}
PRESSURE_SCALE: dict[int, str] = {1: "light touch", 2: "lotioning", 3: "moderate", 4: "firm", 5: "deep"}

assert set(DECISION_TEXT) == set(DECISIONS)
assert set(REFERRAL_TEXT) == set(REFERRALS)
assert set(TIMEFRAME_TEXT) == set(TIMEFRAMES)
assert set(TECHNIQUES) == set(TECHNIQUE_TEXT)

# Which regions lie further along the same limb, for precautions such as severe varicose veins
# (avoid the region and everything below it on that limb).
DISTAL: dict[str, tuple[str, ...]] = {
    "hip_left": ("thigh_left", "leg_left", "foot_left"),
    "hip_right": ("thigh_right", "leg_right", "foot_right"),
    "groin": ("thigh_left", "thigh_right", "leg_left", "leg_right", "foot_left", "foot_right"),
    "thigh_left": ("leg_left", "foot_left"),
    "thigh_right": ("leg_right", "foot_right"),
    "leg_left": ("foot_left",),
    "leg_right": ("foot_right",),
    "shoulder_left": ("arm_left",),
    "shoulder_right": ("arm_right",),
}
assert all(r in REGIONS for k, v in DISTAL.items() for r in (k, *v))

SPINAL_REGIONS: tuple[str, ...] = ("neck", "upper_back", "mid_back", "lower_back", "sacrum")

# The whole limb of a region (CLINICAL.md section 1): for a shoulder or arm, the shoulder and arm of that side; for
# a hip, thigh, lower leg or foot, the hip, thigh, lower leg and foot of that side and the groin. The groin itself
# belongs to both lower limbs (a choice: lymph nodes in the groin drain both legs' side of the body).
_ARM = {side: (f"shoulder_{side}", f"arm_{side}") for side in ("left", "right")}
_LEG = {side: (f"hip_{side}", f"thigh_{side}", f"leg_{side}", f"foot_{side}", "groin") for side in ("left", "right")}
WHOLE_LIMB: dict[str, tuple[str, ...]] = {
    **{region: _ARM[side] for side in _ARM for region in _ARM[side]},
    **{region: _LEG[side] for side in _LEG for region in _LEG[side] if region != "groin"},
    "groin": tuple(dict.fromkeys((*_LEG["left"], *_LEG["right"]))),
}
LIMB_REGIONS: tuple[str, ...] = tuple(r for r in REGIONS if r in WHOLE_LIMB)
assert all(r in REGIONS for k, v in WHOLE_LIMB.items() for r in (k, *v))


def order(codes: set[str] | frozenset[str], vocabulary: dict[str, str] | tuple[str, ...]) -> list[str]:
    """Codes in vocabulary order, so every list in a result is the same for the same input."""
    if not codes:
        return []
    return [c for c in vocabulary if c in codes]
