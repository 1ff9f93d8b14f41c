"""Backup and restore through the real command, on whichever database the suite runs on.

The backup is taken while the clinic is being served and used; the database is then wiped and restored, and every
table must come back identical (row counts and checksums against the manifest, and a full dump compared)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

BACKCARE = Path(sys.executable).parent / "backcare"


def _env(data_dir: Path) -> dict[str, str]:
    env = {**os.environ, "BACKCARE_DATA_DIR": str(data_dir), "BACKCARE_ENV": "development", "BACKCARE_DEBUG": "false"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    url = os.environ.get("BACKCARE_TEST_DATABASE_URL")
    if os.environ.get("BACKCARE_TEST_DB") == "postgres" and url:
        env["DATABASE_URL"] = url.rsplit("/", 1)[0] + "/backcare_backup_test"
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
            conn.execute("DROP DATABASE backcare_backup_test WITH (FORCE)")
            conn.execute("CREATE DATABASE backcare_backup_test")
    else:
        for name in ("backcare.sqlite3", "backcare.sqlite3-wal", "backcare.sqlite3-shm"):
            (data_dir / name).unlink(missing_ok=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    if os.environ.get("BACKCARE_TEST_DB") == "postgres":
        import psycopg

        url = os.environ["BACKCARE_TEST_DATABASE_URL"]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS backcare_backup_test WITH (FORCE)")
            conn.execute("CREATE DATABASE backcare_backup_test")
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
    assert "clinic_consenttext: same row count (1) but different contents" in done.stderr
