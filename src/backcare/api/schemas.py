"""Building blocks of the API's request and response schemas.

Every request schema forbids unknown fields. Text fields refuse the NUL character (PostgreSQL cannot store it) and
have the database's length limits; ids are positive 64-bit integers; times must carry their offset.
"""

from __future__ import annotations

import re
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any

from ninja import Schema
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, ConfigDict, Field, Strict, StringConstraints

NO_NUL = r"^[^\x00]*$"
MAX_ID = 2**63 - 1


def _unicode(value: str) -> str:
    """JSON may carry lone surrogates (\\ud800), which no database can store as text."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("contains characters that are not valid Unicode (a lone surrogate)") from None
    return value


def text(max_length: int, min_length: int = 0) -> Any:
    return Annotated[
        str,
        StringConstraints(max_length=max_length, min_length=min_length, pattern=NO_NUL),
        AfterValidator(_unicode),
    ]


# mypy cannot read a type that a call makes: statically these are the plain types that pydantic checks.
if TYPE_CHECKING:
    Name = str
    ShortText = str
    LongText = str
else:
    Name = text(100, 1)
    ShortText = text(200)
    LongText = text(4000)


def _text_only(value: Any) -> Any:
    """Dates and times are ISO 8601 strings, as documented; a number is not read as a timestamp."""
    if not isinstance(value, str | date):
        raise ValueError("must be a string in ISO 8601 form")
    return value


def _json_number(value: Any) -> Any:
    """A JSON number (2 or 2.0, as JSON Schema's integer allows), never a string or a boolean."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a whole number")
    return value


def whole(ge: int, le: int) -> Any:
    """A whole number in a request body, within [ge, le]."""
    return Annotated[int, Field(ge=ge, le=le), BeforeValidator(_json_number), Strict(False)]


def _digits(value: Any) -> Any:
    """In a path or a query every value arrives as text: a whole number is written with digits only (pydantic would
    also read "0.0", "+1" or "1_000")."""
    if isinstance(value, str) and not re.fullmatch(r"-?[0-9]+", value):
        raise ValueError("must be a whole number written with digits")
    return value


def query_int(ge: int, le: int) -> Any:
    return Annotated[int, Field(ge=ge, le=le), BeforeValidator(_digits)]


if TYPE_CHECKING:  # as above
    Id = int
    IdIn = int
else:
    Id = query_int(1, MAX_ID)  # in paths and queries
    IdIn = whole(1, MAX_ID)  # in bodies
Day = Annotated[date, BeforeValidator(_text_only), Strict(False)]
When = Annotated[AwareDatetime, BeforeValidator(_text_only), Strict(False)]


class In(Schema):
    """A request body: unknown fields are refused with 400, naming the field, and values are taken only in their
    documented JSON type (strict: "5" is not a number, 1 is not true)."""

    model_config = ConfigDict(extra="forbid", strict=True)
