"""Health data is for the clinic's user only (issue 11, finding 6): through the real commands, the data folder,
the database and its WAL, uploads and backups are created 0700 (folders) and 0600 (files), where they were 0644.
On PostgreSQL the database lives elsewhere; the data folder's uploads and backups are still checked."""

from __future__ import annotations

import stat
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from test_backup_restore import BACKCARE, _env, free_port, make_data_dir, run


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return make_data_dir(tmp_path)


def modes(folder: Path) -> dict[str, int]:
    """Every path under `folder` (and itself) with its permission bits. A file that goes between the listing and its
    stat is left out: SQLite removes the WAL and shared-memory files when the server's last connection closes."""
    found = {}
    for p in [folder, *sorted(folder.rglob("*"))]:
        try:
            found[str(p.relative_to(folder.parent))] = stat.S_IMODE(p.stat().st_mode)
        except FileNotFoundError:
            continue
    return found


def assert_private(folder: Path) -> None:
    found = modes(folder)
    wrong = {p: oct(m) for p, m in found.items() if m != (0o700 if (folder.parent / p).is_dir() else 0o600)}
    assert wrong == {}, f"not private: {wrong}"


def test_demo_and_backup_create_private_files(data_dir: Path, tmp_path: Path) -> None:
    run(data_dir, "demo")
    letters = data_dir / "media" / "clearances" / "2026" / "11"
    letters.mkdir(parents=True)
    old = letters / "from-an-earlier-version.pdf"
    old.write_bytes(b"%PDF-1.4\n%%EOF\n")
    old.chmod(0o644)  # uploaded before this fix
    letters.chmod(0o755)
    (data_dir / "media").chmod(0o755)
    run(data_dir, "backup")
    backups = data_dir / "backups"
    (backup,) = backups.iterdir()
    assert {p.name for p in backup.iterdir()} >= {"manifest.json", "media"}
    assert_private(backups)
    assert (backup / "media" / "clearances" / "2026" / "11" / old.name).is_file()
    for name in ("backups", "backcare.sqlite3", "backcare.sqlite3-wal", "backcare.sqlite3-shm"):
        path = data_dir / name
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    # An explicit --out folder too.
    run(data_dir, "backup", "--out", str(tmp_path / "elsewhere"))
    assert_private(tmp_path / "elsewhere")


def test_serve_keeps_the_database_private_while_it_runs(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    data_dir.chmod(0o755)  # a folder an earlier version made
    port = free_port()
    server = subprocess.Popen(
        [str(BACKCARE), "serve", "--port", str(port)],
        env=_env(data_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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
            raise AssertionError("the server did not answer")
        # While it runs, the database and (while a connection is open) its WAL and shared-memory files are private.
        if "DATABASE_URL" not in _env(data_dir):  # SQLite: the database is a file in the data folder
            assert f"{data_dir.name}/backcare.sqlite3" in modes(data_dir)
        assert_private(data_dir)
    finally:
        server.terminate()
        server.wait(timeout=30)
