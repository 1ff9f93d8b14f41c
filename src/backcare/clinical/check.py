"""`backcare rules --check`: is the rule base sound?

Loading already refuses unknown vocabulary, unknown sources, malformed conditions and duplicate ids. This adds
what needs the whole rule base: every rule reachable by some intake (shown by building a witness intake for it
and screening it), effects consistent with the contract's severity rules, every plan able to keep a technique,
texts free of the unsupported claims the seed documents make, and notes on vocabulary and sources no rule uses.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from importlib.abc import Traversable
from typing import Any

import msgspec

from backcare.clinical import conditions as cond
from backcare.clinical import vocabulary as vocab
from backcare.clinical.engine import Screener
from backcare.clinical.intake import Finding, Intake, Pain
from backcare.clinical.rulebase import TIMEFRAME_WORDS, Rule, RuleBase

# Claims from the seed documents that evidence does not support; no text shown to users may make them. A claim
# that is denied ("massage does not cure back pain") is allowed: see _claims.
UNSUPPORTED_CLAIMS = (
    re.compile(r"\b\d+\s?%\s+of\s+cases\b", re.IGNORECASE),
    re.compile(r"\bmost effective\b", re.IGNORECASE),
    re.compile(r"\b(cures?|cured|guarantee[sd]?)\b", re.IGNORECASE),
    re.compile(r"\bspread(s|ing)?\s+(the\s+)?(tumou?r|cancer)", re.IGNORECASE),
    re.compile(r"\btoxins?\b|\bdetox\w*", re.IGNORECASE),
)
_DENIAL = re.compile(r"\b(not|never|no|nor|cannot|without)\b(\W+\w+){0,3}\W*$|n't(\W+\w+){0,3}\W*$", re.IGNORECASE)

# A telephone number: the engine names "emergency services", the clinic application adds its own number.
TELEPHONE = re.compile(r"\b(999|911|112|111|000)\b|\+?\d[\d ()-]{6,}\d")
# What a reader must never see in a rule's texts: the contract's file name or a raw vocabulary code.
_CODES = frozenset(
    [*vocab.DECISIONS, *vocab.FINDINGS, *vocab.TECHNIQUES, *vocab.POSITIONING, *vocab.REGIONS, *vocab.TIMEFRAMES]
)
_SNAKE = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")
# Words that say massage may go ahead, or that a routine appointment will do, or that no doctor is needed.
_GOES_AHEAD = re.compile(r"massage (can|may|will) (go ahead|start|continue)|\bproceed\b", re.IGNORECASE)
_NOT_URGENT = re.compile(r"routine appointment|no need to see|no doctor is needed", re.IGNORECASE)


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


def check_rule_base(rb: RuleBase, texts: Traversable | None = None) -> Report:
    """Check the rule base, and the client-facing texts shipped under `texts` (default: the installed package)."""
    report = Report(rules=len(rb.rules))
    screener = Screener(rb)
    if rb.contract != vocab.CONTRACT_VERSION:
        report.errors.append(
            f"rulebase.toml: contract = {rb.contract!r}, but the packaged contract is {vocab.CONTRACT_VERSION}"
        )
    _check_texts("rulebase.toml [messages]", list(rb.messages.values()), report)
    for rule in rb.rules:
        _check_effect(rule, report)
        instruction = rule.instruction_text(rb.messages)
        _check_texts(rule.id, [rule.title, rule.summary, rule.rationale, instruction], report)
        _check_prose(rule, instruction, report)
        _check_exactly(rule, rb, report)
        witness = find_witness(rule, screener)
        if witness is None:
            report.errors.append(f"{rule.id}: no intake can reach this rule (its conditions contradict each other)")
        else:
            report.witnesses[rule.id] = witness.to_dict()
    _check_plan(rb, report)
    _check_coverage(rb, report)
    report.errors.extend(check_shipped_texts(texts))
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


def _claims(text: str) -> Iterator[str]:
    """The unsupported claims a text makes; one it denies ("does not cure") is not made."""
    flat = " ".join(text.split())
    for pattern in UNSUPPORTED_CLAIMS:
        for m in pattern.finditer(flat):
            if not _DENIAL.search(flat[max(0, m.start() - 40) : m.start()]):
                yield m.group(0)


def _check_texts(where: str, texts: list[str], report: Report) -> None:
    for text in texts:
        for claim in _claims(text):
            report.errors.append(f"{where}: makes an unsupported claim ({claim!r})")
        if m := TELEPHONE.search(text):
            report.errors.append(f"{where}: contains a telephone number ({m.group(0)!r}); say 'emergency services'")


def _check_prose(rule: Rule, instruction: str, report: Report) -> None:
    """Texts read as clinical prose, and the instruction says what the contract's client message needs."""
    for name, text in (("title", rule.title), ("summary", rule.summary), ("rationale", rule.rationale)):
        if "CLINICAL.md" in text:
            report.errors.append(f"{rule.id}: the {name} names CLINICAL.md; say the clinical reason instead")
        codes = [c for c in _SNAKE.findall(text) if c in _CODES]
        if codes:
            report.errors.append(f"{rule.id}: the {name} shows raw code(s) {', '.join(codes)}; use plain words")
    words = TIMEFRAME_WORDS[rule.timeframe]
    if words and words not in instruction:
        report.errors.append(f"{rule.id}: the instruction must say {words!r} (time frame {rule.timeframe})")
    if rule.effect.decision in vocab.NO_PLAN_DECISIONS and _GOES_AHEAD.search(instruction):
        report.errors.append(f"{rule.id}: the instruction says massage may go ahead, but the rule stops it")
    if rule.effect.referral in ("urgent", "emergency") and _NOT_URGENT.search(instruction):
        report.errors.append(f"{rule.id}: the instruction says a routine appointment will do, but it is urgent")
    if re.search(r"\bplease\b", rule.title, re.IGNORECASE):
        report.errors.append(f"{rule.id}: the title gives advice; it is listed as a reason beside stronger ones")


