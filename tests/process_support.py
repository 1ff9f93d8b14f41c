"""Running the real `backcare` command against its own database (a file for SQLite, a fresh database on the test
PostgreSQL cluster), for tests of whole processes: servers, backup and restore."""

from __future__ import annotations

import http.cookiejar
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BACKCARE = Path(sys.executable).parent / "backcare"
ON_POSTGRES = os.environ.get("BACKCARE_TEST_DB") == "postgres"
START_TIMEOUT = 180  # seconds for `backcare serve` to answer


def process_env(data_dir: Path, database: str) -> dict[str, str]:
    env = {**os.environ, "BACKCARE_DATA_DIR": str(data_dir), "BACKCARE_ENV": "development", "BACKCARE_DEBUG": "false"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    if ON_POSTGRES:
        env["DATABASE_URL"] = os.environ["BACKCARE_TEST_DATABASE_URL"].rsplit("/", 1)[0] + "/" + database
    return env


def fresh_database(database: str) -> None:
    """On PostgreSQL, an empty database of this name on the test cluster (SQLite needs nothing)."""
    if not ON_POSTGRES:
        return
    import psycopg

    with psycopg.connect(os.environ["BACKCARE_TEST_DATABASE_URL"], autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(env: dict[str, str], port: int) -> Iterator[subprocess.Popen[str]]:
    """`backcare serve` on a port until the block ends; waits until it answers."""
    server = subprocess.Popen(
        [str(BACKCARE), "serve", "--port", str(port), "--no-migrate"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # Starting takes a few seconds, far more on a busy machine (the suite runs on every core): wait by the clock
        # and fail when the server never answers, rather than going on against a port nobody listens on.
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=5)
                break
            except OSError as e:
                if server.poll() is not None:
                    output = server.stdout.read() if server.stdout else ""
                    raise AssertionError(f"the server stopped: {output}") from e
                if time.monotonic() > deadline:
                    raise AssertionError(f"`backcare serve` on port {port} did not answer in {START_TIMEOUT}s") from e
                time.sleep(0.2)
        yield server
    finally:
        server.terminate()
        server.wait(timeout=30)


class Browser:
    """A signed-in HTTP session against a real server: cookies and the CSRF token, as a browser keeps them."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect())

    def csrf(self) -> str:
        return next(c.value for c in self.jar if c.name == "csrftoken")

    def get(self, path: str) -> tuple[int, str]:
        return self._open(urllib.request.Request(self.base + path))

    def post(self, path: str, data: dict[str, str]) -> tuple[int, str]:
        body = urllib.parse.urlencode({**data, "csrfmiddlewaretoken": self.csrf()}).encode()
        request = urllib.request.Request(self.base + path, data=body, headers={"Referer": self.base + path})
        return self._open(request)

    def login(self, username: str, password: str) -> None:
        self.get("/login/")
        status, _ = self.post("/login/", {"username": username, "password": password})
        assert status == 302, f"login as {username} failed ({status})"

    def _open(self, request: urllib.request.Request) -> tuple[int, str]:
        try:
            with self.opener.open(request, timeout=60) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}"[^>]*value="([^"]*)"|value="([^"]*)"[^>]*name="{name}"', html)
    assert found, f"no {name} in the page"
    return found.group(1) or found.group(2)
