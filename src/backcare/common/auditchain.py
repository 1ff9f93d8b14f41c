"""The audit trail's hash chain: every event carries an HMAC over its own content and the previous event's MAC.

An event's id is its place in the chain: `seal` gives each new event the id after the last one, links it to the
last event's MAC and signs it with the current audit key, all under the lock that serialises writers (SQLite's
write lock, taken by the IMMEDIATE transaction; on PostgreSQL a transaction-scoped advisory lock), so concurrent
writers on any number of servers make one chain. The key comes from the environment (BACKCARE_AUDIT_KEY) and is
never stored in the database, so whoever can write to the database but does not hold the key cannot change,
remove or add an event without `verify` naming the first broken link.

Verification reads plain DB-API rows, so it runs on the clinic's database, on a backup file and on a scratch copy
of a PostgreSQL dump alike. Each event names the id of the key that signed it: after a rotation, events signed
with a retired key verify with it (BACKCARE_AUDIT_RETIRED_KEYS).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

TABLE = "clinic_auditevent"
GENESIS = "0" * 64
COLUMNS = (
    "id",
    "prev_mac",
    "mac",
    "key_id",
    "at",
    "user_id",
    "actor",
    "action",
    "client_id",
    "object_type",
    "object_id",
    "detail",
    "ip_address",
)
SELECT = f"SELECT {', '.join(COLUMNS)} FROM {TABLE} ORDER BY id"
# pg_advisory_xact_lock key for the chain's head ("audit" in ASCII).
PG_LOCK_KEY = 0x6175646974
# The triggers that make the database itself refuse changes (migration 0005); `database_guards` checks them.
SQLITE_TRIGGERS = (
    "clinic_auditevent_no_update",
    "clinic_auditevent_no_delete",
    "clinic_auditevent_append_only_insert",
)
POSTGRES_TRIGGERS = ("clinic_auditevent_append_only", "clinic_auditevent_append_only_insert")


@dataclass(frozen=True)
class Keys:
    """The audit keys: `current` signs new events; every key in `secrets` verifies the events it signed."""

    current: str
    secrets: dict[str, bytes]


def keys_from_settings() -> Keys:
    from django.conf import settings

    return Keys(settings.AUDIT_KEY_ID, dict(settings.AUDIT_KEYS))


def _canonical_at(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:  # SQLite keeps UTC without a zone
        value = value.replace(tzinfo=dt.UTC)
    return str(value.astimezone(dt.UTC).isoformat(timespec="microseconds"))


def _canonical_detail(value: Any) -> Any:
    if isinstance(value, bytes | memoryview):
        value = bytes(value).decode()
    if isinstance(value, str):
        return json.loads(value)
    return json.loads(json.dumps(value))  # what the database gives back: lists for tuples, string keys


def _canonical_ip(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(ipaddress.ip_address(str(value).split("/")[0]))


def message(row: Sequence[Any]) -> bytes:
    """The bytes an event's MAC covers: every column but the MAC itself, in one unambiguous form."""
    ident, prev, _mac, key_id, at, user_id, actor, action, client_id, object_type, object_id, detail, ip = row
    parts = [
        int(ident),
        prev,
        key_id,
        _canonical_at(at),
        None if user_id is None else int(user_id),
        actor,
        action,
        None if client_id is None else int(client_id),
        object_type,
        object_id,
        _canonical_detail(detail),
        _canonical_ip(ip),
    ]
    return json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def mac_of(row: Sequence[Any], secret: bytes) -> str:
    return hmac.new(secret, message(row), hashlib.sha256).hexdigest()


# --- Writing ---------------------------------------------------------------------------------------------------


def _row_of(event: Any) -> tuple[Any, ...]:
    return (
        event.id,
        event.prev_mac,
        event.mac,
        event.key_id,
        event.at,
        event.user_id,
        event.actor,
        event.action,
        event.client_id,
        event.object_type,
        event.object_id,
        event.detail,
        event.ip_address,
    )


