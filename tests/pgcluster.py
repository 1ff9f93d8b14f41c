"""A throwaway PostgreSQL cluster for the test suite (test support, not part of the installed package).

Run tests (all of them, or some files) on PostgreSQL instead of SQLite:

    BACKCARE_TEST_DB=postgres .venv/bin/pytest -q -x tests/clinic/test_services_core.py

This module is also a pytest plugin (`-p pgcluster` in pyproject.toml). Before Django's settings are read it starts a
cluster in /tmp/backcare-pg-XXXXXXXX (initdb, trust authentication on 127.0.0.1 and a Unix socket inside that
folder only, fsync off, a free TCP port) and puts its URL in BACKCARE_TEST_DATABASE_URL, which
`backcare.web.test_settings` points Django at. Under pytest-xdist only the controlling process starts it: the
workers and every subprocess inherit the variable and share the one cluster, each worker in its own test database
(`test_backcare_gw0`, ...: pytest-django's suffix). Another process that must see a test's data (an application
server in a race test) connects to that test's database:

    url = pgcluster.database_url(connection.settings_dict["NAME"])   # postgres://backcare@127.0.0.1:PORT/test_...

The cluster is stopped and its folder removed when the process that started it exits, also when that process is
killed (a small watchdog process notices and cleans up), and clusters orphaned any other way (a machine reset) are
swept away the next time a cluster starts.

To keep one cluster for several runs, start it in another terminal and export the line it prints:

    .venv/bin/python tests/pgcluster.py serve      # prints: export BACKCARE_TEST_DATABASE_URL=...

Runs sharing one cluster must not run at the same time (they would share the test databases).
`.venv/bin/python tests/pgcluster.py check` says whether the PostgreSQL programs were found.
As root the server runs as the `postgres` user, since PostgreSQL refuses to run as root (pytest-postgresql has no
way to do that, which is why this helper exists).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

PREFIX = "backcare-pg-"
URL_ENV = "BACKCARE_TEST_DATABASE_URL"
BINDIR_ENV = "BACKCARE_PG_BINDIR"
PROGRAMS = ("initdb", "pg_ctl", "postgres")
MIN_VERSION = 14  # the oldest PostgreSQL Django 5.2 supports
SEARCH_DIRS = (
    "/usr/lib/postgresql/*/bin",  # Debian, Ubuntu
    "/usr/pgsql-*/bin",  # Red Hat family (PGDG)
    "/usr/local/pgsql/bin",  # built from source
    "/opt/homebrew/opt/postgresql@*/bin",
    "/usr/local/opt/postgresql@*/bin",
)
ROLE = "backcare"
DATABASE = "backcare"
SUPERUSER = "postgres"  # the cluster's superuser role, and the operating-system user when running as root
INSTALL_HINT = (
    "Install the PostgreSQL server: on Debian or Ubuntu `apt-get install -y postgresql` (as root), on macOS "
    "`brew install postgresql@15`; or set BACKCARE_PG_BINDIR to the folder holding initdb, pg_ctl and postgres. "
    "Without PostgreSQL, leave BACKCARE_TEST_DB unset to run the tests on SQLite."
)


class PostgresNotFound(RuntimeError):
    """The PostgreSQL server programs are not installed (or not where they were said to be)."""


class ClusterError(RuntimeError):
    """The cluster could not be set up, started or reached."""


def _version(bindir: Path) -> tuple[int, str]:
    out = subprocess.run(
        [str(bindir / "postgres"), "--version"], capture_output=True, text=True, timeout=30, check=False
    ).stdout.strip()
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    return (int(match.group(1)) if match else 0), out


def _missing(bindir: Path) -> list[str]:
    return [p for p in PROGRAMS if not (bindir / p).is_file() or not os.access(bindir / p, os.X_OK)]


def _dir_version_key(path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path)) or (0,)


def candidate_bindirs(path: str | None = None, search_dirs: Iterable[str] | None = None) -> list[Path]:
    """Folders that may hold the server programs, in the order they are tried: PATH, pg_config --bindir, the usual
    installation folders (newest version first). `path` replaces $PATH and `search_dirs` the usual folders."""
    search_path = os.environ.get("PATH", os.defpath) if path is None else path
    found: list[Path] = []
    pg_ctl = shutil.which("pg_ctl", path=search_path)
    if pg_ctl:
        found.append(Path(pg_ctl).resolve().parent)
    pg_config = shutil.which("pg_config", path=search_path)
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=30, check=False)
            if out.returncode == 0 and out.stdout.strip():
                found.append(Path(out.stdout.strip()))
    for pattern in SEARCH_DIRS if search_dirs is None else search_dirs:
        found.extend(Path(p) for p in sorted(glob.glob(pattern), key=_dir_version_key, reverse=True))
    unique: list[Path] = []
    for d in found:
        if d not in unique:
            unique.append(d)
    return unique


def find_bindir(
    bindir: str | os.PathLike[str] | None = None,
    *,
    path: str | None = None,
    search_dirs: Iterable[str] | None = None,
) -> Path:
    """The folder of initdb, pg_ctl and postgres (PostgreSQL 14 or newer).

    `bindir` (or $BACKCARE_PG_BINDIR) names it outright; otherwise see `candidate_bindirs`. Raises PostgresNotFound
    with what is missing and how to install it.
    """
    chosen = bindir if bindir is not None else os.environ.get(BINDIR_ENV) or None
    if chosen is not None:
        d = Path(chosen)
        missing = _missing(d)
        if missing:
            raise PostgresNotFound(
                f"PostgreSQL server program(s) {', '.join(missing)} not found in {d} "
                f"(given as the PostgreSQL bin folder). {INSTALL_HINT}"
            )
        return d
    too_old: list[str] = []
    for d in candidate_bindirs(path, search_dirs):
        if _missing(d):
            continue
        major, text = _version(d)
        if major >= MIN_VERSION:
            return d
        too_old.append(f"{d} ({text or 'unknown version'})")
    where = "PATH, `pg_config --bindir` or " + ", ".join(SEARCH_DIRS if search_dirs is None else search_dirs)
    old = f" Too old (need {MIN_VERSION} or newer): {'; '.join(too_old)}." if too_old else ""
    raise PostgresNotFound(
        f"PostgreSQL server programs ({', '.join(PROGRAMS)}) not found in {where}.{old} {INSTALL_HINT}"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _base_dir() -> Path:
    # /tmp keeps the Unix socket path short (the limit is about 100 characters) and the folder easy to find.
    return Path("/tmp") if os.path.isdir("/tmp") else Path(tempfile.gettempdir())


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _owner_kwargs(uid: int | None) -> dict[str, Any]:
    """Popen arguments that run a program as `uid` (only needed, and only possible, as root)."""
    if uid is None or os.geteuid() != 0 or uid == 0:
        return {}
    gid = pwd.getpwuid(uid).pw_gid
    return {"user": uid, "group": gid, "extra_groups": []}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):  # a zombie has ended
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False
    return True


def destroy(directory: str | os.PathLike[str], bindir: str | os.PathLike[str] | None = None) -> None:
    """Stop the server of a cluster folder (if it runs) and remove the folder. Safe to call twice."""
    directory = Path(directory)
    data = directory / "data"
    if bindir is None:
        with contextlib.suppress(OSError):
            bindir = (directory / "bindir").read_text().strip()
    if (data / "postmaster.pid").exists() and bindir:
        uid = None
        with contextlib.suppress(OSError):
            uid = data.stat().st_uid
        for mode in ("fast", "immediate"):
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                done = subprocess.run(
                    [str(Path(bindir) / "pg_ctl"), "-D", str(data), "-m", mode, "-w", "-t", "30", "stop"],
                    capture_output=True,
                    timeout=60,
                    cwd="/",
                    env=_clean_env(),
                    check=False,
                    **_owner_kwargs(uid),
                )
                if done.returncode == 0 or not (data / "postmaster.pid").exists():
                    break
    if (data / "postmaster.pid").exists():  # last resort: the server does not answer pg_ctl
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((data / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(directory, ignore_errors=True)


def sweep_stale(base: Path | None = None) -> list[Path]:
    """Remove clusters whose owning process has ended (e.g. killed together with its watchdog)."""
    removed = []
    for entry in sorted((base or _base_dir()).glob(PREFIX + "*")):
        try:
            owner = int((entry / "owner.pid").read_text().strip())
        except (OSError, ValueError):
            # Just created (the owner file comes right after), or not ours to judge yet.
            with contextlib.suppress(OSError):
                if time.time() - entry.stat().st_mtime > 600:
                    destroy(entry)
                    removed.append(entry)
            continue
        if not _pid_alive(owner):
            destroy(entry)
            removed.append(entry)
    return removed


class PgCluster:
    """One throwaway cluster: `start()` returns its DATABASE_URL, `stop()` (also run at exit) removes everything."""

    def __init__(
        self,
        bindir: str | os.PathLike[str] | None = None,
        *,
        path: str | None = None,
        search_dirs: Sequence[str] | None = None,
        base: str | os.PathLike[str] | None = None,
        watchdog: bool = True,
    ) -> None:
        self._find = (bindir, path, search_dirs)
        self.base = Path(base) if base is not None else _base_dir()
        self.watchdog = watchdog
        self.bindir: Path | None = None
        self.directory: Path | None = None
        self.port: int | None = None
        self.url: str | None = None
        self._uid: int | None = None
        self._watcher: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    # ---- set-up -------------------------------------------------------------------------------------------------

    def _os_user(self) -> int | None:
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(SUPERUSER).pw_uid
        except KeyError:
            raise ClusterError(
                "PostgreSQL refuses to run as root and there is no `postgres` user to run it as. "
                "Installing the server (`apt-get install -y postgresql`) creates that user, or run the tests as an "
                "ordinary user."
            ) from None

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert self.directory is not None
        done = subprocess.run(
            list(args),
            cwd=self.directory,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            env=_clean_env(),
            check=False,
            start_new_session=True,  # the server started by pg_ctl is not hit by a Ctrl-C meant for the tests
            **_owner_kwargs(self._uid),
        )
        if done.returncode != 0:
            raise ClusterError(
                f"`{' '.join(args)}` failed (exit {done.returncode}):\n{done.stdout}{done.stderr}{self._log_tail()}"
            )
        return done

    def _log_tail(self) -> str:
        if self.directory is None:
            return ""
        with contextlib.suppress(OSError):
            lines = (self.directory / "postgres.log").read_text(errors="replace").splitlines()[-20:]
            return "\nServer log (last lines):\n" + "\n".join(lines)
        return ""

    def start(self) -> str:
        with self._lock:
            if self.url:
                return self.url
            bindir, path, search_dirs = self._find
            self.bindir = find_bindir(bindir, path=path, search_dirs=search_dirs)
            self._uid = self._os_user()
            with contextlib.suppress(OSError):
                sweep_stale(self.base)
            self.directory = Path(tempfile.mkdtemp(prefix=PREFIX, dir=self.base))
            atexit.register(self.stop)
            try:
                self._start()
            except BaseException:
                self.stop()
                raise
            return self.url or ""

    def _start(self) -> None:
        assert self.directory is not None and self.bindir is not None
        directory, bindir = self.directory, self.bindir
        (directory / "owner.pid").write_text(f"{os.getpid()}\n")
        (directory / "bindir").write_text(f"{bindir}\n")
        sock = directory / "sock"
        sock.mkdir()
        if self._uid is not None:
            gid = pwd.getpwuid(self._uid).pw_gid
            for p in (directory, sock):
                os.chown(p, self._uid, gid)
        os.chmod(directory, 0o700)
        if self.watchdog:
            self._start_watchdog()
        data = directory / "data"
        self._run(
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        (data / "pg_hba.conf").write_text(
            "# Throwaway test cluster: no password, but only this machine may connect.\n"
            "local all all trust\n"
            "host all all 127.0.0.1/32 trust\n"
        )
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# backcare test cluster\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{sock}'\n"
                "fsync = off\n"
                "synchronous_commit = off\n"
                "full_page_writes = off\n"
                "max_connections = 100\n"
                "shared_buffers = 32MB\n"
                "timezone = 'UTC'\n"
                "log_min_messages = warning\n"
            )
        for attempt in range(5):
            port = free_port()
            try:
                self._run(
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(directory / "postgres.log"),
                    "-o",
                    f"-p {port}",
                    "-w",
                    "-t",
                    "60",
                    "start",
                )
            except ClusterError as e:
                # Another program took the port between our check and the server's start: try another one.
                if attempt < 4 and ("could not bind" in str(e) or "already in use" in str(e)):
                    continue
                raise
            self.port = port
            break
        self._create_role_and_database()
        self.url = database_url(DATABASE, port=self.port)

    def _create_role_and_database(self) -> None:
        import psycopg

        try:
            with psycopg.connect(
                host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True, connect_timeout=10
            ) as conn:
                # Not a superuser, as in production: it owns its database and creates trusted extensions
                # (btree_gist) there; CREATEDB lets Django's test runner create test_backcare.
                conn.execute(f"CREATE ROLE {ROLE} LOGIN CREATEDB")
                conn.execute(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")
        except psycopg.Error as e:
            raise ClusterError(f"could not create the {ROLE} role and database: {e}{self._log_tail()}") from e

    def _start_watchdog(self) -> None:
        """A process that waits for this one to end, however it ends, and then removes the cluster.

        It reads a pipe whose only writer is this process: end of file means we are gone.
        """
        assert self.directory is not None and self.bindir is not None
        self._watcher = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "_watch", str(self.directory), str(self.bindir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # not hit by Ctrl-C meant for the tests
            cwd="/",
        )

    # ---- tear-down ----------------------------------------------------------------------------------------------

    def stop(self) -> None:
        directory, self.directory, self.url = self.directory, None, None
        if directory is not None:
            destroy(directory, self.bindir)
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            if watcher.stdin is not None:
                with contextlib.suppress(OSError):
                    watcher.stdin.close()
            try:
                watcher.wait(timeout=30)
            except subprocess.TimeoutExpired:
                watcher.kill()
                watcher.wait()
        atexit.unregister(self.stop)

    def __enter__(self) -> PgCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def database_url(name: str, url: str | None = None, *, port: int | None = None) -> str:
    """The URL of database `name` in the cluster of `url` (default: $BACKCARE_TEST_DATABASE_URL), e.g. for the
    test database `test_backcare` that Django's test runner creates."""
    if port is not None:
        return f"postgres://{ROLE}@127.0.0.1:{port}/{name}"
    base = url or os.environ.get(URL_ENV)
    if not base:
        raise ClusterError(f"{URL_ENV} is not set: no test cluster is running in this process or its parent")
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path="/" + name))


