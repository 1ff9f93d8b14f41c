"""The test suite's own layout: a conftest.py per folder, each re-exporting the shared helpers."""

from __future__ import annotations

from testkit import ROOT


def test_every_conftest_re_exports_the_shared_helpers() -> None:
    """With a conftest.py in several folders, `from conftest import make_intake` gets whichever one pytest loaded
    last; each must therefore offer the helpers of testkit.py."""
    conftests = sorted((ROOT / "tests").rglob("conftest.py"))
    assert len(conftests) >= 5
    for path in conftests:
        assert "from testkit import *" in path.read_text(), f"{path.relative_to(ROOT)} does not re-export testkit"


def test_tests_that_empty_the_database_come_last_and_the_long_ones_first_among_them() -> None:
    """pytest-xdist gives out tests in collection order, and each worker runs them in that order. A test that empties
    the tables (transactional) also removes what the migrations made (the published consent text), so none may come
    before a test that needs it; the `long` ones lead the rest, the others keep their order."""
    import subprocess
    import sys

    files = ["tests/scheduling/test_race.py", "tests/scheduling/test_availability.py"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    ids = [line for line in done.stdout.splitlines() if "::" in line]
    race = [i for i, node in enumerate(ids) if "test_race.py" in node]
    availability = [i for i, node in enumerate(ids) if "test_availability.py" in node]
    assert len(availability) > 3 and race, ids[:6]
    flushing = race  # every test there is transactional
    assert max(availability) < min(flushing), ids  # the plain database tests first
    long = [i for i, node in enumerate(ids) if "test_no_double_booking_under_a_race" in node]
    assert long and long == list(range(min(flushing), min(flushing) + len(long))), ids  # long ones lead the rest
    assert availability == sorted(availability)
