"""Finding clients by name, through an index on both databases (migration clinic 0008).

A search is words; a client matches when every word is found in their first or last name, ignoring case and
accents ("jose" finds José). Words are cut at anything that is not a letter or a digit, so "O'Brien" and
"Smith-Jones" are found whole or by either part. Nothing typed is ever read as query syntax: quotes, `*`, `-`,
`NEAR`, `OR`... are text (an input with no letter or digit matches nobody).

- SQLite: an FTS5 table `clinic_client_name` (tokenizer unicode61, accents removed) kept in step with the client
  table by triggers. Each word matches the start of a word of the name: "mar" finds Martin and Marie-Claire,
  "tin" does not.
- PostgreSQL: a trigram GIN index (pg_trgm) on the accent-free lower-case full name. Each word matches anywhere in
  the name ("tin" finds Martin too), as the search did before it was indexed.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL

from backcare.clinic.models import Client

MAX_WORDS = 10
FTS_TABLE = "clinic_client_name"
# The accent-free lower-case full name the PostgreSQL index holds (the expression must match the index exactly).
PG_NAME = 'lower(backcare_unaccent("clinic_client"."first_name" || \' \' || "clinic_client"."last_name"))'


def words(query: str) -> list[str]:
    """The words of a search, lower case and without accents (at most MAX_WORDS)."""
    flat = unicodedata.normalize("NFKD", query.casefold())
    flat = "".join(ch for ch in flat if not unicodedata.combining(ch))
    return re.findall(r"[^\W_]+", flat)[:MAX_WORDS]


def fts_match(query: str) -> str:
    """The FTS5 MATCH expression for a search: every word as a quoted prefix ("word"*), so nothing is syntax."""
    return " ".join(f'"{w}"*' for w in words(query))


def search_clients(clients: QuerySet[Client], query: str) -> QuerySet[Client]:
    """`clients` narrowed to those whose name has every word of `query` (all of them for an empty query)."""
    if not query.strip():
        return clients
    found = words(query)
    if not found:
        return clients.none()
    if connection.vendor == "sqlite":
        return clients.filter(
            pk__in=RawSQL(f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s", [fts_match(query)])
        )
    for word in found:
        pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        clients = clients.filter(
            RawSQL(f"{PG_NAME} LIKE lower(backcare_unaccent(%s))", [pattern], output_field=BooleanField())
        )
    return clients


PICK_PAGE_SIZE = 20


def client_page(clients: QuerySet[Client], query: str, number: Any, per_page: int = PICK_PAGE_SIZE) -> Page[Client]:
    """One page of the clients matching `query`, by name: what a staff member picks a client from. The page is read
    with a count and one bounded query, however many clients the clinic has."""
    found = search_clients(clients, query).order_by("last_name", "first_name", "pk")
    return Paginator(found, per_page).get_page(number)
