"""The audit trail is tamper-evident (issue 11, finding 2): every attack the outside test made is either refused by
the database or named by `backcare audit verify`, on SQLite and on PostgreSQL (BACKCARE_TEST_DB=postgres)."""

from __future__ import annotations

import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, connections, transaction
from django.test import override_settings
from test_demo import backcare
from test_security import PRODUCTION as SECURE_PRODUCTION

from backcare.clinic import audit
from backcare.clinic.models import AuditEvent
from backcare.common import auditchain

pytestmark = pytest.mark.django_db

KEY_1 = b"first-audit-key-" + b"x" * 32
KEY_2 = b"second-audit-key-" + b"y" * 32
ROW = "(id, at, actor, action, object_type, object_id, detail, prev_mac, mac, key_id)"


def verify() -> str:
    """`backcare audit verify` in this process: its output, or CommandError naming the first broken link."""
    from io import StringIO

    out = StringIO()
    call_command("audit", "verify", stdout=out)
    return out.getvalue()


def broken(match: str) -> None:
    with pytest.raises(CommandError, match=match):
        verify()


@pytest.fixture
def events(therapist: Any, client_record: Any) -> list[AuditEvent]:
    made = [audit.record(therapist.user, "view", client=client_record, detail={"page": f"p{i}"}) for i in range(4)]
    return made


def execute(sql: str, params: list[Any] | None = None) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params or [])


def switch_off(trigger_sqlite: str, trigger_pg: str = "clinic_auditevent_append_only") -> None:
    """What the attacker with the database file, or the owner role, can do (undone when the test rolls back)."""
    if connection.vendor == "sqlite":
        execute(f"DROP TRIGGER {trigger_sqlite}")
    else:
        execute(f"ALTER TABLE clinic_auditevent DISABLE TRIGGER {trigger_pg}")


def test_every_event_is_sealed_into_one_chain(events: list[AuditEvent], therapist: Any, client_record: Any) -> None:
    audit.viewed_many(_request(therapist.user), [client_record, client_record], "client list")
    ids = list(AuditEvent.objects.order_by("id").values_list("id", flat=True))
    assert ids == list(range(1, len(ids) + 1))
    assert "Audit trail verified: 5 events" in verify()
    first = AuditEvent.objects.get(id=1)
    assert first.prev_mac == auditchain.GENESIS and len(first.mac) == 64 and first.key_id == "dev"


def _request(user: Any) -> Any:
    from django.test import RequestFactory

    request = RequestFactory().get("/clients/")
    request.user = user
    return request


def test_replace_into_cannot_overwrite_an_event(events: list[AuditEvent]) -> None:
    # SQLite's REPLACE (and PostgreSQL's upsert) writing over event 2 with a forged one.
    values = f"{ROW} VALUES (2, '2020-01-01 00:00:00', 'nobody', 'view', '', '', '{{}}', '', '', '')"
    if connection.vendor == "sqlite":
        sql = f"REPLACE INTO clinic_auditevent {values}"
    else:
        sql = f"INSERT INTO clinic_auditevent {values} ON CONFLICT (id) DO UPDATE SET actor = EXCLUDED.actor"
    with pytest.raises(DatabaseError, match="audit events"):
        execute(sql)
    assert AuditEvent.objects.get(id=2).actor == events[1].actor
    # Even with the insert trigger gone, REPLACE now fires the delete trigger (recursive_triggers on every
    # connection), and the upsert the update trigger.
    switch_off("clinic_auditevent_append_only_insert", "clinic_auditevent_append_only_insert")
    with pytest.raises(DatabaseError, match="audit events cannot be"):
        execute(sql)
    assert AuditEvent.objects.get(id=2).actor == events[1].actor


def test_an_event_without_the_next_id_is_refused(events: list[AuditEvent]) -> None:
    for ident in ("", "2, ", "0, "):
        columns = ROW if ident else ROW.replace("(id, ", "(")
        with pytest.raises(DatabaseError, match="only appended"):
            execute(
                f"INSERT INTO clinic_auditevent {columns} VALUES ({ident}'2020-01-01 00:00:00', 'x', 'view', '', '', "
                "'{}', '', '', '')"
            )


def test_a_forged_back_dated_event_is_named(events: list[AuditEvent]) -> None:
    # Accepted by the database (it holds no key), but it cannot carry a MAC that verifies.
    execute(
        f"INSERT INTO clinic_auditevent {ROW} VALUES (5, '2020-01-01 09:00:00', 'Olivia Owner (Owner)', 'sign', '', "
        "'', '{}', %s, %s, 'dev')",
        [events[-1].mac, "f" * 64],
    )
    broken("event 5: its contents do not match its MAC")


def test_a_changed_event_is_named_and_the_missing_trigger_too(events: list[AuditEvent]) -> None:
    switch_off("clinic_auditevent_no_update")
    execute("UPDATE clinic_auditevent SET actor = 'Someone Else (Therapist)' WHERE id = 3")
    what = "no_update is missing" if connection.vendor == "sqlite" else "append_only is disabled"
    broken(rf"event 3: its contents do not match its MAC.*{what}")


def test_a_removed_event_is_named(events: list[AuditEvent]) -> None:
    switch_off("clinic_auditevent_no_delete")
    execute("DELETE FROM clinic_auditevent WHERE id = 2")
    broken("event 3: does not link to event 1 before it")


def test_removing_the_first_events_is_named(events: list[AuditEvent]) -> None:
    switch_off("clinic_auditevent_no_delete")
    execute("DELETE FROM clinic_auditevent WHERE id <= 2")
    broken("event 3: the first event links to an earlier event that is missing")


