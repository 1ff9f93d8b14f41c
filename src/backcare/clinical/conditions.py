"""The small condition language of the rule base.

A condition is a TOML table; every key in it must hold (a logical AND):

    finding = ["fever"]                      any finding with one of these codes
    finding = { code = ["recent_surgery"], weeks_ago_below = 6, weeks_ago_unknown = true }
    onset = ["major_trauma"]                 pain.onset is one of these
    medically_assessed = false               pain.medically_assessed
    first_episode = true                     pain.first_episode
    age_at_least = 50 / age_below = 20
    age_at_onset_below = 45                  age minus the episode's duration, in years
    intensity_at_least = 7
    duration_weeks_over = 12 / duration_weeks_below = 6
    pregnant = true / pregnancy_weeks_at_least = 13 / pregnancy_weeks_below = 13
    any = [ {...}, {...} ] / all = [ {...} ] / at_least = { count = 2, of = [ {...}, ... ] }
    exactly = { count = 3, of = [ {...}, ... ] }   exactly that many hold (NG65's three-criteria referral)
    ref = "weak_flag_night_pain"             a named condition from conditions.toml

A finding matcher may also say `region = "given"` or `"none"`, `region_in = [...]`, `region_not_in = [...]`
(a finding with no region never matches region_not_in), `weeks_ago_at_least`, `weeks_ago_below`, `weeks_ago_at_most` and
`weeks_ago_unknown` (whether a finding without weeks_ago matches the weeks limits; false by default).

There is deliberately no negation over findings: a condition that holds keeps holding when findings are added,
which is what makes screening monotonic (adding a finding never lowers the decision). The one exception is
`exactly`, for a rule that gives way to a sibling with at least the same effect once one more criterion holds
(`rules --check` verifies that such a sibling exists), so the decision, referral and precautions stay monotonic.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from backcare.clinical import vocabulary as vocab
from backcare.clinical.intake import Finding, Intake

WEEKS_PER_YEAR = 52.1775
Predicate = Callable[[Intake, "frozenset[str] | set[str]"], bool]
T = TypeVar("T")


class ConditionError(ValueError):
    """A condition in the rule base is malformed; the message names where."""


@dataclass(frozen=True)
class FindingMatch:
    codes: tuple[str, ...]
    region: str = "any"  # any | given | none
    region_in: frozenset[str] | None = None
    region_not_in: frozenset[str] = frozenset()
    weeks_ago_at_least: float | None = None
    weeks_ago_below: float | None = None
    weeks_ago_at_most: float | None = None
    weeks_ago_unknown: bool = False

    def matches(self, f: Finding) -> bool:
        if f.code not in self.codes:
            return False
        region = f.region or None
        if self.region == "given" and region is None:
            return False
        if self.region == "none" and region is not None:
            return False
        if self.region_in is not None and region not in self.region_in:
            return False
        if self.region_not_in and (region is None or region in self.region_not_in):
            return False
        if self.weeks_ago_at_least is None and self.weeks_ago_below is None and self.weeks_ago_at_most is None:
            return True
        weeks = f.weeks_ago if isinstance(f.weeks_ago, float | int) else None
        if weeks is None:
            return self.weeks_ago_unknown
        if self.weeks_ago_at_least is not None and weeks < self.weeks_ago_at_least:
            return False
        if self.weeks_ago_at_most is not None and weeks > self.weeks_ago_at_most:
            return False
        return not (self.weeks_ago_below is not None and weeks >= self.weeks_ago_below)


# ---- the condition tree -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Atom:
    """One test on one part of the intake; `key` is its name in the data file."""

    key: str
    value: Any
    match: FindingMatch | None = None


@dataclass(frozen=True)
class Node:
    op: str  # all | any | at_least | exactly | atom
    children: tuple[Node, ...] = ()
    count: int = 0
    atom: Atom | None = None


def parse(data: Any, where: str, named: Mapping[str, Node] | None = None) -> Node:
    """Parse a condition table; `where` names its place in the rule base for error messages."""
    if not isinstance(data, dict) or not data:
        raise ConditionError(f"{where}: a condition must be a non-empty table")
    parts = [_parse_key(key, value, f"{where}.{key}", named or {}) for key, value in data.items()]
    return parts[0] if len(parts) == 1 else Node("all", tuple(parts))


def _parse_list(value: Any, where: str, named: Mapping[str, Node]) -> tuple[Node, ...]:
    if not isinstance(value, list) or not value:
        raise ConditionError(f"{where}: expected a non-empty list of conditions")
    return tuple(parse(item, f"{where}[{i}]", named) for i, item in enumerate(value))


def _codes(value: Any, allowed: Mapping[str, str] | tuple[str, ...], kind: str, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConditionError(f"{where}: expected a list of {kind} codes")
    unknown = [v for v in value if v not in allowed]
    if unknown:
        raise ConditionError(f"{where}: unknown {kind} code(s) {', '.join(unknown)}")
    return tuple(value)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConditionError(f"{where}: expected a number, got {value!r}")
    return float(value)


def _boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConditionError(f"{where}: expected true or false, got {value!r}")
    return value


_MATCH_KEYS = {
    "code",
    "region",
    "region_in",
    "region_not_in",
    "weeks_ago_at_least",
    "weeks_ago_below",
    "weeks_ago_at_most",
    "weeks_ago_unknown",
}


def parse_finding_match(value: Any, where: str) -> FindingMatch:
    if not isinstance(value, dict):
        return FindingMatch(_codes(value, vocab.FINDINGS, "finding", where))
    unknown = set(value) - _MATCH_KEYS
    if unknown:
        raise ConditionError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} in a finding matcher")
    if "code" not in value:
        raise ConditionError(f"{where}: a finding matcher needs code = [...]")
    region = value.get("region", "any")
    if region not in ("any", "given", "none"):
        raise ConditionError(f"{where}.region: expected any, given or none, got {region!r}")
    region_in = value.get("region_in")
    return FindingMatch(
        codes=_codes(value["code"], vocab.FINDINGS, "finding", f"{where}.code"),
        region=region,
        region_in=None if region_in is None else frozenset(_codes(region_in, vocab.REGIONS, "region", where)),
        region_not_in=frozenset(_codes(value["region_not_in"], vocab.REGIONS, "region", where))
        if "region_not_in" in value
        else frozenset(),
        weeks_ago_at_least=_number(value["weeks_ago_at_least"], where) if "weeks_ago_at_least" in value else None,
        weeks_ago_below=_number(value["weeks_ago_below"], where) if "weeks_ago_below" in value else None,
        weeks_ago_at_most=_number(value["weeks_ago_at_most"], where) if "weeks_ago_at_most" in value else None,
        weeks_ago_unknown=_boolean(value.get("weeks_ago_unknown", False), where),
    )


_NUMERIC = {
    "age_at_least",
    "age_below",
    "age_at_onset_below",
    "intensity_at_least",
    "duration_weeks_over",
    "duration_weeks_below",
    "pregnancy_weeks_at_least",
    "pregnancy_weeks_below",
}
_BOOLEAN = {"medically_assessed", "first_episode", "pregnant"}


def _parse_key(key: str, value: Any, where: str, named: Mapping[str, Node]) -> Node:
    if key == "all":
        return Node("all", _parse_list(value, where, named))
    if key == "any":
        return Node("any", _parse_list(value, where, named))
    if key in ("at_least", "exactly"):
        if not isinstance(value, dict) or set(value) != {"count", "of"}:
            raise ConditionError(f"{where}: expected {{ count = N, of = [...] }}")
        children = _parse_list(value["of"], f"{where}.of", named)
        count = value["count"]
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= len(children):
            raise ConditionError(f"{where}.count: expected a whole number from 1 to {len(children)}")
        return Node(key, children, count=count)
    if key == "ref":
        if value not in named:
            raise ConditionError(f"{where}: no named condition {value!r} in conditions.toml")
        return named[value]
    if key == "finding":
        return Node("atom", atom=Atom(key, None, parse_finding_match(value, where)))
    if key == "onset":
        return Node("atom", atom=Atom(key, frozenset(_codes(value, vocab.ONSETS, "onset", where))))
    if key in _BOOLEAN:
        return Node("atom", atom=Atom(key, _boolean(value, where)))
    if key in _NUMERIC:
        return Node("atom", atom=Atom(key, _number(value, where)))
    raise ConditionError(f"{where}: unknown condition {key!r}")


# ---- evaluation ---------------------------------------------------------------------------------------------


_FIELD_TESTS = {
    "medically_assessed": "i.pain.medically_assessed is {v}",
    "first_episode": "i.pain.first_episode is {v}",
    "pregnant": "(i.pregnancy_weeks is not None) is {v}",
    "age_at_least": "i.age >= {v!r}",
    "age_below": "i.age < {v!r}",
    "age_at_onset_below": "(i.age - i.pain.duration_weeks / " + repr(WEEKS_PER_YEAR) + ") < {v!r}",
    "intensity_at_least": "i.pain.intensity >= {v!r}",
    "duration_weeks_over": "i.pain.duration_weeks > {v!r}",
    "duration_weeks_below": "i.pain.duration_weeks < {v!r}",
    "pregnancy_weeks_at_least": "(i.pregnancy_weeks is not None and i.pregnancy_weeks >= {v!r})",
    "pregnancy_weeks_below": "(i.pregnancy_weeks is not None and i.pregnancy_weeks < {v!r})",
}


def _expression(node: Node, names: dict[str, Any]) -> str:
    """Python source for the condition; constants go into `names` (numbers are parsed, never text)."""
    if node.op == "atom":
        atom = node.atom
        assert atom is not None
        name = f"c{len(names)}"
        if atom.match is not None:
            m = atom.match
            if m == FindingMatch(m.codes):  # codes only: a set test on the intake's codes
                names[name] = frozenset(m.codes)
                return f"not codes.isdisjoint({name})"
            names[name] = m.matches
            return f"any({name}(f) for f in i.findings)"
        if atom.key == "onset":
            names[name] = atom.value
            return f"i.pain.onset in {name}"
        return _FIELD_TESTS[atom.key].format(v=atom.value)
    parts = [_expression(c, names) for c in node.children]
    if node.op == "all":
        return "(" + " and ".join(parts) + ")"
    if node.op == "any":
        return "(" + " or ".join(parts) + ")"
    compare = "==" if node.op == "exactly" else ">="
    return "((" + ") + (".join(parts) + f")) {compare} {node.count}"


def compile_node(node: Node) -> Predicate:
    """Turn a condition into one Python expression of the intake and its set of finding codes, built once.

    Generated code rather than nested closures: screening evaluates every rule for every intake, and one flat
    expression is several times faster than a tree of function calls."""
    names: dict[str, Any] = {}
    source = f"lambda i, codes: {_expression(node, names)}"
    predicate: Predicate = eval(compile(source, "<rule condition>", "eval"), names)
    return predicate


def compile_selector(items: Sequence[tuple[Node, T]]) -> Callable[[Intake, frozenset[str] | set[str]], list[T]]:
    """One generated function for several conditions: the values, in the given order, of those that hold.

    Screening tests the rules that need no finding on every intake; one function with one `if` per condition
    saves a call per rule (the expressions are the same as `compile_node`'s)."""
    names: dict[str, Any] = {}
    lines = ["def select(i, codes):", "    out = []"]
    for k, (node, value) in enumerate(items):
        expression = _expression(node, names)
        names[f"v{k}"] = value
        lines += [f"    if {expression}:", f"        out.append(v{k})"]
    lines.append("    return out")
    exec(compile("\n".join(lines), "<rule conditions>", "exec"), names)
    select: Callable[[Intake, frozenset[str] | set[str]], list[T]] = names["select"]
    return select


# ---- analysis -----------------------------------------------------------------------------------------------


def dnf(node: Node) -> list[tuple[Atom, ...]]:
    """The condition as alternatives of conjunctions of atoms (for the rule-base check, not for screening)."""
    if node.op == "atom":
        assert node.atom is not None
        return [(node.atom,)]
    if node.op == "any":
        return [conj for c in node.children for conj in dnf(c)]
    if node.op == "all":
        return _product([dnf(c) for c in node.children])
    return [
        conj
        for combo in itertools.combinations(node.children, node.count)
        for conj in _product([dnf(c) for c in combo])
    ]


def _product(parts: list[list[tuple[Atom, ...]]]) -> list[tuple[Atom, ...]]:
    return [tuple(a for conj in combo for a in conj) for combo in itertools.product(*parts)]


def trigger_codes(node: Node) -> frozenset[str] | None:
    """Finding codes of which at least one must be present for the condition to hold, or None if it can hold
    without any finding. Screening uses this to skip rules whose findings are absent."""
    codes: set[str] = set()
    for conj in dnf(node):
        needed = [a.match.codes for a in conj if a.match is not None]
        if not needed:
            return None
        codes.update(needed[0])
    return frozenset(codes)


def atoms(node: Node) -> Iterable[Atom]:
    if node.atom is not None:
        yield node.atom
    for c in node.children:
        yield from atoms(c)
