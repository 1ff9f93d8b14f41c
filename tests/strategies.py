"""Hypothesis strategies for intake documents, shared by the property tests (`from strategies import valid_intakes`).

`valid_intakes()` draws intake dicts valid against `intake.schema.json`, weighted towards what the screening rules
look at: findings from the whole vocabulary (with and without region and weeks_ago), ages and durations at the
rule boundaries, pregnancy around 13 weeks, medically assessed or not. `near_valid_intakes()` takes one of those
and applies one mutation (a missing key, an unknown key, a wrong type, a number out of range, an unknown code,
a repeated region, a null, a whole number written as a float, a boolean for a number), and says where.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from backcare.clinical import vocabulary as vocab

REGIONS: list[str] = list(vocab.REGIONS)
FINDING_CODES: list[str] = list(vocab.FINDINGS)
GOALS: list[str] = list(vocab.GOALS)
ONSETS: list[str] = list(vocab.ONSETS)
SEXES: list[str] = list(vocab.SEXES)
BOTHERSOMENESS: list[str] = list(vocab.BOTHERSOMENESS)

# Where the rules draw their lines (CLINICAL.md): first episode under 20 or from 50, inflammatory back pain
# starting before 35 or 45, fragility from 70; acute under 6 weeks, chronic over 12; surgery 6 to 12 weeks ago;
# pregnancy from 13 weeks.
# Contract 1.1 adds: under 10 and under 16 (children), 2 and 12 weeks since a spinal procedure, episodes over 4 weeks.
BOUNDARY_AGES = (0, 9, 10, 15, 16, 17, 19, 20, 34, 35, 44, 45, 49, 50, 69, 70, 120)
BOUNDARY_WEEKS = (0, 1.9, 2, 4, 4.1, 5.9, 6, 11, 11.9, 12, 12.1)

ages = st.one_of(st.sampled_from(BOUNDARY_AGES), st.integers(min_value=0, max_value=120))
intensities = st.integers(min_value=0, max_value=10)
durations = st.one_of(
    st.sampled_from((*BOUNDARY_WEEKS, 5200)),
    st.integers(min_value=0, max_value=5200),
    st.floats(min_value=0, max_value=5200, allow_nan=False, allow_infinity=False),
)
weeks_ago_values = st.one_of(
    st.sampled_from(BOUNDARY_WEEKS),
    st.integers(min_value=0, max_value=520),
    st.floats(min_value=0, max_value=520, allow_nan=False, allow_infinity=False),
)
pregnancy_weeks = st.one_of(st.none(), st.sampled_from((0, 12, 13, 45)), st.integers(min_value=0, max_value=45))
regions = st.sampled_from(REGIONS)
short_text = st.text(max_size=30)


def findings() -> st.SearchStrategy[dict[str, Any]]:
    """One finding dict: any code, sometimes with a region and/or weeks_ago (absent means unknown)."""
    return st.fixed_dictionaries(
        {"code": st.sampled_from(FINDING_CODES)},
        optional={"region": regions, "weeks_ago": weeks_ago_values, "note": short_text},
    )


def start_back_answers() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "agree": st.lists(st.booleans(), min_size=8, max_size=8),
            "bothersomeness": st.sampled_from(BOTHERSOMENESS),
        }
    )


def pains() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "regions": st.lists(regions, min_size=1, max_size=5, unique=True),
            "intensity": intensities,
            "duration_weeks": durations,
        },
        optional={
            "first_episode": st.booleans(),
            "onset": st.sampled_from(ONSETS),
            "medically_assessed": st.booleans(),
        },
    )


def valid_intakes() -> st.SearchStrategy[dict[str, Any]]:
    """Intake dicts valid against intake.schema.json, optional keys sometimes left out."""
    return st.fixed_dictionaries(
        {
            "schema_version": st.just("1"),
            "age": ages,
            "pain": pains(),
            "findings": st.lists(findings(), max_size=8),
        },
        optional={
            "id": short_text,
            "sex": st.sampled_from(SEXES),
            "pregnancy_weeks": pregnancy_weeks,
            "goals": st.lists(st.sampled_from(GOALS), max_size=4, unique=True),
            "start_back": start_back_answers(),
        },
    ).flatmap(_maybe_drop_empty_findings)


def _maybe_drop_empty_findings(doc: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    # `findings` is optional: an intake with none sometimes leaves the key out altogether.
    if doc["findings"]:
        return st.just(doc)
    return st.sampled_from([doc, {k: v for k, v in doc.items() if k != "findings"}])


# ---- near-valid documents --------------------------------------------------------------------------------------

Path = tuple[str | int, ...]

REQUIRED: dict[str, tuple[str, ...]] = {
    "root": ("schema_version", "age", "pain"),
    "pain": ("regions", "intensity", "duration_weeks"),
    "finding": ("code",),
    "start_back": ("agree", "bothersomeness"),
}
NUMBER_LIMITS: dict[Path, tuple[float, float | None]] = {
    ("age",): (0, 120),
    ("pain", "intensity"): (0, 10),
    ("pain", "duration_weeks"): (0, 5200),
    ("pregnancy_weeks",): (0, 45),
    ("findings", "*", "weeks_ago"): (0, None),
}
CODE_FIELDS = {
    ("schema_version",),
    ("sex",),
    ("pain", "regions", "*"),
    ("pain", "onset"),
    ("findings", "*", "code"),
    ("findings", "*", "region"),
    ("goals", "*"),
    ("start_back", "bothersomeness"),
}
UNKNOWN_KEYS = ("extra", "Age", "weeksAgo", "pain_regions", "region_code", "schema", "", "codes", "é")
UNKNOWN_CODES = ("", "x", "Lower_back", "lower-back", "fever ", "FEVER", "2", "null", "proceed", "thai", "ü")
HUGE_INTEGER = 10**400  # a valid JSON number that no 64-bit integer or double holds
WRONG_VALUES: tuple[Any, ...] = (
    "x",
    "",
    "40",
    0,
    7,
    -1,
    2.5,
    True,
    False,
    None,
    [],
    {},
    ["lower_back"],
    [1],
    {"code": "fever"},
)


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def path_text(path: Path) -> str:
    """A path the way IntakeError names it: `pain.intensity`, `findings[0].code`, `age`, `` for the document."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _shape(path: Path) -> Path:
    return tuple("*" if isinstance(p, int) else p for p in path)


