"""The suite's root conftest: fixtures for every folder (the clinic records in clinic_fixtures, the browser in
browser_support, the `cli` command, the PostgreSQL test database) and the rule that nothing is skipped under CI.
The helpers live in testkit.py and are re-exported here for `from conftest import ...`."""

from __future__ import annotations

import os
from typing import Any

import pytest

from pgcluster import drop_test_database_even_when_in_use  # noqa: F401  # the fixture django_db_setup
from testkit import *  # noqa: F403  # `from conftest import make_intake` and the like
from testkit import BACKCARE, run_cli

pytest_plugins = ["clinic_fixtures", "browser_support"]


@pytest.fixture
def cli() -> Any:
    assert BACKCARE.exists(), f"the backcare command is not installed at {BACKCARE}; run `make test`"
    return run_cli


def flushes_the_database(item: pytest.Item) -> bool:
    """A test that ends by emptying every table (transactional, or with a live server), as pytest-django sees it."""
    marker = item.get_closest_marker("django_db")
    if marker is not None and (marker.kwargs.get("transaction") or marker.kwargs.get("reset_sequences")):
        return True
    return bool({"transactional_db", "live_server"} & set(getattr(item, "fixturenames", ())))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests that empty the database come after every other (as pytest-django orders them): the rows the
    migrations made, such as the published consent text, are gone after a flush, and pytest-xdist hands tests out in
    this order, so a worker never runs a test that needs them after one that emptied the tables. Among those, the
    tests marked `long` go first: one started last keeps its worker busy while the others have nothing left to do."""
    items.sort(key=lambda item: (flushes_the_database(item), item.get_closest_marker("long") is None))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI nothing may be skipped: a skip there hides a missing dependency, so it fails the run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if os.environ.get("CI") and skipped:
        if reporter:
            reporter.write_line(f"CI: {skipped} test(s) skipped; under CI every test must run", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
