"""Backup and restore of the clinic's database, with a manifest of row counts and checksums to verify them.

- SQLite: the online backup API copies a consistent snapshot while the clinic keeps running. The manifest is
  computed inside the same read transaction, so it describes exactly what was copied.
- PostgreSQL: `pg_dump --format=custom` with a snapshot exported from a REPEATABLE READ transaction, in which the
  manifest is computed; `pg_restore --clean` restores it.

A backup is a folder: `database.sqlite3` or `database.dump`, and `manifest.json` (vendor, time, schema migrations,
tables with row counts and sha256 checksums of their rows in primary-key order). Uploaded files (clearance letters)
are copied to `media/`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


class BackupError(Exception):
    """Something the operator must fix; the message says what."""


@dataclass(frozen=True)
class TableSum:
    rows: int
    sha256: str


def _canonical(value: Any) -> str:
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return repr(value)


def table_checksum(rows: Iterable[Sequence[Any]]) -> TableSum:
    digest = hashlib.sha256()
    count = 0
    for row in rows:
        digest.update("\x1f".join(_canonical(v) for v in row).encode())
        digest.update(b"\x1e")
        count += 1
    return TableSum(count, digest.hexdigest())


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --- SQLite ------------------------------------------------------------------------------------------------


def sqlite_tables(conn: sqlite3.Connection) -> list[str]:
    """The tables that hold data: not virtual tables (the client name search index) nor their shadow tables, which
    are derived from them and copied with them."""
    rows = conn.execute(
        "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name"
    ).fetchall()
    return [r[0] for r in rows]


def sqlite_manifest(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    tables: dict[str, dict[str, Any]] = {}
    for table in sqlite_tables(conn):
        cursor = conn.execute(f"SELECT * FROM {_quote(table)} ORDER BY rowid")
        s = table_checksum(cursor)
        tables[table] = {"rows": s.rows, "sha256": s.sha256}
    return tables


def sqlite_backup(source: Path, target: Path) -> dict[str, dict[str, Any]]:
    """Copy a live SQLite database; returns the manifest of exactly what was copied."""
    if not source.is_file():
        raise BackupError(f"{source}: no database file to back up")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.execute("BEGIN")  # a read transaction: the snapshot the backup and the manifest both see
        src.backup(dst)
        manifest = sqlite_manifest(src)
        src.execute("COMMIT")
        dst.execute("PRAGMA journal_mode=DELETE")
        ok = dst.execute("PRAGMA integrity_check").fetchone()[0]
        if ok != "ok":
            raise BackupError(f"the copy failed SQLite's integrity check: {ok}")
    finally:
        src.close()
        dst.close()
    return manifest


def sqlite_restore(backup_file: Path, target: Path) -> dict[str, dict[str, Any]]:
    """Replace the database at `target` with the backup, through the backup API (safe with open readers)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)
    dst = sqlite3.connect(target, timeout=30)
    try:
        src.backup(dst)
        return sqlite_manifest(dst)
    finally:
        src.close()
        dst.close()


def sqlite_current(target: Path) -> dict[str, dict[str, Any]]:
    conn = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
    try:
        return sqlite_manifest(conn)
    finally:
        conn.close()


# --- PostgreSQL --------------------------------------------------------------------------------------------


def _pg_env(settings_db: dict[str, Any]) -> dict[str, str]:
    env = dict(os.environ)
    if settings_db.get("PASSWORD"):
        env["PGPASSWORD"] = str(settings_db["PASSWORD"])
    return env


def _pg_args(settings_db: dict[str, Any]) -> list[str]:
    args = []
    if settings_db.get("HOST"):
        args += ["--host", str(settings_db["HOST"])]
    if settings_db.get("PORT"):
        args += ["--port", str(settings_db["PORT"])]
    if settings_db.get("USER"):
        args += ["--username", str(settings_db["USER"])]
    return args


def pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    raise BackupError(
        f"{name} not found: install the PostgreSQL client tools (Debian: apt-get install postgresql-client)"
    )


def pg_manifest(cursor: Any) -> dict[str, dict[str, Any]]:
    cursor.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'r' AND n.nspname = current_schema() ORDER BY c.relname"
    )
    tables: dict[str, dict[str, Any]] = {}
    for (table,) in cursor.fetchall():
        cursor.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY a.attnum",
            [_quote(table)],
        )
        keys = [r[0] for r in cursor.fetchall()]
        order = ", ".join(_quote(k) for k in keys) if keys else "1"
        # Each row as PostgreSQL's own text form, so the checksum does not depend on how a client decodes types.
        cursor.execute(f"SELECT t::text FROM {_quote(table)} AS t ORDER BY {order}")
        s = table_checksum(cursor.fetchall())
        tables[table] = {"rows": s.rows, "sha256": s.sha256}
    return tables


