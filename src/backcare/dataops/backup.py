"""Backup and restore of the clinic's database, with a manifest of row counts and checksums to verify them.

- SQLite: the online backup API copies a consistent snapshot while the clinic keeps running. The manifest is
  computed from the copy itself, so it describes exactly what was copied whatever the clinic writes meanwhile.
- PostgreSQL: `pg_dump --format=custom` with a snapshot exported from a REPEATABLE READ transaction, in which the
  manifest is computed; `pg_restore --clean` restores it.

A backup is a folder: `database.sqlite3` or `database.dump`, and `manifest.json` (vendor, time, tables with row
counts and sha256 checksums of their rows in primary-key order, the sha256 of every file, the audit trail's newest
event). Uploaded files (clearance letters) are copied to `media/`. The manifest is signed with the audit key
(HMAC-SHA256), so a backup edited and given a recomputed manifest is refused. Folders are 0700, files 0600.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
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
FORMAT_VERSION = 2


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
    """Copy a live SQLite database; returns the manifest of exactly what was copied, read from the copy.

    (Reading it from the source, even inside a read transaction, could describe a later state: a deferred BEGIN
    takes no snapshot, and the backup API reads in its own.)"""
    if not source.is_file():
        raise BackupError(f"{source}: no database file to back up")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")
        ok = dst.execute("PRAGMA integrity_check").fetchone()[0]
        if ok != "ok":
            raise BackupError(f"the copy failed SQLite's integrity check: {ok}")
        manifest = sqlite_manifest(dst)
    finally:
        src.close()
        dst.close()
    private(target)
    return manifest


def sqlite_audit(database: Path, keys: Any) -> Any:
    """The audit trail's chain in a SQLite database file (a backup): `auditchain.Result`."""
    from backcare.common import auditchain

    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return auditchain.verify_cursor(conn.cursor(), keys)
    finally:
        conn.close()


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


def pg_backup(connection: Any, target: Path, keys: Any) -> tuple[dict[str, dict[str, Any]], Any]:
    """pg_dump from an exported snapshot; the manifest and the audit chain's check are computed in the same
    snapshot. Returns (tables, `auditchain.Result`)."""
    from backcare.common import auditchain

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
            audit = auditchain.verify_cursor(cursor, keys)
        finally:
            raw.rollback()
            raw.autocommit = True
    private(target)
    return manifest, audit


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


def pg_verify_dump(connection: Any, dump: Path, expected: dict[str, dict[str, Any]], keys: Any = None) -> list[str]:
    """Restore the dump into a scratch database, compare it with the manifest (and, given the audit keys, verify
    the audit trail's chain in it), and drop it."""
    import psycopg

    from backcare.common import auditchain

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
                problems = compare(expected, pg_manifest(cursor))
                if keys is not None and not problems:
                    audit = auditchain.verify_cursor(cursor, keys)
                    if not audit.ok:
                        problems.append(f"the audit trail in the backup is broken at {audit.problem}")
                return problems
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {_quote(scratch)} WITH (FORCE)")


# --- Manifests ---------------------------------------------------------------------------------------------


def private(path: Path) -> None:
    """Health data is for the clinic's user only: 0700 for a folder, 0600 for a file."""
    path.chmod(0o700 if path.is_dir() else 0o600)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_files(folder: Path) -> dict[str, str]:
    """The sha256 of every file in a backup folder but the manifest, by path relative to the folder."""
    return {
        path.relative_to(folder).as_posix(): file_sha256(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    }


def _signing_key(secret: bytes) -> bytes:
    return hmac.new(secret, b"backcare backup manifest", hashlib.sha256).digest()


def _signature(data: dict[str, Any], secret: bytes) -> str:
    body = json.dumps({k: v for k, v in data.items() if k != "signature"}, sort_keys=True, separators=(",", ":"))
    return hmac.new(_signing_key(secret), body.encode(), hashlib.sha256).hexdigest()


def write_manifest(
    folder: Path,
    vendor: str,
    tables: dict[str, dict[str, Any]],
    media_files: int,
    keys: Any,
    audit: dict[str, Any] | None = None,
) -> Path:
    """Write the manifest, signed with the current audit key, covering every file already in the folder."""
    path = folder / MANIFEST
    data: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "vendor": vendor,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "media_files": media_files,
        "tables": tables,
        "files": folder_files(folder),
        "audit": audit or {},
        "key_id": keys.current,
    }
    data["signature"] = _signature(data, keys.secrets[keys.current])
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    private(path)
    return path


def read_manifest(folder: Path, check_signature: bool = False, keys: Any = None) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise BackupError(f"{folder}: not a Backcare backup (no {MANIFEST})")
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise BackupError(f"{path}: unreadable manifest: {e}") from None
    if data.get("format") != FORMAT_VERSION:
        raise BackupError(
            f"{path}: backup format {data.get('format')!r}, this version reads {FORMAT_VERSION} "
            "(signed manifests); take a new backup with this version"
        )
    if check_signature:
        check_manifest_signature(path, data, keys)
    return data


def check_manifest_signature(path: Path, data: dict[str, Any], keys: Any = None) -> None:
    """Refuse a manifest not signed with one of the configured audit keys: it was edited, or made elsewhere."""
    if keys is None:
        from backcare.common import auditchain

        keys = auditchain.keys_from_settings()
    key_id = data.get("key_id")
    secret = keys.secrets.get(key_id) if isinstance(key_id, str) else None
    if secret is None:
        raise BackupError(
            f"{path}: signed with audit key {key_id!r}, which is not configured here "
            "(set BACKCARE_AUDIT_KEY or BACKCARE_AUDIT_RETIRED_KEYS to the key the clinic used)"
        )
    if not hmac.compare_digest(str(data.get("signature", "")), _signature(data, secret)):
        raise BackupError(f"{path}: the manifest's signature does not match: the backup was changed after it was made")


def check_files(folder: Path, manifest: dict[str, Any]) -> list[str]:
    """Files of the backup that differ from what its (signed) manifest recorded, as sentences."""
    expected: dict[str, str] = manifest.get("files", {})
    actual = folder_files(folder)
    problems = []
    for name in sorted(set(expected) | set(actual)):
        if name not in actual:
            problems.append(f"{name}: missing from the backup")
        elif name not in expected:
            problems.append(f"{name}: not part of the backup when it was made")
        elif expected[name] != actual[name]:
            problems.append(f"{name}: changed since the backup was made")
    return problems


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
            dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            shutil.copy2(path, dest)
            private(dest)  # copy2 copies the mode too, and letters uploaded by earlier versions were 0644
            count += 1
    for folder in [target, *(p for p in target.rglob("*") if p.is_dir())] if target.is_dir() else []:
        private(folder)
    return count
