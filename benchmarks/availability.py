"""Availability search at chain scale: latency of finding a 4-session course over 6 weeks, small and large calendars.

Run with `make bench-availability` (or `.venv/bin/python benchmarks/availability.py`). For each database (SQLite in
a temporary folder; PostgreSQL in a throwaway cluster from tests/pgcluster.py, skipped with a note when
PostgreSQL is not installed) and each size (default 10,000 and 1,000,000 appointments), a fresh process builds the
data with `backcare.scheduling.scale.build_scale` (50 therapists, 20 rooms, 100,000 clients, two years), then times
`suggest_course` for a 4-session, 6-week course from random start dates inside the data's range, after a warm-up.
It prints one JSON document: median and p95 per size, the ratio of the large to the small size per database, the
time the busy-interval query alone takes, the query plans, and the machine.

Spread over two years, 10,000 visits fill 7% of the places while the 1,000,000 data set is 80% full, and a fuller
calendar means more busy intervals per day and more days looked at: that ratio mixes the table's size with the
calendar's fullness. So each smaller size is also built as full as the largest (over just enough weeks, see
`scale.weeks_at_occupancy`), and the ratio against that run measures the table's size alone. Both are reported.

Targets (issue): p95 of 20 ms or less, and no more than 1.5 times slower at 1,000,000 than at 10,000 appointments.
The 1,000,000 build takes minutes; `--sizes 10000,100000` or `--databases sqlite` make quicker runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET_P95_MS = 20.0
TARGET_RATIO = 1.5


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(ms: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(ms), 2),
        "p95_ms": round(percentile(ms, 0.95), 2),
        "min_ms": round(min(ms), 2),
        "max_ms": round(max(ms), 2),
    }


# ---- the worker: one database, one size, in its own process ---------------------------------------------------------


def worker(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backcare.web.settings")
    import django

    django.setup()
    from datetime import datetime, timedelta
    from datetime import time as dtime

    from django.core.exceptions import ValidationError
    from django.core.management import call_command
    from django.db import connection

    from backcare.clinic.models import Clinic, Course
    from backcare.scheduling.models import Appointment, Service, live_q
    from backcare.scheduling.scale import build_scale, weeks_at_occupancy
    from backcare.scheduling.services import availability
    from backcare.scheduling.services.availability import clinic_zone, day_bounds, fetch_busy

    call_command("migrate", interactive=False, verbosity=0)
    weeks = weeks_at_occupancy(args.size, args.therapists, args.rooms) if args.as_full else None
    label = f"{args.db} {args.size:,}{f' over {weeks} weeks' if weeks else ''}"
    log(f"[{label}] building the data")
    report = build_scale(
        clinics=1,
        therapists=args.therapists,
        rooms=args.rooms,
        clients=args.clients,
        appointments=args.size,
        years=args.years,
        weeks=weeks,
        seed=args.seed,
        progress=lambda m: log(f"[{label}] {m}"),
    )
    log(f"[{label}] built in {report.seconds['total']:.0f} s")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # What autovacuum does after a bulk load: statistics, and the visibility map that lets an index-only scan
            # answer from the index without visiting the table.
            cursor.execute("VACUUM ANALYZE")

    clinic = Clinic.objects.get(pk=report.clinic_ids[0])
    zone = clinic_zone(clinic)
    service = Service.objects.get(pk=report.service_ids[0])
    courses = list(Course.objects.filter(pk__in=report.course_ids).select_related("client"))
    rng = random.Random(args.seed + 1)
    span = (report.last_day - report.first_day).days - 6 * 7
    starts = [report.first_day + timedelta(days=rng.randrange(span)) for _ in range(args.warmup + args.searches)]

    def moment_before(day: Any) -> datetime:
        # The search happens the evening before the first day, so every slot of the window is in the future.
        return datetime.combine(day, dtime(0), tzinfo=zone) - timedelta(hours=4)

    def time_searches(days: list[Any]) -> tuple[dict[str, Any], list[Any]]:
        search_ms: list[float] = []
        busy_ms: list[float] = []
        busy_rows: list[int] = []
        plans: list[Any] = []
        for i, day in enumerate(days):
            course = courses[i % len(courses)]
            now = moment_before(day)
            t0 = time.perf_counter()
            try:
                plan = availability.suggest_course(course, service, day, sessions=4, now=now)
            except ValidationError:
                plan = None
            elapsed = (time.perf_counter() - t0) * 1000
            if i >= args.warmup:
                search_ms.append(elapsed)
                plans.append([(s.starts_at, s.therapist_id, s.room_id) for s in plan] if plan else None)
        # Then, for comparison and in a loop of its own (so its thousands of rows do not push the searches' pages
        # out of the database's cache between two searches): the single query for all busy intervals of the same
        # windows that find_slots makes.
        for i, day in enumerate(days):
            now = moment_before(day)
            lo, hi = day_bounds(day, day + timedelta(days=6 * 7 - 1), zone)
            margin = service.before + service.after + timedelta(days=1)
            t1 = time.perf_counter()
            rows = fetch_busy(clinic.pk, lo - margin, hi + margin, now=now)
            busy_elapsed = (time.perf_counter() - t1) * 1000
            if i >= args.warmup:
                busy_ms.append(busy_elapsed)
                busy_rows.append(len(rows))
        figures = {
            "searches": len(search_ms),
            "courses_that_fit": sum(p is not None for p in plans),
            "search": summary(search_ms),
            "busy_query": {**summary(busy_ms), "rows_median": int(statistics.median(busy_rows))},
        }
        return figures, plans

    log(f"[{label}] timing searches")
    stock, stock_plans = time_searches(starts[: args.warmup + (args.stock_searches or args.searches)])
    changed: dict[str, Any] | None = None
    if args.prelude:
        # Try a change (an index, a rewritten function) without editing the code: the file runs here, after the
        # stock timing, with Django set up; the same searches are then timed again and their answers compared.
        log(f"[{label}] running {args.prelude}, then timing again")
        exec(compile(Path(args.prelude).read_text(), args.prelude, "exec"), {"__name__": "prelude"})
        changed, changed_plans = time_searches(starts)
        changed["same_answers_as_stock"] = changed_plans[: len(stock_plans)] == stock_plans

    day = starts[-1]
    lo, hi = day_bounds(day, day + timedelta(days=6 * 7 - 1), zone)
    # The query fetch_busy makes for the last window (as in find_slots: a day's margin either side).
    query = Appointment.objects.filter(
        live_q(moment_before(day)),
        clinic_id=clinic.pk,
        busy_from__lt=hi + timedelta(days=1),
        busy_until__gt=lo - timedelta(days=1),
    ).values_list("pk", "therapist_id", "room_id", "client_id", "starts_at", "ends_at", "busy_from", "busy_until")
    if connection.vendor == "postgresql":
        plan_text = query.explain(analyze=True, buffers=True)
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            db_version = f"PostgreSQL {cursor.fetchone()[0]}"
    else:
        plan_text = query.explain()
        import sqlite3

        db_version = f"SQLite {sqlite3.sqlite_version}"
    return {
        "database": args.db,
        "database_version": db_version,
        "appointments": report.counts["appointments"],
        "live_appointments": report.counts["live"],
        "span": f"{report.first_day} to {report.last_day}",
        "weeks": weeks,
        "build_seconds": round(report.seconds["total"], 1),
        **stock,
        **({"with_prelude": changed} if changed is not None else {}),
        "busy_query_plan": plan_text.splitlines(),
    }


# ---- the driver -----------------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in load] if load else None,
    }


def run_worker(
    db: str, size: int, args: argparse.Namespace, env: dict[str, str], as_full: bool = False
) -> dict[str, Any]:
    cmd = [
        sys.executable, __file__, "--worker", "--db", db, "--size", str(size), "--searches", str(args.searches),
        "--warmup", str(args.warmup), *(["--stock-searches", str(args.stock_searches)] if args.stock_searches else []),
        "--seed", str(args.seed), "--clients", str(args.clients), "--therapists",
        str(args.therapists), "--rooms", str(args.rooms), "--years", str(args.years),
        *(["--as-full"] if as_full else []),
        *(["--prelude", str(Path(args.prelude).resolve())] if args.prelude else []),
    ]  # fmt: skip
    done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the {db} run with {size:,} appointments{' as full' if as_full else ''} failed")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def drive(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [int(s) for s in args.sizes.split(",")]
    databases = [d.strip() for d in args.databases.split(",")]
    large = max(sizes)
    # (key, appointments, as full as the largest?): every size over the whole span, and each smaller one again over
    # the weeks that make it as full as the largest.
    plan: list[tuple[str, int, bool]] = [(str(n), n, False) for n in sorted(sizes)]
    if not args.no_same_fullness:
        plan += [(f"{n} as full", n, True) for n in sorted(sizes) if n < large]
    base_env = {**os.environ, "BACKCARE_ENV": "development", "BACKCARE_DEBUG": "0", "PYTHONUNBUFFERED": "1"}
    base_env.pop("DATABASE_URL", None)
    out: dict[str, Any] = {
        "benchmark": "availability: suggest_course, 4 sessions over 6 weeks",
        "machine": machine(),
        "data": {
            "therapists": args.therapists,
            "rooms": args.rooms,
            "clients": args.clients,
            "years": args.years,
            "seed": args.seed,
        },
        "searches_per_size": args.searches,
        "warmup": args.warmup,
        "prelude": args.prelude,
        "targets": {"p95_ms": TARGET_P95_MS, "ratio_large_to_small": TARGET_RATIO},
        "results": {},
    }
    for db in databases:
        runs: dict[str, Any] = {}
        if db == "sqlite":
            for key, size, as_full in plan:
                folder = tempfile.mkdtemp(prefix="backcare-bench-")
                try:
                    runs[key] = run_worker(db, size, args, {**base_env, "BACKCARE_DATA_DIR": folder}, as_full)
                finally:
                    shutil.rmtree(folder, ignore_errors=True)
        elif db == "postgres":
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
            import pgcluster  # the test suite's throwaway cluster (tests/pgcluster.py)

            try:
                pgcluster.find_bindir()
            except pgcluster.PostgresNotFound as e:
                out["results"][db] = {"skipped": str(e)}
                continue
            import psycopg

            with pgcluster.PgCluster() as cluster:
                assert cluster.url is not None
                for i, (key, size, as_full) in enumerate(plan):
                    name = f"bench_{i}_{size}"
                    with psycopg.connect(cluster.url, autocommit=True) as conn:
                        conn.execute(f"CREATE DATABASE {name}")
                    folder = tempfile.mkdtemp(prefix="backcare-bench-")
                    try:
                        env = {
                            **base_env,
                            "BACKCARE_DATA_DIR": folder,
                            "DATABASE_URL": pgcluster.database_url(name, cluster.url),
                        }
                        runs[key] = run_worker(db, size, args, env, as_full)
                    finally:
                        shutil.rmtree(folder, ignore_errors=True)
                        with psycopg.connect(cluster.url, autocommit=True) as conn:
                            conn.execute(f"DROP DATABASE IF EXISTS {name}")
        else:
            raise SystemExit(f"unknown database {db!r}: use sqlite and/or postgres")
        small, big = str(min(sizes)), str(large)
        entry: dict[str, Any] = {"sizes": runs}

        def ratio(a: str, b: str, runs: dict[str, Any] = runs) -> dict[str, float]:
            return {
                "median": round(runs[b]["search"]["median_ms"] / runs[a]["search"]["median_ms"], 2),
                "p95": round(runs[b]["search"]["p95_ms"] / runs[a]["search"]["p95_ms"], 2),
            }

        if small != big:
            entry["ratio_large_to_small"] = ratio(small, big)
            entry["meets_ratio_target"] = entry["ratio_large_to_small"]["p95"] <= TARGET_RATIO
            if f"{small} as full" in runs:
                entry["ratio_large_to_small_as_full"] = ratio(f"{small} as full", big)
                entry["meets_ratio_target_as_full"] = entry["ratio_large_to_small_as_full"]["p95"] <= TARGET_RATIO
        entry["meets_p95_target"] = all(r["search"]["p95_ms"] <= TARGET_P95_MS for r in runs.values())
        if args.prelude and small != big:
            a, b = runs[small]["with_prelude"]["search"], runs[big]["with_prelude"]["search"]
            entry["with_prelude"] = {
                "ratio_large_to_small": {
                    "median": round(b["median_ms"] / a["median_ms"], 2),
                    "p95": round(b["p95_ms"] / a["p95_ms"], 2),
                },
                "meets_p95_target": max(a["p95_ms"], b["p95_ms"]) <= TARGET_P95_MS,
            }
            entry["with_prelude"]["meets_ratio_target"] = (
                entry["with_prelude"]["ratio_large_to_small"]["p95"] <= TARGET_RATIO
            )
        out["results"][db] = entry
        log(json.dumps({db: {k: v["search"] for k, v in runs.items()}}))
    out["machine"]["load_average_at_end"] = (
        [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    )
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="10000,1000000", help="appointment counts, comma-separated")
    p.add_argument("--databases", default="sqlite,postgres", help="sqlite and/or postgres")
    p.add_argument("--searches", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--stock-searches", type=int, help="fewer searches for the code as it is, when a --prelude is tried")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--clients", type=int, default=100_000)
    p.add_argument("--therapists", type=int, default=50)
    p.add_argument("--rooms", type=int, default=20)
    p.add_argument("--years", type=int, default=2)
    p.add_argument(
        "--no-same-fullness", action="store_true", help="skip building the smaller sizes as full as the largest"
    )
    p.add_argument("--as-full", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", help="also write the JSON to this file")
    p.add_argument("--prelude", help="a Python file each run executes after building, before timing (to try a change)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--db", help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    result = drive(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