def pg_backup(connection: Any, target: Path) -> dict[str, dict[str, Any]]:
    """pg_dump from an exported snapshot; the manifest is computed in the same snapshot."""
    db = connection.settings_dict
    connection.ensure_connection()
    raw = connection.connection
    with raw.cursor() as cursor:
        raw.autocommit = False
        try:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]
            cmd = [
                pg_tool("pg_dump"),
                "--format=custom",
                "--no-owner",
                f"--snapshot={snapshot}",
                f"--file={target}",
                *_pg_args(db),
                str(db["NAME"]),
            ]
            done = subprocess.run(cmd, env=_pg_env(db), capture_output=True, text=True)
            if done.returncode != 0:
                raise BackupError(f"pg_dump failed: {done.stderr.strip()}")
            manifest = pg_manifest(cursor)
        finally:
            raw.rollback()
            raw.autocommit = True
    return manifest


def pg_restore(connection: Any, backup_file: Path) -> dict[str, dict[str, Any]]:
    db = connection.settings_dict
    connection.close()
    cmd = [
        pg_tool("pg_restore"),
        "--clean",
        "--if-exists",
        "--no-owner",
        "--single-transaction",
        f"--dbname={db['NAME']}",
        *_pg_args(db),
        str(backup_file),
    ]
    done = subprocess.run(cmd, env=_pg_env(db), capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed: {done.stderr.strip()}")
    return pg_current(connection)


def pg_current(connection: Any) -> dict[str, dict[str, Any]]:
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        return pg_manifest(cursor)


def pg_verify_dump(connection: Any, dump: Path, expected: dict[str, dict[str, Any]]) -> list[str]:
    """Restore the dump into a scratch database, compare it with the manifest, and drop it."""
    import psycopg

    db = connection.settings_dict
    scratch = f"{db['NAME']}_verify"
    params = {
        k: v
        for k, v in {
            "host": db.get("HOST"),
            "port": db.get("PORT"),
            "user": db.get("USER"),
            "password": db.get("PASSWORD"),
        }.items()
        if v
    }
    with psycopg.connect(dbname=db["NAME"], autocommit=True, **params) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {_quote(scratch)}")
        try:
            admin.execute(f"CREATE DATABASE {_quote(scratch)}")
        except psycopg.Error as e:
            raise BackupError(f"cannot create a scratch database to verify the dump: {e}") from None
        try:
            cmd = [pg_tool("pg_restore"), "--no-owner", f"--dbname={scratch}", *_pg_args(db), str(dump)]
            done = subprocess.run(cmd, env=_pg_env(db), capture_output=True, text=True)
            if done.returncode != 0:
                return [f"pg_restore of the dump failed: {done.stderr.strip()}"]
            with psycopg.connect(dbname=scratch, **params) as check, check.cursor() as cursor:
                return compare(expected, pg_manifest(cursor))
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {_quote(scratch)} WITH (FORCE)")


# --- Manifests ---------------------------------------------------------------------------------------------


def write_manifest(folder: Path, vendor: str, tables: dict[str, dict[str, Any]], media_files: int) -> Path:
    path = folder / MANIFEST
    data = {
        "format": FORMAT_VERSION,
        "vendor": vendor,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "media_files": media_files,
        "tables": tables,
    }
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise BackupError(f"{folder}: not a Backcare backup (no {MANIFEST})")
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise BackupError(f"{path}: unreadable manifest: {e}") from None
    if data.get("format") != FORMAT_VERSION:
        raise BackupError(f"{path}: backup format {data.get('format')!r}, this version reads {FORMAT_VERSION}")
    return data


def compare(expected: dict[str, dict[str, Any]], actual: dict[str, dict[str, Any]]) -> list[str]:
    """Differences between two manifests' tables, as sentences; empty when identical."""
    problems = []
    for table in sorted(set(expected) | set(actual)):
        e, a = expected.get(table), actual.get(table)
        if e is None:
            problems.append(f"{table}: present now but not in the backup")
        elif a is None:
            problems.append(f"{table}: in the backup but missing now")
        elif e["rows"] != a["rows"]:
            problems.append(f"{table}: {e['rows']} rows in the backup, {a['rows']} now")
        elif e["sha256"] != a["sha256"]:
            problems.append(f"{table}: same row count ({e['rows']}) but different contents")
    return problems


def copy_media(source: Path, target: Path) -> int:
    if not source.is_dir():
        return 0
    count = 0
    for path in source.rglob("*"):
        if path.is_file():
            dest = target / path.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
            count += 1
    return count
