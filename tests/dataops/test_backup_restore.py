"""Backup and restore through the real command, on whichever database the suite runs on.

The backup is taken while the clinic is being served and used; the database is then wiped and restored, and every
table must come back identical (row counts and checksums against the manifest, and a full dump compared)."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

BACKCARE = Path(sys.executable).parent / "backcare"
# On PostgreSQL every test here recreates its clinic's database on the cluster all pytest-xdist workers share: one
# database per worker.
BACKUP_DB = "backcare_backup_test" + os.environ.get("PYTEST_XDIST_WORKER", "")
EDIT_DB = "backcare_edit" + os.environ.get("PYTEST_XDIST_WORKER", "")


def _env(data_dir: Path) -> dict[str, str]:
    env = {**os.environ, "BACKCARE_DATA_DIR": str(data_dir), "BACKCARE_ENV": "development", "BACKCARE_DEBUG": "false"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    url = os.environ.get("BACKCARE_TEST_DATABASE_URL")
    if os.environ.get("BACKCARE_TEST_DB") == "postgres" and url:
        env["DATABASE_URL"] = url.rsplit("/", 1)[0] + "/" + BACKUP_DB
    return env


def run(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(BACKCARE), *args], env=_env(data_dir), capture_output=True, text=True, timeout=300)
    if check and done.returncode != 0:
        raise AssertionError(f"backcare {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def dump(data_dir: Path) -> list[dict[str, object]]:
    out = run(
        data_dir,
        "manage",
        "dumpdata",
        "--natural-foreign",
        "--exclude",
        "sessions",
        "--exclude",
        "contenttypes",
        "--exclude",
        "auth.permission",
    ).stdout
    return sorted(json.loads(out), key=lambda o: (str(o["model"]), str(o["pk"])))


def wipe(data_dir: Path) -> None:
    if os.environ.get("BACKCARE_TEST_DB") == "postgres":
        import psycopg

        with psycopg.connect(os.environ["BACKCARE_TEST_DATABASE_URL"], autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {BACKUP_DB} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {BACKUP_DB}")
    else:
        for name in ("backcare.sqlite3", "backcare.sqlite3-wal", "backcare.sqlite3-shm"):
            (data_dir / name).unlink(missing_ok=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return make_data_dir(tmp_path)


def make_data_dir(tmp_path: Path) -> Path:
    if os.environ.get("BACKCARE_TEST_DB") == "postgres":
        import psycopg

        url = os.environ["BACKCARE_TEST_DATABASE_URL"]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {BACKUP_DB} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {BACKUP_DB}")
    return tmp_path / "clinic"


def test_backup_of_a_running_clinic_restores_identically(data_dir: Path, tmp_path: Path) -> None:
    run(data_dir, "demo")
    port = free_port()
    server = subprocess.Popen(
        [str(BACKCARE), "serve", "--port", str(port)],
        env=_env(data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    stop = threading.Event()
    hits = []

    def browse() -> None:  # keep the clinic busy while the backup runs
        while not stop.is_set():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=5) as r:
                    hits.append(r.status)
            except OSError:
                time.sleep(0.1)

    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        worker = threading.Thread(target=browse)
        worker.start()
        backup = tmp_path / "backup"
        out = run(data_dir, "backup", "--out", str(backup), "--verify").stdout
        assert "Verified" in out
        stop.set()
        worker.join()
    finally:
        stop.set()
        server.terminate()
        server.wait(timeout=30)
    assert hits and set(hits) == {200}
    before = dump(data_dir)
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["tables"]["clinic_client"]["rows"] > 0

    # Wipe the clinic: the database is gone (the audit trail's triggers refuse a flush, as they should).
    wipe(data_dir)

    restored = run(data_dir, "restore", str(backup), "--verify", "--yes").stdout
    assert "Verified" in restored
    assert dump(data_dir) == before


def test_restore_refuses_a_folder_that_is_not_a_backup(data_dir: Path, tmp_path: Path) -> None:
    run(data_dir, "manage", "migrate", "--no-input")
    done = run(data_dir, "restore", str(tmp_path), "--yes", check=False)
    assert done.returncode != 0
    assert "not a Backcare backup" in done.stderr
    assert "Traceback" not in done.stderr


def test_restore_without_confirmation_changes_nothing(data_dir: Path, tmp_path: Path) -> None:
    run(data_dir, "manage", "migrate", "--no-input")
    backup = tmp_path / "b"
    run(data_dir, "backup", "--out", str(backup))
    done = run(data_dir, "restore", str(backup), check=False)
    assert done.returncode != 0
    assert "--yes" in done.stderr


def test_verify_detects_a_tampered_backup(data_dir: Path, tmp_path: Path) -> None:
    run(data_dir, "manage", "migrate", "--no-input")
    backup = tmp_path / "b"
    run(data_dir, "backup", "--out", str(backup))
    manifest = json.loads((backup / "manifest.json").read_text())
    manifest["tables"]["clinic_consenttext"]["sha256"] = "0" * 64
    (backup / "manifest.json").write_text(json.dumps(manifest))
    done = run(data_dir, "restore", str(backup), "--verify", "--yes", check=False)
    assert done.returncode != 0
    assert "the manifest's signature does not match" in done.stderr


# --- Backups while the clinic writes, checked before anything is replaced (issue 11, findings 8 and 2) ---------

WRITER = """
import time
from backcare.clinic import audit
while True:
    audit.record(None, "view", detail={"page": "a page browsed while the backup runs"})
    time.sleep(0.002)
