"""The throwaway PostgreSQL cluster the tests run on (tests/pgcluster.py, a pytest plugin) and the test settings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import pgcluster

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"


def _require_postgres() -> None:
    try:
        pgcluster.find_bindir()
    except pgcluster.PostgresNotFound as e:  # under CI a skip fails the run (tests/conftest.py)
        pytest.skip(str(e))


def _processes_using(directory: Path) -> list[str]:
    """Live (not zombie) processes whose command line names the cluster folder."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(") ", 1)[1][0]
        except (OSError, IndexError):
            continue
        if str(directory) in cmdline and state != "Z":
            found.append(f"{proc.name}: {cmdline}")
    return found


def _refuses(url: str) -> bool:
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.OperationalError:
        return True
    return False


def _wait_gone(directory: Path, timeout: float = 45) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (directory.exists() or _processes_using(directory)):
        time.sleep(0.2)
    assert not directory.exists(), f"{directory} was left behind"
    assert _processes_using(directory) == []


@pytest.fixture
def base() -> Iterator[Path]:
    """A short private folder for clusters (a Unix socket path must stay under about 100 characters)."""
    path = Path(tempfile.mkdtemp(prefix="bcpg-", dir="/tmp"))
    os.chmod(path, 0o755)  # as root the server runs as `postgres`, which must reach its folder
    yield path
    for stale in path.glob(pgcluster.PREFIX + "*"):
        pgcluster.destroy(stale)
    path.rmdir()


