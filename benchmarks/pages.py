"""The client list, name search and the API's long lists as the clinic grows: median, p95 and queries per request.

Run with `.venv/bin/python benchmarks/pages.py` (SQLite, in a temporary folder). For each size (default 1,000 and
100,000 clients, ten appointments each, 50 therapists, 20 rooms, over two years) a fresh process builds the data
with `backcare.scheduling.scale.build_scale` (bulk inserts: the search index follows by trigger), adds a front desk
member, then requests each page in-process through Django's test client (middleware, templates, JSON: all but the
socket) as a therapist, the front desk or the front desk's API token, after a warm-up, and prints one JSON document.

`--before REF` also times the code of git commit REF on the same rows: the data are built by REF's code, timed, then
a copy of the database is migrated to this code (as an upgrade would) and timed again.

Targets (issue 14): p95 of 150 ms or less at 100,000 clients, the 100k/1k ratio at most 1.5, queries constant.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET_P95_MS = 150.0
TARGET_RATIO = 1.5


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# ---- the worker: one database, one size, one version of the code, in its own process ----------------------------


def worker(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backcare.web.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client as HttpClient

    from backcare.api import tokens
    from backcare.clinic.models import Client, Clinic, Role, StaffMember
    from backcare.scheduling.scale import build_scale

    call_command("migrate", interactive=False, verbosity=0)
    if not Clinic.objects.exists():
        log(f"[{args.label}] building {args.clients:,} clients, {args.clients * args.per_client:,} appointments")
        report = build_scale(
            clinics=1,
            therapists=50,
            rooms=20,
            clients=args.clients,
            appointments=args.clients * args.per_client,
            progress=lambda m: log(f"[{args.label}] {m}"),
        )
        log(f"[{args.label}] built in {report.seconds['total']:.0f} s")
    clinic = Clinic.objects.get()
    from django.contrib.auth import get_user_model

    desk_user, _ = get_user_model().objects.get_or_create(username="bench-desk")
    desk, _ = StaffMember.objects.get_or_create(
        user=desk_user, defaults={"clinic": clinic, "role": Role.FRONT_DESK, "display_name": "Bench Desk"}
    )
    therapist = StaffMember.objects.filter(clinic=clinic, role=Role.THERAPIST).order_by("pk").first()
    assert therapist is not None
    # A therapist with some clients shared with them, as in a clinic where colleagues cover for each other.
    others = Client.objects.filter(clinic=clinic).exclude(therapist=therapist).order_by("pk")[:50]
    therapist.shared_clients.add(*others)
    _, secret = tokens.create_token(desk.user, name="bench", scopes=["read"])

    pages = HttpClient(HTTP_HOST="localhost")
    pages.force_login(therapist.user, backend="django.contrib.auth.backends.ModelBackend")
    front = HttpClient(HTTP_HOST="localhost")
    front.force_login(desk.user, backend="django.contrib.auth.backends.ModelBackend")
    api = HttpClient(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {secret}")
    first = api.get("/api/appointments?limit=50").json()
    cursor = first.get("next_cursor")
    deep = min(5000, max(first["count"] - 50, 0))

    requests: dict[str, tuple[Any, str]] = {
        "client list (therapist)": (pages, "/clients/"),
        "client list page 10 (front desk)": (front, "/clients/?page=10"),
        "name search, common name (front desk)": (front, "/clients/?q=smith"),
        "name search, full name (therapist)": (pages, "/clients/?q=alex+smith"),
        "API appointments": (api, "/api/appointments?limit=50"),
        f"API appointments offset {deep}": (api, f"/api/appointments?limit=50&offset={deep}"),
        "API clients": (api, "/api/clients?limit=50"),
        "API clients q=smith": (api, "/api/clients?limit=50&q=smith"),
    }
    if cursor:
        requests["API appointments next page (cursor)"] = (api, f"/api/appointments?limit=50&cursor={cursor}")
    results: dict[str, Any] = {}
    for name, (http, path) in requests.items():
        log(f"[{args.label}] {name}")
        queries: list[str] = []

        def count(execute: Any, sql: str, params: Any, many: bool, context: Any, queries: list[str] = queries) -> Any:
            queries.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            response = http.get(path)
        assert response.status_code == 200, (path, response.status_code, response.content[:300])
        for _ in range(args.warmup):
            http.get(path)
        ms = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            http.get(path)
            ms.append((time.perf_counter() - t0) * 1000)
        results[name] = {
            "median_ms": round(statistics.median(ms), 1),
            "p95_ms": round(percentile(ms, 0.95), 1),
            "queries": len(queries),
        }
    import sqlite3

    return {
        "label": args.label,
        "clients": Client.objects.filter(clinic=clinic).count(),
        "appointments": clinic.appointments.count(),
        "database": f"SQLite {sqlite3.sqlite_version}" if connection.vendor == "sqlite" else connection.vendor,
        "pages": results,
    }


# ---- the driver -----------------------------------------------------------------------------------------------------


def run_worker(args: argparse.Namespace, label: str, size: int, folder: Path, code: Path) -> dict[str, Any]:
    env = {
        **os.environ,
        "BACKCARE_ENV": "development",
        "BACKCARE_DEBUG": "0",
        "BACKCARE_DATA_DIR": str(folder),
        "BACKCARE_API_RATE": "1000000/minute",
        "PYTHONPATH": str(code / "src"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DATABASE_URL", None)
    cmd = [sys.executable, str(code / "benchmarks" / "pages.py"), "--worker", "--label", label]
    cmd += ["--clients", str(size), "--per-client", str(args.per_client)]
    cmd += ["--runs", str(args.runs), "--warmup", str(args.warmup)]
    if not (code / "benchmarks" / "pages.py").exists():  # an older commit: run this worker on its code
        cmd[1] = str(Path(__file__).resolve())
    done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, check=False, cwd=folder)
    if done.returncode != 0:
        raise SystemExit(f"{label} failed with exit code {done.returncode}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "python": platform.python_version(),
        "system": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_1_5_15": [round(x, 2) for x in load],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000", help="client counts, comma-separated")
    parser.add_argument("--per-client", type=int, default=10, help="appointments per client")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--before", help="also time this git commit's code on the same rows")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--label", default="", help=argparse.SUPPRESS)
    parser.add_argument("--clients", type=int, default=1000, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    out: dict[str, Any] = {"machine_before": machine(), "runs": {}}
    with tempfile.TemporaryDirectory(prefix="backcare-pages-") as tmp:
        base = Path(tmp)
        before_code = None
        if args.before:
            before_code = base / "before"
            before_code.mkdir()
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", args.before], stdout=subprocess.PIPE, check=True
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(before_code)], input=archive, check=True)
        for size in sizes:
            first = base / f"db-{size}"
            first.mkdir()
            if before_code is not None:
                out["runs"][f"before {size}"] = run_worker(args, f"before {size}", size, first, before_code)
                after = base / f"db-{size}-after"
                after.mkdir()
                for f in first.glob("backcare.sqlite3*"):
                    shutil.copy(f, after / f.name)
                out["runs"][f"after {size}"] = run_worker(args, f"after {size}", size, after, ROOT)
                shutil.rmtree(after)
            else:
                out["runs"][str(size)] = run_worker(args, str(size), size, first, ROOT)
            shutil.rmtree(first)
    out["machine_after"] = machine()
    labels = ["after", ""] if args.before else [""]
    for prefix in labels:
        keys = [f"{prefix} {s}".strip() for s in sizes]
        if not all(k in out["runs"] for k in keys) or len(keys) < 2:
            continue
        small, large = out["runs"][keys[0]]["pages"], out["runs"][keys[-1]]["pages"]
        checks = {}
        for name, fig in large.items():
            same = small.get(name) or next((v for k, v in small.items() if k.split(" offset")[0] == name), None)
            if same is None:
                continue
            ratio = fig["median_ms"] / max(same["median_ms"], 0.01)
            checks[name] = {
                "p95_ok": fig["p95_ms"] <= TARGET_P95_MS,
                "ratio": round(ratio, 2),
                "ratio_ok": ratio <= TARGET_RATIO,
                "queries_constant": fig["queries"] == same["queries"],
            }
        out["targets"] = checks
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
