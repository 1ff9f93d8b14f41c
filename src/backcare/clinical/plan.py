"""The plan: course, techniques by goal, adjuncts and what the evidence says, from `rulebase/plan.toml`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from backcare.clinical import vocabulary as vocab
from backcare.clinical.instruments import score_start_back
from backcare.clinical.intake import Intake
from backcare.clinical.rulebase import RuleBase, RuleBaseError, SourceRef

STAGES = ("acute", "subacute", "chronic")
_CHOICE_CACHE = 8192
_NOTHING: frozenset[str] = frozenset()
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def _raw(entry: dict[str, Any]) -> msgspec.Raw:
    return msgspec.Raw(_encoder.encode(entry))


@dataclass(frozen=True)
class Course:
    """A course's shape; a clinic may change the rule base's defaults."""

    sessions: int
    weeks: int
    reassess_after_session: int

    def __post_init__(self) -> None:
        if min(self.sessions, self.weeks, self.reassess_after_session) < 1:
            raise ValueError("sessions, weeks and reassess_after_session must each be at least 1")
        if self.reassess_after_session > self.sessions:
            raise ValueError("the reassessment must come after a session within the course")


@dataclass(frozen=True)
class GoalTechniques:
    goal: str
    techniques: tuple[str, ...]
    first_allowed: bool
    sources: tuple[SourceRef, ...]

    def rationale(self, technique: str) -> dict[str, Any]:
        text = f"For the goal: {vocab.GOALS[self.goal].lower()}."
        return {"topic": "technique", "item": technique, "text": text, "sources": _cites(self.sources)}


@dataclass(frozen=True)
class AdjunctRule:
    adjunct: str
    text: str
    sources: tuple[SourceRef, ...]
    always: bool
    goals: frozenset[str]
    stages: frozenset[str]
    risk_groups: frozenset[str]
    unless_findings: frozenset[str]
    unless_pregnant: bool

    def rationale(self) -> dict[str, Any]:
        return {"topic": "adjunct", "item": self.adjunct, "text": self.text, "sources": _cites(self.sources)}

    def applies(self, intake: Intake, stage: str, risk_group: str | None, codes: set[str]) -> bool:
        if self.unless_pregnant and intake.pregnancy_weeks is not None:
            return False
        if self.unless_findings & codes:
            return False
        return (
            self.always
            or bool(self.goals.intersection(intake.goals))
            or stage in self.stages
            or risk_group in self.risk_groups
        )


def _cites(refs: tuple[SourceRef, ...]) -> list[str]:
    return [r.short() for r in refs]


def _codes(data: dict[str, Any], key: str, allowed: Any, where: str) -> frozenset[str]:
    values = data.get(key, [])
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise RuleBaseError(f"plan.toml {where}: unknown {key} {', '.join(unknown)}")
    return frozenset(values)


class Planner:
    """Builds the plan part of a screening result. Built once per rule base; `plan()` runs per intake."""

    def __init__(self, rule_base: RuleBase, course: Course | None = None) -> None:
        data = rule_base.plan
        c = data["course"]
        self.course = course or Course(c["sessions"], c["weeks"], c["reassess_after_session"])
        self.course_sources = rule_base.source_refs(c.get("sources"), "plan.toml [course]")
        self.course_text: str = c["text"]
        stage = data["pain_stage"]
        self.subacute_from = float(stage["subacute_from_weeks"])
        self.chronic_over = float(stage["chronic_over_weeks"])
        stage_sources = _cites(rule_base.source_refs(stage.get("sources"), "plan.toml [pain_stage]"))
        stage_text = {
            "acute": f"Pain for less than {self.subacute_from:g} weeks: acute.",
            "subacute": f"Pain for {self.subacute_from:g} to {self.chronic_over:g} weeks: subacute.",
            "chronic": f"Pain for more than {self.chronic_over:g} weeks: chronic.",
        }
        self._stage_items = {
            s: _raw({"topic": "pain_stage", "item": s, "text": stage_text[s], "sources": stage_sources}) for s in STAGES
        }
        t = data["techniques"]
        _codes(t, "default", vocab.TECHNIQUES, "[techniques]")
        _codes(t, "fallback", vocab.TECHNIQUES, "[techniques]")
        self.default: tuple[str, ...] = tuple(t["default"])
        self.fallback: tuple[str, ...] = tuple(t["fallback"])
        self.fallback_text: str = t["fallback_text"]
        self.by_goal: dict[str, GoalTechniques] = {}
        for i, g in enumerate(t.get("goal", [])):
            where = f"[[techniques.goal]] {i + 1}"
            if g.get("goal") not in vocab.GOALS:
                raise RuleBaseError(f"plan.toml {where}: unknown goal {g.get('goal')!r}")
            _codes(g, "techniques", vocab.TECHNIQUES, where)
            self.by_goal[g["goal"]] = GoalTechniques(
                g["goal"],
                tuple(g["techniques"]),
                g.get("choose", "all") == "first_allowed",
                rule_base.source_refs(g.get("sources"), f"plan.toml {where}"),
            )
        missing = [g for g in vocab.GOALS if g not in self.by_goal]
        if missing:
            raise RuleBaseError(f"plan.toml: no techniques for goal(s) {', '.join(missing)}")
        self.adjuncts: list[AdjunctRule] = []
        for i, a in enumerate(data.get("adjunct", [])):
            where = f"[[adjunct]] {i + 1}"
            if a.get("adjunct") not in vocab.ADJUNCTS:
                raise RuleBaseError(f"plan.toml {where}: unknown adjunct {a.get('adjunct')!r}")
            self.adjuncts.append(
                AdjunctRule(
                    adjunct=a["adjunct"],
                    text=a["text"],
                    sources=rule_base.source_refs(a.get("sources"), f"plan.toml {where}"),
                    always=bool(a.get("always", False)),
                    goals=_codes(a, "goals", vocab.GOALS, where),
                    stages=_codes(a, "stages", STAGES, where),
                    risk_groups=_codes(a, "risk_groups", ("low", "medium", "high"), where),
                    unless_findings=_codes(a, "unless_findings", vocab.FINDINGS, where),
                    unless_pregnant=bool(a.get("unless_pregnant", False)),
                )
            )
        if not any(a.adjunct == "exercise" and a.always for a in self.adjuncts):
            raise RuleBaseError("plan.toml: exercise must be an adjunct of every plan (always = true)")
        ev = data["evidence"]
        self.evidence = {s: ev[s] for s in STAGES}
        self.evidence_sources = _cites(rule_base.source_refs(ev.get("sources"), "plan.toml [evidence]"))
        self._course_item = _raw(self._course_rationale())
        # Rationale entries are encoded once here and shared by every plan (plan_json's results are only encoded).
        self._goal_items = {(g.goal, t): _raw(g.rationale(t)) for g in self.by_goal.values() for t in g.techniques}
        self._adjunct_items = [(a, _raw(a.rationale())) for a in self.adjuncts]
        self._default_items = {
            t: _raw({"topic": "technique", "item": t, "text": "No goal was given: the default.", "sources": []})
            for t in self.default
        }
        self._fallback_items = {
            t: _raw(
                {
                    "topic": "technique",
                    "item": t,
                    "text": self.fallback_text.format(technique=vocab.TECHNIQUES[t]),
                    "sources": [],
                }
            )
            for t in self.fallback
        }
        self._evidence_items = {
            stage: _raw(
                {"topic": "evidence", "item": stage, "text": self.evidence[stage], "sources": self.evidence_sources}
            )
            for stage in STAGES
        }
        sb = data["start_back"]
        self.start_back_from_age = int(sb["scored_from_age"])
        self._start_back_not_scored = _raw(
            {
                "topic": "risk_group",
                "item": None,
                "text": sb["not_scored_text"],
                "sources": _cites(rule_base.source_refs(sb.get("sources"), "plan.toml [start_back]")),
            }
        )
        # plan_json's caches: STarT Back groups by answers; techniques by goals and avoided techniques; adjuncts by
        # everything they depend on.
        self._risk_groups: dict[tuple[tuple[bool, ...], str], str] = {}
        self._technique_choices: dict[tuple[Any, ...], tuple[list[str], list[msgspec.Raw]]] = {}
        self._adjunct_choices: dict[tuple[Any, ...], tuple[list[str], list[msgspec.Raw]]] = {}
        self._unless_findings = frozenset().union(*(a.unless_findings for a in self.adjuncts))
        after = data["aftercare"]
        self._aftercare_item = _raw(
            {
                "topic": "aftercare",
                "item": None,
                "text": after["text"],
                "sources": _cites(rule_base.source_refs(after.get("sources"), "plan.toml [aftercare]")),
            }
        )

    def _course_rationale(self) -> dict[str, Any]:
        c = self.course
        text = self.course_text.format(
            sessions=c.sessions, weeks=c.weeks, reassess_after_session=c.reassess_after_session
        )
        return {"topic": "course", "item": None, "text": text, "sources": _cites(self.course_sources)}

    def stage(self, duration_weeks: float) -> str:
        if duration_weeks < self.subacute_from:
            return "acute"
        return "subacute" if duration_weeks <= self.chronic_over else "chronic"

    def plan(self, intake: Intake, excluded: set[str]) -> dict[str, Any]:
        """The plan for an intake whose screening allows one; `excluded` holds every avoided technique."""
        plan: dict[str, Any] = _decoder.decode(_encoder.encode(self.plan_json(intake, excluded)))
        return plan

    def plan_json(self, intake: Intake, excluded: set[str]) -> dict[str, Any]:
        """`plan()` with its rationale entries already encoded as JSON, shared between plans: for a result that is
        encoded straight away (Screener.screen_json), never to be handed out or changed."""
        stage = self.stage(intake.pain.duration_weeks)
        risk_group = None
        rationale: list[msgspec.Raw] = [self._course_item, self._stage_items[stage]]
        start_back = intake.start_back
        if start_back:
            if intake.age >= self.start_back_from_age:
                answers = (tuple(start_back.agree), start_back.bothersomeness)
                risk_group = self._risk_groups.get(answers)
                if risk_group is None:
                    risk_group = self._risk_groups[answers] = score_start_back(*answers).group
            else:
                # Validated in adults only (CLINICAL.md section 11): kept in the record, not scored, no matched care.
                rationale.append(self._start_back_not_scored)
        goals = tuple(intake.goals)
        by_goals = (goals, frozenset(excluded) if excluded else _NOTHING)
        chosen = self._technique_choices.get(by_goals)
        if chosen is None:
            if len(self._technique_choices) >= _CHOICE_CACHE:
                self._technique_choices.clear()
            chosen = self._technique_choices[by_goals] = self._choose_techniques(goals, excluded)
        techniques = chosen[0]
        rationale.extend(chosen[1])
        # The adjuncts depend on little of the intake: chosen once for each combination (see AdjunctRule.applies).
        key = (
            stage,
            risk_group,
            intake.pregnancy_weeks is not None,
            frozenset(goals),
            frozenset(f.code for f in intake.findings if f.code in self._unless_findings)
            if intake.findings
            else _NOTHING,
        )
        adjuncts = self._adjunct_choices.get(key)
        if adjuncts is None:
            if len(self._adjunct_choices) >= _CHOICE_CACHE:
                self._adjunct_choices.clear()
            adjuncts = self._adjunct_choices[key] = self._choose_adjuncts(intake, stage, risk_group)
        rationale.extend(adjuncts[1])
        rationale.append(self._aftercare_item)
        rationale.append(self._evidence_items[stage])
        return {
            "techniques": techniques,
            "sessions": self.course.sessions,
            "weeks": self.course.weeks,
            "reassess_after_session": self.course.reassess_after_session,
            "adjuncts": adjuncts[0],
            "risk_group": risk_group,
            "pain_stage": stage,
            "rationale": rationale,
        }

    def _choose_techniques(self, goals: tuple[str, ...], excluded: set[str]) -> tuple[list[str], list[msgspec.Raw]]:
        techniques: list[str] = []
        items: list[msgspec.Raw] = []
        for goal in goals:
            entry = self.by_goal[goal]
            allowed = [t for t in entry.techniques if t not in excluded]
            for t in allowed[:1] if entry.first_allowed else allowed:
                if t not in techniques:
                    techniques.append(t)
                    items.append(self._goal_items[goal, t])
        if not goals:
            for t in self.default:
                if t not in excluded:
                    techniques.append(t)
                    items.append(self._default_items[t])
        if not techniques:
            for t in self.fallback:
                if t not in excluded:
                    techniques.append(t)
                    items.append(self._fallback_items[t])
                    break
        return techniques, items

    def _choose_adjuncts(
        self, intake: Intake, stage: str, risk_group: str | None
    ) -> tuple[list[str], list[msgspec.Raw]]:
        codes = {f.code for f in intake.findings}
        chosen = set()
        items = []
        for a, item in self._adjunct_items:
            if a.adjunct not in chosen and a.applies(intake, stage, risk_group, codes):
                chosen.add(a.adjunct)
                items.append(item)
        return vocab.order(chosen, vocab.ADJUNCTS), items
