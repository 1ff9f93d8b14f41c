"""Helpers every test folder shares: intake factories, screening through the core, the real `backcare` command,
the shared spec folder.

Tests import them from here or, as they always have, from `conftest`: every conftest.py re-exports them, because
with a conftest.py in each folder `conftest` names whichever of them pytest loaded last.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "BACKCARE",
    "BASE_INTAKE",
    "ROOT",
    "SHARED",
    "CliResult",
    "fired",
    "make_intake",
    "run_cli",
    "screen_doc",
    "shared_path",
]

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
BACKCARE = Path(sys.executable).parent / "backcare"

BASE_INTAKE: dict[str, Any] = {
    "schema_version": "1",
    "id": "test",
    "age": 40,
    "sex": "female",
    "pain": {
        "regions": ["lower_back"],
        "intensity": 4,
        "duration_weeks": 3,
        "first_episode": False,
        "onset": "gradual",
        "medically_assessed": True,
    },
    "findings": [],
    "pregnancy_weeks": None,
    "goals": [],
}


def make_intake(*findings: str | dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A plain intake with nothing to flag, changed as asked.

    Findings may be codes or finding dicts; `pain__intensity=8` style keywords change pain fields.
    """
    doc = copy.deepcopy(BASE_INTAKE)
    doc["findings"] = [{"code": f} if isinstance(f, str) else f for f in findings]
    for key, value in changes.items():
        if key.startswith("pain__"):
            doc["pain"][key.removeprefix("pain__")] = value
        else:
            doc[key] = value
    return doc


def screen_doc(doc: dict[str, Any]) -> dict[str, Any]:
    """Screen an intake dict through the clinical core, as the clinic application will."""
    from backcare.clinical.engine import screen
    from backcare.clinical.intake import parse_intake

    return screen(parse_intake(json.dumps(doc).encode()))


def fired(result: dict[str, Any]) -> list[str]:
    return [f["rule"] for f in result["findings"]]


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_cli(*args: str, input: bytes | str | None = None, timeout: float = 120) -> CliResult:
    """Run the installed `backcare` command as a user would."""
    data = input.encode() if isinstance(input, str) else input
    p = subprocess.run(
        [str(BACKCARE), *args],
        input=data,
        capture_output=True,
        timeout=timeout,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    return CliResult(p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace"))


def shared_path(*parts: str) -> Path:
    """A path in the shared folder beside the project; fails clearly when it is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"{path} is missing: the shared folder (spec, vignettes, tools) must sit beside the project")
    return path
