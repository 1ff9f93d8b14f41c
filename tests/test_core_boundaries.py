"""The clinical core stands alone: no Django, fast to start, one truth for every caller."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import backcare.clinical


def core_modules() -> list[str]:
    """Every module of the clinical package, found by walking it (a new module is checked without being listed),
    and the console command, which screens through the core."""
    found = [
        info.name for info in pkgutil.walk_packages(backcare.clinical.__path__, prefix=f"{backcare.clinical.__name__}.")
    ]
    return [backcare.clinical.__name__, *sorted(found), "backcare.cli"]


def _modules_loaded_by(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


def test_the_walk_finds_every_module_of_the_clinical_package() -> None:
    package = Path(backcare.clinical.__file__).parent
    on_disk = {
        "backcare." + ".".join(path.relative_to(package.parent).with_suffix("").parts).removesuffix(".__init__")
        for path in package.rglob("*.py")
    }
    assert len(on_disk) >= 10
    assert set(core_modules()) == on_disk | {"backcare.cli"}


def test_the_clinical_core_imports_nothing_from_django() -> None:
    loaded = _modules_loaded_by("\n".join(f"import {m}" for m in core_modules()))
    assert (
        "django"
        in subprocess.run(
            [sys.executable, "-c", "import django; print('django')"], capture_output=True, text=True
        ).stdout
    ), "Django must be installed for this test to mean anything"
    assert not {m for m in loaded if m == "django" or m.startswith("django.")}


def test_screening_one_intake_does_not_load_jsonschema_or_the_progress_bar(tmp_path: Path) -> None:
    intake = tmp_path / "intake.json"
    intake.write_text('{"schema_version":"1","age":40,"pain":{"regions":["neck"],"intensity":3,"duration_weeks":1}}')
    out = tmp_path / "result.json"
    args = ["screen", "--format", "json", "--out", str(out), str(intake)]
    loaded = _modules_loaded_by(f"from backcare.cli import main\nassert main({args!r}) == 0")
    assert out.read_text().startswith('{"schema_version":"1"')
    assert "jsonschema" not in loaded
    assert "tqdm" not in loaded
    assert "backcare.clinical.render" not in loaded
