"""How a clinic's document numbers stay gapless under concurrency, on SQLite and on PostgreSQL.

Every invoice and credit note takes the next number of its clinic's `InvoiceCounter` row in the transaction that
writes it: the row is locked (`SELECT ... FOR UPDATE OF`) on PostgreSQL, so a second writer waits until the first
commits or rolls back; a rollback gives its number back with the row, so no number is ever skipped or used twice.
SQLite has no row locks: its transaction starts with ``BEGIN IMMEDIATE`` (the project's database setting), which
holds the single write lock from the first statement, and the writers of one process queue on a lock per database
file first (as `backcare.scheduling.locking` does), so threads wait in turn instead of failing on a busy database.

`COUNTER_LOCK = False` (tests only) is the control: the number is read as the highest so far plus one *before* the
write transaction (the classic check-then-act), with `RACE_PAUSE_SECONDS` between, to show that the race is real.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from django.db import connection, transaction

COUNTER_LOCK = True
RACE_PAUSE_SECONDS = 0.0
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def pause() -> None:
    if RACE_PAUSE_SECONDS > 0:
        time.sleep(RACE_PAUSE_SECONDS)


@contextlib.contextmanager
def ledger_transaction() -> Iterator[None]:
    """The transaction every ledger write runs in (joined when one is already open, e.g. a status change's). In
    the control, none: each statement commits by itself, so the number read is stale by the time it is written."""
    if not COUNTER_LOCK:
        yield
        return
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        with transaction.atomic():
            yield
        return
    key = str(connection.settings_dict["NAME"])
    with _locks_guard:
        lock = _locks.setdefault(key, threading.Lock())
    with lock, transaction.atomic():
        yield