def check_reachable(url: str, timeout: int = 5) -> None:
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=timeout).close()
    except psycopg.Error as e:
        raise ClusterError(
            f"{URL_ENV}={url} does not answer ({e}). Unset {URL_ENV} to start a new throwaway cluster."
        ) from e


_cluster: PgCluster | None = None
TEST_DB_ENV = "BACKCARE_TEST_DB"


def test_database_url() -> str:
    """The cluster for this test run: the one in $BACKCARE_TEST_DATABASE_URL, else a new one owned by this process
    (whose URL is then put there for the test settings, the xdist workers and subprocesses)."""
    global _cluster
    url = os.environ.get(URL_ENV)
    if url:
        check_reachable(url)
        return url
    if _cluster is None:
        _cluster = PgCluster()
    url = _cluster.start()
    os.environ[URL_ENV] = url
    return url


test_database_url.__test__ = False  # type: ignore[attr-defined]  # not a test, despite its name


def on_postgres() -> bool:
    return os.environ.get(TEST_DB_ENV, "").strip().lower() in ("postgres", "postgresql")


# ---- the pytest plugin ------------------------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)  # before pytest-django's, which reads the settings
def pytest_load_initial_conftests(early_config: Any, parser: Any, args: list[str]) -> None:
    """Start (or check) the cluster before pytest-django reads the test settings, which only take its URL.

    An xdist worker finds the controller's URL in its environment and reuses it."""
    if on_postgres():
        test_database_url()


