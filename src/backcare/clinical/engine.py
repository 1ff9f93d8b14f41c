"""The screening engine: every rule is evaluated, and the result is the most severe of all that fired.

How findings combine (CLINICAL.md section 1): the decision and the referral are the most severe of the fired rules;
precautions are their union, with the smallest pressure limit; every technique needing more pressure than that
limit is avoided too; any precaution makes the decision at least proceed_with_precautions; a referral decision
implies at least that referral; the plan exists exactly when the decision allows treatment. Findings are listed
most severe first, then in rule-base order. The same intake gives the same result, byte for byte.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from functools import cache
from typing import Any

import msgspec
from msgspec import UNSET

from backcare.clinical import conditions as cond
from backcare.clinical import vocabulary as vocab
from backcare.clinical.conditions import compile_selector
from backcare.clinical.intake import Intake
from backcare.clinical.plan import Course, Planner
from backcare.clinical.rulebase import TIMEFRAME_WORDS, Rule, RuleBase, default_rule_base

_EMERGENCY = vocab.DECISIONS.index("refer_emergency")
_URGENT = vocab.DECISIONS.index("refer_urgent")
_PRECAUTIONS = vocab.DECISIONS.index("proceed_with_precautions")
_NOW = vocab.TIMEFRAMES.index("now")
_MESSAGE_CACHE = 65536
_NO_PLAN = {vocab.DECISIONS.index(d) for d in vocab.NO_PLAN_DECISIONS}
_DECISIONS = vocab.DECISIONS
_REFERRALS = vocab.REFERRALS
_TECHNIQUES_BY_PRESSURE = tuple(vocab.LEAST_PRESSURE.items())
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


class Screener:
    """A rule base made ready to screen many intakes quickly: rules indexed by the findings that trigger them."""

    def __init__(self, rule_base: RuleBase | None = None, course: Course | None = None) -> None:
        self.rule_base = rule_base or default_rule_base()
        self.planner = Planner(self.rule_base, course)
        self.rule_base_info = {
            "version": self.rule_base.version,
            "digest": self.rule_base.digest,
            "contract": self.rule_base.contract,
        }
        self.messages = self.rule_base.messages
        rules = self.rule_base.rules
        self._instruction = {r.id: r.instruction_text(self.messages) for r in rules}
        self._messages: dict[tuple[tuple[int, ...], int, int], msgspec.Raw] = {}
        always: list[tuple[cond.Node, tuple[Rule, str | None]]] = []
        by_code: dict[str, list[Rule]] = defaultdict(list)
        for rule in rules:
            codes = rule.trigger_codes()
            if codes is None:
                assert rule.when is not None  # a rule without trigger findings has a `when`
                always.append((rule.when, (rule, None)))
            else:
                for code in codes:
                    by_code[code].append(rule)
        # The rules that need no finding, tested by one generated function; the others by finding code.
        self._always = compile_selector(always)
        self._by_code = {code: tuple(triggered) for code, triggered in by_code.items()}
        # Each fired rule contributes a ready-made finding, encoded once (per region, when it has one).
        self._finding = {r.id: _finding_entry(r) for r in rules}
        self._finding_json: dict[tuple[Rule, str | None], msgspec.Raw] = {
            (r, None): msgspec.Raw(_encoder.encode(self._finding[r.id])) for r in rules
        }
        # Most severe first, then in rule-base order (then by region: see _sort_key).
        self._severity_order = {r: (-r.severity[0], -r.severity[1], -r.severity[2], r.order) for r in rules}
        self._with_precautions = {r for r in rules if r.effect.has_precautions}
        self._rule_base_json = msgspec.Raw(_encoder.encode(self.rule_base_info))
        self._no_precautions = msgspec.Raw(
            _encoder.encode({"avoid_regions": [], "max_pressure": None, "positioning": [], "avoid_techniques": []})
        )

    def fired(self, intake: Intake) -> list[tuple[Rule, str | None]]:
        """Every rule that fires for the intake, with the region of the finding it fired for (if per finding)."""
        codes = {f.code for f in intake.findings}
        out: list[tuple[Rule, str | None]] = self._always(intake, codes)
        if codes:
            if len(codes) == 1:
                (code,) = codes
                candidates: Iterable[Rule] = self._by_code.get(code, ())
            else:
                by_code = self._by_code
                candidates = sorted({r for c in codes for r in by_code.get(c, ())}, key=_rule_order)
            for rule in candidates:
                each, predicate = rule.for_each_finding, rule.predicate
                if each is None:
                    if predicate is not None and predicate(intake, codes):
                        out.append((rule, None))
                elif predicate is None or predicate(intake, codes):
                    regions = {(f.region or None) for f in intake.findings if each.matches(f)}
                    out.extend((rule, region) for region in sorted(regions, key=_region_order))
        return out

    def screen(self, intake: Intake) -> dict[str, Any]:
        """Screen one intake; the result is a new JSON-ready dict conforming to the screening contract."""
        result: dict[str, Any] = _decoder.decode(self.screen_json(intake))
        return result

    def screen_json(self, intake: Intake) -> bytes:
        """Screen one intake straight to compact JSON bytes (the command line's and batch jobs' path)."""
        return _encoder.encode(self._evaluate(intake))

    def _evaluate(self, intake: Intake) -> dict[str, Any]:
        # The result holds prebuilt pieces (finding entries, plan, client message) already encoded as JSON: it must
        # be encoded, never handed out or changed. screen() gives callers a fresh copy.
        fired = self.fired(intake)
        decision = referral = timeframe = 0
        has_precautions = self._with_precautions
        with_precautions = []
        for item in fired:
            rule = item[0]
            d, r, t = rule.severity
            if d > decision:
                decision = d
            if r > referral:
                referral = r
            if t > timeframe:
                timeframe = t
            if rule in has_precautions:
                with_precautions.append(item)
        techniques: set[str] = set()
        precautions: dict[str, Any] | msgspec.Raw | None = None
        if with_precautions:
            precautions, techniques = self._precautions(intake, with_precautions)
        if precautions is None:
            precautions = self._no_precautions
        elif decision < _PRECAUTIONS:
            decision = _PRECAUTIONS
        if decision == _EMERGENCY:
            referral = 3
            timeframe = _NOW
        elif decision == _URGENT and referral < 2:
            referral = 2
        if len(fired) > 1:
            fired.sort(key=self._sort_key)
        finding_json = self._finding_json
        return {
            "schema_version": "1",
            "id": None if intake.id is UNSET else intake.id,
            "decision": _DECISIONS[decision],
            "referral": _REFERRALS[referral],
            "findings": [finding_json.get(item) or self._finding_bytes(item) for item in fired],
            "precautions": precautions,
            "plan": None if decision in _NO_PLAN else self.planner.plan_json(intake, techniques),
            "client_message": self._client_message(fired, referral, timeframe),
            "rule_base": self._rule_base_json,
        }

    @staticmethod
    def _precautions(intake: Intake, fired: list[tuple[Rule, str | None]]) -> tuple[dict[str, Any] | None, set[str]]:
        """The precautions of the fired rules that have any (None if they come to none) and the avoided techniques."""
        max_pressure: int | None = None
        regions: set[str] = set()
        positioning: set[str] = set()
        techniques: set[str] = set()
        for rule, region in fired:
            e = rule.effect
            if e.max_pressure is not None and (max_pressure is None or e.max_pressure < max_pressure):
                max_pressure = e.max_pressure
            positioning |= e.positioning
            techniques |= e.avoid_techniques
            regions.update(e.avoid_regions)
            if e.avoid_region_of_finding:
                if region is None:
                    regions.update(e.avoid_regions_without_region)
                    if e.avoid_pain_regions_without_region == "pain_regions":
                        regions.update(intake.pain.regions)
                    elif e.avoid_pain_regions_without_region == "spinal_pain_regions":
                        regions.update(r for r in intake.pain.regions if r in vocab.SPINAL_REGIONS)
                else:
                    regions.add(region)
                    if e.avoid_region_of_finding == "finding_region_and_distal":
                        regions.update(vocab.DISTAL.get(region, ()))
                    elif e.avoid_region_of_finding == "finding_limb":
                        regions.update(vocab.WHOLE_LIMB.get(region, ()))
        if max_pressure is not None:
            techniques.update(t for t, least in _TECHNIQUES_BY_PRESSURE if least > max_pressure)
        if not (regions or positioning or techniques or max_pressure is not None):
            return None, techniques
        precautions = {
            "avoid_regions": vocab.order(regions, vocab.REGIONS),
            "max_pressure": max_pressure,
            "positioning": vocab.order(positioning, vocab.POSITIONING),
            "avoid_techniques": vocab.order(techniques, vocab.TECHNIQUES),
        }
        return precautions, techniques

    def _sort_key(self, item: tuple[Rule, str | None]) -> tuple[tuple[int, int, int, int], int]:
        """Most severe first, then in rule-base order, then by the finding's region."""
        rule, region = item
        return self._severity_order[rule], -1 if region is None else vocab.REGION_INDEX[region]

    def _finding_bytes(self, item: tuple[Rule, str | None]) -> msgspec.Raw:
        """A fired rule's finding entry with the finding's region, encoded once per rule and region."""
        rule, region = item
        entry = self._finding_json[item] = msgspec.Raw(_encoder.encode({**self._finding[rule.id], "region": region}))
        return entry

    def _client_message(self, fired: list[tuple[Rule, str | None]], referral: int, timeframe: int) -> msgspec.Raw:
        """One instruction, strongest first (CLINICAL.md section 12): the lead finding's instruction, the result's
        referral and time frame when they come from another finding, then the weaker findings as reasons only.

        The message depends only on the fired rules in order, so it is built and encoded once per combination."""
        key = (tuple([item[0].order for item in fired]), referral, timeframe)
        message = self._messages.get(key)
        if message is None:
            if len(self._messages) >= _MESSAGE_CACHE:
                self._messages.clear()
            built = self._build_message([rule for rule, _ in fired], referral, timeframe)
            message = self._messages[key] = msgspec.Raw(_encoder.encode(built))
        return message

    def _build_message(self, rules: list[Rule], referral: int, timeframe: int) -> dict[str, Any]:
        if not rules:
            return {"text": self.messages["nothing_found"], "lead_rule": None, "timeframe": "none"}
        lead = rules[0]
        parts = [self._instruction[lead.id]]
        if timeframe > lead.severity[2] or referral > lead.severity[1]:
            words = TIMEFRAME_WORDS[vocab.TIMEFRAMES[timeframe]]
            parts.append(self.messages["also_referral"].format(when=words))
        others = list(dict.fromkeys(r.title for r in rules if r.id != lead.id and r.title != lead.title))
        if others:
            parts.append(self.messages["also_noted"].format(items="; ".join(others)))
        return {"text": " ".join(parts), "lead_rule": lead.id, "timeframe": vocab.TIMEFRAMES[timeframe]}


def _region_order(region: str | None) -> int:
    return -1 if region is None else vocab.REGION_INDEX[region]


def _rule_order(rule: Rule) -> int:
    return rule.order


def _finding_entry(rule: Rule) -> dict[str, Any]:
    return {
        "rule": rule.id,
        "title": rule.title,
        "decision": rule.effect.decision,
        "referral": rule.effect.referral,
        "summary": rule.summary,
        "rationale": rule.rationale,
        "sources": [s.short() for s in rule.sources],
        "timeframe": rule.timeframe,
    }


@cache
def default_screener() -> Screener:
    return Screener()


def screen(intake: Intake) -> dict[str, Any]:
    """Screen one intake with the shipped rule base."""
    return default_screener().screen(intake)


def to_json(result: dict[str, Any]) -> bytes:
    """Compact, deterministic JSON (key order is fixed by construction)."""
    return _encoder.encode(result)
