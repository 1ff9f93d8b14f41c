"""Fixtures of the API tests: `w`, the clinic with a token for every role (api_world.build_api_world)."""

from __future__ import annotations

import pytest
from api_world import ApiWorld, build_api_world

from testkit import *  # noqa: F403  # `from conftest import ...` finds the suite's helpers whichever conftest.py loaded last


@pytest.fixture
def w(db: None) -> ApiWorld:
    return build_api_world()
