"""One-time form keys: a form sent twice (double click, reload, two tabs) is acted on once.

Each form carries a random hidden key. The first request that sends it claims the key in the shared cache
(`cache.add` is atomic, and the cache lives in the database, so this holds across application servers); a later
request with the same key gets what the first stored: PENDING while it runs, then the id of what it created.
A refused submission (invalid input) releases its key so the corrected form can be sent again.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.core.cache import cache

PENDING = "pending"
KEY_SECONDS = 24 * 60 * 60


def new_key() -> str:
    return secrets.token_urlsafe(24)


def _name(user: Any, key: str, scope: str) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"backcare:once:{scope}:{getattr(user, 'pk', 'anon')}:{digest}"


def claim(user: Any, key: str, scope: str = "form") -> tuple[bool, Any]:
    """(True, None) the first time a key is sent (or when there is none); afterwards (False, what the first stored)."""
    if not key:
        return True, None
    if cache.add(_name(user, key, scope), PENDING, KEY_SECONDS):
        return True, None
    return False, cache.get(_name(user, key, scope))


def complete(user: Any, key: str, value: Any, scope: str = "form") -> None:
    if key:
        cache.set(_name(user, key, scope), value, KEY_SECONDS)


def release(user: Any, key: str, scope: str = "form") -> None:
    if key:
        cache.delete(_name(user, key, scope))


def is_pending(value: Any) -> bool:
    return bool(value == PENDING)
