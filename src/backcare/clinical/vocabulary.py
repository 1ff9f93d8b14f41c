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

NO_PLAN_DECISIONS = frozenset({"postpone", "refer_urgent", "refer_emergency"})


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
TECHNIQUE_TEXT: dict[str, str] = _one_of(_result["$defs"]["technique"])
POSITIONING: dict[str, str] = _one_of(_result["properties"]["precautions"]["properties"]["positioning"]["items"])
ADJUNCTS: dict[str, str] = _one_of(_plan["adjuncts"]["items"])

_techniques = load_contract("techniques.json")
TECHNIQUES: dict[str, str] = {code: t["name"] for code, t in _techniques.items()}
LEAST_PRESSURE: dict[str, int] = {code: t["least_pressure"] for code, t in _techniques.items()}
PRESSURE_SCALE: dict[int, str] = {1: "light touch", 2: "lotioning", 3: "moderate", 4: "firm", 5: "deep"}

assert set(DECISION_TEXT) == set(DECISIONS)
assert set(REFERRAL_TEXT) == set(REFERRALS)
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


def order(codes: set[str] | frozenset[str], vocabulary: dict[str, str] | tuple[str, ...]) -> list[str]:
    """Codes in vocabulary order, so every list in a result is the same for the same input."""
    if not codes:
        return []
    return [c for c in vocabulary if c in codes]