def test_recomputing_a_mac_needs_the_key(events: list[AuditEvent]) -> None:
    # An attacker who recomputes the MAC with a key of their own is still found out.
    switch_off("clinic_auditevent_no_update")
    row = list(AuditEvent.objects.filter(id=4).values_list(*auditchain.COLUMNS).get())
    row[6] = "Someone Else (Therapist)"
    forged = auditchain.mac_of(row, b"a guess at the key" * 3)
    execute("UPDATE clinic_auditevent SET actor = %s, mac = %s WHERE id = 4", [row[6], forged])
    broken("event 4: its contents do not match its MAC")


def test_an_old_key_still_verifies_after_rotation(therapist: Any) -> None:
    with override_settings(AUDIT_KEYS={"1": KEY_1}, AUDIT_KEY_ID="1"):
        audit.record(therapist.user, "view", detail={"page": "before rotation"})
    with override_settings(AUDIT_KEYS={"1": KEY_1, "2": KEY_2}, AUDIT_KEY_ID="2"):
        audit.record(therapist.user, "view", detail={"page": "after rotation"})
        assert "2 events" in verify()
    assert list(AuditEvent.objects.order_by("id").values_list("key_id", flat=True)) == ["1", "2"]
    with override_settings(AUDIT_KEYS={"2": KEY_2}, AUDIT_KEY_ID="2"):
        broken("event 1: signed with audit key '1', which is not configured")
    with override_settings(AUDIT_KEYS={"1": KEY_2, "2": KEY_2}, AUDIT_KEY_ID="2"):
        broken("event 1: its contents do not match its MAC")


# --- Concurrent writers ------------------------------------------------------------------------------------------


@pytest.fixture
def threads_db(transactional_db: Any) -> Iterator[None]:
    """SQLite's test database is in memory (shared cache), where concurrent writers fail instead of waiting: copy it
    to a file (WAL, as in production) for the threads, as tests/scheduling/test_race.py does."""
    if connection.vendor != "sqlite" or not connection.is_in_memory_db():
        yield
        return
    path = str(Path(tempfile.mkdtemp(prefix="backcare-audit-")) / "audit.sqlite3")
    connection.ensure_connection()
    target = sqlite3.connect(path)
    connection.connection.backup(target)
    target.close()
    old_settings, old_wrapper = connections.settings["default"], connections["default"]
    connections.settings["default"] = {**old_settings, "NAME": path}
    connections["default"] = connections.create_connection("default")
    try:
        yield
    finally:
        connections["default"].close()
        connections.settings["default"] = old_settings
        connections["default"] = old_wrapper


@pytest.fixture
def clean_trail(threads_db: None) -> Iterator[None]:
    """The flush that ends a transactional test empties every table; the triggers refuse it for the audit trail."""
    from importlib import import_module

    from django.apps import apps

    yield
    migration = import_module("backcare.clinic.migrations.0008_audit_hash_chain")

    class Editor:
        connection = connections["default"]

        def execute(self, sql: str) -> None:
            with self.connection.cursor() as cursor:
                cursor.execute(sql)

    migration.drop_triggers(apps, Editor())
    with connections["default"].cursor() as cursor:
        cursor.execute("DELETE FROM clinic_auditevent")
    migration.add_triggers(apps, Editor())


def test_concurrent_writers_make_one_chain(clean_trail: None) -> None:
    threads, each = 8, 25
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def write(n: int) -> None:
        try:
            start.wait()
            for i in range(each):
                if i % 5 == 0:  # a listing page's bulk write among single events
                    AuditEvent.objects.bulk_create(
                        [AuditEvent(actor=f"t{n}", action="view", detail={"i": i, "k": k}) for k in range(3)]
                    )
                else:
                    audit.record(None, "view", detail={"thread": n, "i": i})
        except BaseException as e:
            errors.append(e)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=write, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    expected = threads * (each // 5 * 3 + each - each // 5)
    ids = list(AuditEvent.objects.order_by("id").values_list("id", flat=True))
    assert ids == list(range(1, expected + 1))
    assert f"Audit trail verified: {expected} events" in verify()


# --- The admin and production --------------------------------------------------------------------------------


def test_a_superuser_deleting_users_in_the_admin_is_audited(admin_client: Any, admin_user: Any) -> None:
    users = get_user_model().objects
    one, two, three = (users.create_user(username=f"leaver{i}", password="x-long-enough-1") for i in range(3))
    response = admin_client.post(f"/admin/auth/user/{one.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302, response.get("Location")
    response = admin_client.post(
        "/admin/auth/user/", {"action": "delete_selected", "_selected_action": [two.pk, three.pk], "post": "yes"}
    )
    assert response.status_code == 302
    assert not users.filter(username__startswith="leaver").exists(), response.get("Location")
    deleted = AuditEvent.objects.filter(action="delete", object_type="user").order_by("id")
    assert [(e.object_id, e.detail["username"], e.user_id) for e in deleted] == [
        (str(u.pk), u.username, admin_user.pk) for u in (one, two, three)
    ]
    assert "3 events" in verify()


PRODUCTION = {k: v for k, v in SECURE_PRODUCTION.items() if k != "BACKCARE_AUDIT_KEY"}


@pytest.mark.parametrize("command", [["manage", "check"], ["serve"]], ids=["check", "serve"])
def test_production_refuses_to_start_without_an_audit_key(tmp_path: Path, command: list[str]) -> None:
    done = backcare(tmp_path, *command, **PRODUCTION)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "BACKCARE_AUDIT_KEY must be set in production" in done.stderr and "Traceback" not in done.stderr
    short = backcare(tmp_path, "manage", "check", BACKCARE_AUDIT_KEY="1:too-short", **PRODUCTION)
    assert short.returncode == 2 and "32 or more characters" in short.stderr
