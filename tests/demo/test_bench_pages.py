"""`make bench-pages` end to end at a tiny size: it builds the scale demo twice, times every page and prints its
table with the targets checked."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT


def test_the_page_benchmark_prints_its_table(tmp_path):
    out = tmp_path / "figures.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "pages.py"),
            *("--sizes", "20,40", "--databases", "sqlite", "--runs", "2", "--warmup", "0", "--json", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout
    assert "| page | 20: median / p95 ms (queries) | 40: median / p95 ms (queries) | ratio | misses |" in table
    for line in (
        "| owner: dashboard |",
        "| therapist: calendar |",
        "| front desk: clients |",
        "| client portal: my record |",
        "| API: appointments |",
        "| exports: client export ZIP (owner) |",
    ):
        assert line in table, line
    assert "lines meet every target" in table and "Built 40 clients in" in table
    figures = json.loads(out.read_text())
    pages = figures["results"]["sqlite"]["sizes"]["40"]["pages"]
    assert all(fig["status"] == 200 for fig in pages.values()), {k: v["status"] for k, v in pages.items()}
    assert all(fig["queries"] > 0 for fig in pages.values())
    assert figures["machine_at_start"]["cores"] >= 1
