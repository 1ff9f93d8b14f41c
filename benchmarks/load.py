"""Load test of `backcare serve` on loopback: one process (`--workers 1`, waitress, as before issue 14) against the
new default (gunicorn, one worker process per core), side by side, at 8, 32 and 64 users.

Run with `make bench-load` (or `.venv/bin/python benchmarks/load.py`). For each database (SQLite in a temporary
folder; PostgreSQL in a throwaway cluster from tests/pgcluster.py, skipped with a note when PostgreSQL is not
installed) it loads the demo clinic, makes an API token, then starts each server in turn on a free loopback port and
drives it with locust (as a library, in a process of its own) for a fixed time per user count, after a warm-up.

Each simulated user is signed in as a therapist or the front desk (the three sessions are made before the load
starts) and, without pausing, picks by weight: the dashboard,
the client list, a client's page, the calendar week, an API read (clients, appointments, free slots), or a booking
through the API (free slots, then POST /api/appointments for one of them). A booking that loses a race for its slot
gets 409, which is the right answer and counted apart ("conflicts"), not as an error. It prints a table, then one
JSON document: requests/s, p50/p95/p99 in ms, errors, and per database the ratio at 32 users with the targets
(issue 14: at least 1.8 times the single process's throughput with a lower p95, and no errors).

The load tool runs on the same machine and takes CPU from the servers; so the figures are for this machine and
this load, which the JSON names. `--seconds 10 --users 8,32` makes a quicker run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TARGET_RATIO = 1.8
TARGET_USERS = 32
SERVERS = {"single": ["--workers", "1"], "default": []}

SETUP = """
import json
from django.contrib.auth import get_user_model
from backcare.api import tokens
from backcare.clinic.models import Client
from backcare.clinic.services.screening import treatment_gate
from backcare.scheduling.models import Service
owner = get_user_model().objects.get(username="owner")
_, secret = tokens.create_token(owner, name="load test", scopes=["read", "write"])
bookable = [c.pk for c in Client.objects.all() if treatment_gate(c).allowed]
services = list(Service.objects.filter(active=True).values_list("pk", flat=True))
print(json.dumps({"token": secret, "clients": bookable, "services": services}))
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# --- the load, in its own process (locust patches the standard library with gevent) ---------------------------------