def test_cluster_starts_serves_a_database_and_is_removed_on_stop(base: Path) -> None:
    _require_postgres()
    cluster = pgcluster.PgCluster(base=base)
    url = cluster.start()
    directory = cluster.directory
    assert directory is not None and directory.name.startswith("backcare-pg-") and directory.parent == base
    assert url.startswith("postgres://backcare@127.0.0.1:") and url.endswith("/backcare")

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT current_user, current_setting('server_version_num')::int, current_setting('fsync')"
        ).fetchone()
        assert row is not None
        user, version, fsync = row
        assert user == "backcare" and version >= 140000 and fsync == "off"
        superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        assert superuser == (False,)
        # Django's test runner creates its own database: the role may.
        conn.execute("CREATE DATABASE scratch")
    # btree_gist (for the scheduling's no-overlap constraint) can be created by the database owner, no superuser.
    with psycopg.connect(pgcluster.database_url("scratch", url), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        conn.execute(
            "CREATE TABLE booking (room int, during tstzrange, EXCLUDE USING gist (room WITH =, during WITH &&))"
        )
        conn.execute("INSERT INTO booking VALUES (1, '[2025-01-01 10:00Z, 2025-01-01 11:00Z)')")
        with pytest.raises(psycopg.errors.ExclusionViolation):
            conn.execute("INSERT INTO booking VALUES (1, '[2025-01-01 10:30Z, 2025-01-01 11:30Z)')")
    assert _processes_using(directory), "the server runs from the cluster folder"

    cluster.stop()
    assert not directory.exists()
    assert _processes_using(directory) == []
    assert _refuses(url)
    cluster.stop()  # twice is harmless


def test_a_killed_owner_leaves_nothing_behind(base: Path) -> None:
    """When the process that started the cluster dies without cleaning up, its watchdog stops and removes it."""
    _require_postgres()
    script = (
        "import os, sys\n"
        "from pgcluster import PgCluster\n"
        f"c = PgCluster(base={str(base)!r})\n"
        "print(c.start(), c.directory, flush=True)\n"
        "sys.stdin.read()\n"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=TESTS
    )
    assert owner.stdout is not None
    url, directory_name = owner.stdout.readline().split()
    directory = Path(directory_name)
    assert directory.exists() and not _refuses(url)

    owner.send_signal(signal.SIGKILL)  # no atexit, no finally
    owner.wait()
    _wait_gone(directory)
    assert _refuses(url)


def test_clusters_orphaned_without_their_watchdog_are_swept_away(base: Path) -> None:
    _require_postgres()
    script = (
        "import os\n"
        "from pgcluster import PgCluster\n"
        f"c = PgCluster(base={str(base)!r}, watchdog=False)\n"
        "print(c.start(), c.directory, flush=True)\n"
        "os._exit(0)\n"  # ends without running atexit: the server keeps running
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=TESTS, check=True)
    url, directory_name = done.stdout.split()
    directory = Path(directory_name)
    assert directory.exists() and not _refuses(url)

    assert pgcluster.sweep_stale(base) == [directory]
    assert not directory.exists()
    assert _processes_using(directory) == []
    assert _refuses(url)


def test_missing_postgres_is_named_with_how_to_install_it(tmp_path: Path, base: Path) -> None:
    with pytest.raises(pgcluster.PostgresNotFound) as found:
        pgcluster.find_bindir(path="", search_dirs=[])
    message = str(found.value)
    assert "initdb, pg_ctl, postgres" in message and "not found" in message
    assert "apt-get install -y postgresql" in message and "BACKCARE_PG_BINDIR" in message

    (tmp_path / "initdb").write_text("#!/bin/sh\n")
    (tmp_path / "initdb").chmod(0o755)
    with pytest.raises(pgcluster.PostgresNotFound, match=r"pg_ctl, postgres not found in .*apt-get install"):
        pgcluster.PgCluster(tmp_path, base=base).start()
    assert list(base.iterdir()) == [], "nothing is created when the programs are missing"


def test_missing_postgres_check_command_and_test_settings(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != pgcluster.URL_ENV}
    env[pgcluster.BINDIR_ENV] = str(tmp_path)
    check = subprocess.run(
        [sys.executable, str(TESTS / "pgcluster.py"), "check"], env=env, capture_output=True, text=True
    )
    assert check.returncode == 1
    assert "initdb, pg_ctl, postgres not found in" in check.stderr and "apt-get install -y postgresql" in check.stderr

    settings = _settings_engine({**env, "BACKCARE_TEST_DB": "postgres"})
    assert settings.returncode != 0
    assert "PostgresNotFound" in settings.stderr and "apt-get install -y postgresql" in settings.stderr

    # pytest itself: the plugin looks for PostgreSQL before pytest-django reads the settings (were it later, the
    # settings would complain that no cluster URL is set).
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--co", "tests/test_core_boundaries.py"],
        env={**env, "BACKCARE_TEST_DB": "postgres"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode != 0
    output = run.stdout + run.stderr
    assert "initdb, pg_ctl, postgres not found in" in output and "apt-get install -y postgresql" in output
    assert "needs BACKCARE_TEST_DATABASE_URL" not in output


def _settings_engine(env: dict[str, str], *, plugin: bool = True) -> subprocess.CompletedProcess[str]:
    """The database the test settings choose, in a fresh process that first does what the pytest plugin does
    before pytest-django reads the settings (`plugin`), or not."""
    code = (
        "import os, django\n"
        "import pgcluster\n"
        + ("pgcluster.pytest_load_initial_conftests(None, None, [])\n" if plugin else "")
        + "from django.conf import settings\n"
        "django.setup()\n"
        "db = settings.DATABASES['default']\n"
        "own = pgcluster._cluster.directory if pgcluster._cluster else '-'\n"
        "print(db['ENGINE'], db.get('PORT') or '-', os.environ.get('BACKCARE_TEST_DATABASE_URL', '-'), own)\n"
    )
    env = {**env, "DJANGO_SETTINGS_MODULE": "backcare.web.test_settings"}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=TESTS, timeout=120)


def test_test_settings_choose_the_database() -> None:
    env = {k: v for k, v in os.environ.items() if k not in (pgcluster.URL_ENV, "BACKCARE_TEST_DB", "DATABASE_URL")}

    sqlite = _settings_engine(env)
    assert sqlite.returncode == 0, sqlite.stderr
    assert sqlite.stdout.split()[0] == "django.db.backends.sqlite3"

    wrong = _settings_engine({**env, "BACKCARE_TEST_DB": "oracle"})
    assert wrong.returncode != 0 and "BACKCARE_TEST_DB must be sqlite or postgres, not 'oracle'" in wrong.stderr

    dead = _settings_engine({**env, "BACKCARE_TEST_DB": "postgres", pgcluster.URL_ENV: "postgres://x@127.0.0.1:1/x"})
    assert dead.returncode != 0 and "does not answer" in dead.stderr and f"Unset {pgcluster.URL_ENV}" in dead.stderr

    # The settings alone never start a cluster: they say where one comes from.
    alone = _settings_engine({**env, "BACKCARE_TEST_DB": "postgres"}, plugin=False)
    assert alone.returncode != 0 and f"BACKCARE_TEST_DB=postgres needs {pgcluster.URL_ENV}" in alone.stderr
    assert "tests/pgcluster.py serve" in alone.stderr


def test_test_settings_start_a_cluster_or_reuse_the_one_given(base: Path) -> None:
    _require_postgres()
    env = {k: v for k, v in os.environ.items() if k not in (pgcluster.URL_ENV, "DATABASE_URL")}
    env["BACKCARE_TEST_DB"] = "postgres"

    started = _settings_engine(env)
    assert started.returncode == 0, started.stderr
    engine, port, url, directory = started.stdout.split()
    assert engine == "django.db.backends.postgresql" and url == f"postgres://backcare@127.0.0.1:{port}/backcare"
    assert Path(directory).name.startswith(pgcluster.PREFIX)
    # The cluster belonged to that process: it is gone with it.
    _wait_gone(Path(directory))
    assert _refuses(url)

    with pgcluster.PgCluster(base=base) as cluster:
        assert cluster.url is not None
        reused = _settings_engine({**env, pgcluster.URL_ENV: cluster.url})
        assert reused.returncode == 0, reused.stderr
        assert reused.stdout.split() == ["django.db.backends.postgresql", str(cluster.port), cluster.url, "-"]
        assert not _refuses(cluster.url), "a process reusing the cluster leaves it running"
        assert sorted(p.name for p in base.iterdir()) == [cluster.directory.name if cluster.directory else ""]


def test_a_session_left_open_does_not_keep_the_test_database(base: Path, tmp_path: Path) -> None:
    """A thread or server a test started may still be connected when the run ends: the test database goes anyway."""
    _require_postgres()
    # The suite's own fixture, as tests/conftest.py imports it.
    (tmp_path / "conftest.py").write_text("from pgcluster import drop_test_database_even_when_in_use  # noqa: F401\n")
    (tmp_path / "test_leak.py").write_text(
        "import psycopg, pytest\n"
        "from django.db import connection\n"
        "LEFT_OPEN = []\n\n"
        "@pytest.mark.django_db\n"
        "def test_leaves_a_session_open():\n"
        "    s = connection.settings_dict\n"
        "    assert s['NAME'] == 'test_backcare'\n"
        "    LEFT_OPEN.append(psycopg.connect(host=s['HOST'], port=s['PORT'], user=s['USER'], dbname=s['NAME']))\n"
    )
    with pgcluster.PgCluster(base=base) as cluster:
        assert cluster.url is not None
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env |= {
            "BACKCARE_TEST_DB": "postgres",
            pgcluster.URL_ENV: cluster.url,
            "DJANGO_SETTINGS_MODULE": "backcare.web.test_settings",
            "PYTHONPATH": str(TESTS),
        }
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", "test_leak.py"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "1 passed" in run.stdout and "being accessed by other users" not in run.stdout + run.stderr
        with psycopg.connect(cluster.url) as conn:
            names = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        assert "backcare" in names and "test_backcare" not in names


def test_the_cluster_is_test_support_not_part_of_the_installed_package() -> None:
    import importlib.util

    assert importlib.util.find_spec("backcare.testing") is None
    assert Path(pgcluster.__file__).resolve() == TESTS / "pgcluster.py"