def seal(events: Sequence[Any], using: str = "default", keys: Keys | None = None) -> None:
    """Give each new event its id, link and MAC. Call inside `transaction.atomic(using)`, just before inserting:
    the lock taken here is held until that transaction ends, so no other writer can take the same place."""
    from django.db import connections

    if not events:
        return
    keys = keys or keys_from_settings()
    secret = keys.secrets[keys.current]
    connection = connections[using]
    last = f"SELECT id, mac FROM {TABLE} ORDER BY id DESC LIMIT 1"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One round trip: the lock, then the head read by a statement that starts once the lock is held.
            cursor.execute(f"SELECT pg_advisory_xact_lock({PG_LOCK_KEY}); {last}")
            cursor.nextset()
        else:
            cursor.execute(last)
        head = cursor.fetchone()
    last_id, prev = (int(head[0]), head[1]) if head else (0, GENESIS)
    for event in events:
        last_id += 1
        event.id = last_id
        event.prev_mac = prev
        event.key_id = keys.current
        event.mac = mac_of(_row_of(event), secret)
        prev = event.mac


# --- Verifying -------------------------------------------------------------------------------------------------


@dataclass
class Result:
    events: int = 0
    head_id: int | None = None
    head_mac: str | None = None
    broken_id: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _rows(cursor: Any) -> Iterator[Sequence[Any]]:
    while True:
        batch = cursor.fetchmany(2000)
        if not batch:
            return
        yield from batch


def verify_rows(rows: Iterable[Sequence[Any]], keys: Keys, anchor: dict[str, Any] | None = None) -> Result:
    """Walk the chain in id order and stop at the first broken link, naming the event and what is wrong.

    `anchor` ({"id", "mac"}: the head recorded in a signed backup manifest) must still be in the chain: that
    catches the removal of the newest events, or of all of them, which a chain alone cannot show."""
    result = Result()
    prev_mac, prev_id = GENESIS, None
    anchor_seen = anchor is None or not anchor.get("id")

    def broken(ident: int, what: str) -> Result:
        result.broken_id, result.problem = ident, f"event {ident}: {what}"
        return result

    for row in rows:
        ident, prev, mac, key_id = int(row[0]), row[1], row[2], row[3]
        if prev != prev_mac:
            if prev_id is None:
                return broken(ident, "the first event links to an earlier event that is missing (events removed)")
            return broken(
                ident,
                f"does not link to event {prev_id} before it (an event between them was removed, or one changed)",
            )
        secret = keys.secrets.get(key_id)
        if secret is None:
            return broken(
                ident,
                f"signed with audit key {key_id!r}, which is not configured "
                "(BACKCARE_AUDIT_KEY or BACKCARE_AUDIT_RETIRED_KEYS)",
            )
        if not hmac.compare_digest(mac or "", mac_of(row, secret)):
            return broken(ident, "its contents do not match its MAC (the event was changed or forged)")
        if anchor is not None and ident == anchor.get("id"):
            if mac != anchor.get("mac"):
                return broken(ident, "differs from the event a signed backup recorded at this place")
            anchor_seen = True
        prev_mac, prev_id = mac, ident
        result.events += 1
        result.head_id, result.head_mac = ident, mac
    if not anchor_seen and anchor is not None:
        result.broken_id = int(anchor["id"])
        result.problem = (
            f"event {anchor['id']}: recorded by the signed backup of {anchor.get('at', 'an earlier date')} "
            "is missing (the newest events were removed)"
        )
    return result


def verify_cursor(cursor: Any, keys: Keys, anchor: dict[str, Any] | None = None) -> Result:
    cursor.execute(SELECT)
    return verify_rows(_rows(cursor), keys, anchor)


def database_guards(cursor: Any, vendor: str) -> list[str]:
    """What the database no longer refuses: a missing or disabled append-only trigger, as sentences."""
    problems = []
    if vendor == "sqlite":
        cursor.execute(f"SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = '{TABLE}'")
        present = {r[0] for r in cursor.fetchall()}
        problems += [f"trigger {name} is missing" for name in SQLITE_TRIGGERS if name not in present]
    elif vendor == "postgresql":
        cursor.execute(
            "SELECT tgname, tgenabled FROM pg_trigger "
            "WHERE tgrelid = 'clinic_auditevent'::regclass AND NOT tgisinternal"
        )
        enabled = {r[0]: r[1] for r in cursor.fetchall()}
        for name in POSTGRES_TRIGGERS:
            if name not in enabled:
                problems.append(f"trigger {name} is missing")
            elif enabled[name] in ("D", b"D"):
                problems.append(f"trigger {name} is disabled")
    return [f"the database no longer refuses changes to the audit trail: {p}" for p in problems]
