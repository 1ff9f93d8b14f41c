"""Audit writes: the time of 10,000 `audit.record` calls, each in its own transaction as a page view writes one.

Run with `.venv/bin/python benchmarks/audit_inserts.py [--events N] [--databases sqlite,postgresql]`. SQLite is a
file in a fresh data folder (WAL, as in production); PostgreSQL a database in a throwaway cluster from
tests/pgcluster.py. It also times `audit verify` over the events when the command exists. The script uses
only `audit.record`, so the same file run with an earlier checkout's interpreter gives the "before" figures
(docs/benchmarks.md). Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measure(events: int) -> dict[str, object]:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from backcare.clinic import audit

    call_command("migrate", verbosity=0, interactive=False)
    for _ in range(200):  # warm-up
        audit.record(None, "view", detail={"page": "warm-up"})
    start = time.perf_counter()
    for i in range(events):
        audit.record(None, "view", detail={"page": "benchmark", "i": i})
    elapsed = time.perf_counter() - start
    result: dict[str, object] = {
        "database": connection.vendor,
        "events": events,
        "seconds": round(elapsed, 3),
        "per_event_ms": round(elapsed / events * 1000, 3),
    }
    try:
        from backcare.clinic import auditchain
    except ImportError:
        return result
    with connection.cursor() as cursor:
        start = time.perf_counter()
        verified = auditchain.verify_cursor(cursor, auditchain.keys_from_settings())
        result["verify_seconds"] = round(time.perf_counter() - start, 3)
        result["verified_events"] = verified.events
    return result


def child(database: str, events: int) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKCARE_", "DJANGO_", "DATABASE_URL"))}
    env.update({"BACKCARE_DATA_DIR": tempfile.mkdtemp(prefix="backcare-bench-audit-"), "BACKCARE_ENV": "development"})
    env["DJANGO_SETTINGS_MODULE"] = "backcare.web.settings"
    env["BACKCARE_DEBUG"] = "false"
    if database == "postgresql":
        import psycopg

        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        import pgcluster  # the test suite's throwaway cluster (tests/pgcluster.py)

        url = pgcluster.test_database_url()
        name = "backcare_bench_audit"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name}")
        env["DATABASE_URL"] = url.rsplit("/", 1)[0] + "/" + name
    done = subprocess.run(
        [sys.executable, __file__, "--child", "--events", str(events)], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.events)))
        return
    results = [child(db, args.events) for db in args.databases.split(",")]
    machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine()}
    print(json.dumps({"results": results, "machine": machine}, indent=2))


if __name__ == "__main__":
    main()
