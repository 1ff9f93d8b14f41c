"""Rate limits that hold across processes and under concurrency, kept in the database.

Each request adds its own row first (in autocommit, so it is visible to every later count) and then counts the rows
of its window: the n-th request to commit sees at least n rows, so no more than `limit` requests are ever let
through, however many arrive at once. A refused request still counts, so hammering does not reopen the window.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from backcare.clinic.models import RateEvent


def _key(scope: str, value: str) -> str:
    return salted_hmac(f"backcare.ratelimit.{scope}", value.strip().lower()).hexdigest()


def hit(scope: str, value: str, *, limit: int, window: dt.timedelta) -> bool:
    """Count one request for `value` in `scope`; True while at most `limit` were counted within `window`."""
    now = timezone.now()
    key = _key(scope, value)
    with transaction.atomic():  # its own commit, so that concurrent requests count it (a savepoint inside one)
        RateEvent.objects.create(scope=scope, key=key, at=now)
    RateEvent.objects.filter(scope=scope, at__lt=now - window).delete()
    return RateEvent.objects.filter(scope=scope, key=key, at__gte=now - window).count() <= limit
