"""The API rate limit under concurrency: 25 threads on one token, spread over two application server processes that
share one database, get exactly the limit through and a 429 for every request past it. Before, each thread read the
request history, added its own and wrote it back, so concurrent requests overwrote each other's: 25 threads got
1,000 answers through a 600/minute limit. Runs on SQLite and, in the PostgreSQL run of the suite, on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from process_support import BACKCARE, free_port, fresh_database, process_env, served

THREADS = 25
PER_THREAD = 12
LIMIT = 100
RATE = f"{LIMIT}/day"  # one long window, so the whole burst falls in it (the test waits out a window's last minute)
DATABASE = "backcare_rate_race" + os.environ.get("PYTEST_XDIST_WORKER", "")  # one per xdist worker

TOKEN = """
from django.contrib.auth import get_user_model
from backcare.api import tokens
_, secret = tokens.create_token(get_user_model().objects.get(username="owner"), name="race", scopes=["read"])
print(secret)
"""


def get(url: str, token: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as refused:
        refused.read()
        return refused.code


@pytest.mark.long
def test_25_threads_on_one_token_get_exactly_the_limit_through(tmp_path: Path) -> None:
    fresh_database(DATABASE)
    env = {**process_env(tmp_path / "clinic", DATABASE), "BACKCARE_API_RATE": RATE}
    demo = subprocess.run([str(BACKCARE), "demo"], env=env, capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stderr
    made = subprocess.run(
        [str(BACKCARE), "manage", "shell", "-c", TOKEN], env=env, capture_output=True, text=True, timeout=120
    )
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    ports = [free_port(), free_port()]
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def burst(n: int) -> None:
        url = f"http://127.0.0.1:{ports[n % 2]}/api/clients?limit=1"
        start.wait()
        for _ in range(PER_THREAD):
            status = get(url, token)
            with lock:
                statuses[status] += 1

    with served(env, ports[0]), served(env, ports[1]):
        if 86400 - time.time() % 86400 < 120:  # the day's window ends within two minutes: start in the next one
            time.sleep(86400 - time.time() % 86400 + 1)
        threads = [threading.Thread(target=burst, args=(n,)) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
        assert not any(thread.is_alive() for thread in threads)
        late = get(f"http://127.0.0.1:{ports[0]}/api/clients?limit=1", token)
    assert sum(statuses.values()) == THREADS * PER_THREAD
    assert statuses == {200: LIMIT, 429: THREADS * PER_THREAD - LIMIT}, statuses
    assert late == 429
