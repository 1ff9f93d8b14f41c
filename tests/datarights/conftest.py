"""Fixtures of the data-rights tests: the clinic `world` (matrix_support.build_world, as the permission matrix),
its uploads in a folder of the test's own."""

from __future__ import annotations

from typing import Any

import pytest

from matrix_support import build_world
from testkit import *  # noqa: F403  # `from conftest import ...` finds the suite's helpers whichever conftest.py loaded last


@pytest.fixture
def world(db: None, settings: Any, tmp_path: Any) -> Any:
    settings.MEDIA_ROOT = tmp_path / "media"
    return build_world()
