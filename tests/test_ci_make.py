"""`make test` runs the suite on SQLite and again on PostgreSQL; CI (.ci/run) installs what that needs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _make_test_postgres(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`make test-postgres` (the step `make test` ends with) on a machine where PostgreSQL is not installed:
    BACKCARE_PG_BINDIR points at an empty folder. `-o setup` skips re-syncing the virtual environment."""
    base = {k: v for k, v in os.environ.items() if k not in ("CI", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    base["BACKCARE_PG_BINDIR"] = str(tmp_path)
    return subprocess.run(
        ["make", "-s", "-o", "setup", "test-postgres"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_postgresql_make_test_says_the_postgresql_run_was_not_done(tmp_path: Path) -> None:
    done = _make_test_postgres(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "NOT run on PostgreSQL" in done.stderr
    assert "apt-get install -y postgresql" in done.stderr and "initdb, pg_ctl, postgres not found" in done.stderr
    assert "passed" not in done.stdout, "no tests ran"


def test_without_postgresql_make_test_fails_under_ci(tmp_path: Path) -> None:
    done = _make_test_postgres(tmp_path, CI="true")
    assert done.returncode != 0
    assert "FAILED: under CI the tests must also run on PostgreSQL" in done.stderr
    assert "apt-get install -y postgresql" in done.stderr


def _core_only_tests() -> list[str]:
    makefile = (ROOT / "Makefile").read_text()
    match = re.search(r"^CORE_ONLY_TESTS := ((?:.*\\\n)*.*)$", makefile, re.MULTILINE)
    assert match, "CORE_ONLY_TESTS is defined in the Makefile"
    return match.group(1).replace("\\\n", " ").split()


def test_tests_left_out_of_the_postgresql_run_never_touch_a_database() -> None:
    """The PostgreSQL run leaves out the clinical core's tests to save time: none of them may use the database,
    the Django application or a command that does."""
    uses_database = re.compile(
        r"^\s*(from|import) django|django_db|DJANGO_SETTINGS|\bdb\b|transactional_db|live_server"
        r"|clinic_fixtures|client_record|backcare\.(clinic|web|dataops)\b"
        r"|[\"'](manage|serve|demo|backup|restore)[\"']",
        re.MULTILINE,
    )
    listed = _core_only_tests()
    assert "tests/rules" in listed and "tests/test_pgcluster.py" in listed
    files: list[Path] = []
    for entry in listed:
        path = ROOT / entry
        assert path.exists(), f"{entry} (in CORE_ONLY_TESTS) does not exist"
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    for path in files:
        if path.name == "test_pgcluster.py":
            continue  # starts its own clusters; it ran in the SQLite run
        found = uses_database.search(path.read_text())
        assert found is None, f"{path.relative_to(ROOT)} uses {found.group(0)!r}: remove it from CORE_ONLY_TESTS"


def test_ci_installs_only_what_is_missing(tmp_path: Path) -> None:
    # A machine with Python, grep and the PostgreSQL server, but no chromium and no make.
    for tool in ("grep", "head", "dirname", "id", "ldconfig", "fc-list"):
        found = shutil.which(tool, path=os.environ.get("PATH", "") + ":/sbin:/usr/sbin")
        if found:
            (tmp_path / tool).symlink_to(found)
    (tmp_path / "python3").symlink_to(os.path.realpath(sys.executable))
    env = {"PATH": str(tmp_path), "BACKCARE_CI_DRY_RUN": "1", "HOME": str(tmp_path)}
    done = subprocess.run(["/bin/bash", str(ROOT / ".ci/run")], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    wanted = done.stdout.strip().removeprefix("would install: ").split()
    assert "chromium" in wanted and "make" in wanted and "openssl" in wanted
    assert "postgresql" not in wanted, "found in /usr/lib/postgresql/*/bin although not in PATH"
    assert "nginx" not in wanted, "found in /usr/sbin although not in PATH"

    here = subprocess.run(
        ["/bin/bash", str(ROOT / ".ci/run")],
        env={**os.environ, "BACKCARE_CI_DRY_RUN": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert here.returncode == 0 and here.stdout.strip() == "would install: nothing", here.stdout + here.stderr


def test_ci_finds_a_library_listed_early_in_a_long_ldconfig_list(tmp_path: Path) -> None:
    # Under CI, `ldconfig -p | grep -q` with pipefail failed when the library came early in a long list: grep quit,
    # ldconfig died of SIGPIPE, and the pipeline counted as "not found" (CI's run said: would install libpangoft2).
    for tool in ("grep", "head", "dirname", "id", "fc-list"):
        found = shutil.which(tool, path=os.environ.get("PATH", "") + ":/sbin:/usr/sbin")
        if found:
            (tmp_path / tool).symlink_to(found)
    (tmp_path / "python3").symlink_to(os.path.realpath(sys.executable))
    lines = [
        f"\tlib{name}.so.0 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/lib{name}.so.0"
        for name in ("pangoft2-1.0", "pango-1.0")
    ]
    lines += [
        f"\tlibfiller{n}.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libfiller{n}.so.1" for n in range(20_000)
    ]
    listing = tmp_path / "ldconfig.txt"
    listing.write_text(f"{len(lines)} libs found in cache\n" + "\n".join(lines) + "\n")
    ldconfig = tmp_path / "ldconfig"
    ldconfig.write_text(f"#!/bin/bash\nwhile IFS= read -r line; do printf '%s\\n' \"$line\"; done < {listing}\n")
    ldconfig.chmod(0o755)
    env = {"PATH": str(tmp_path), "BACKCARE_CI_DRY_RUN": "1", "HOME": str(tmp_path)}
    done = subprocess.run(["/bin/bash", str(ROOT / ".ci/run")], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    wanted = done.stdout.strip().removeprefix("would install: ").split()
    assert "libpangoft2-1.0-0" not in wanted and "libpango-1.0-0" not in wanted, wanted


def _make_test_steps() -> list[str]:
    makefile = (ROOT / "Makefile").read_text()
    match = re.search(r"^test: .*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert match, "the Makefile has a `test` target"
    return [line.strip() for line in match.group(1).splitlines()]


def test_make_test_checks_the_import_layers_after_the_types_and_before_the_tests() -> None:
    steps = _make_test_steps()
    commands = [step.split()[0] for step in steps]
    assert ".venv/bin/lint-imports" in commands, steps
    lint_imports = commands.index(".venv/bin/lint-imports")
    assert commands.index(".venv/bin/mypy") < lint_imports < commands.index(".venv/bin/pytest")
    assert steps[lint_imports].split()[1:] == ["--no-logo", "--no-cache"], "reads .importlinter, leaves no cache"


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` with the project's contracts on the copy of the package under `root`/src."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-logo", "--no-cache", str(root / ".importlinter")],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root / "src"), "COLUMNS": "200"},  # one violation a line
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_new_import_against_the_layers_fails_and_a_fixed_one_must_leave_the_ignore_list(tmp_path: Path) -> None:
    """The contracts hold on today's code with its listed exceptions; any new import that breaks them fails, and so
    does an exception left in `ignore_imports` after the move that removed its import."""
    package = tmp_path / "src" / "backcare"
    shutil.copytree(ROOT / "src" / "backcare", package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    held = _lint_imports(tmp_path)
    assert held.returncode == 0, held.stdout + held.stderr
    assert "0 broken" in held.stdout

    (package / "common" / "leak.py").write_text("from backcare.clinic import models\n")
    (package / "clinical" / "leak.py").write_text("import django.conf\n")
    (package / "interop" / "leak.py").write_text("from backcare.clinic.views import dashboard\n")
    (package / "payroll").mkdir()
    (package / "payroll" / "__init__.py").write_text("")
    broken = _lint_imports(tmp_path)
    assert broken.returncode != 0
    for violation in (
        "backcare.common.leak -> backcare.clinic.models",
        "backcare.clinical.leak -> django",
        "backcare.interop.leak -> backcare.clinic.views.dashboard",
        "- backcare.payroll",  # a new top-level package not given a layer
    ):
        assert violation in broken.stdout, broken.stdout
    for path in ("common/leak.py", "clinical/leak.py", "interop/leak.py", "payroll/__init__.py"):
        (package / path).unlink()

    serve = package / "clinic" / "management" / "commands" / "serve.py"
    source = serve.read_text()
    assert "from backcare.web.wsgi import application" in source
    serve.write_text(source.replace("from backcare.web.wsgi import application", "application = None"))
    stale = _lint_imports(tmp_path)
    assert stale.returncode != 0
    left_over = "backcare.clinic.management.commands.serve -> backcare.web.wsgi"
    assert f"No matches for ignored import {left_over}" in stale.stdout, stale.stdout


def test_make_test_runs_both_suites_on_every_core() -> None:
    """pytest-xdist spreads the tests over the cores, on SQLite and on PostgreSQL; `loadgroup` keeps the tests that
    share a fixed resource (an xdist_group mark) on one worker."""
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^PYTEST_PARALLEL \?= -n auto --dist loadgroup$", makefile, re.MULTILINE)
    assert ".venv/bin/pytest $(PYTEST_PARALLEL)" in _make_test_steps()
    postgres = re.search(r"^test-postgres: .*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert postgres and "BACKCARE_TEST_DB=postgres .venv/bin/pytest $(PYTEST_PARALLEL) " in postgres.group(1)
