"""`backcare serve`: the clinic application under gunicorn, one worker process per core (backcare.web.serving), or
with `--workers 1` in one process under waitress, a production-grade pure-Python WSGI server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


class Command(BaseCommand):
    help = (
        "Run the clinic application: gunicorn with one worker process per core, or waitress in one process with "
        "--workers 1. Applies migrations first unless --no-migrate."
    )

    def add_arguments(self, parser: Any) -> None:
        from backcare.web.serving import default_workers

        parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
        workers = os.environ.get("BACKCARE_WORKERS", "").strip()
        parser.add_argument(
            "--workers",
            type=int,
            default=int(workers) if workers.isdigit() else default_workers(),
            help="worker processes (default BACKCARE_WORKERS, or one per core); 1: one process under waitress",
        )
        parser.add_argument(
            "--threads",
            type=int,
            default=None,
            help="threads per process (default 8 with --workers 1; else 1, and more than 1 uses gunicorn's gthread)",
        )
        parser.add_argument("--no-migrate", action="store_true", help="refuse to start if migrations are pending")

    def handle(self, *args: Any, **options: Any) -> None:
        import waitress

        if not 0 < options["port"] < 65536:
            raise CommandError(f"--port must be between 1 and 65535, not {options['port']}")
        workers, threads = options["workers"], options["threads"]
        if not 0 < workers <= 64:
            raise CommandError(f"--workers must be between 1 and 64, not {workers}")
        if threads is not None and not 0 < threads <= 64:
            raise CommandError(f"--threads must be between 1 and 64, not {threads}")
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if pending:
            if options["no_migrate"]:
                raise CommandError(f"{len(pending)} database migrations are pending; run `backcare manage migrate`")
            if settings.MIGRATE_DATABASE_URL:
                _migrate_as_owner()
            else:
                call_command("migrate", interactive=False, verbosity=0)
        if settings.PRODUCTION:
            call_command("collectstatic", interactive=False, verbosity=0)
        # Only now: WhiteNoise lists the static files when the application is made, so the files must be there.
        from backcare.web.wsgi import application

        host, port = options["host"], options["port"]
        if workers > 1:
            self._gunicorn(application, host, port, workers, threads or 1)
            return
        shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
        self.stdout.write(f"Backcare is running at http://{shown}:{port}/  (Ctrl+C stops it)")
        from backcare.clinic.services.first_run import needs_first_run

        if needs_first_run():
            self.stdout.write(f"No clinic yet: open http://{shown}:{port}/start/ to set up the clinic and its owner.")
        self.stdout.flush()
        # SIGTERM (a service manager, `kill`) stops it the way Ctrl+C does: waitress finishes the requests in hand.
        # SIGINT is set explicitly too: a process started in the background inherits it ignored.
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        if settings.BACKCARE_OUTBOX["IN_PROCESS"]:
            from backcare.common import outbox

            outbox.start_in_process()  # the outbox's emails are sent from a thread here (BACKCARE_OUTBOX_IN_PROCESS)
        try:
            waitress.serve(application, host=host, port=port, **waitress_options(threads or 8))
        finally:
            if settings.BACKCARE_OUTBOX["IN_PROCESS"]:
                outbox.stop_in_process()  # lets the email in hand finish
        self.stdout.write("Backcare has stopped.")

    def _gunicorn(self, application: Any, host: str, port: int, workers: int, threads: int) -> None:
        from django.db import connections

        from backcare.web.serving import Edge, Server, gunicorn_options

        connections.close_all()  # the migration check's; the main process forks the workers
        app = Edge(
            application,
            max_body=settings.MAX_REQUEST_BYTES,
            proxy=settings.PROXY_ADDRESS if settings.BEHIND_PROXY else None,
        )
        shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
        self.stdout.write(
            f"Backcare is running at http://{shown}:{port}/  ({workers} worker processes; Ctrl+C stops it)"
        )
        self.stdout.flush()
        options = gunicorn_options(host, port, workers, threads, outbox=bool(settings.BACKCARE_OUTBOX["IN_PROCESS"]))
        main = os.getpid()
        try:
            Server(app, options).run()  # until SIGTERM or SIGINT; gunicorn ends with SystemExit
        finally:
            if os.getpid() == main:  # a worker leaves through here too, with its own SystemExit
                self.stdout.write("Backcare has stopped.")
                self.stdout.flush()


def _migrate_as_owner() -> None:
    """With two PostgreSQL roles the application role cannot migrate: the owner does, in its own process."""
    done = subprocess.run([sys.executable, "-m", "backcare.cli", "manage", "migrate", "--no-input", "-v0"])
    if done.returncode != 0:
        raise CommandError("migrating as the owner (BACKCARE_MIGRATE_DATABASE_URL) failed; see above")


def waitress_options(threads: int) -> dict[str, Any]:
    """The body limit, and behind a reverse proxy the headers it sets, trusted from its address only: the client's
    address (X-Forwarded-For, for the sign-in lockout and the audit) and the scheme (X-Forwarded-Proto, so an https
    request is seen as one: no redirect loop, and HSTS is sent). From any other address these headers are dropped."""
    options: dict[str, Any] = {
        "threads": threads,
        "ident": "Backcare",
        "max_request_body_size": settings.MAX_REQUEST_BYTES,
    }
    if settings.BEHIND_PROXY:
        options.update(
            trusted_proxy=settings.PROXY_ADDRESS,
            trusted_proxy_count=1,
            trusted_proxy_headers={"x-forwarded-for", "x-forwarded-proto"},
            clear_untrusted_proxy_headers=True,
        )
    return options


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(0)
