"""PostgreSQL with two roles (issue 11, finding 2), on a throwaway cluster: migrations, backups and restores run as
the owner (BACKCARE_MIGRATE_DATABASE_URL); the clinic runs as the application role (DATABASE_URL), which can read
and add audit events but not UPDATE, DELETE or TRUNCATE them, nor switch the trail's triggers off, while the
application works. Before, the one role owned the table and could do all of that."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

import pgcluster

BACKCARE = Path(sys.executable).parent / "backcare"
DATABASE = "backcare_roles" + os.environ.get("PYTEST_XDIST_WORKER", "")  # one per xdist worker
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")  # roles are the cluster's: one pair per xdist worker
OWNER, APP = f"backcare_roles_owner{_WORKER}", f"backcare_roles_app{_WORKER}"
ATTACKS = [
    "UPDATE clinic_auditevent SET actor = 'Nobody'",
    "DELETE FROM clinic_auditevent",
    "TRUNCATE clinic_auditevent",
    "ALTER TABLE clinic_auditevent DISABLE TRIGGER clinic_auditevent_append_only",
    "DROP TRIGGER clinic_auditevent_append_only ON clinic_auditevent",
    "UPDATE django_migrations SET name = 'x'",
]


def url_as(base: str, user: str, database: str) -> str:
    parts = urlsplit(base)
    return urlunsplit(parts._replace(netloc=f"{user}@{parts.hostname}:{parts.port}", path=f"/{database}"))


@pytest.fixture
def cluster() -> Iterator[str]:
    try:
        pgcluster.find_bindir()
    except pgcluster.PostgresNotFound as e:  # under CI a skip fails the run (tests/conftest.py)
        pytest.skip(str(e))
    import psycopg

    base = pgcluster.test_database_url()
    superuser = url_as(base, pgcluster.SUPERUSER, "postgres")

    def clean(su: psycopg.Connection) -> None:
        su.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        su.execute(f"DROP DATABASE IF EXISTS {DATABASE}_verify WITH (FORCE)")
        su.execute(f"DROP ROLE IF EXISTS {APP}")
        su.execute(f"DROP ROLE IF EXISTS {OWNER}")

    with psycopg.connect(superuser, autocommit=True) as su:
        clean(su)
        su.execute(f"CREATE ROLE {OWNER} LOGIN CREATEDB")
        su.execute(f"CREATE ROLE {APP} LOGIN")
        su.execute(f"CREATE DATABASE {DATABASE} OWNER {OWNER}")
    yield base
    with psycopg.connect(superuser, autocommit=True) as su:
        clean(su)


def env(base: str, data_dir: Path) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("BACKCARE_", "DJANGO_"))}
    environment.update(
        {
            "BACKCARE_DATA_DIR": str(data_dir),
            "BACKCARE_AUDIT_KEY": "roles-test:" + "k" * 40,
            "DATABASE_URL": url_as(base, APP, DATABASE),
            "BACKCARE_MIGRATE_DATABASE_URL": url_as(base, OWNER, DATABASE),
        }
    )
    return environment


def backcare(base: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(BACKCARE), *args], env=env(base, data_dir), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"backcare {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def refused_to_the_app(base: str) -> list[str]:
    import psycopg

    refused = []
    with psycopg.connect(url_as(base, APP, DATABASE), autocommit=True) as app:
        for sql in ATTACKS:
            try:
                app.execute(sql)
            except psycopg.errors.InsufficientPrivilege:
                refused.append(sql)
    return refused


def test_the_application_role_cannot_rewrite_the_audit_trail(cluster: str, tmp_path: Path) -> None:
    data = tmp_path / "clinic"
    backcare(cluster, data, "manage", "migrate", "--no-input")
    backcare(cluster, data, "demo")  # as the application role, through every service
    assert refused_to_the_app(cluster) == ATTACKS
    assert "Audit trail verified" in backcare(cluster, data, "audit", "verify").stdout

    port = pgcluster.free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [str(BACKCARE), "serve", "--no-migrate", "--port", str(port)],
        env=env(cluster, data),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=2) as response:
                    assert response.status == 200
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise AssertionError("the server did not answer:\n" + (tmp_path / "serve.log").read_text())
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()

    # Backups and restores run as the owner; after a restore the application role has its privileges again,
    # and no more.
    backup = tmp_path / "backup"
    assert "Verified" in backcare(cluster, data, "backup", "--out", str(backup), "--verify").stdout
    assert "Verified" in backcare(cluster, data, "restore", str(backup), "--verify", "--yes").stdout
    assert refused_to_the_app(cluster) == ATTACKS
    assert "Audit trail verified" in backcare(cluster, data, "audit", "verify").stdout
