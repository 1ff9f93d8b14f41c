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


def test_long_tests_are_handed_out_first() -> None:
    """pytest-xdist gives out tests in collection order: the `long` ones come first, the rest keep their order."""
    import subprocess
    import sys

    files = ["tests/scheduling/test_availability.py", "tests/scheduling/test_race.py"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    ids = [line for line in done.stdout.splitlines() if "::" in line]
    long = [i for i, node in enumerate(ids) if "test_no_double_booking_under_a_race" in node]
    assert long == [0, 1], ids[:4]
    rest = [node for node in ids if "test_availability.py" in node]
    assert rest == sorted(rest, key=ids.index) and len(rest) > 3
