"""Rate limiting per token with ninja's throttling, backed by Django's cache (the database cache table here, so the
limit holds across application servers).

The rate comes from the setting BACKCARE_API_RATE (environment variable of the same name, default 600/minute) and
is read on every request, so a changed setting applies at once. Ninja's SimpleRateThrottle keeps the request's
history on the throttle object, which one API shares between threads; this subclass keeps it per thread.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from ninja.throttling import AuthRateThrottle

DEFAULT_RATE = "600/minute"
_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+?)s?\s*$")


def parse_rate(rate: str) -> tuple[int, int]:
    """'600/minute', '10/s', '1000/hour', '5/10min' as (requests, seconds); anything else is a configuration error."""
    match = _RATE.match(rate.lower())
    if match is None or match.group(3) not in _UNITS or int(match.group(1)) < 1:
        raise ImproperlyConfigured(
            f"BACKCARE_API_RATE must look like 600/minute (requests per second, minute, hour or day), not {rate!r}"
        )
    multiple = int(match.group(2)) if match.group(2) else 1
    return int(match.group(1)), multiple * _UNITS[match.group(3)]


def current_rate() -> str:
    return str(getattr(settings, "BACKCARE_API_RATE", DEFAULT_RATE))


class TokenRateThrottle(AuthRateThrottle):
    scope = "backcare-api"

    def __init__(self) -> None:
        self._local = threading.local()
        super().__init__(rate=current_rate())

    def parse_rate(self, rate: str | None) -> tuple[Any, Any]:
        return parse_rate(rate or DEFAULT_RATE)

    def allow_request(self, request: HttpRequest) -> bool:
        self.num_requests, self.duration = parse_rate(current_rate())
        key = self.get_cache_key(request)
        now = self.timer()
        history = [t for t in self.cache.get(key, []) if t > now - self.duration]
        self._local.state = (history, now)
        if len(history) >= self.num_requests:
            return False
        history.insert(0, now)
        self.cache.set(key, history, self.duration)
        return True

    def wait(self) -> float | None:
        history, now = getattr(self._local, "state", ([], 0.0))
        if not history:
            return float(self.duration)
        return max(self.duration - (now - history[-1]), 1.0)
