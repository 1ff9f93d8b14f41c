"""The locking policy for appointments: no therapist, room or client is ever in two live appointments at once.

This docstring is the one written statement of the policy; docs/scheduling.md links here.

What is guarded
    An appointment is *live* while the visit goes ahead (booked, arrived, in treatment or completed: the statuses
    `models.LIVE_STATUSES` names), or held for a waitlisted client and its hold has not expired. Cancelled (early or
    late), no-show, expired and declined appointments free their time. For live appointments that are not
    deliberate overbookings (`override`):

    - a therapist's busy intervals (`busy_from`-`busy_until`, the client's time plus the service's turnover before
      and after) never overlap;
    - a room's busy intervals never overlap;
    - a client's own intervals (`starts_at`-`ends_at`, without turnover) never overlap.

    Intervals are half-open, so 10:00-11:00 and 11:00-12:00 do not overlap.

How every write that creates or moves a live appointment runs (`run_guarded`)
    1. Open the booking transaction and take the lock:
       - SQLite: the connection is configured with ``"transaction_mode": "IMMEDIATE"``, so the outermost
         ``transaction.atomic()`` starts with ``BEGIN IMMEDIATE`` and holds the database's single write lock from
         the first statement. Writers queue (busy timeout) instead of failing half-way. A connection configured
         otherwise is refused (ImproperlyConfigured) rather than silently racing.
       - PostgreSQL: a transaction-scoped advisory lock on the clinic (``pg_advisory_xact_lock``), so the clinic's
         booking writes run one at a time, as on SQLite. Bookings are rare and short, so queueing costs nothing
         noticeable, and it means the check in step 3 is exact, the owner's overbookings (which the constraints
         leave out) cannot interleave with a check that does not see them yet, and concurrent conflicting inserts
         never deadlock on the exclusion constraints. Reads (availability) take no lock.
    2. Mark holds that have expired in the affected intervals as expired (their time is free again; on PostgreSQL
       the constraint still counts them until they are marked).
    3. Check for overlaps with one query, and refuse with `BookingConflict` naming who or what is taken
       ("Theo Therapist is already booked 10:00-11:00").
    4. Write inside a savepoint. On PostgreSQL the exclusion constraints of migration 0002 are the last word:
       ``EXCLUDE USING gist (therapist_id WITH =, tstzrange(busy_from, busy_until) WITH &&)`` and the same for
       ``room_id`` and for ``client_id`` over ``tstzrange(starts_at, ends_at)``, each ``WHERE status IN`` the live
       statuses ``AND NOT override`` (btree_gist; migration 0009 widened them to the day's statuses). A
       concurrent transaction that passed step 3 at the same moment fails here with ExclusionViolation: that
       cannot happen through these services while the lock is held, but it does if anything writes around them;
       it is turned into `BookingConflict` (never a server error), the conflict looked up again to name it.
    5. Record the audit event in the same transaction, and commit.

Status changes
    Moving a visit along (booked, arrived, in treatment, completed) keeps it live and moves no time, and marking it
    a no-show or cancelling it only frees time, so `backcare.scheduling.services.status` takes a row lock on the
    appointment (``SELECT ... FOR UPDATE``; on SQLite the IMMEDIATE transaction's write lock) rather than this guard.
    Nothing turns a freed appointment live again.

Deliberate overbooking
    Only the clinic owner, with a reason; the row is marked `override` (excluded from the constraints), the audit
    event names the conflicts that were overridden. Other bookings still treat an overbooked appointment as busy.

The control switch
    `GUARDED = False` (tests only) turns the guard off to show that the race is real: the overlap check runs
    *before* the write transaction instead of inside it (the classic check-then-act bug), SQLite uses a DEFERRED
    transaction, no advisory lock is taken, and rows are written as `override` so PostgreSQL's constraints do not
    catch them either. `RACE_PAUSE_SECONDS` widens the gap between check and write, in both modes, so a race test
    shows the difference within a few seconds. `ADVISORY_LOCK = False` (tests) leaves PostgreSQL with the
    exclusion constraints alone, to show that they hold by themselves under a race; two inserts that then wait on
    each other are aborted by PostgreSQL's deadlock detector, which also becomes `BookingConflict`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import IntegrityError, OperationalError, connection, transaction

T = TypeVar("T")

GUARDED = True
PROCESS_LOCK = True
ADVISORY_LOCK = True
RACE_PAUSE_SECONDS = 0.0
_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()

ADVISORY_CLASS = 0x6263  # "bc": the first key of the two-key advisory lock; the second is the clinic id.
EXCLUSION_VIOLATION = "23P01"
DEADLOCK_DETECTED = "40P01"
TAKEN_JUST_NOW = "That time was taken a moment ago by another booking. Please choose another time."


class BookingConflict(ValidationError):
    """The time asked for is taken: `conflicts` names each therapist, room or client that is already booked."""

    def __init__(self, conflicts: list[str]) -> None:
        self.conflicts = list(conflicts) or [TAKEN_JUST_NOW]
        super().__init__("; ".join(self.conflicts) + ".", code="booking_conflict")

    def __str__(self) -> str:
        return "; ".join(self.conflicts) + "."


def vendor() -> str:
    return str(connection.vendor)


def is_exclusion_violation(error: BaseException) -> bool:
    cause = error.__cause__
    return getattr(cause, "sqlstate", None) == EXCLUSION_VIOLATION


def is_overlap_deadlock(error: BaseException) -> bool:
    """Two inserts waiting on each other's overlapping rows in the exclusion constraints (only without the advisory
    lock): PostgreSQL aborts one of them, which lost the race like any other conflict."""
    return getattr(error.__cause__, "sqlstate", None) == DEADLOCK_DETECTED


def _take_lock(clinic_id: int) -> None:
    if vendor() == "sqlite":
        mode = getattr(connection, "transaction_mode", None)
        if mode not in ("IMMEDIATE", "EXCLUSIVE"):
            raise ImproperlyConfigured(
                "Bookings on SQLite need DATABASES OPTIONS transaction_mode IMMEDIATE (see scheduling.locking)."
            )
    elif vendor() == "postgresql" and ADVISORY_LOCK:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [ADVISORY_CLASS, clinic_id])


def _pause() -> None:
    if RACE_PAUSE_SECONDS > 0:
        time.sleep(RACE_PAUSE_SECONDS)


@contextlib.contextmanager
def _process_queue() -> Iterator[None]:
    """SQLite, outermost transaction only: queue this process's booking writers on one lock per database file."""
    if vendor() != "sqlite" or connection.in_atomic_block or not PROCESS_LOCK:
        yield
        return
    key = str(connection.settings_dict["NAME"])
    with _process_locks_guard:
        lock = _process_locks.setdefault(key, threading.Lock())
    with lock:
        yield


