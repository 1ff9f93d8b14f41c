"""Ids and whole numbers read from URLs and forms: ASCII digits only.

str.isdigit() and int() also accept other scripts' digits (superscript three passes isdigit() and then int() raises;
int() reads Arabic-Indic one as 1), so a value from a request is checked with this before it becomes a number."""

from __future__ import annotations

import re
from typing import TypeGuard

_DIGITS = re.compile(r"[0-9]{1,18}")  # a database id fits in 18 digits (bigint holds 19)


def ascii_digits(text: object, max_length: int = 18) -> TypeGuard[str]:
    """True when `text` is 1 to `max_length` ASCII digits and nothing else (no sign, space or newline)."""
    return isinstance(text, str) and 0 < len(text) <= max_length and _DIGITS.fullmatch(text) is not None


def ascii_id(text: object, max_length: int = 18) -> int | None:
    """The whole number written in `text` with ASCII digits, or None."""
    return int(text) if ascii_digits(text, max_length) else None
