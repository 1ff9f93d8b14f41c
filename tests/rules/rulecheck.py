"""Helpers shared by the rule-group tests: screen a plain intake and check what every result owes its reader."""

from __future__ import annotations

from typing import Any

from backcare.clinical.rulebase import Rule, default_rule_base
from conftest import make_intake, screen_doc

NO_PLAN = {"postpone", "refer_urgent", "refer_emergency"}
SEED_CLAIMS = ("90%", "most effective")
# The least pressure of each technique (../shared/spec/techniques.json), restated so the tests check the engine.
LEAST_PRESSURE = {
    "lymphatic_drainage": 1,
    "swedish_relaxation": 2,
    "remedial": 3,
    "sports": 3,
    "neuromuscular": 4,
    "friction": 4,
    "connective_tissue": 4,
    "thai": 4,
    "deep_tissue": 5,
}
SPINAL = ["neck", "upper_back", "mid_back", "lower_back", "sacrum"]


def screening(*findings: str | dict[str, Any], **changes: Any) -> dict[str, Any]:
    """Screen a plain intake changed as asked, checking what every result owes its reader (CLINICAL.md 1)."""
    result = screen_doc(make_intake(*findings, **changes))
    for finding in result["findings"]:
        assert finding["summary"].strip(), finding["rule"]
        assert finding["sources"], finding["rule"]
        assert not any(claim in finding["summary"].lower() for claim in SEED_CLAIMS), finding["rule"]
    assert (result["plan"] is None) == (result["decision"] in NO_PLAN)
    return result


def cites(result: dict[str, Any], *names: str) -> bool:
    """Whether a fired finding cites one of the sources CLINICAL.md names for its row."""
    return any(n.lower() in s.lower() for f in result["findings"] for s in f["sources"] for n in names)


def too_firm_for(limit: int) -> set[str]:
    return {t for t, least in LEAST_PRESSURE.items() if least > limit}


def group_rules(group: str) -> list[Rule]:
    return [r for r in default_rule_base().rules if r.group == group]


# Severity orders of CLINICAL.md section 1, least severe first, restated so the tests check the engine.
DECISIONS = ("proceed", "proceed_with_precautions", "clearance_required", "postpone", "refer_urgent", "refer_emergency")
REFERRALS = ("none", "routine", "urgent", "emergency")