def drive(url: str, users: int, seconds: float, warmup: float, setup: dict[str, Any]) -> dict[str, Any]:
    import http.cookiejar
    import random
    import re
    import urllib.parse
    from datetime import date, timedelta

    import gevent
    from locust import FastHttpUser, constant, task
    from locust.env import Environment

    token = {"Authorization": f"Bearer {setup['token']}"}
    # Each login signs in once, before the load: a password check costs a deliberate ~0.1 s of CPU (Argon2), and
    # people stay signed in; the users share these sessions (cookies), as tabs of one browser do.
    sessions = []
    for username, password in (
        ("therapist1", "demo-therapist1-2026"),
        ("therapist2", "demo-therapist2-2026"),
        ("frontdesk", "demo-frontdesk-2026"),
    ):
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        page = opener.open(f"{url}/login/", timeout=300).read().decode()
        csrf = page.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
        form = {"csrfmiddlewaretoken": csrf, "username": username, "password": password, "next": ""}
        opener.open(f"{url}/login/", data=urllib.parse.urlencode(form).encode(), timeout=300).read()
        cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
        assert "sessionid=" in cookie, f"{username} could not sign in"
        sessions.append((username, {"Cookie": cookie}))

    class Clinic(FastHttpUser):  # type: ignore[misc]
        host = url
        wait_time = constant(0)

        def on_start(self) -> None:
            self.client_ids: list[int] = []
            self.username, self.cookie = random.choice(sessions[:2] * 2 + sessions[2:])

        @task(3)
        def dashboard(self) -> None:
            self.client.get("/dashboard/", headers=self.cookie, name="page: dashboard")

        @task(3)
        def client_list(self) -> None:
            text = self.client.get("/clients/", headers=self.cookie, name="page: client list").text or ""
            # Only the links to a client's record: the list also links, for a client whose record this therapist
            # may not open, to the contact details (/clients/<id>/edit/), whose record answers 404 (by design).
            found = {int(pk) for pk in re.findall(r'href="/clients/(\d+)/"', text)}
            self.client_ids = sorted(found) or self.client_ids

        @task(3)
        def client_page(self) -> None:
            if self.client_ids and self.username != "frontdesk":  # the front desk reads no clinical record
                self.client.get(f"/clients/{random.choice(self.client_ids)}/", headers=self.cookie, name="page: client")

        @task(2)
        def calendar(self) -> None:
            self.client.get("/calendar/", headers=self.cookie, name="page: calendar")

        @task(2)
        def api_clients(self) -> None:
            self.client.get("/api/clients?limit=20", headers=token, name="api: clients")

        @task(2)
        def api_appointments(self) -> None:
            since = (date.today() - timedelta(days=random.randint(0, 60))).isoformat()
            self.client.get(f"/api/appointments?date_from={since}&limit=20", headers=token, name="api: appointments")

        @task(1)
        def book(self) -> None:
            day = date.today() + timedelta(days=random.randint(2, 60))
            service = random.choice(setup["services"])
            query = f"service={service}&date_from={day}&date_to={day + timedelta(days=6)}&limit=50"
            slots = self.client.get(f"/api/availability/slots?{query}", headers=token, name="api: free slots")
            items = (slots.json() or {}).get("items", []) if slots.status_code == 200 else []
            if not items:
                return
            slot = random.choice(items)
            body = {
                "client": random.choice(setup["clients"]),
                "service": service,
                "starts_at": slot["starts_at"],
                "therapist": slot["therapist"],
                "room": slot["room"],
            }
            with self.client.post(
                "/api/appointments", json=body, headers=token, name="api: book", catch_response=True
            ) as answer:
                if answer.status_code == 409:  # another user took the time, or the client is booked then
                    conflicts.append(1)
                    answer.success()

    times: list[float] = []
    by_name: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    conflicts: list[int] = []
    measuring = [False]

    def on_request(request_type: str, name: str, response_time: float, exception: Any, **_: Any) -> None:
        if not measuring[0]:
            return
        if exception is not None:
            key = f"{name}: {str(exception)[:80]}"
            errors[key] = errors.get(key, 0) + 1
        times.append(response_time)
        by_name.setdefault(name, []).append(response_time)

    env = Environment(user_classes=[Clinic], catch_exceptions=False)
    env.events.request.add_listener(on_request)
    runner = env.create_local_runner()
    runner.start(users, spawn_rate=max(users / 2, 1))
    gevent.sleep(warmup)
    measuring[0] = True
    started = time.monotonic()
    gevent.sleep(seconds)
    measuring[0] = False
    took = time.monotonic() - started
    runner.quit()
    return {
        "users": users,
        "requests": len(times),
        "requests_per_s": round(len(times) / took, 1),
        "p50_ms": round(percentile(times, 0.50), 1),
        "p95_ms": round(percentile(times, 0.95), 1),
        "p99_ms": round(percentile(times, 0.99), 1),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "booking_conflicts": len(conflicts),
        "by_request": {
            name: {"count": len(t), "p50_ms": round(percentile(t, 0.5), 1), "p95_ms": round(percentile(t, 0.95), 1)}
            for name, t in sorted(by_name.items())
        },
    }


# --- the servers and the databases ----------------------------------------------------------------------------------


