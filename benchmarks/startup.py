"""How long `backcare serve` takes from its start to its first answer (issue 14: at most 1.5 s).

Run with `.venv/bin/python benchmarks/startup.py` (`--runs 5`, `--workers 1` for the single process). It migrates
a fresh SQLite data folder once (as an installed clinic has done), then starts `backcare serve --no-migrate` on a
free loopback port `--runs` times and asks `/login/` every 20 ms until it answers 200. For each run it prints the
wall time to that answer and the CPU time (user + system) the server and its worker processes used until then
(measured by stopping the server right after the answer; shutting down costs a few ms). On a shared machine the
CPU time is the steadier figure: it is what the wall time would be on an idle core.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent
TARGET_SECONDS = 1.5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answered(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_run(env: dict[str, str], workers: list[str]) -> dict[str, float]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/login/"
    before = children_cpu()
    started = time.monotonic()
    server = subprocess.Popen(
        [str(BIN / "backcare"), "serve", "--no-migrate", "--port", str(port), *workers],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        while not answered(url):
            if server.poll() is not None:
                raise SystemExit(f"backcare serve stopped: {server.stderr.read().decode() if server.stderr else ''}")
            if time.monotonic() - started > 300:
                raise SystemExit("no answer in 300 s")
            time.sleep(0.02)
        wall = time.monotonic() - started
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    return {"wall_s": round(wall, 3), "cpu_s": round(children_cpu() - before, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", help="passed to `backcare serve --workers` (default: its default)")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="backcare-startup-")
    env = {**os.environ, "BACKCARE_DATA_DIR": folder, "BACKCARE_ENV": "development", "BACKCARE_DEBUG": "false"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("DATABASE_URL", None)
    subprocess.run([str(BIN / "backcare"), "manage", "migrate", "--no-input", "-v0"], env=env, check=True)
    load_start = os.getloadavg()
    workers = ["--workers", args.workers] if args.workers else []
    runs = [one_run(env, workers) for _ in range(args.runs)]
    out = {
        "workers": args.workers or "default",
        "runs": runs,
        "median_wall_s": statistics.median(r["wall_s"] for r in runs),
        "median_cpu_s": statistics.median(r["cpu_s"] for r in runs),
        "target_s": TARGET_SECONDS,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_at_start": [round(x, 2) for x in load_start],
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
