"""Limit/offset pagination for every list (ninja's LimitOffsetPagination, with the limits in the schema)."""

from __future__ import annotations

from ninja import Field, Schema
from ninja.pagination import LimitOffsetPagination

from backcare.api.schemas import query_int

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_OFFSET = 10**9


class Pagination(LimitOffsetPagination):
    class Input(Schema):
        limit: query_int(1, MAX_LIMIT) = Field(DEFAULT_LIMIT, description=f"At most {MAX_LIMIT} items per page.")
        offset: query_int(0, MAX_OFFSET) = 0

    def __init__(self, **kwargs: object) -> None:
        super().__init__(max_limit=MAX_LIMIT, **kwargs)  # type: ignore[arg-type]