@contextlib.contextmanager
def _deferred_sqlite() -> Iterator[None]:
    """Control mode only: an ordinary deferred transaction on SQLite (no write lock until the first write)."""
    if vendor() != "sqlite":
        yield
        return
    connection.ensure_connection()
    previous = getattr(connection, "transaction_mode", None)
    # the SQLite backend's transaction_mode (Django 5.1) is not in django-stubs' DatabaseWrapper
    connection.transaction_mode = "DEFERRED"  # type: ignore[attr-defined]
    try:
        yield
    finally:
        connection.transaction_mode = previous  # type: ignore[attr-defined]  # as above


def run_guarded(
    clinic_id: int,
    *,
    prepare: Callable[[], None],
    check: Callable[[], list[str]],
    write: Callable[[list[str], bool], T],
    override: bool,
) -> T:
    """Run one appointment write under the policy above.

    `prepare` releases expired holds; `check` returns the conflicts (empty when free); `write(conflicts,
    bypass_constraints)` writes the rows and the audit event. Conflicts refuse the write unless `override` (the
    owner's deliberate overbooking), when they are passed on to be marked and recorded. `bypass_constraints` is
    true only in the control mode: the rows must then be written as `override` so PostgreSQL lets them through."""
    if not GUARDED:
        prepare()
        conflicts = check()
        if conflicts and not override:
            raise BookingConflict(conflicts)
        _pause()
        with _deferred_sqlite(), transaction.atomic():
            return write(conflicts, True)
    with _process_queue(), transaction.atomic():
        if connection.vendor == "sqlite":
            connection.ensure_connection()
        _take_lock(clinic_id)
        prepare()
        conflicts = check()
        if conflicts and not override:
            raise BookingConflict(conflicts)
        _pause()
        try:
            with transaction.atomic():
                return write(conflicts, False)
        except IntegrityError as error:
            if not is_exclusion_violation(error):
                raise
            raise BookingConflict(check()) from error
        except OperationalError as error:
            if not is_overlap_deadlock(error):
                raise
            raise BookingConflict(check()) from error
