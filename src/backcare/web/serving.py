"""`backcare serve --workers N` (N > 1): the clinic application under gunicorn, one process per worker.

gunicorn does less at the edge than waitress, so `Edge` does the rest, the same way: the 11 MB body limit for a
chunked body too (a declared Content-Length over it is refused by RequestSizeLimitMiddleware before anything reads
it), and behind a reverse proxy its X-Forwarded-For and X-Forwarded-Proto trusted from BACKCARE_PROXY_ADDRESS only
(the last address, one proxy) and dropped from anyone else. gunicorn's own reading of X-Forwarded-Proto is off.

The application (and its URLconf) is loaded once in the main process and the workers are forked from it, so they
start at once and share its memory. The main process holds no database connection when it forks; with the outbox
in process (BACKCARE_OUTBOX_IN_PROCESS) it runs `backcare worker` beside the workers, and each request sends its
own emails on commit."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from typing import IO, Any

from gunicorn.app.base import BaseApplication

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# Every header a proxy may set about the client; waitress's clear_untrusted_proxy_headers drops the same.
PROXY_HEADERS = (
    "HTTP_FORWARDED",
    "HTTP_X_FORWARDED_BY",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_FORWARDED_PROTO",
)
CHUNK = 64 * 1024


class Edge:
    """WSGI middleware: what waitress does before the application, for gunicorn."""

    def __init__(self, app: WSGIApp, *, max_body: int, proxy: str | None) -> None:
        self.app, self.max_body, self.proxy = app, max_body, proxy

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.proxy is not None:
            problem = self._proxy_headers(environ)
            if problem:
                return _refuse(start_response, "400 Bad Request", problem)
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower() and not environ.get("CONTENT_LENGTH"):
            body = _read_at_most(environ["wsgi.input"], self.max_body)
            if body is None:
                limit = self.max_body // (1024 * 1024)
                return _refuse(
                    start_response, "413 Request Entity Too Large", f"The request is larger than {limit} MB."
                )
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = body, str(body.seek(0, os.SEEK_END))
            body.seek(0)
        return self.app(environ, start_response)

    def _proxy_headers(self, environ: dict[str, Any]) -> str | None:
        forwarded_for = environ.get("HTTP_X_FORWARDED_FOR", "")
        proto = environ.get("HTTP_X_FORWARDED_PROTO", "").strip().lower()
        for name in PROXY_HEADERS:
            environ.pop(name, None)
        if environ.get("REMOTE_ADDR") != self.proxy:
            return None
        if forwarded_for:
            client = forwarded_for.rsplit(",", 1)[-1].strip()
            try:
                ipaddress.ip_address(client)
            except ValueError:
                return "Header X-Forwarded-For malformed"
            environ["REMOTE_ADDR"] = environ["HTTP_X_FORWARDED_FOR"] = client
        if proto:
            if proto not in ("http", "https"):
                return "Header X-Forwarded-Proto malformed"
            environ["wsgi.url_scheme"] = environ["HTTP_X_FORWARDED_PROTO"] = proto
        return None


def _read_at_most(stream: IO[bytes], limit: int) -> IO[bytes] | None:
    """The whole body in a file (in memory up to 1 MB), or None when it is longer than `limit`."""
    body = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)  # noqa: SIM115 (handed on as wsgi.input)
    size = 0
    while chunk := stream.read(CHUNK):
        size += len(chunk)
        if size > limit:
            body.close()
            return None
        body.write(chunk)
    return body


def _refuse(start_response: Callable[..., Any], status: str, text: str) -> Iterable[bytes]:
    body = text.encode()
    start_response(
        status,
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))), ("Connection", "close")],
    )
    return [body]


def default_workers() -> int:
    """One worker process per core this process may run on."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Server(BaseApplication):
    """gunicorn, configured here and nowhere else (no config file, no GUNICORN_CMD_ARGS, no command line)."""

    def __init__(self, application: WSGIApp, options: dict[str, Any]) -> None:
        self.application = application
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for name, value in self.options.items():
            self.cfg.set(name, value)

    # gunicorn's stubs type the environ as any MutableMapping; gunicorn passes a dict, which Django's handler and
    # Edge take
    def load(self) -> WSGIApp:  # type: ignore[override]
        return self.application


def warm_up() -> None:
    """Import the URLconf and the views once in the main process, after it listens and before the workers fork
    from it, and close its database connections: none may be shared with a forked worker."""
    from django.db import connections
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018
    connections.close_all()


def gunicorn_options(host: str, port: int, workers: int, threads: int, outbox: bool) -> dict[str, Any]:
    """sync workers (one request at a time each, so a slow request holds one worker and never queues another
    behind it) unless --threads asks for more, then gthread. Long exports get 120 s before a worker is replaced."""
    companion: list[subprocess.Popen[bytes]] = []

    def when_ready(arbiter: Any) -> None:
        warm_up()
        if outbox:  # the outbox's sender, beside the workers; it stops with them
            companion.append(subprocess.Popen([sys.executable, "-m", "backcare.cli", "worker"]))

    def on_exit(arbiter: Any) -> None:
        for process in companion:
            process.terminate()
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()

    def worker_exit(arbiter: Any, worker: Any) -> None:
        """A worker that served leaves at once: closing its connections is all it has to do, and tearing down the
        interpreter (the default) takes seconds on a busy machine. One that failed to start leaves as gunicorn says,
        so that gunicorn stops instead of starting it again and again."""
        if worker.booted:
            from django.db import connections

            connections.close_all()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)

    return {
        "bind": [bind_address(host, port)],
        "workers": workers,
        "worker_class": "gthread" if threads > 1 else "sync",
        "threads": threads,
        "preload_app": True,
        "timeout": 120,
        "graceful_timeout": 30,
        "keepalive": 5,
        "forwarded_allow_ips": "",  # Edge reads the proxy headers, from BACKCARE_PROXY_ADDRESS only
        "secure_scheme_headers": {},
        "proc_name": "backcare",
        "loglevel": "warning",
        "control_socket_disable": True,
        "when_ready": when_ready,
        "on_exit": on_exit,
        "worker_exit": worker_exit,
    }
