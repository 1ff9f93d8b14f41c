"""The shared screening contract, checked through the real command line by the shared runner."""

from __future__ import annotations

import subprocess
import sys

from conftest import BACKCARE, shared_path


def test_every_public_vignette_passes_through_the_command_line() -> None:
    runner = shared_path("tools", "check_screening.py")
    vignettes = shared_path("vignettes")
    p = subprocess.run(
        [sys.executable, str(runner), "--cli", str(BACKCARE), str(vignettes)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    summary = p.stdout.strip().splitlines()[-1]
    assert p.returncode == 0, p.stdout + p.stderr
    assert summary.endswith(" 0 failed"), summary
    assert int(summary.split()[0]) >= len(list(vignettes.glob("*.json"))), summary
    # The runner validates against the schema only when jsonschema is importable; it must be here.
    assert "not checked against the schema" not in p.stderr


def test_the_packaged_contract_is_the_shared_contract() -> None:
    from backcare.clinical.vocabulary import CONTRACT

    for name in ("intake.schema.json", "screening.schema.json", "techniques.json", "CLINICAL.md"):
        shipped = (CONTRACT / name).read_bytes()
        assert shipped == shared_path("spec", name).read_bytes(), f"{name} differs from ../shared/spec/{name}"


def test_the_shipped_rule_base_and_every_result_name_contract_1_1() -> None:
    from backcare.clinical.engine import screen
    from backcare.clinical.intake import parse_intake
    from backcare.clinical.rulebase import default_rule_base

    assert "(contract, version 1.1)" in shared_path("spec", "CLINICAL.md").read_text(encoding="utf-8").splitlines()[0]
    assert default_rule_base().contract == "1.1"
    assert default_rule_base().version.startswith("1.1")
    doc = b'{"schema_version":"1","age":40,"pain":{"regions":["neck"],"intensity":3,"duration_weeks":1}}'
    assert screen(parse_intake(doc))["rule_base"]["contract"] == "1.1"