"""


def postgres() -> bool:
    return os.environ.get("BACKCARE_TEST_DB") == "postgres"


def live_sql(data_dir: Path, *statements: str) -> None:
    """What someone with the database file, or the role that owns the tables, can do around the application."""
    if postgres():
        import psycopg

        url = os.environ["BACKCARE_TEST_DATABASE_URL"].rsplit("/", 1)[0] + "/" + BACKUP_DB
        with psycopg.connect(url, autocommit=True) as conn:
            for sql in statements:
                conn.execute(sql)
    else:
        conn = sqlite3.connect(data_dir / "backcare.sqlite3")
        try:
            for sql in statements:
                conn.execute(sql)
            conn.commit()
        finally:
            conn.close()


def edit_backup(backup: Path, sql: str) -> dict[str, Any]:
    """Change the database inside a backup folder; returns the tables' manifest recomputed from the edited copy."""
    from backcare.dataops import backup as ops

    if not postgres():
        conn = sqlite3.connect(backup / "database.sqlite3")
        try:
            conn.execute(sql)
            conn.commit()
            return ops.sqlite_manifest(conn)
        finally:
            conn.close()
    import psycopg

    base = os.environ["BACKCARE_TEST_DATABASE_URL"].rsplit("/", 1)[0]
    with psycopg.connect(base + "/backcare", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {EDIT_DB} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {EDIT_DB}")
        try:
            dump = backup / "database.dump"
            for tool, args in (("pg_restore", ["--no-owner", f"--dbname={base}/{EDIT_DB}", str(dump)]),):
                subprocess.run([ops.pg_tool(tool), *args], check=True, capture_output=True)
            with psycopg.connect(f"{base}/{EDIT_DB}", autocommit=True) as conn:
                conn.execute(sql)
                with conn.cursor() as cursor:
                    tables = ops.pg_manifest(cursor)
            args = ["--format=custom", "--no-owner", f"--file={dump}", f"{base}/{EDIT_DB}"]
            subprocess.run([ops.pg_tool("pg_dump"), *args], check=True, capture_output=True)
            return tables
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {EDIT_DB} WITH (FORCE)")


def resign(backup: Path, data_dir: Path, tables: dict[str, Any] | None = None) -> None:
    """Rewrite the manifest as whoever holds the audit key would (here: the development key of this folder)."""
    import hashlib

    from backcare.common.auditchain import Keys
    from backcare.dataops import backup as ops

    secret = hashlib.sha256(b"backcare development audit key\0" + str(data_dir.resolve()).encode()).hexdigest()
    manifest = ops.read_manifest(backup)
    (backup / "manifest.json").unlink()
    keys = Keys("dev", {"dev": secret.encode()})
    ops.write_manifest(backup, manifest["vendor"], tables or manifest["tables"], 0, keys, manifest["audit"])


@pytest.fixture
def clinic_dir(data_dir: Path) -> Path:
    run(data_dir, "demo")
    return data_dir


def test_backups_taken_while_the_clinic_writes_all_verify(clinic_dir: Path, tmp_path: Path) -> None:
    # Before: 2 or 3 of 3 failed, the SQLite manifest being read from a later snapshot than the copy.
    writer = subprocess.Popen(
        [str(BACKCARE), "manage", "shell", "-c", WRITER],
        env=_env(clinic_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(2)
        outcomes = []
        for n in range(3):
            done = run(clinic_dir, "backup", "--out", str(tmp_path / f"b{n}"), "--verify", check=False)
            outcomes.append((done.returncode, done.stderr.strip()[-300:]))
        assert writer.poll() is None, writer.stderr.read() if writer.stderr else ""
    finally:
        writer.terminate()
        writer.wait(timeout=30)
    assert outcomes == [(0, "")] * 3
    last = tmp_path / "b2"
    manifest = json.loads((last / "manifest.json").read_text())
    assert manifest["audit"]["ok"] and manifest["audit"]["events"] > 60  # the writer's events are in it
    restored = run(clinic_dir, "restore", str(last), "--verify", "--yes").stdout
    assert "Checked before restoring" in restored and "Verified" in restored
    assert f"{manifest['audit']['events']} events" in run(clinic_dir, "audit", "verify").stdout


def test_restore_checks_the_backup_before_replacing_anything(clinic_dir: Path, tmp_path: Path) -> None:
    backup = tmp_path / "b"
    run(clinic_dir, "backup", "--out", str(backup))
    # A backup that lies: its copy holds a client its manifest does not count, under a valid signature.
    edit_backup(
        backup, "UPDATE clinic_client SET first_name = 'Changed' WHERE id = (SELECT min(id) FROM clinic_client)"
    )
    resign(backup, clinic_dir)
    live_sql(clinic_dir, "UPDATE clinic_clinic SET phone = '01632 960999'")  # the live clinic moved on
    before = dump(clinic_dir)
    done = run(clinic_dir, "restore", str(backup), "--verify", "--yes", check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "verification failed, nothing restored: clinic_client: same row count" in done.stderr
    assert dump(clinic_dir) == before


def test_an_edited_backup_with_a_recomputed_manifest_is_refused(clinic_dir: Path, tmp_path: Path) -> None:
    from backcare.dataops import backup as ops

    backup = tmp_path / "b"
    run(clinic_dir, "backup", "--out", str(backup))
    before = dump(clinic_dir)
    # The attack: change a record in the copy and recompute the checksums, without the audit key.
    tables = edit_backup(backup, "UPDATE clinic_client SET last_name = 'Forged'")
    manifest = json.loads((backup / "manifest.json").read_text())
    manifest["tables"], manifest["files"] = tables, ops.folder_files(backup)
    (backup / "manifest.json").write_text(json.dumps(manifest))
    done = run(clinic_dir, "restore", str(backup), "--verify", "--yes", check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "the manifest's signature does not match: the backup was changed after it was made" in done.stderr
    # Editing the copy alone is caught by the file checksums the signed manifest holds.
    run(clinic_dir, "backup", "--out", str(tmp_path / "c"))
    edit_backup(tmp_path / "c", "UPDATE clinic_client SET last_name = 'Forged'")
    done = run(clinic_dir, "restore", str(tmp_path / "c"), "--yes", check=False)
    assert done.returncode == 1
    assert "the backup was changed after it was made, nothing restored: database." in done.stderr
    assert dump(clinic_dir) == before


def test_backup_names_a_broken_audit_trail(clinic_dir: Path, tmp_path: Path) -> None:
    if postgres():  # the owner role can switch the trigger off; the application role cannot (test_database_roles)
        off = "ALTER TABLE clinic_auditevent DISABLE TRIGGER clinic_auditevent_append_only"
    else:
        off = "DROP TRIGGER clinic_auditevent_no_update"
    live_sql(clinic_dir, off, "UPDATE clinic_auditevent SET actor = 'Nobody' WHERE id = 7")
    done = run(clinic_dir, "backup", "--out", str(tmp_path / "b"), check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "the audit trail is broken at event 7: its contents do not match its MAC" in done.stderr
    verify = run(clinic_dir, "audit", "verify", check=False)
    assert verify.returncode == 1 and "audit trail broken at event 7" in verify.stderr


def test_removing_the_newest_events_is_caught_against_the_last_backup(clinic_dir: Path, tmp_path: Path) -> None:
    backup = tmp_path / "b"
    run(clinic_dir, "backup", "--out", str(backup))
    head = json.loads((backup / "manifest.json").read_text())["audit"]["id"]
    if postgres():  # TRUNCATE, which the table's owner may do (the application role may not: test_database_roles)
        live_sql(clinic_dir, "TRUNCATE clinic_auditevent")
    else:
        live_sql(clinic_dir, "DROP TRIGGER clinic_auditevent_no_delete", "DELETE FROM clinic_auditevent")
    done = run(clinic_dir, "audit", "verify", "--since-backup", str(backup), check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"event {head}: recorded by the signed backup of" in done.stderr and "is missing" in done.stderr


def test_the_sqlite_manifest_describes_the_copy_under_continuous_writes(tmp_path: Path) -> None:
    # The smallest form of finding 8: with the manifest read from the source, 3 of 3 copies disagreed with it.
    from backcare.dataops import backup as ops

    db = tmp_path / "live.sqlite3"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    conn.executemany("INSERT INTO t (v) VALUES (?)", [("x" * 200,)] * 20_000)
    conn.commit()
    conn.close()
    stop = threading.Event()

    def write() -> None:
        writer = sqlite3.connect(db, timeout=30)
        while not stop.is_set():
            writer.execute("INSERT INTO t (v) VALUES ('y')")
            writer.commit()
        writer.close()

    worker = threading.Thread(target=write)
    worker.start()
    try:
        problems = []
        for n in range(3):
            copy = tmp_path / f"copy{n}.sqlite3"
            problems += ops.compare(ops.sqlite_backup(db, copy), ops.sqlite_current(copy))
    finally:
        stop.set()
        worker.join()
    assert problems == []
