"""`backcare.common` is the shared layer below the apps: it imports nothing from clinic, scheduling, api or
interop (they call into it and register their hooks with it), so it can never pull them into a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

COMMON = Path(__file__).resolve().parent.parent / "src" / "backcare" / "common"
ABOVE = ("backcare.clinic", "backcare.scheduling", "backcare.api", "backcare.interop")


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_common_imports_nothing_from_the_apps_above_it():
    files = sorted(COMMON.rglob("*.py"))
    assert len(files) >= 5
    wrong = {
        str(path.relative_to(COMMON)): sorted(m for m in imported_modules(path) if m.startswith(ABOVE))
        for path in files
    }
    assert not {k: v for k, v in wrong.items() if v}


def test_the_common_migrations_depend_on_no_app_above():
    for path in (COMMON / "migrations").glob("0*.py"):
        text = path.read_text(encoding="utf-8")
        assert not any(f"('{app}'" in text or f'("{app}"' in text for app in ("clinic", "scheduling", "api", "interop"))
