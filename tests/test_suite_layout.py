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