@pytest.fixture(scope="session", name="django_db_setup")
def drop_test_database_even_when_in_use(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """pytest-django's test database, dropped at the end even when a thread or server process a test started still
    holds a session on it (PostgreSQL refuses that drop): those sessions are ended first.

    A conftest imports this fixture (a plugin's fixture would be overridden by pytest-django's own)."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [connection.settings_dict["NAME"]],
        )


def _watch(directory: str, bindir: str) -> None:
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        while sys.stdin.buffer.read(4096):
            pass
    if os.path.isdir(directory):
        destroy(directory, bindir)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args else "help"
    if command == "_watch" and len(args) == 3:
        _watch(args[1], args[2])
        return 0
    if command == "check":
        try:
            bindir = find_bindir()
        except PostgresNotFound as e:
            print(e, file=sys.stderr)
            return 1
        print(f"{_version(bindir)[1]} in {bindir}")
        return 0
    if command == "sweep":
        for d in sweep_stale():
            print(f"removed {d}")
        return 0
    if command == "serve":
        cluster = PgCluster()
        try:
            url = cluster.start()
        except (PostgresNotFound, ClusterError) as e:
            print(e, file=sys.stderr)
            return 1
        print(f"export {URL_ENV}={url}", flush=True)
        print("Running; press Ctrl-C to stop it and remove its files.", file=sys.stderr, flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
        cluster.stop()
        return 0
    print(
        "usage: python tests/pgcluster.py check | serve | sweep\n"
        "  check  say whether the PostgreSQL server programs are installed\n"
        "  serve  start a throwaway cluster, print its URL, stop it on Ctrl-C\n"
        "  sweep  remove clusters left behind by processes that have ended",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
