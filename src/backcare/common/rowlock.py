"""Row locks that lock only the rows asked for: every `SELECT ... FOR UPDATE` in Backcare goes through `locked`.

A bare ``select_for_update()`` on a query with ``select_related`` locks the row of *every* joined table on
PostgreSQL: ``Intake ... select_related("client__clinic")`` also locked the clinic's row, for the whole screening.
An insert of any row that references the clinic (an appointment, an audit event, a note) checks its foreign key
with ``FOR KEY SHARE`` on that row, which waits for ``FOR UPDATE``: every booking of the clinic queued behind one
client's screening. `locked` always names what it locks (``FOR UPDATE OF``): the queried model's own rows, plus
the relations named in `also` when a service really serialises on them (an intake and its client).

`no_key=True` takes ``FOR NO KEY UPDATE``: other lockers and writers of the row still wait, but inserts that merely
reference it do not. That is the lock PostgreSQL itself takes for an UPDATE of ordinary columns; use it for rows
that everything references (the clinic) when the lock only serialises work on that row.

SQLite has no row locks: Django leaves the clause out and the IMMEDIATE transaction holds the database's single
write lock instead (see `backcare.scheduling.locking`), so the helper changes nothing there.
"""

from __future__ import annotations

from typing import TypeVar

from django.db.models import Model, QuerySet

M = TypeVar("M", bound=Model)


def locked(rows: QuerySet[M], *also: str, no_key: bool = False, skip_locked: bool = False) -> QuerySet[M]:
    """`rows` locked for update, only the model's own rows and the relations named in `also` (``client``,
    ``client__clinic``: the select_related paths)."""
    return rows.select_for_update(of=("self", *also), no_key=no_key, skip_locked=skip_locked)
