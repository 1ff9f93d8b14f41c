"""The outbox's workers as a person runs them: `backcare worker` sends to a real SMTP server on loopback and stops
cleanly on SIGTERM, two of them on one SQLite file send each email once, and `backcare serve` sends by itself (its
in-process worker) to the console, as `make run` does."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from test_demo import backcare, command_env
from test_serve import free_port, start

from conftest import BACKCARE

ENQUEUE = (
    "from django.db import transaction\n"
    "from backcare.common.outbox import enqueue_email\n"
    "with transaction.atomic():\n"
    "    enqueue_email(key='{key}', kind='test.note', to=['pat@x.test'], subject='{subject}', body='Hello Pat')\n"
)


class Inbox:
    def __init__(self) -> None:
        self.subjects: list[str] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        content = getattr(envelope, "content", b"")
        subject = next(
            (line[9:] for line in content.decode("utf-8", "replace").splitlines() if line.startswith("Subject: ")),
            "",
        )
        self.subjects.append(subject)
        return "250 Message accepted for delivery"


def enqueue(data_dir: Path, key: str, subject: str, **env: str) -> None:
    # The shell sends nothing itself: only the worker under test may.
    done = backcare(
        data_dir,
        "manage",
        "shell",
        "--no-imports",
        "-c",
        ENQUEUE.format(key=key, subject=subject),
        BACKCARE_OUTBOX_SEND_ON_COMMIT="false",
        **env,
    )
    assert done.returncode == 0, done.stderr


def status_of(data_dir: Path, key: str) -> str:
    done = backcare(
        data_dir,
        "manage",
        "shell",
        "--no-imports",
        "-c",
        "from backcare.common.models import OutboundMessage as M\n"
        f"print(M.objects.get(idempotency_key='{key}').status)",
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def wait_for(predicate: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail("waited in vain")
        time.sleep(0.2)


def test_backcare_worker_sends_and_stops_cleanly_on_sigterm(tmp_path):
    assert backcare(tmp_path, "manage", "migrate", "--verbosity", "0").returncode == 0
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    mail = {"BACKCARE_EMAIL_HOST": "127.0.0.1", "BACKCARE_EMAIL_PORT": str(port)}
    try:
        enqueue(tmp_path, "first", "Waiting before the worker starts", **mail)
        worker = subprocess.Popen(
            [str(BACKCARE), "worker", "--poll", "0.3"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=command_env(tmp_path, **mail),
            cwd=tmp_path,
        )
        try:
            wait_for(lambda: inbox.subjects == ["Waiting before the worker starts"])
            enqueue(tmp_path, "second", "Queued while it runs", **mail)
            wait_for(lambda: len(inbox.subjects) == 2)
        finally:
            worker.send_signal(signal.SIGTERM)
            out, err = worker.communicate(timeout=30)
        assert worker.returncode == 0, err
        assert "Traceback" not in err
        assert "outbox worker" in out and "has stopped: 2 email(s) sent" in out
        assert inbox.subjects == ["Waiting before the worker starts", "Queued while it runs"]  # each once
        assert status_of(tmp_path, "second") == "sent"
    finally:
        controller.stop()


def test_backcare_serve_sends_the_outbox_itself_to_the_console(tmp_path):
    """`make run`: no mail server set up, so the demo's emails are printed where `backcare serve` runs."""
    assert backcare(tmp_path, "manage", "migrate", "--verbosity", "0").returncode == 0
    running = start(tmp_path)
    try:
        enqueue(tmp_path, "console", "Printed by the server")
        wait_for(lambda: status_of(tmp_path, "console") == "sent")
    finally:
        code, out, err = running.stop(signal.SIGTERM)
    assert code == 0, err
    assert "Subject: Printed by the server" in out and "Hello Pat" in out


class SlowInbox(Inbox):
    """Takes a moment per email, so the two workers below really work at the same time."""

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        time.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


def test_two_worker_processes_on_one_sqlite_file_send_each_email_once(tmp_path):
    assert backcare(tmp_path, "manage", "migrate", "--verbosity", "0").returncode == 0
    inbox = SlowInbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    mail = {"BACKCARE_EMAIL_HOST": "127.0.0.1", "BACKCARE_EMAIL_PORT": str(port)}
    workers = [
        subprocess.Popen(
            [str(BACKCARE), "worker", "--poll", "0.2"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=command_env(tmp_path, **mail),
            cwd=tmp_path,
        )
        for _ in range(2)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None and "is running" in worker.stdout.readline()
        many = (
            "from django.db import transaction\n"
            "from backcare.common.outbox import enqueue_email\n"
            "for n in range(40):\n"
            "    with transaction.atomic():\n"
            "        enqueue_email(key=f'k{n}', kind='test.note', to=['p@x.test'], subject=f'Email {n}', body='Hi')\n"
        )
        done = backcare(tmp_path, "manage", "shell", "--no-imports", "-c", many, BACKCARE_OUTBOX_SEND_ON_COMMIT="false")
        assert done.returncode == 0, done.stderr
        wait_for(lambda: len(inbox.subjects) >= 40)
        time.sleep(1)  # anything sent twice would arrive meanwhile
    finally:
        outputs = []
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
            outputs.append(worker.communicate(timeout=30))
        controller.stop()
    assert sorted(inbox.subjects) == sorted(f"Email {n}" for n in range(40))  # each once
    sent = [int(out.split("has stopped: ")[1].split(" ")[0]) for out, _ in outputs]
    assert sum(sent) == 40 and all(n > 0 for n in sent), sent  # both took their share
    assert all(worker.returncode == 0 for worker in workers), [err for _, err in outputs]
