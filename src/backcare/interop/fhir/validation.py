"""Validating a FHIR R4 Bundle: every problem named with a FHIRPath-like location.

Two layers. fhirclient's R4 models (strict parsing) find unknown elements, wrong JSON types, missing required
elements and malformed dates; each entry is parsed on its own so that one bad entry does not hide the next. Then our
own walk over the JSON, guided by the same models, checks what fhirclient does not: an unknown resourceType, true
given for an integer, a decimal for an integer, more than one value[x], empty strings, arrays and objects, resource
ids, required-binding codes for the elements that matter here, unique fullUrls, and that every reference resolves
inside the bundle (or to a contained resource).

`validate_bundle` accepts anything: a dict, or JSON text/bytes (which it parses first), and never raises.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from fhirclient.models import bundle as fhir_bundle
from fhirclient.models.fhirabstractbase import FHIRAbstractBase, FHIRValidationError
from fhirclient.models.fhirelementfactory import FHIRElementFactory
from fhirclient.models.fhirreference import FHIRReference
from fhirclient.models.resource import Resource

from backcare.interop.fhir import MAX_BUNDLE_BYTES

MAX_ENTRIES = 2000
MAX_PROBLEMS = 500
BUNDLE_TYPES = (
    "document",
    "message",
    "transaction",
    "transaction-response",
    "batch",
    "batch-response",
    "history",
    "searchset",
    "collection",
)
ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")

# Required bindings (value sets a code MUST come from) for the elements Backcare writes or reads.
OBSERVATION_STATUS = (
    "registered",
    "preliminary",
    "final",
    "amended",
    "corrected",
    "cancelled",
    "entered-in-error",
    "unknown",
)
REQUIRED_CODES: dict[str, tuple[str, ...]] = {
    "Bundle.type": BUNDLE_TYPES,
    "Bundle.entry.request.method": ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"),
    "Bundle.entry.search.mode": ("match", "include", "outcome"),
    "Patient.gender": ("male", "female", "other", "unknown"),
    "Practitioner.gender": ("male", "female", "other", "unknown"),
    "*.telecom.system": ("phone", "fax", "email", "pager", "url", "sms", "other"),
    "*.telecom.use": ("home", "work", "temp", "old", "mobile"),
    "*.name.use": ("usual", "official", "temp", "nickname", "anonymous", "old", "maiden"),
    "*.address.use": ("home", "work", "temp", "old", "billing"),
    "*.identifier.use": ("usual", "official", "temp", "secondary", "old"),
    "*.text.status": ("generated", "extensions", "additional", "empty"),
    "Questionnaire.status": ("draft", "active", "retired", "unknown"),
    "Questionnaire.item.type": (
        "group",
        "display",
        "boolean",
        "decimal",
        "integer",
        "date",
        "dateTime",
        "time",
        "string",
        "text",
        "url",
        "choice",
        "open-choice",
        "attachment",
        "reference",
        "quantity",
    ),
    "QuestionnaireResponse.status": ("in-progress", "completed", "amended", "entered-in-error", "stopped"),
    "Observation.status": OBSERVATION_STATUS,
    "RiskAssessment.status": OBSERVATION_STATUS,
    "Procedure.status": (
        "preparation",
        "in-progress",
        "not-done",
        "on-hold",
        "stopped",
        "completed",
        "entered-in-error",
        "unknown",
    ),
    "CarePlan.status": ("draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"),
    "CarePlan.intent": ("proposal", "plan", "order", "option"),
    "CarePlan.activity.detail.status": (
        "not-started",
        "scheduled",
        "in-progress",
        "on-hold",
        "completed",
        "cancelled",
        "stopped",
        "unknown",
        "entered-in-error",
    ),
    "Goal.lifecycleStatus": (
        "proposed",
        "planned",
        "accepted",
        "active",
        "on-hold",
        "completed",
        "cancelled",
        "entered-in-error",
        "rejected",
    ),
    "Appointment.status": (
        "proposed",
        "pending",
        "booked",
        "arrived",
        "fulfilled",
        "cancelled",
        "noshow",
        "entered-in-error",
        "checked-in",
        "waitlist",
    ),
    "Appointment.participant.status": ("accepted", "declined", "tentative", "needs-action"),
    "DocumentReference.status": ("current", "superseded", "entered-in-error"),
    "Location.status": ("active", "suspended", "inactive"),
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a bundle: where (FHIRPath-like, e.g. `Bundle.entry[2].resource.birthDate`) and what.

    `code` is the FHIR IssueType used when the problem is reported as an OperationOutcome."""

    location: str
    message: str
    code: str = field(default="invalid", compare=False)


