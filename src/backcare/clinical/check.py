"""`backcare rules --check`: is the rule base sound?

Loading already refuses unknown vocabulary, unknown sources, malformed conditions and duplicate ids. This adds
what needs the whole rule base: every rule reachable by some intake (shown by building a witness intake for it
and screening it), effects consistent with the contract's severity rules, every plan able to keep a technique,
texts free of the unsupported claims the seed documents make, and notes on vocabulary and sources no rule uses.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

from backcare.clinical import conditions as cond
from backcare.clinical import vocabulary as vocab
from backcare.clinical.engine import Screener
from backcare.clinical.intake import Finding, Intake, Pain
from backcare.clinical.rulebase import Rule, RuleBase

# Claims from the seed documents that evidence does not support; no text shown to users may make them.
UNSUPPORTED_CLAIMS = (
    re.compile(r"\b\d+\s?%\s+of\s+cases\b", re.IGNORECASE),
    re.compile(r"\bmost effective\b", re.IGNORECASE),
    re.compile(r"\b(cures?|guarantee[sd]?)\b", re.IGNORECASE),
    re.compile(r"\bspread(s|ing)? (the )?(tumou?r|cancer)", re.IGNORECASE),
)


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    witnesses: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def lines(self, verbose: bool = False) -> list[str]:
        out = [f"ERROR {e}" for e in self.errors] + [f"note  {n}" for n in self.notes]
        if verbose:
            for rule_id, intake in self.witnesses.items():
                out.append(f"witness {rule_id}: {msgspec.json.encode(intake).decode()}")
        verdict = "rule base OK" if self.ok else "rule base BROKEN"
        out.append(
            f"{verdict}: {self.rules} rules, {len(self.witnesses)} reachable, "
            f"{len(self.errors)} error(s), {len(self.notes)} note(s)"
        )
        return out


def check_rule_base(rb: RuleBase) -> Report:
    report = Report(rules=len(rb.rules))
    screener = Screener(rb)
    for rule in rb.rules:
        _check_effect(rule, report)
        _check_texts(rule.id, [rule.title, rule.summary, rule.rationale], report)
        witness = find_witness(rule, screener)
        if witness is None:
            report.errors.append(f"{rule.id}: no intake can reach this rule (its conditions contradict each other)")
        else:
            report.witnesses[rule.id] = witness.to_dict()
    _check_plan(rb, report)
    _check_coverage(rb, report)
    return report


def _check_effect(rule: Rule, report: Report) -> None:
    e = rule.effect
    if e.decision == "refer_emergency" and e.referral != "emergency":
        report.errors.append(f"{rule.id}: refer_emergency must come with referral emergency")
    if e.decision == "refer_urgent" and e.referral not in ("urgent", "emergency"):
        report.errors.append(f"{rule.id}: refer_urgent must come with an urgent or emergency referral")
    if e.has_precautions and e.decision == "proceed":
        report.errors.append(f"{rule.id}: a rule with precautions must decide at least proceed_with_precautions")
    if e.has_precautions and e.decision in vocab.NO_PLAN_DECISIONS:
        report.notes.append(f"{rule.id}: precautions on a rule that stops treatment only show once it is lifted")
    if e.avoid_regions_without_region and e.avoid_region_of_finding is None:
        report.errors.append(f"{rule.id}: avoid_regions_without_region needs avoid_regions = finding_region...")


def _check_texts(where: str, texts: list[str], report: Report) -> None:
    for text in texts:
        for pattern in UNSUPPORTED_CLAIMS:
            if m := pattern.search(text):
                report.errors.append(f"{where}: makes an unsupported claim ({m.group(0)!r})")


def _check_plan(rb: RuleBase, report: Report) -> None:
    plan = rb.plan
    texts = [a["text"] for a in plan.get("adjunct", [])] + [plan["aftercare"]["text"]]
    texts += [plan["evidence"][s] for s in ("acute", "subacute", "chronic")]
    _check_texts("plan.toml", texts, report)
    # The worst case: every rule that limits techniques at once. The fallback must still leave one technique.
    pressures = [r.effect.max_pressure for r in rb.rules if r.effect.max_pressure is not None]
    lowest = min(pressures, default=None)
    avoided = set().union(*(r.effect.avoid_techniques for r in rb.rules))
    allowed = [
        t
        for t in plan["techniques"]["fallback"]
        if t not in avoided and (lowest is None or vocab.LEAST_PRESSURE[t] <= lowest)
    ]
    if not allowed:
        report.errors.append("plan.toml: the precautions can exclude every fallback technique, leaving a plan empty")


def _check_coverage(rb: RuleBase, report: Report) -> None:
    used_codes: set[str] = set()
    for rule in rb.rules:
        if rule.for_each_finding is not None:
            used_codes.update(rule.for_each_finding.codes)
        if rule.when is not None:
            for atom in cond.atoms(rule.when):
                if atom.match is not None:
                    used_codes.update(atom.match.codes)
    for code in vocab.FINDINGS:
        if code not in used_codes:
            report.notes.append(f"finding {code} is in the intake vocabulary but no rule uses it")
    cited = {s.source.id for r in rb.rules for s in r.sources}
    cited |= _plan_sources(rb.plan)
    for sid in rb.sources:
        if sid not in cited:
            report.notes.append(f"source {sid} is in sources.toml but nothing cites it")


def _plan_sources(data: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "sources":
                found.update(v if isinstance(v, str) else v["id"] for v in value)
            else:
                found |= _plan_sources(value)
    elif isinstance(data, list):
        for item in data:
            found |= _plan_sources(item)
    return found


# ---- witnesses --------------------------------------------------------------------------------------------


def find_witness(rule: Rule, screener: Screener) -> Intake | None:
    """An intake for which the rule fires, or None when no conjunction of its conditions can be met."""
    conjunctions = cond.dnf(rule.when) if rule.when is not None else [()]
    for conj in conjunctions:
        atoms = list(conj)
        if rule.for_each_finding is not None:
            atoms.append(cond.Atom("finding", None, rule.for_each_finding))
        for intake in _candidates(atoms):
            if any(r is rule for r, _ in screener.fired(intake)):
                return intake
    return None


def _range(atoms: list[cond.Atom], low_key: str, high_key: str, lo: float, hi: float) -> tuple[float, float]:
    """The interval [lo, hi) allowed by at-least / below atoms."""
    for a in atoms:
        if a.key == low_key:
            lo = max(lo, a.value)
        elif a.key == high_key:
            hi = min(hi, a.value)
    return lo, hi


def _candidates(atoms: list[cond.Atom]) -> list[Intake]:
    bools: dict[str, bool] = {}
    for a in atoms:
        if a.key in ("medically_assessed", "first_episode", "pregnant") and bools.setdefault(a.key, a.value) != a.value:
            return []
    onsets = set(vocab.ONSETS)
    for a in atoms:
        if a.key == "onset":
            onsets &= a.value
    if not onsets:
        return []
    onset = next(o for o in vocab.ONSETS if o in onsets)
    age_lo, age_hi = _range(atoms, "age_at_least", "age_below", 0, 121)
    intensity_lo, _ = _range(atoms, "intensity_at_least", "", 0, 11)
    over = max((a.value for a in atoms if a.key == "duration_weeks_over"), default=None)
    below = min((a.value for a in atoms if a.key == "duration_weeks_below"), default=5200.5)
    onset_below = min((a.value for a in atoms if a.key == "age_at_onset_below"), default=None)
    preg_lo, preg_hi = _range(atoms, "pregnancy_weeks_at_least", "pregnancy_weeks_below", 0, 46)
    wants_pregnancy = bools.get("pregnant", preg_lo > 0 or preg_hi < 46 or None)
    durations = sorted(
        {d for d in (3, 1, 0, 8, 13, 26, 52, 520, 5200) if (over is None or d > over) and d < below}
        | ({over + 1} if over is not None and over + 1 < below else set())
    )
    allowed_ages = range(int(age_lo), int(age_hi))
    ages = [a for a in dict.fromkeys((40, 30, 60, 18, 80, int(age_lo), int(age_hi) - 1)) if a in allowed_ages]
    findings = _findings([a.match for a in atoms if a.match is not None])
    if findings is None:
        return []
    pregnancy = None
    if wants_pregnancy:
        if preg_lo >= preg_hi:
            return []
        pregnancy = int(preg_lo)
    out = []
    for age, duration in itertools.product(ages, durations):
        if onset_below is not None and age - duration / cond.WEEKS_PER_YEAR >= onset_below:
            continue
        pain = Pain(
            regions=["lower_back"],
            intensity=int(intensity_lo),
            duration_weeks=float(duration),
            first_episode=bools.get("first_episode", False),
            onset=onset,
            medically_assessed=bools.get("medically_assessed", False),
        )
        out.append(Intake(schema_version="1", age=age, pain=pain, findings=findings, pregnancy_weeks=pregnancy))
        if len(out) >= 8:
            break
    return out


def _findings(matches: list[cond.FindingMatch]) -> list[Finding] | None:
    """One finding per matcher, with the least region and weeks it allows; the engine then confirms the witness."""
    out = []
    for m in matches:
        region: Any = msgspec.UNSET
        if m.region != "none" and (m.region == "given" or m.region_in is not None or m.region_not_in):
            allowed = [
                r for r in vocab.REGIONS if (m.region_in is None or r in m.region_in) and r not in m.region_not_in
            ]
            if not allowed:
                return None
            region = allowed[0]
        weeks: Any = msgspec.UNSET
        has_limits = (m.weeks_ago_at_least, m.weeks_ago_below, m.weeks_ago_at_most) != (None, None, None)
        if has_limits and not m.weeks_ago_unknown:
            # The least value allowed: if it breaks an upper limit, no value can meet them all.
            weeks = float(m.weeks_ago_at_least or 0.0)
        out.append(Finding(code=m.codes[0], region=region, weeks_ago=weeks))
    return out