def _exactly_nodes(node: cond.Node | None) -> Iterator[cond.Node]:
    if node is None:
        return
    if node.op == "exactly":
        yield node
    for child in node.children:
        yield from _exactly_nodes(child)


def _check_exactly(rule: Rule, rb: RuleBase, report: Report) -> None:
    """A rule with `exactly` stops firing when one more criterion holds: a sibling with at least its effect must
    then fire (at_least count + 1 over the same criteria), or screening would not be monotonic."""
    for node in _exactly_nodes(rule.when):
        siblings = [
            other
            for other in rb.rules
            if other is not rule
            and any(
                n.op == "at_least" and n.count == node.count + 1 and n.children == node.children
                for n in _all_nodes(other.when)
            )
            and other.severity[:2] >= rule.severity[:2]
            and other.effect.has_precautions >= rule.effect.has_precautions
        ]
        if not siblings:
            report.errors.append(
                f"{rule.id}: 'exactly {node.count}' needs a rule with 'at least {node.count + 1}' of the same "
                "criteria and at least the same effect"
            )


def _all_nodes(node: cond.Node | None) -> Iterator[cond.Node]:
    if node is None:
        return
    yield node
    for child in node.children:
        yield from _all_nodes(child)


# ---- every client-facing text the product ships ----------------------------------------------------------------

TEXT_SUFFIXES = (".html", ".txt", ".md", ".toml")


def shipped_texts(root: Traversable | None = None) -> Iterator[tuple[str, str]]:
    """(name, text) of every client-facing text under the package root: page and email templates, the knowledge
    files (consent text, intake form), and the string literals of modules that send email."""
    root = root or resources.files("backcare")
    for app in sorted(root.iterdir(), key=lambda p: p.name):
        if not app.is_dir() or app.name.startswith((".", "_")):
            continue
        for folder in ("templates", "knowledge"):
            base = app / folder
            if base.is_dir():
                yield from _files(base, f"{app.name}/{folder}")
        yield from _mail_modules(app, app.name)


def _files(folder: Traversable, name: str) -> Iterator[tuple[str, str]]:
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        path = f"{name}/{entry.name}"
        if entry.is_dir():
            yield from _files(entry, path)
        elif entry.name.endswith(TEXT_SUFFIXES):
            yield path, entry.read_text(encoding="utf-8")


def _mail_modules(folder: Traversable, name: str) -> Iterator[tuple[str, str]]:
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        path = f"{name}/{entry.name}"
        if entry.is_dir() and entry.name not in ("migrations", "templates", "static", "__pycache__"):
            yield from _mail_modules(entry, path)
        elif entry.name.endswith(".py"):
            tree = ast.parse(entry.read_text(encoding="utf-8"))
            if any(_imports_mail(n) for n in ast.walk(tree)):
                strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
                yield path, "\n".join(strings)


_MAIL_MODULES = (("django", "core", "mail"), ("backcare", "common", "outbox"))


def _imports_mail(node: ast.AST) -> bool:
    """Whether the node imports Django's mail module or the outbox (`from backcare.common import outbox` too): the
    module builds email bodies."""
    if isinstance(node, ast.ImportFrom) and node.module:
        names = [(*node.module.split("."), alias.name) for alias in node.names]
        return any(tuple(name)[:3] in _MAIL_MODULES for name in [node.module.split("."), *names])
    if isinstance(node, ast.Import):
        return any(tuple(alias.name.split("."))[:3] in _MAIL_MODULES for alias in node.names)
    return False


def check_shipped_texts(root: Traversable | None = None) -> list[str]:
    """Errors for every unsupported claim in the texts the product shows or sends to people."""
    errors = []
    for name, text in shipped_texts(root):
        for claim in _claims(text):
            errors.append(f"{name}: makes an unsupported claim ({claim!r})")
    return errors


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