class BadJson(ValueError):
    """The text is not JSON (the problem says where)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def parse_json(data: object) -> object:
    """JSON text or bytes as Python data; anything else is returned unchanged. Raises BadJson naming the place."""
    if isinstance(data, bytes | bytearray):
        if len(data) > MAX_BUNDLE_BYTES:
            raise BadJson(_too_big(len(data)))
        try:
            data = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise BadJson(Problem("Bundle", f"not UTF-8 text (byte {e.start} cannot be read)", "structure")) from None
    if isinstance(data, str):
        if len(data.encode("utf-8")) > MAX_BUNDLE_BYTES:
            raise BadJson(_too_big(len(data.encode("utf-8"))))
        if not data.strip():
            raise BadJson(Problem("Bundle", "empty: paste or upload a FHIR Bundle in JSON", "required"))
        try:
            return json.loads(data, parse_constant=_no_constant)
        except json.JSONDecodeError as e:
            raise BadJson(
                Problem("Bundle", f"not JSON: {e.msg} at line {e.lineno}, column {e.colno}", "structure")
            ) from None
        except (ValueError, RecursionError) as e:
            raise BadJson(Problem("Bundle", f"not JSON: {e}", "structure")) from None
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def _too_big(size: int) -> Problem:
    return Problem(
        "Bundle",
        f"too large: {size:,} bytes; at most {MAX_BUNDLE_BYTES:,} bytes in one bundle (split the clinic into several "
        "bundles)",
        "too-costly",
    )


# --- fhirclient's errors, as problems ------------------------------------------------------------------------------

_PY_TYPES = {
    "str": "text",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "dict": "an object",
    "list": "an array",
    "NoneType": "null",
}


def _type_words(name: str) -> str:
    short = name.rsplit(".", 1)[-1]
    return _PY_TYPES.get(short, f"an object ({short})")


def _segment(part: str) -> str:
    return f"[{part}]" if part.isdigit() else "." + (part[: -len("_fhir")] if part.endswith("_fhir") else part)


def _join(location: str, path: str | None) -> str:
    if not path:
        return location
    return location + "".join(_segment(p) for p in path.split("."))


def _describe(error: BaseException, location: str) -> Problem:
    text = str(error.args[0]) if error.args else str(error)
    if m := re.match(r'Non-optional property "(\w+)" on .* is missing', text):
        return Problem(_join(location, m.group(1)), "is required but missing", "required")
    if m := re.match(r'Superfluous entry "([^"]+)" in data for <[\w.]+\.(\w+) object', text):
        return Problem(_join(location, m.group(1)), f"is not an element of {m.group(2)} in FHIR R4", "structure")
    if m := re.match(r"Wrong type <class '([\w.]+)'> for list property .*", text):
        return Problem(location, f"must be an array, not {_type_words(m.group(1))}", "structure")
    if m := re.match(r"Wrong type <class '([\w.]+)'> for property .* expecting <class '([\w.]+)'>", text):
        return Problem(
            location,
            f"has the wrong type: {_type_words(m.group(1))} where {_type_words(m.group(2))} is expected",
            "structure",
        )
    if m := re.search(r"only takes string or list of strings, but you provided <class '([\w.]+)'>", text):
        return Problem(location, f"must be a date/time string, not {_type_words(m.group(1))}", "structure")
    if "does not match expected format" in text:
        return Problem(location, "is not a valid FHIR date, dateTime, instant or time", "value")
    if isinstance(error, NameError) or text.startswith(("Non-dict type", "Can only use")):
        return Problem(location, "must be a JSON object", "structure")
    if isinstance(error, ValueError):
        return Problem(location, f"is not a real date or time: {text}", "value")
    cleaned = re.sub(r"<class '([\w.]+)'>", lambda m: m.group(1).rsplit(".", 1)[-1], text)
    cleaned = re.sub(r"<[\w.]+ object at 0x[0-9a-f]+>", "this element", cleaned)
    return Problem(location, cleaned, "structure")


def _from_fhirclient(error: BaseException, location: str) -> Iterator[Problem]:
    if isinstance(error, FHIRValidationError):
        here = _join(location, error.path)
        for sub in error.errors:
            yield from _from_fhirclient(sub, here)
    else:
        yield _describe(error, location)


# --- our own walk -------------------------------------------------------------------------------------------------


@cache
def _properties(cls: type) -> tuple[tuple[str, str, Any, bool, str | None, bool], ...]:
    return tuple(cls().elementProperties())


def resource_class(resource_type: object) -> type | None:
    """The fhirclient R4 class for a resourceType, or None when R4 has no such resource."""
    if not isinstance(resource_type, str) or not resource_type:
        return None
    instance = FHIRElementFactory.instantiate(resource_type, None)
    cls = type(instance)
    if getattr(cls, "resource_type", None) != resource_type or not issubclass(cls, Resource):
        return None
    return cls


@dataclass
class Walk:
    problems: list[Problem] = field(default_factory=list)
    references: list[tuple[str, str, frozenset[str]]] = field(default_factory=list)  # (location, reference, contained)

    def add(self, location: str, message: str, code: str = "invalid") -> None:
        self.problems.append(Problem(location, message, code))


def _required_codes(key: str) -> tuple[str, ...] | None:
    if key in REQUIRED_CODES:
        return REQUIRED_CODES[key]
    parts = key.split(".")
    for n in (3, 2):
        if len(parts) >= n and (wild := "*." + ".".join(parts[-n:])) in REQUIRED_CODES:
            return REQUIRED_CODES[wild]
    return None


def _check_primitive(w: Walk, value: Any, typ: Any, location: str, key: str) -> None:
    if typ is int:
        if isinstance(value, bool):
            w.add(location, "has the wrong type: true or false where an integer is expected", "structure")
        elif isinstance(value, float) and not value.is_integer():
            w.add(location, f"must be a whole number, not {value}", "value")
    elif typ is float and isinstance(value, bool):
        w.add(location, "has the wrong type: true or false where a number is expected", "structure")
    elif typ is str and isinstance(value, str):
        if value == "":
            w.add(location, "is empty: leave the element out instead of giving an empty string", "value")
        allowed = _required_codes(key)
        if allowed is not None and value and value not in allowed:
            w.add(location, f"{value!r} is not a valid code here; expected one of {', '.join(allowed)}", "code-invalid")


def walk_element(w: Walk, value: dict[str, Any], cls: type, location: str, key: str, contained: frozenset[str]) -> None:
    """Check one element (a JSON object) against its fhirclient class, recursively."""
    choices: dict[str, list[str]] = {}
    for _name, js, typ, is_list, of_many, _required in _properties(cls):
        if js not in value:
            continue
        raw = value[js]
        if of_many:
            choices.setdefault(of_many, []).append(js)
        if raw is None:
            w.add(f"{location}.{js}", "is null: leave the element out instead", "structure")
            continue
        if is_list:
            if not isinstance(raw, list):
                continue  # fhirclient names it
            if not raw:
                w.add(f"{location}.{js}", "is an empty array: leave the element out instead", "structure")
            items = [(f"{location}.{js}[{i}]", v) for i, v in enumerate(raw)]
        else:
            items = [(f"{location}.{js}", raw)]
        child_key = f"{key}.{js}"
        for here, item in items:
            if isinstance(typ, type) and issubclass(typ, FHIRAbstractBase):
                if not isinstance(item, dict):
                    continue  # fhirclient names it
                if not item:
                    w.add(here, "is an empty object: leave the element out instead", "structure")
                    continue
                if issubclass(typ, Resource):
                    walk_resource(w, item, here, contained)
                    continue
                if typ is FHIRReference and isinstance(item.get("reference"), str):
                    w.references.append((f"{here}.reference", item["reference"], contained))
                walk_element(w, item, typ, here, child_key, contained)
            else:
                _check_primitive(w, item, typ, here, child_key)
    for group, present in choices.items():
        if len(present) > 1:
            w.add(f"{location}.{group}[x]", f"give only one of {', '.join(present)}", "structure")


def walk_resource(w: Walk, resource: dict[str, Any], location: str, outer: frozenset[str] = frozenset()) -> None:
    """fhirclient's strict parse of one resource, then our own checks. `outer`: ids contained in the resource this
    one is contained in (a contained resource may refer to its siblings)."""
    cls = resource_class(resource.get("resourceType"))
    if cls is None:
        rt = resource.get("resourceType")
        message = "is missing" if rt is None else f"{rt!r} is not a FHIR R4 resource type"
        w.add(f"{location}.resourceType", message, "structure" if rt is None else "not-supported")
        return
    try:
        cls(resource, strict=True)
    except FHIRValidationError as e:
        w.problems.extend(_from_fhirclient(e, location))
    except Exception as e:  # fhirclient has a few non-validation failures on odd input; name them, never crash
        w.add(location, f"cannot be read as {cls.__name__}: {e}", "structure")
    rid = resource.get("id")
    if isinstance(rid, str) and not ID_PATTERN.match(rid):
        w.add(f"{location}.id", "must be 1-64 letters, digits, '-' or '.'", "value")
    contained: set[str] = set(outer)
    inner_list = resource.get("contained")
    for i, inner in enumerate(inner_list if isinstance(inner_list, list) else []):
        if isinstance(inner, dict) and isinstance(inner.get("id"), str):
            contained.add(inner["id"])
        elif isinstance(inner, dict):
            w.add(f"{location}.contained[{i}].id", "is required for a contained resource", "required")
    walk_element(w, resource, cls, location, cls.__name__, frozenset(contained))


# --- references ------------------------------------------------------------------------------------------------


@dataclass
class BundleIndex:
    """Where each reference inside a bundle leads: by fullUrl, and by `Type/id`."""

    by_url: dict[str, int] = field(default_factory=dict)
    by_type_id: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, entries: list[Any]) -> BundleIndex:
        index = cls()
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                continue
            url = entry.get("fullUrl")
            if isinstance(url, str) and url:
                index.by_url.setdefault(url, i)
            resource = entry.get("resource")
            if isinstance(resource, dict) and isinstance(resource.get("id"), str):
                index.by_type_id.setdefault(f"{resource.get('resourceType')}/{resource['id']}", i)
        return index

    def resolve(self, reference: str) -> int | None:
        """The entry a reference points at, or None."""
        if reference in self.by_url:
            return self.by_url[reference]
        if reference in self.by_type_id:
            return self.by_type_id[reference]
        m = re.search(r"([A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64})(/_history/[^/]+)?$", reference)
        if m and "://" in reference:
            return self.by_type_id.get(m.group(1))
        return None


# --- the bundle ----------------------------------------------------------------------------------------------------


def validate_bundle(data: object) -> list[Problem]:
    """Every problem with a FHIR R4 Bundle; an empty list means it is valid."""
    try:
        data = parse_json(data)
    except BadJson as e:
        return [e.problem]
    return validate_parsed(data)


def validate_parsed(data: object) -> list[Problem]:
    """`validate_bundle` for data already parsed from JSON (a JSON string is a string here, not text to parse)."""
    try:
        return _validate(data)
    except RecursionError:
        return [Problem("Bundle", "is nested too deeply to be read", "too-costly")]


def _validate(data: object) -> list[Problem]:
    if not isinstance(data, dict):
        kind = _type_words(type(data).__name__)
        return [Problem("Bundle", f"must be a JSON object (a FHIR Bundle), not {kind}", "structure")]
    if data.get("resourceType") != "Bundle":
        rt = data.get("resourceType")
        what = "is missing" if rt is None else f"is {rt!r}: a Bundle is expected here"
        return [Problem("Bundle.resourceType", what, "structure")]
    w = Walk()
    entries = data.get("entry")
    entry_list = entries if isinstance(entries, list) else []
    if len(entry_list) > MAX_ENTRIES:
        return [
            Problem("Bundle.entry", f"{len(entry_list)} entries; at most {MAX_ENTRIES} in one bundle", "too-costly")
        ]
    # The bundle without its resources, then each resource on its own.
    shell = dict(data)
    if isinstance(entries, list):
        # An entry that held only its resource would look empty without it, and an entry that is not an object is
        # named here: placeholders keep either from being named twice (or without its index) below.
        kept = [{k: v for k, v in e.items() if k != "resource"} if isinstance(e, dict) else None for e in entries]
        shell["entry"] = [e if e else {"fullUrl": "urn:placeholder"} for e in kept]
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                w.add(
                    f"Bundle.entry[{i}]", f"must be a JSON object, not {_type_words(type(entry).__name__)}", "structure"
                )
    try:
        fhir_bundle.Bundle(shell, strict=True)
    except FHIRValidationError as e:
        w.problems.extend(_from_fhirclient(e, "Bundle"))
    except Exception as e:
        w.add("Bundle", f"cannot be read as a Bundle: {e}", "structure")
    walk_element(w, shell, fhir_bundle.Bundle, "Bundle", "Bundle", frozenset())
    btype = data.get("type")
    seen_urls: dict[str, int] = {}
    for i, entry in enumerate(entry_list):
        where = f"Bundle.entry[{i}]"
        if not isinstance(entry, dict):
            continue  # named above
        url = entry.get("fullUrl")
        if isinstance(url, str) and url:
            if url in seen_urls:
                w.add(
                    f"{where}.fullUrl",
                    f"is the same as entry[{seen_urls[url]}]'s; every fullUrl must be unique",
                    "duplicate",
                )
            seen_urls.setdefault(url, i)
        resource = entry.get("resource")
        if btype in ("transaction", "batch") and "request" not in entry:
            w.add(f"{where}.request", f"is required in a {btype} bundle", "required")
        if resource is None:
            if btype not in ("transaction-response", "batch-response", "history"):
                w.add(f"{where}.resource", "is required", "required")
            continue
        if not isinstance(resource, dict):
            w.add(
                f"{where}.resource",
                f"must be a JSON object (a resource), not {_type_words(type(resource).__name__)}",
                "structure",
            )
            continue
        walk_resource(w, resource, f"{where}.resource")
    index = BundleIndex.of(entry_list)
    for location, reference, contained in w.references:
        if reference.startswith("#"):
            if reference != "#" and reference[1:] not in contained:
                w.add(location, f"{reference!r} names no contained resource", "not-found")
        elif index.resolve(reference) is None:
            w.add(location, f"{reference!r} does not resolve to an entry of this bundle", "not-found")
    return _unique(w.problems)


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[str, str]] = set()
    out: list[Problem] = []
    for p in problems:
        if (p.location, p.message) not in seen:
            seen.add((p.location, p.message))
            out.append(p)
    if len(out) > MAX_PROBLEMS:
        more = len(out) - MAX_PROBLEMS
        out = [*out[:MAX_PROBLEMS], Problem("Bundle", f"and {more} more problems not listed here", "too-costly")]
    return out


def operation_outcome(problems: list[Problem]) -> dict[str, Any]:
    """The problems as a FHIR OperationOutcome (one error issue each; an information issue when there are none)."""
    issues: list[dict[str, Any]]
    if not problems:
        issues = [{"severity": "information", "code": "informational", "diagnostics": "No problems found."}]
    else:
        issues = [
            {"severity": "error", "code": p.code, "diagnostics": p.message, "expression": [p.location]}
            for p in problems
        ]
    return {"resourceType": "OperationOutcome", "issue": issues}


__all__ = [
    "MAX_BUNDLE_BYTES",
    "MAX_ENTRIES",
    "BadJson",
    "BundleIndex",
    "Problem",
    "operation_outcome",
    "parse_json",
    "resource_class",
    "validate_bundle",
    "validate_parsed",
]
