"""One client's intake, parsed and validated against the contract (`contract/intake.schema.json`).

Two paths, one answer. The fast path decodes JSON straight into typed structs (msgspec), about half a microsecond
for a valid intake, so batch screening is not bound by validation. Anything the fast path refuses goes to the slow
path, which validates against the JSON Schema itself (jsonschema) and names every offending field by its path.
A property test holds the two paths to the same verdict on random documents.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from backcare.clinical import vocabulary as vocab

MAX_INTAKE_BYTES = 1024 * 1024
"""A real intake is a few kilobytes; anything past 1 MiB is a wrong file, refused before parsing."""

if TYPE_CHECKING:
    Region = str
    FindingCode = str
    Goal = str
    Onset = str
    Sex = str
    Bothersomeness = str
else:
    Region = Literal[tuple(vocab.REGIONS)]
    FindingCode = Literal[tuple(vocab.FINDINGS)]
    Goal = Literal[tuple(vocab.GOALS)]
    Onset = Literal[vocab.ONSETS]
    Sex = Literal[vocab.SEXES]
    Bothersomeness = Literal[vocab.BOTHERSOMENESS]


class Pain(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    regions: Annotated[list[Region], Meta(min_length=1)]
    intensity: Annotated[int, Meta(ge=0, le=10)]
    duration_weeks: Annotated[float, Meta(ge=0, le=5200)]
    first_episode: bool = False
    onset: Onset = "unknown"
    medically_assessed: bool = False


class Finding(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    code: FindingCode
    # UNSET rather than None: the schema allows the key to be absent but not null.
    region: Region | UnsetType = UNSET
    weeks_ago: Annotated[float, Meta(ge=0)] | UnsetType = UNSET
    note: Annotated[str, Meta(max_length=2000)] | UnsetType = UNSET


class StartBack(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    agree: Annotated[list[bool], Meta(min_length=8, max_length=8)]
    bothersomeness: Bothersomeness


class Intake(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    schema_version: Literal["1"]
    age: Annotated[int, Meta(ge=0, le=120)]
    pain: Pain
    id: Annotated[str, Meta(max_length=200)] | UnsetType = UNSET
    sex: Sex | UnsetType = UNSET
    findings: list[Finding] = msgspec.field(default_factory=list)
    pregnancy_weeks: Annotated[int, Meta(ge=0, le=45)] | None = None
    goals: list[Goal] = msgspec.field(default_factory=list)
    start_back: StartBack | UnsetType = UNSET

    def to_dict(self) -> dict[str, Any]:
        """The intake as a JSON-ready dict (absent optional fields left out)."""
        result: dict[str, Any] = msgspec.to_builtins(self)
        return result


@dataclass(frozen=True)
class FieldError:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class IntakeError(ValueError):
    """The input is not a valid intake; `errors` names every offending field."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("\n".join(map(str, errors)))


_decoder = msgspec.json.Decoder(Intake)


def _unique(values: list[str]) -> bool:
    return len(values) == len(set(values))


def _fast_path_ok(intake: Intake) -> bool:
    # msgspec has no uniqueItems; the rare intake that repeats a value goes to the slow path for its message.
    return _unique(intake.pain.regions) and _unique(intake.goals)


def parse_intake(raw: bytes) -> Intake:
    """Parse and validate one intake document given as bytes; raise IntakeError naming every problem."""
    if len(raw) > MAX_INTAKE_BYTES:
        raise IntakeError(
            [FieldError("", f"the input is {len(raw):,} bytes; an intake may be at most {MAX_INTAKE_BYTES:,}")]
        )
    try:
        intake = _decoder.decode(raw)
    except msgspec.DecodeError:
        pass
    else:
        if _fast_path_ok(intake):
            return intake
    return _validate(_load_json(raw))


