"""Pagination for every list: limit/offset (ninja's LimitOffsetPagination, with the limits in the schema), and for
the long lists (clients, appointments) also keyset pages: `next_cursor` in each answer, sent back as `cursor`, reads
the next page from the list's index where it left off, however deep, instead of counting past `offset` rows."""

from __future__ import annotations

import binascii
import json
from base64 import urlsafe_b64decode, urlsafe_b64encode
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from ninja import Field, Schema
from ninja.pagination import LimitOffsetPagination

from backcare.api.problems import Problem, field_error
from backcare.api.schemas import MAX_ID, query_int

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_OFFSET = 10**9
MAX_CURSOR = 600
# mypy cannot read a type that a call makes: statically these are the plain types that pydantic checks.
if TYPE_CHECKING:
    Limit = int
    Offset = int
else:
    Limit = query_int(1, MAX_LIMIT)
    Offset = query_int(0, MAX_OFFSET)


class Pagination(LimitOffsetPagination):
    class Input(Schema):
        limit: Limit = Field(DEFAULT_LIMIT, description=f"At most {MAX_LIMIT} items per page.")
        offset: Offset = 0

    def __init__(self, **kwargs: object) -> None:
        super().__init__(max_limit=MAX_LIMIT, **kwargs)


def _bad_cursor(message: str) -> Problem:
    return Problem(422, f"cursor: {message}", errors=[field_error("query", ["cursor"], message)])


def after(keys: tuple[str, ...], values: list[Any]) -> Q:
    """Rows after `values` in the order of `keys` (ascending): (k1, k2, ...) > (v1, v2, ...). The leading
    `k1 >= v1` lets the database start its index range there."""

    def rest(i: int) -> Q:
        later = Q(**{f"{keys[i]}__gt": values[i]})
        if i == len(keys) - 1:
            return later
        return later | (Q(**{keys[i]: values[i]}) & rest(i + 1))

    return Q(**{f"{keys[0]}__gte": values[0]}) & rest(0)


class KeysetPagination(Pagination):
    """limit/offset as every list, plus `cursor`: `keys` are the list's order (ending in a unique field), and the
    queryset the operation returns must be ordered by them."""

    class Input(Schema):
        limit: Limit = Field(DEFAULT_LIMIT, description=f"At most {MAX_LIMIT} items per page.")
        offset: Offset = Field(0, description="Items to skip (not with `cursor`).")
        cursor: str | None = Field(
            None,
            max_length=MAX_CURSOR,
            description="The `next_cursor` of the previous page: the page after it, read from the index "
            "(however deep, as fast as the first). Not with `offset`.",
        )

    class Output(Schema):
        items: list[Any]
        count: int
        next_cursor: str | None = Field(None, description="Send as `cursor` for the next page; null on the last page.")

    def __init__(self, *, keys: tuple[str, ...], **kwargs: object) -> None:
        self.keys = keys
        super().__init__(**kwargs)

    def _field(self, model: type[models.Model], key: str) -> models.Field[Any, Any]:
        # every model has a pk, and the keys name concrete fields, never a reverse relation
        return model._meta.pk if key == "pk" else model._meta.get_field(key)  # type: ignore[return-value]

    def encode(self, obj: models.Model) -> str:
        values = []
        for key in self.keys:
            value = getattr(obj, key)
            values.append(value.isoformat() if isinstance(value, datetime) else value)
        return urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")

    def decode(self, model: type[models.Model], cursor: str) -> list[Any]:
        try:
            values = json.loads(urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise _bad_cursor("not a cursor from this list; send the next_cursor of a page as it was") from None
        if not isinstance(values, list) or len(values) != len(self.keys):
            raise _bad_cursor("not a cursor from this list; send the next_cursor of a page as it was")
        out: list[Any] = []
        for key, value in zip(self.keys, values, strict=True):
            field = self._field(model, key)
            if isinstance(field, models.DateTimeField):
                try:
                    moment = datetime.fromisoformat(value) if isinstance(value, str) else None
                    if moment is not None and moment.tzinfo is not None:
                        moment = moment.astimezone(UTC)  # a time the database can store (not year 1 at +14:00)
                except (ValueError, OverflowError):
                    moment = None
                if moment is None or moment.tzinfo is None:
                    raise _bad_cursor("not a cursor from this list; send the next_cursor of a page as it was")
                out.append(moment)
            elif isinstance(field, models.CharField):
                if not isinstance(value, str) or len(value) > (field.max_length or 0) or "\x00" in value:
                    raise _bad_cursor("not a cursor from this list; send the next_cursor of a page as it was")
                out.append(value)
            else:
                if type(value) is not int or not 1 <= value <= MAX_ID:
                    raise _bad_cursor("not a cursor from this list; send the next_cursor of a page as it was")
                out.append(value)
        return out

    def paginate_queryset(
        self, queryset: QuerySet[Any], pagination: Any, request: HttpRequest, **params: Any
    ) -> dict[str, Any]:
        limit = min(pagination.limit, self.max_limit)
        if pagination.cursor is not None:
            if pagination.offset:
                raise _bad_cursor("send either offset or cursor, not both")
            page = queryset.filter(after(self.keys, self.decode(queryset.model, pagination.cursor)))
            items = list(page[: limit + 1])
        else:
            items = list(queryset[pagination.offset : pagination.offset + limit + 1])
        more = len(items) > limit
        items = items[:limit]
        return {
            "items": items,
            "count": self._items_count(queryset),
            "next_cursor": self.encode(items[-1]) if more and items else None,
        }
