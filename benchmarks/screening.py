"""Screening speed: batch throughput on one core and the start-up time of a single `backcare screen`.

Run with `make bench` (or `.venv/bin/python benchmarks/screening.py`). Prints one JSON document of figures;
docs/benchmarks.md records them with the machine they were taken on. Targets (issue 2): batch screening at
20,000 intakes per second or more on one core; a single `backcare screen` under 0.3 s wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from backcare.clinical import vocabulary as vocab
from backcare.clinical.engine import Screener
from backcare.clinical.intake import parse_intake

BACKCARE = Path(sys.executable).parent / "backcare"


def synthetic_intakes(n: int, seed: int = 2026) -> list[bytes]:
    """A deterministic mix of intakes: most plain, some with red flags, precautions, pregnancy, STarT Back."""
    rng = random.Random(seed)
    findings, regions, goals = list(vocab.FINDINGS), list(vocab.REGIONS), list(vocab.GOALS)
    out = []
    for i in range(n):
        doc: dict[str, Any] = {
            "schema_version": "1",
            "id": f"bench-{i}",
            "age": rng.randint(16, 90),
            "sex": rng.choice(vocab.SEXES),
            "pain": {
                "regions": rng.sample(["lower_back", "mid_back", "upper_back", "sacrum", "neck"], rng.randint(1, 2)),
                "intensity": rng.randint(0, 10),
                "duration_weeks": round(rng.uniform(0, 60), 1),
                "first_episode": rng.random() < 0.2,
                "onset": rng.choice(vocab.ONSETS),
                "medically_assessed": rng.random() < 0.5,
            },
            "findings": [
                {"code": rng.choice(findings), **({"region": rng.choice(regions)} if rng.random() < 0.4 else {})}
                for _ in range(rng.choice((0, 0, 0, 1, 1, 2, 3, 4)))
            ],
            "pregnancy_weeks": rng.randint(4, 40) if rng.random() < 0.05 else None,
            "goals": rng.sample(goals, rng.randint(0, 3)),
        }
        if rng.random() < 0.5:
            doc["start_back"] = {
                "agree": [rng.random() < 0.4 for _ in range(8)],
                "bothersomeness": rng.choice(vocab.BOTHERSOMENESS),
            }
        out.append(json.dumps(doc).encode())
    return out


def pin_to_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def in_process_throughput(lines: list[bytes], repeats: int) -> dict[str, float]:
    """What `--batch` does per line (parse, screen, encode), without file I/O: intakes per second, best of N.

    Also per second of CPU time, which says more than wall time on a machine that other work keeps busy."""
    screener = Screener()
    rates, cpu_rates = [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        for line in lines:
            screener.screen_json(parse_intake(line))
        rates.append(len(lines) / (time.perf_counter() - start))
        cpu_rates.append(len(lines) / (time.process_time() - cpu))
    return {"best": max(rates), "median": statistics.median(rates), "best_per_cpu_s": max(cpu_rates)}


def command_throughput(lines: list[bytes]) -> dict[str, float]:
    """The real command on a JSON-lines file, start-up included."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "intakes.jsonl"
        src.write_bytes(b"\n".join(lines) + b"\n")
        start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        p = subprocess.run(
            [str(BACKCARE), "screen", "--batch", str(src), "--no-progress", "--out", str(Path(tmp) / "out.jsonl")],
            capture_output=True,
            preexec_fn=pin_to_one_core,
        )
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        produced = (Path(tmp) / "out.jsonl").read_bytes().count(b"\n")
    if p.returncode not in (0, 1) or produced != len(lines):
        raise SystemExit(f"batch run failed: exit {p.returncode}, {produced} lines: {p.stderr.decode()[-500:]}")
    return {"intakes": len(lines), "wall_s": wall, "per_second": len(lines) / wall, "per_cpu_s": len(lines) / cpu}


def startup(runs: int) -> dict[str, float]:
    """Wall time of one `backcare screen --format json` on one intake, as a script would call it."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "intake.json"
        path.write_bytes(synthetic_intakes(1)[0])
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run([str(BACKCARE), "screen", "--format", "json", str(path)], capture_output=True, check=True)
            times.append(time.perf_counter() - start)
    times.sort()
    return {"runs": runs, "median_s": statistics.median(times), "p95_s": times[int(0.95 * (runs - 1))]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--intakes", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--startup-runs", type=int, default=30)
    args = ap.parse_args()
    pin_to_one_core()
    lines = synthetic_intakes(args.intakes)
    figures = {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cores_available": os.cpu_count(),
            "pinned_to_one_core": hasattr(os, "sched_setaffinity"),
            "load_average_at_start": os.getloadavg(),
        },
        "batch_in_process_intakes_per_s": in_process_throughput(lines, args.repeats),
        "batch_command": command_throughput(lines),
        "single_screen_startup": startup(args.startup_runs),
        "load_average_at_end": os.getloadavg(),
        "targets": {"batch_intakes_per_s": 20_000, "single_screen_s": 0.3},
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
