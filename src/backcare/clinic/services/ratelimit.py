"""Rate limits that hold across processes and under concurrency, kept in the database.

Requests are counted per fixed window (for an hour's limit: each clock hour). Counting is one transaction that
increments the window's row and reads it back: the row lock (PostgreSQL) or the write lock (SQLite) makes every
request see its own, distinct number, so exactly `limit` requests get through however many arrive at once. A
refused request still counts. On SQLite, whose writers queue on the database file anyway, one process's requests
also queue on a lock here, as booking writers do (backcare.scheduling.locking), so threads wait instead of failing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterator

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.crypto import salted_hmac

from backcare.clinic.models import RateCount

_sqlite_lock = threading.Lock()


def _key(scope: str, value: str) -> str:
    return salted_hmac(f"backcare.ratelimit.{scope}", value.strip().lower()).hexdigest()


@contextlib.contextmanager
def _queue() -> Iterator[None]:
    if connection.vendor != "sqlite":
        yield
        return
    with _sqlite_lock:
        yield


def window_start(now: dt.datetime, window: dt.timedelta) -> dt.datetime:
    seconds = int(window.total_seconds())
    return dt.datetime.fromtimestamp(int(now.timestamp()) // seconds * seconds, tz=dt.UTC)


def hit(scope: str, value: str, *, limit: int, window: dt.timedelta) -> bool:
    """Count one request for `value` in `scope`; True while at most `limit` were counted in this window."""
    start = window_start(timezone.now(), window)
    key = _key(scope, value)
    with _queue(), transaction.atomic():
        counter, _ = RateCount.objects.get_or_create(scope=scope, key=key, window_start=start)
        RateCount.objects.filter(pk=counter.pk).update(count=F("count") + 1)
        count = RateCount.objects.filter(pk=counter.pk).values_list("count", flat=True).get()
        if count == 1:  # the first request of a window clears the windows that ended, inside the same queue
            RateCount.objects.filter(scope=scope, window_start__lt=start).delete()
    return count <= limit
