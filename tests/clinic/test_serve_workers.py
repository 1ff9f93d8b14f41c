"""`backcare serve --workers 2` (issue 14): two worker processes forked by one gunicorn main process answer on one
port and share one database (a SQLite file in WAL mode, or PostgreSQL in the PostgreSQL run of the suite). A slow
request holds one worker only: while a client uploads its body slowly, the other worker goes on answering; with
both held, a third request waits until one is free. Timeouts are generous: the machine may be busy."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from process_support import BACKCARE, ON_POSTGRES, Browser, free_port, fresh_database, process_env

DATABASE = "backcare_serve_workers" + os.environ.get("PYTEST_XDIST_WORKER", "")  # one per xdist worker


@dataclass
class Running:
    process: subprocess.Popen[str]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def children(self) -> list[list[str]]:
        """The command lines of the main process's children (Linux /proc)."""
        pid = self.process.pid
        found = []
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            with open(f"/proc/{child}/cmdline", "rb") as f:
                found.append([part.decode() for part in f.read().split(b"\0") if part])
        return found


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    fresh_database(DATABASE)
    env = process_env(tmp_path_factory.mktemp("workers") / "clinic", DATABASE)
    port = free_port()
    process = subprocess.Popen(
        [str(BACKCARE), "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = Running(process, port)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{server.url}/login/", timeout=30) as response:
                    assert response.status == 200
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    pytest.fail(f"backcare serve --workers 2 did not answer:\n{process.communicate()[0]}")
                time.sleep(0.3)
        # A clinic exists: on an empty database the sign-in page sends everyone to the first-run set-up.
        make_clinic = "from backcare.clinic.models import Clinic; Clinic.objects.create(name='Workers Clinic')"
        subprocess.run([str(BACKCARE), "manage", "shell", "-c", make_clinic], env=env, check=True, timeout=180)
        yield server
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=60)
        assert process.returncode == 0, out
        assert "Traceback" not in out and out.count("Backcare has stopped.") == 1, out


def workers(server: Running) -> list[list[str]]:
    return [cmd for cmd in server.children() if "serve" in cmd]


def slow_upload(server: Running) -> socket.socket:
    """A sign-in post that announces 1,000 bytes and sends 10: the worker that took it waits for the rest. It
    carries the CSRF cookie and token (in the header), so the check reads the body instead of refusing at once."""
    browser = Browser(server.url)
    browser.get("/login/")
    token = browser.csrf()
    conn = socket.create_connection(("127.0.0.1", server.port), timeout=120)
    conn.sendall(
        b"POST /login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        + f"Cookie: csrftoken={token}\r\nX-CSRFToken: {token}\r\n".encode()
        + b"Content-Length: 1000\r\n\r\nusername=a"
    )
    return conn


def finish(conn: socket.socket) -> bytes:
    conn.sendall(b"x" * 990)
    answer = conn.recv(65536)
    conn.close()
    return answer


def test_two_worker_processes_answer_from_one_database(running: Running) -> None:
    assert len(workers(running)) == 2, running.children()
    # With the outbox in process (SQLite) its sender runs beside them; on PostgreSQL `backcare worker` is separate.
    senders = [cmd for cmd in running.children() if cmd[-1:] == ["worker"]]
    assert len(senders) == (0 if ON_POSTGRES else 1), running.children()
    # Sign-in attempts read users and write the lockout's counters: each worker uses the shared database.
    for n in range(6):
        browser = Browser(running.url)
        browser.get("/login/")
        status, page = browser.post("/login/", {"username": f"nobody{n}", "password": "not-this-one"})
        assert status == 200 and "did not match" in page


def test_a_slow_request_holds_one_worker_and_the_other_answers(running: Running) -> None:
    held = slow_upload(running)
    try:
        time.sleep(1)  # a worker has taken it and waits for the body
        for _ in range(5):
            started = time.monotonic()
            with urllib.request.urlopen(f"{running.url}/login/", timeout=60) as response:
                assert response.status == 200
            assert time.monotonic() - started < 30
        # Both workers held: the next request waits for one of them, then is answered.
        second = slow_upload(running)
        time.sleep(1)
        answered = threading.Event()

        def request() -> None:
            with urllib.request.urlopen(f"{running.url}/login/", timeout=120) as response:
                assert response.status == 200
                answered.set()

        waiting = threading.Thread(target=request)
        waiting.start()
        assert not answered.wait(3), "two workers were held, yet a third request was answered"
        assert finish(second).startswith(b"HTTP/1.1 200")  # the slow sign-in, whole at last: a form to correct
        waiting.join(120)
        assert answered.is_set()
    finally:
        assert finish(held).startswith(b"HTTP/1.1 200")
