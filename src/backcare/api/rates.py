"""The API's rate setting (BACKCARE_API_RATE), read without django-ninja, so the server can refuse a wrong value
when it starts while the API itself is imported on its first request (`backcare.api.urls`)."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

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