@contextmanager
def serving(env: dict[str, str], extra: list[str]) -> Any:
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "backcare"), "serve", "--port", str(port), "--no-migrate", *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"{url}/login/", timeout=10).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"backcare serve {' '.join(extra)} did not answer: {process.stderr}") from None
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def run_database(db: str, env: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    log(f"{db}: loading the demo clinic")
    done = subprocess.run([str(BIN / "backcare"), "demo"], env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"backcare demo failed: {done.stderr}")
    made = subprocess.run(
        [str(BIN / "backcare"), "manage", "shell", "-c", SETUP], env=env, capture_output=True, text=True, timeout=300
    )
    if made.returncode != 0:
        raise SystemExit(f"the load test's set-up failed: {made.stderr}")
    setup = json.loads(made.stdout.strip().splitlines()[-1])
    results: dict[str, Any] = {}
    for server, extra in SERVERS.items():
        with serving(env, extra) as url:
            results[server] = []
            for users in args.users:
                log(f"{db}: {server} server, {users} users, {args.seconds:g} s")
                child = subprocess.run(
                    [sys.executable, __file__, "--drive", url, "--users", str(users), "--seconds", str(args.seconds),
                     "--warmup", str(args.warmup), "--setup", json.dumps(setup)],
                    env=env, capture_output=True, text=True, timeout=args.seconds + args.warmup + 300,
                )  # fmt: skip
                if child.returncode != 0:
                    raise SystemExit(f"the load process failed: {child.stderr[-3000:]}")
                results[server].append(json.loads(child.stdout.strip().splitlines()[-1]))
    entry: dict[str, Any] = {"servers": results}
    at = {s: next((r for r in rows if r["users"] == TARGET_USERS), None) for s, rows in results.items()}
    if at["single"] and at["default"]:
        ratio = at["default"]["requests_per_s"] / max(at["single"]["requests_per_s"], 0.1)
        entry["throughput_ratio_at_32_users"] = round(ratio, 2)
        entry["meets_target"] = (
            ratio >= TARGET_RATIO
            and at["default"]["p95_ms"] < at["single"]["p95_ms"]
            and all(r["errors"] == 0 for rows in results.values() for r in rows)
        )
    return entry


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "default_workers": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
    }


def table(out: dict[str, Any]) -> str:
    lines = [
        f"{'database':9} {'server':8} {'users':>5} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'errors':>6}"
    ]
    for db, entry in out["results"].items():
        if "skipped" in entry:
            lines.append(f"{db:9} skipped: {entry['skipped']}")
            continue
        for server, rows in entry["servers"].items():
            for r in rows:
                lines.append(
                    f"{db:9} {server:8} {r['users']:>5} {r['requests_per_s']:>7} {r['p50_ms']:>7} {r['p95_ms']:>7} "
                    f"{r['p99_ms']:>7} {r['errors']:>6}"
                )
        if "throughput_ratio_at_32_users" in entry:
            met = "met" if entry["meets_target"] else "NOT met"
            lines.append(
                f"{db:9} at 32 users: {entry['throughput_ratio_at_32_users']}x the single process; target {met}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--users", default="8,32,64", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=10, help="seconds of load before measuring (sign-ins)")
    parser.add_argument("--drive", help=argparse.SUPPRESS)
    parser.add_argument("--setup", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        print(json.dumps(drive(args.drive, args.users[0], args.seconds, args.warmup, json.loads(args.setup))))
        return
    base_env = {**os.environ, "BACKCARE_ENV": "development", "BACKCARE_DEBUG": "false"}
    base_env.update({"BACKCARE_API_RATE": "1000000/minute", "BACKCARE_OUTBOX_SEND_ON_COMMIT": "false"})
    base_env.pop("DJANGO_SETTINGS_MODULE", None)
    base_env.pop("DATABASE_URL", None)
    out: dict[str, Any] = {"machine": machine(), "seconds_per_run": args.seconds, "results": {}}
    for db in args.databases.split(","):
        folder = tempfile.mkdtemp(prefix="backcare-load-")
        try:
            if db == "sqlite":
                out["results"][db] = run_database(db, {**base_env, "BACKCARE_DATA_DIR": folder}, args)
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
                    with psycopg.connect(cluster.url, autocommit=True) as conn:
                        conn.execute("CREATE DATABASE bench_load")
                    env = {
                        **base_env,
                        "BACKCARE_DATA_DIR": folder,
                        "DATABASE_URL": pgcluster.database_url("bench_load", cluster.url),
                    }
                    out["results"][db] = run_database(db, env, args)
            else:
                raise SystemExit(f"unknown database {db!r}: use sqlite and/or postgres")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    print(table(out), file=sys.stderr)
    print(json.dumps(out, indent=2))
    failed = errors_of(out)
    if failed:
        print("\nERRORS (each is a request that failed; the run does not count):", file=sys.stderr)
        for line in failed:
            print(f"  {line}", file=sys.stderr)
        raise SystemExit(1)


def errors_of(out: dict[str, Any]) -> list[str]:
    """Every failed request of every run, by kind: a load test with errors measures the wrong thing."""
    return [
        f"{db} {server} {r['users']} users: {count} x {kind}"
        for db, entry in out["results"].items()
        for server, rows in entry.get("servers", {}).items()
        for r in rows
        for kind, count in sorted(r["error_kinds"].items())
    ]


if __name__ == "__main__":
    main()
