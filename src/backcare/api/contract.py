"""The screening contract's JSON Schemas (../shared/spec, shipped in backcare.clinical.contract) as OpenAPI
components, so the stateless screening operation documents exactly the contract the command line reads and writes.

The contract's `$defs` become components of their own ("Intake_region", "Screening_decision", ...) and its references
are rewritten to point there; nothing else in the schemas changes.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from backcare.clinical.vocabulary import intake_schema, screening_schema

DOCUMENTS = {"Intake": ("intake.schema.json", intake_schema), "Screening": ("screening.schema.json", screening_schema)}
_FILES = {file: name for name, (file, _) in DOCUMENTS.items()}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _rewrite(node: Any, owner: str) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                file, _, pointer = value.partition("#")
                target = _FILES.get(file, owner) if file else owner
                out[key] = "#/components/schemas/" + target + "_" + pointer.removeprefix("/$defs/")
            else:
                out[key] = _rewrite(value, owner)
        return out
    if isinstance(node, list):
        return [_rewrite(item, owner) for item in node]
    return node


@cache
def components() -> dict[str, Any]:
    """{component name: schema} for the intake and the screening result, with their definitions."""
    found: dict[str, Any] = {}
    for name, (_, load) in DOCUMENTS.items():
        schema = copy.deepcopy(load())
        defs = schema.pop("$defs", {})
        for key in ("$schema", "$id"):
            schema.pop(key, None)
        found[name] = _rewrite(schema, name)
        for def_name, definition in defs.items():
            found[f"{name}_{def_name}"] = _rewrite(definition, name)
    return found
