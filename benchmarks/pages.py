"""Every page of each role's menu, every API list and the exports as the clinic grows: median, p95, queries.

Run with `make bench-pages` (or `.venv/bin/python benchmarks/pages.py`; `ARGS="--sizes 1000,10000"` or
`ARGS="--databases sqlite"` for quicker runs). For each database (SQLite in a temporary folder; PostgreSQL in a
throwaway cluster from tests/pgcluster.py, left out with a note when PostgreSQL is not installed) and each
size (default 1,000 and 100,000 clients, ten appointments each), a fresh process builds the demo clinic at that scale
with `backcare.demo.scale.build_scale_demo` (the clinic of `backcare demo --scale`: 50 therapists, 20 rooms, full
clinical records and audit trail), signs in its demo logins (owner, therapist1, frontdesk, the portal's client) and
requests each page in-process through Django's test client (middleware, templates, JSON: all but the socket), after
a warm-up. A page whose first answer takes longer than `--slow` seconds is timed once more only, so a page that takes
minutes at 100,000 clients is measured without holding the run for hours (its line says how many runs it got).

It prints one table per database: median and p95 in ms and the queries of each page at each size, the ratio of the
median at the largest size to the smallest, and a flag on every line that misses a target; `--json FILE` also
writes every figure with the machine and the load. Exports (ZIP, PDF, CSV, SVG, FHIR) have their own section.

Targets (issue 14): p95 of 150 ms or less at the largest size, the ratio at most 1.5, and the same number of
queries at every size.

`--before REF` (SQLite only) also times the code of git commit REF on the same rows: after each size is timed, a copy
of its database is served by REF's code (which must know this schema, e.g. the commit before a fix).
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
SECTIONS = ("owner", "therapist", "front desk", "client portal", "API", "exports")


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
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client as HttpClient
    from django.utils import timezone
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from backcare.api import tokens
    from backcare.clinic.models import Client, Clinic, Course, Referral, StaffMember, TreatmentSession

    call_command("migrate", interactive=False, verbosity=0)
    built: dict[str, Any] = {}
    if not Clinic.objects.exists():
        from backcare.demo.scale import build_scale_demo

        log(f"[{args.label}] building {args.clients:,} clients, {args.clients * args.per_client:,} appointments")
        report = build_scale_demo(
            clients=args.clients,
            appointments=args.clients * args.per_client,
            progress=lambda m: log(f"[{args.label}] {m}"),
        )
        built = report.as_dict()
        log(f"[{args.label}] built in {report.seconds['total']:.0f} s")
    users = {u.username: u for u in get_user_model().objects.filter(username__in=["owner", "therapist1", "frontdesk"])}
    portal_user = get_user_model().objects.get(username="client")
    therapist = StaffMember.objects.get(user=users["therapist1"])
    clinic = Clinic.objects.get(pk=therapist.clinic_id)
    # A therapist with some clients shared with them, as in a clinic where colleagues cover for each other.
    others = Client.objects.filter(clinic=clinic).exclude(therapist=therapist).order_by("pk")[:50]
    therapist.shared_clients.add(*others)

    def signed_in(user: Any) -> HttpClient:
        http = HttpClient(HTTP_HOST="localhost")
        http.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        if user.username == "owner":  # owners sign in with an authenticator app: past that step, as its page does
            device, _ = TOTPDevice.objects.get_or_create(user=user, defaults={"name": "bench", "confirmed": True})
            session = http.session
            session[DEVICE_ID_SESSION_KEY] = device.persistent_id
            session.save()
        return http

    owner, mine, desk = (signed_in(users[name]) for name in ("owner", "therapist1", "frontdesk"))
    portal = signed_in(portal_user)
    secrets = {}
    for name in ("therapist1", "frontdesk"):
        _, secrets[name] = tokens.create_token(users[name], name=f"bench {timezone.now():%H%M%S%f}", scopes=["read"])
    api = HttpClient(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {secrets['therapist1']}")
    api_desk = HttpClient(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {secrets['frontdesk']}")

    # Records to open: therapist1's first client with a completed course, and their first referral.
    # (A tiny clinic may give therapist1 none: then another therapist's client, shared with therapist1.)
    courses = Course.objects.filter(client__clinic=clinic).order_by("-status", "pk")  # completed first
    course = courses.filter(client__therapist=therapist).first() or courses.first()
    assert course is not None, "the scale demo has courses"
    client_id = course.client_id
    therapist.shared_clients.add(client_id)
    session = TreatmentSession.objects.filter(course=course).order_by("number").first()
    referral = Referral.objects.filter(client__clinic=clinic).order_by("pk").first()
    first = api_desk.get("/api/appointments?limit=50").json()
    cursor = first.get("next_cursor")
    deep = min(5000, max(first["count"] - 50, 0))

    pages: list[tuple[str, str, Any, str]] = []
    staff_menu = (
        ("dashboard", "/dashboard/"),
        ("clients", "/clients/"),
        ("calendar", "/calendar/"),
        ("waitlist", "/waitlist/"),
        ("set-up", "/setup/"),
        ("API tokens", "/account/tokens/"),
        ("two-factor", "/account/two-factor/"),
        ("password", "/password/change/"),
    )
    for section, http in (("owner", owner), ("therapist", mine), ("front desk", desk)):
        pages += [(section, name, http, path) for name, path in staff_menu]
    pages += [
        ("owner", "data rights", owner, "/data-rights/"),
        ("owner", "outbox", owner, "/outbox/"),
        ("owner", "staff two-factor", owner, "/staff/two-factor/"),
        ("owner", "client list page 10", owner, "/clients/?page=10"),
        ("owner", "a client's audit trail", owner, f"/clients/{client_id}/audit/"),
        ("therapist", "calendar feed", mine, "/calendar/subscribe/"),
        ("therapist", "name search, common name", mine, "/clients/?q=smith"),
        ("therapist", "name search, full name", mine, "/clients/?q=alex+smith"),
        ("therapist", "client record", mine, f"/clients/{client_id}/"),
        ("therapist", "course", mine, f"/courses/{course.pk}/"),
        ("front desk", "client list page 10", desk, "/clients/?page=10"),
        ("front desk", "name search, common name", desk, "/clients/?q=smith"),
        ("client portal", "my record", portal, "/portal/"),
        ("client portal", "appointments", portal, "/portal/appointments/"),
        ("client portal", "calendar feed", portal, "/calendar/subscribe/"),
        ("client portal", "API tokens", portal, "/account/tokens/"),
        ("client portal", "password", portal, "/password/change/"),
        ("API", "clients (front desk)", api_desk, "/api/clients?limit=50"),
        ("API", "clients q=smith (front desk)", api_desk, "/api/clients?limit=50&q=smith"),
        ("API", "clients (therapist)", api, "/api/clients?limit=50"),
        ("API", "appointments", api_desk, "/api/appointments?limit=50"),
        ("API", "appointments, deep offset", api_desk, f"/api/appointments?limit=50&offset={deep}"),
        ("API", "a client's intakes", api, f"/api/clients/{client_id}/intakes"),
        ("API", "a client's screenings", api, f"/api/clients/{client_id}/screenings"),
        ("API", "a client's courses", api, f"/api/clients/{client_id}/courses"),
        ("API", "a client's outcomes", api, f"/api/clients/{client_id}/outcomes"),
        ("API", "a course's sessions", api, f"/api/courses/{course.pk}/sessions"),
        ("exports", "client export ZIP (owner)", owner, f"/clients/{client_id}/export.zip"),
        ("exports", "research CSV (owner)", owner, "/data-rights/research-outcomes.csv"),
        ("exports", "discharge letter PDF", mine, f"/courses/{course.pk}/discharge.pdf"),
        ("exports", "home programme PDF", mine, f"/courses/{course.pk}/home-programme.pdf"),
        ("exports", "progress chart SVG", mine, f"/clients/{client_id}/progress.svg"),
        ("exports", "FHIR Patient $everything", api, f"/fhir/Patient/{client_id}/$everything"),
    ]
    if cursor:
        pages.append(
            ("API", "appointments, next page (cursor)", api_desk, f"/api/appointments?limit=50&cursor={cursor}")
        )
    if session is not None:
        pages.append(("therapist", "session", mine, f"/sessions/{session.pk}/"))
    if referral is not None:
        pages.append(("exports", "referral letter PDF (owner)", owner, f"/referrals/{referral.pk}/letter.pdf"))

    results: dict[str, Any] = {}
    for section, name, http, path in pages:
        key = f"{section}: {name}"
        queries: list[str] = []

        def count(execute: Any, sql: str, params: Any, many: bool, context: Any, queries: list[str] = queries) -> Any:
            queries.append(sql)
            return execute(sql, params, many, context)

        t0 = time.perf_counter()
        with connection.execute_wrapper(count):
            response = http.get(path)
        first_s = time.perf_counter() - t0
        if response.status_code != 200:
            log(f"[{args.label}] {key}: {path} answered {response.status_code}")
            results[key] = {"path": path, "status": response.status_code, "queries": len(queries)}
            continue
        slow = first_s > args.slow
        for _ in range(0 if slow else args.warmup):
            http.get(path)
        ms = []
        for _ in range(1 if slow else args.runs):
            t0 = time.perf_counter()
            http.get(path)
            ms.append((time.perf_counter() - t0) * 1000)
        results[key] = {
            "path": path,
            "status": 200,
            "median_ms": round(statistics.median(ms), 1),
            "p95_ms": round(percentile(ms, 0.95), 1),
            "runs": len(ms),
            "queries": len(queries),
        }
        log(f"[{args.label}] {key}: {results[key]['median_ms']} ms, {len(queries)} queries")
    import sqlite3

    database = f"SQLite {sqlite3.sqlite_version}"
    if connection.vendor == "postgresql":
        with connection.cursor() as c:
            c.execute("SHOW server_version")
            database = f"PostgreSQL {c.fetchone()[0]}"
    return {
        "label": args.label,
        "clients": Client.objects.filter(clinic=clinic).count(),
        "appointments": clinic.appointments.count(),
        "database": database,
        "built": built,
        "pages": results,
    }


# ---- the driver -----------------------------------------------------------------------------------------------------


def run_worker(
    args: argparse.Namespace, label: str, size: int, folder: Path, code: Path, database_url: str | None = None
) -> dict[str, Any]:
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
    env.pop("DJANGO_SETTINGS_MODULE", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--label", label]
    cmd += ["--clients", str(size), "--per-client", str(args.per_client)]
    cmd += ["--runs", str(args.runs), "--warmup", str(args.warmup), "--slow", str(args.slow)]
    done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, check=False, cwd=folder)
    if done.returncode != 0:
        raise SystemExit(f"{label} failed with exit code {done.returncode}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "system": platform.platform(),
        "python": platform.python_version(),
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }


def checks(runs: dict[str, Any], sizes: list[int]) -> dict[str, Any]:
    """For every page: its figures at each size, the ratio of the largest size's median to the smallest's, and the
    targets it misses."""
    small, large = runs[str(min(sizes))]["pages"], runs[str(max(sizes))]["pages"]
    out: dict[str, Any] = {}
    for name, big in large.items():
        little = small.get(name, {})
        misses = []
        if big.get("status") != 200 or little.get("status") != 200:
            misses.append("not answered 200 at every size")
            out[name] = {"misses": misses}
            continue
        ratio = big["median_ms"] / max(little["median_ms"], 0.01)
        if big["p95_ms"] > TARGET_P95_MS:
            misses.append(f"p95 > {TARGET_P95_MS:.0f} ms")
        if len(sizes) > 1 and ratio > TARGET_RATIO:
            misses.append(f"ratio > {TARGET_RATIO}")
        counts = {runs[str(s)]["pages"].get(name, {}).get("queries") for s in sizes}
        if len(counts) > 1:
            misses.append("queries grow")
        out[name] = {"ratio": round(ratio, 2), "misses": misses}
    return out


def table(title: str, runs: dict[str, Any], sizes: list[int], verdict: dict[str, Any]) -> str:
    heads = [f"{s:,}: median / p95 ms (queries)" for s in sizes]
    lines = [f"### {title}", "", "| page | " + " | ".join(heads) + " | ratio | misses |"]
    lines.append("|---|" + "---|" * (len(sizes) + 2))
    names = list(runs[str(max(sizes))]["pages"])
    for section in SECTIONS:
        for name in [n for n in names if n.split(": ", 1)[0] == section]:
            cells = []
            for s in sizes:
                fig = runs[str(s)]["pages"].get(name, {})
                if fig.get("status") != 200:
                    cells.append(f"status {fig.get('status')}")
                    continue
                note = f", {fig['runs']} run" if fig["runs"] < 3 else ""
                cells.append(f"{fig['median_ms']:.1f} / {fig['p95_ms']:.1f} ({fig['queries']}{note})")
            check = verdict.get(name, {})
            ratio = f"{check['ratio']:.2f}" if "ratio" in check and len(sizes) > 1 else ""
            flag = ("**MISS** " + "; ".join(check["misses"])) if check.get("misses") else "ok"
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {ratio} | {flag} |")
    missed = sum(1 for c in verdict.values() if c.get("misses"))
    lines += ["", f"{len(verdict) - missed} of {len(verdict)} lines meet every target; {missed} miss one or more."]
    for s in sizes:
        seconds = runs[str(s)].get("built", {}).get("seconds", {})
        if seconds:
            parts = ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items() if k != "total")
            lines.append(f"Built {s:,} clients in {seconds['total']:.0f} s ({parts}).")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000", help="client counts, comma-separated")
    parser.add_argument("--databases", default="sqlite,postgres", help="sqlite and/or postgres, comma-separated")
    parser.add_argument("--per-client", type=int, default=10, help="appointments per client")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--slow", type=float, default=2.0, help="time a page slower than this (s) once more only")
    parser.add_argument("--json", help="also write every figure to this file")
    parser.add_argument("--before", help="also time this git commit's code on the same rows (SQLite)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--label", default="", help=argparse.SUPPRESS)
    parser.add_argument("--clients", type=int, default=1000, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return

    sizes = sorted(int(s) for s in args.sizes.split(","))
    databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    out: dict[str, Any] = {
        "benchmark": "pages, API lists and exports of the demo clinic at scale",
        "machine_at_start": machine(),
        "targets": {"p95_ms_at_largest": TARGET_P95_MS, "ratio_largest_to_smallest": TARGET_RATIO},
        "results": {},
    }
    tables = []
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
        for db in databases:
            runs: dict[str, Any] = {}
            before: dict[str, Any] = {}
            if db == "sqlite":
                for size in sizes:
                    folder = base / f"sqlite-{size}"
                    folder.mkdir()
                    runs[str(size)] = run_worker(args, f"sqlite {size}", size, folder, ROOT)
                    if before_code is not None:
                        copy = base / f"sqlite-{size}-before"
                        copy.mkdir()
                        for f in folder.glob("backcare.sqlite3*"):
                            shutil.copy(f, copy / f.name)
                        before[str(size)] = run_worker(args, f"before {size}", size, copy, before_code)
                        shutil.rmtree(copy)
                    shutil.rmtree(folder)
            elif db == "postgres":
                sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
                import pgcluster  # the test suite's throwaway cluster (tests/pgcluster.py)

                try:
                    pgcluster.find_bindir()
                except pgcluster.PostgresNotFound as e:
                    out["results"][db] = {"skipped": str(e)}
                    tables.append(f"### PostgreSQL\n\nNot run: {e}")
                    continue
                import psycopg

                with pgcluster.PgCluster() as cluster:
                    assert cluster.url is not None
                    for size in sizes:
                        name = f"bench_pages_{size}"
                        with psycopg.connect(cluster.url, autocommit=True) as conn:
                            conn.execute(f"CREATE DATABASE {name}")
                        folder = base / f"postgres-{size}"
                        folder.mkdir()
                        url = pgcluster.database_url(name, cluster.url)
                        runs[str(size)] = run_worker(args, f"postgres {size}", size, folder, ROOT, url)
                        shutil.rmtree(folder)
                        with psycopg.connect(cluster.url, autocommit=True) as conn:
                            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            else:
                raise SystemExit(f"unknown database {db!r}: use sqlite and/or postgres")
            verdict = checks(runs, sizes)
            out["results"][db] = {"sizes": runs, "checks": verdict}
            title = runs[str(sizes[0])]["database"]
            tables.append(table(title, runs, sizes, verdict))
            if before:
                out["results"][f"{db} before {args.before}"] = {"sizes": before, "checks": checks(before, sizes)}
                tables.append(table(f"{title}, code of {args.before}", before, sizes, checks(before, sizes)))
    out["machine_at_end"] = machine()
    start, end = out["machine_at_start"], out["machine_at_end"]
    print(f"Pages at {', '.join(f'{s:,}' for s in sizes)} clients ({args.per_client} appointments each)")
    print(
        f"Machine: {start['cpu']}, {start['cores']} cores, {start['system']}, Python {start['python']}; load average "
        f"{start['load_average_1_5_15'][0]} at the start, {end['load_average_1_5_15'][0]} at the end."
    )
    print(
        f"Targets: p95 <= {TARGET_P95_MS:.0f} ms at {max(sizes):,} clients, ratio <= {TARGET_RATIO}, queries constant."
    )
    for text in tables:
        print()
        print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