def _kind_of_object(path: Path) -> str:
    shape = _shape(path)
    return {(): "root", ("pain",): "pain", ("findings", "*"): "finding", ("start_back",): "start_back"}.get(
        shape, "other"
    )


def _locations(value: Any, path: Path = ()) -> list[tuple[Path, Any]]:
    """Every value in the document with its path, the document itself first."""
    out = [(path, value)]
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(_locations(v, (*path, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(_locations(v, (*path, i)))
    return out


def _get(doc: Any, path: Path) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def _set(doc: Any, path: Path, value: Any) -> Any:
    if not path:
        return value
    _get(doc, path[:-1])[path[-1]] = value
    return doc


@dataclass(frozen=True)
class Mutation:
    """One change made to a valid intake: what kind, where (`path`), and for a key added or removed, its name."""

    kind: str
    path: Path
    key: str | None = None

    @property
    def where(self) -> str:
        return path_text(self.path)

    def error_expected_at(self, error_path: str, message: str) -> bool:
        """Whether a rejection with this path and message names this mutation.

        A removed or unknown key is reported on the object that holds it, naming the key; anything else at the
        mutated value or inside it.
        """
        if self.kind in ("drop_key", "unknown_key"):
            return error_path == path_text(self.path[:-1]) and (self.key or "") in message
        where = self.where
        return where == "" or error_path == where or error_path.startswith((where + ".", where + "["))


@st.composite
def near_valid_intakes(draw: st.DrawFn) -> tuple[Any, Mutation]:
    """A valid intake with exactly one mutation applied (which may or may not make it invalid), and the mutation."""
    doc = copy.deepcopy(draw(valid_intakes()))
    locations = _locations(doc)
    objects = [(p, v) for p, v in locations if isinstance(v, dict)]
    numbers = [(p, v) for p, v in locations if json_type(v) == "number"]
    codes = [(p, v) for p, v in locations if p and _shape(p) in CODE_FIELDS]
    kinds = [
        "drop_key",
        "unknown_key",
        "wrong_type",
        "out_of_range",
        "unknown_code",
        "duplicate",
        "null",
        "float_for_integer",
        "bool_for_number",
    ]
    kind = draw(st.sampled_from(kinds))

    if kind == "drop_key":
        # Required keys most of the time: those are the interesting ones; an optional one now and then.
        keyed = [(p, k) for p, v in objects for k in v]
        required = [(p, k) for p, k in keyed if k in REQUIRED.get(_kind_of_object(p), ())]
        parent, key = draw(st.sampled_from(required) | st.sampled_from(keyed))
        del _get(doc, parent)[key]
        return doc, Mutation(kind, (*parent, key), key)

    if kind == "unknown_key":
        parent, obj = draw(st.sampled_from(objects))
        key = draw(st.sampled_from(UNKNOWN_KEYS) | st.text(min_size=1, max_size=8).map(lambda s: "x_" + s))
        obj[key] = draw(st.sampled_from(WRONG_VALUES))
        return doc, Mutation(kind, (*parent, key), key)

    if kind == "wrong_type":
        path, value = draw(st.sampled_from(locations))
        new = draw(st.sampled_from([w for w in WRONG_VALUES if json_type(w) != json_type(value)]))
        return _set(doc, path, new), Mutation(kind, path)

    if kind == "out_of_range" and numbers:
        path, _ = draw(st.sampled_from(numbers))
        low, high = NUMBER_LIMITS.get(_shape(path), (0, None))
        choices: list[Any] = [low - 1, low - 0.5, -(10**30), HUGE_INTEGER, 1e308]
        if high is not None:
            choices += [high + 1, high + 0.1, high * 10]
        return _set(doc, path, draw(st.sampled_from(choices))), Mutation(kind, path)

    if kind == "unknown_code" and codes:
        path, _ = draw(st.sampled_from(codes))
        new = draw(st.sampled_from(UNKNOWN_CODES) | st.text(max_size=12))
        return _set(doc, path, new), Mutation(kind, path)

    if kind == "duplicate":
        # Regions (and goals) must not repeat.
        lists = [("pain", "regions")] + ([("goals",)] if doc.get("goals") else [])
        path = draw(st.sampled_from(lists))
        items = _get(doc, path)
        items.insert(draw(st.integers(0, len(items))), draw(st.sampled_from(items)))
        return doc, Mutation(kind, path)

    if kind == "float_for_integer" and numbers:
        path, value = draw(st.sampled_from(numbers))
        # 40 -> 40.0 (a whole number: valid) or 40.5 (not whole: invalid where an integer is wanted).
        new = float(value) + draw(st.sampled_from((0.0, 0.0, 0.5)))
        return _set(doc, path, new), Mutation(kind, path)

    if kind == "bool_for_number" and numbers:
        path, _ = draw(st.sampled_from(numbers))
        return _set(doc, path, draw(st.booleans())), Mutation(kind, path)

    # null, and the fallback for a kind with nothing to act on
    path, _ = draw(st.sampled_from(locations))
    return _set(doc, path, None), Mutation("null", path)
