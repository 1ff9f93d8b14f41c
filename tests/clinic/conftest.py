"""Fixtures of the clinic tests: the permission matrix's `world` (matrix_support.build_world: a clinic with a
record of every kind, each page's URL arguments), shared by the matrix, the forms contract and the XSS canary
(which fills the text fields with its canary)."""

from __future__ import annotations

from typing import Any

import pytest

from matrix_support import build_world
from testkit import *  # noqa: F403  # `from conftest import ...` finds the suite's helpers whichever conftest.py loaded last


@pytest.fixture
def world(db: None) -> Any:
    return build_world(billing=True)  # the billing pages too