def parse_intake_obj(obj: Any) -> Intake:
    """Validate an intake already parsed from JSON (a dict), as the web application holds it."""
    try:
        intake = msgspec.convert(obj, Intake)
    except msgspec.ValidationError:
        pass
    else:
        if _fast_path_ok(intake):
            return intake
    return _validate(obj)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _load_json(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise IntakeError(
            [FieldError("", f"the input is not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start})")]
        ) from None
    if not text.strip():
        raise IntakeError([FieldError("", "the input is empty; expected one JSON intake document")])
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise IntakeError(
            [FieldError("", f"the input is not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})")]
        ) from None
    except (ValueError, RecursionError) as e:
        raise IntakeError([FieldError("", f"the input is not valid JSON: {e}")]) from None


@cache
def _schema_validator() -> Any:
    import jsonschema  # imported here: only an invalid intake pays for it
    from referencing import Registry, Resource

    intake = vocab.intake_schema()
    registry = Registry().with_resource(intake["$id"], Resource.from_contents(intake))
    return jsonschema.Draft202012Validator(intake, registry=registry)


def _validate(obj: Any) -> Intake:
    validator = _schema_validator()
    errors = sorted(
        (FieldError(_path(e.absolute_path), _message(e)) for e in validator.iter_errors(obj)),
        key=lambda fe: (fe.path, fe.message),
    )
    if errors:
        raise IntakeError(_dedupe(errors))
    # Valid by the schema but refused by the fast path: an integer written as 40.0, which JSON Schema accepts, or
    # a weeks_ago too large for a float (the schema sets no maximum): it means "longer ago than any rule asks".
    try:
        return msgspec.convert(_huge_numbers_as_infinity(obj), Intake, strict=False)
    except msgspec.ValidationError as e:  # pragma: no cover - the property test keeps the paths in step
        raise IntakeError([FieldError("", str(e))]) from None


def _huge_numbers_as_infinity(obj: dict[str, Any]) -> dict[str, Any]:
    findings = obj.get("findings") or []
    if not any(isinstance(f.get("weeks_ago"), int) and f["weeks_ago"] > sys.float_info.max for f in findings):
        return obj
    copied = [
        {**f, "weeks_ago": math.inf}
        if isinstance(f.get("weeks_ago"), int) and f["weeks_ago"] > sys.float_info.max
        else f
        for f in findings
    ]
    return {**obj, "findings": copied}


def _dedupe(errors: list[FieldError]) -> list[FieldError]:
    return list(dict.fromkeys(errors))


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


_TYPE_WORDS = {
    "integer": "a whole number",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "object": "an object",
    "array": "a list",
    "null": "null",
}


def _vocabulary_name(schema: Any) -> str | None:
    defs = vocab.intake_schema()["$defs"]
    for name in ("region", "finding", "goal"):
        if schema is defs[name] or schema == defs[name]:
            return name
    return None


def _message(error: Any) -> str:
    kind, value, limit = error.validator, error.instance, error.validator_value
    if kind == "oneOf" and (name := _vocabulary_name(error.schema)):
        return f"{_show(value)} is not a known {name} code"
    if kind == "maximum":
        return f"{_show(value)} is greater than the maximum {limit}"
    if kind == "minimum":
        return f"{_show(value)} is less than the minimum {limit}"
    if kind == "type":
        wanted = [limit] if isinstance(limit, str) else list(limit)
        return f"{_show(value)} is not " + " or ".join(_TYPE_WORDS.get(t, t) for t in wanted)
    if kind == "required":
        missing = [name for name in limit if isinstance(value, dict) and name not in value]
        return "missing required " + ", ".join(missing)
    if kind == "additionalProperties":
        extra = sorted(set(value) - set(error.schema.get("properties", {})))
        return "unknown field " + ", ".join(extra) + " (not in the intake schema)"
    if kind == "enum":
        return f"{_show(value)} is not one of " + ", ".join(map(str, limit))
    if kind == "const":
        return f"{_show(value)} is not supported; expected {_show(limit)}"
    if kind == "minItems":
        return f"has {len(value)} item(s); at least {limit} required"
    if kind == "maxItems":
        return f"has {len(value)} item(s); at most {limit} allowed"
    if kind == "uniqueItems":
        return "lists the same value more than once"
    if kind == "maxLength":
        return f"is {len(value)} characters long; at most {limit} allowed"
    return str(error.message)
