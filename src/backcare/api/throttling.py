"""Rate limiting per token with ninja's throttling, counted in the database, so the limit holds across threads and
application servers.

Each request adds one to its token's row for the current window with a single atomic statement
(INSERT ... ON CONFLICT DO UPDATE SET hits = hits + 1 RETURNING hits, on SQLite and PostgreSQL alike) and is let
through while that count is within the limit. Reading a history and writing it back, as the cache-based throttle
did, lets concurrent requests overwrite each other's counts (25 threads got 1,000 requests through a 600/minute
limit). The windows are fixed (a minute starts on the minute): at most the limit in any one window.

The rate comes from the setting BACKCARE_API_RATE (environment variable of the same name, default 600/minute) and
is read on every request, so a changed setting applies at once.
"""

from __future__ import annotations

import threading

from django.db import connection
from django.http import HttpRequest
from ninja.throttling import AuthRateThrottle

from backcare.api.models import RateCount
from backcare.api.rates import DEFAULT_RATE, current_rate, parse_rate


class TokenRateThrottle(AuthRateThrottle):
    scope = "backcare-api"
    # ninja allows None for these; our parse_rate (in __init__ and each request) always sets both
    num_requests: int
    duration: int

    def __init__(self) -> None:
        self._local = threading.local()
        super().__init__(rate=current_rate())

    def parse_rate(self, rate: str | None) -> tuple[int, int]:
        return parse_rate(rate or DEFAULT_RATE)

    def allow_request(self, request: HttpRequest) -> bool:
        self.num_requests, self.duration = parse_rate(current_rate())
        # ninja keeps time.time on the class: a builtin is not bound, so it is called without self
        now = self.timer()  # type: ignore[misc]
        window = int(now // self.duration) * self.duration
        hits = count_request(self.get_cache_key(request), window)
        self._local.state = (window + self.duration - now, hits)
        return hits <= self.num_requests

    def wait(self) -> float | None:
        remaining, _ = getattr(self._local, "state", (float(self.duration), 0))
        return max(float(remaining), 1.0)


def count_request(bucket: str, window: int) -> int:
    """Add this request to the bucket's count for the window, atomically; the count including it."""
    table = connection.ops.quote_name(RateCount._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (bucket, window_start, hits) VALUES (%s, %s, 1) "
            f"ON CONFLICT (bucket, window_start) DO UPDATE SET hits = {table}.hits + 1 RETURNING hits",
            [bucket, window],
        )
        hits = int(cursor.fetchone()[0])
        if hits == 1:  # the window's first request: the bucket's earlier windows are done with
            cursor.execute(f"DELETE FROM {table} WHERE bucket = %s AND window_start < %s", [bucket, window])
    return hits
