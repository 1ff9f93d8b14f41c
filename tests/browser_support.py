"""Support for the browser tests (tests/browser/): Debian's Chromium driven by Playwright against pytest-django's
live server, with a screenshot of every step kept under artifacts/browser/<test name>/.

Loaded by the root conftest as a plugin. Fixtures:

- `chromium`: the launched browser (one per test module). Fails, never skips, when /usr/bin/chromium is missing.
- `browser_db`: transactional database access for the live server, keeping the audit trail's append-only triggers
  and the published consent text as the migrations made them (see `_restore_baseline`).
- `live_clinic`, `live_therapist`, `live_client`, `live_invitation`: the clinic's records, written through the
  services; `live_smtp`: a loopback SMTP server the live server sends to (the invitation's link is read from it).
- `ui`: a fresh browser context and page for one test (`Ui`), which records console errors, content security
  policy violations and server errors, and takes the numbered screenshots.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest

from clinic_fixtures import PASSWORD

# Playwright's sync API runs an asyncio event loop in the test's thread, so Django would refuse ORM calls made by the
# test itself (fixtures, checks of the database) as "async unsafe". They are not: the test waits for the browser.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TIMEOUT_MS = 10_000

_CALL_FAILED = pytest.StashKey[bool]()
_CONSENT_MIGRATION = "backcare.clinic.migrations.0002_audit_append_only_and_consent"
_TRIGGER_MIGRATION = "backcare.clinic.migrations.0008_audit_hash_chain"
# Reports every content security policy violation to the test (an init script is not itself subject to the CSP).
_CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__backcareCspViolation({
    directive: e.violatedDirective, blocked: e.blockedURI, sample: e.sample,
    source: e.sourceFile, line: e.lineNumber, page: document.location.href,
  });
});
"""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


# --- The browser -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing. The browser tests drive Debian's Chromium: install it with "
            "`apt-get install chromium` (Playwright's own browser download does not work here).",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


# --- The database ------------------------------------------------------------------------------------------------


class _Editor:
    """Just enough of a schema editor for the migration's trigger functions."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def execute(self, sql: str) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute(sql)


def _audit_triggers_present(connection: Any) -> bool:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'clinic_audit%'")
        elif connection.vendor == "postgresql":
            cursor.execute("SELECT count(*) FROM pg_trigger WHERE tgname = 'clinic_auditevent_append_only'")
        else:
            return False
        return bool(cursor.fetchone()[0])


_LEDGER_MIGRATION = "backcare.billing.migrations.0002_ledger_append_only"
_PURGE_MIGRATION = "backcare.billing.migrations.0003_ledger_purge"  # lets a LedgerPurge row through the triggers


def _ledger_triggers_present(connection: Any) -> bool:
    """The billing ledger's append-only triggers (billing 0002), which refuse the flush's DELETE as the audit's do."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'billing_%_no_%'")
        elif connection.vendor == "postgresql":
            cursor.execute("SELECT count(*) FROM pg_trigger WHERE tgname = 'billing_invoice_append_only'")
        else:
            return False
        return bool(cursor.fetchone()[0])


def _restore_baseline() -> None:
    """Put back what migrations 0002 and 0005 made: the append-only triggers (the audit trail's and the billing
    ledger's) and the published consent text.

    A transactional test ends by emptying every table; the triggers refuse to delete audit events (as they must), so
    they are dropped just before that and restored here, and the consent text the migration published is lost with
    the rest and published again here.
    """
    from django.apps import apps
    from django.db import connection

    if not _audit_triggers_present(connection):
        import_module(_TRIGGER_MIGRATION).add_triggers(apps, _Editor(connection))
    if not _ledger_triggers_present(connection):
        import_module(_LEDGER_MIGRATION).add_triggers(apps, _Editor(connection))
        import_module(_PURGE_MIGRATION).allow_purge(apps, _Editor(connection))
    import_module(_CONSENT_MIGRATION).publish_consent(apps, None)


def _drop_audit_triggers() -> None:
    from django.apps import apps
    from django.db import connection

    if _audit_triggers_present(connection):
        import_module(_TRIGGER_MIGRATION).drop_triggers(apps, _Editor(connection))
    if _ledger_triggers_present(connection):
        import_module(_LEDGER_MIGRATION).drop_triggers(apps, _Editor(connection))


@pytest.fixture(scope="module")
def _browser_db_baseline(django_db_setup: Any, django_db_blocker: Any) -> Iterator[None]:
    """After the module's last flush, leave the database as the migrations made it for the tests that follow."""
    yield
    with django_db_blocker.unblock():
        _restore_baseline()


@pytest.fixture
def browser_db(_browser_db_baseline: None, live_server: Any, transactional_db: None) -> Iterator[Any]:
    """Database access shared by the test and the live server; yields the live server."""
    from django.conf import settings

    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)  # WhiteNoise warns when it is missing
    _restore_baseline()
    yield live_server
    _drop_audit_triggers()  # so that the flush that follows can empty the audit table and the ledger


# --- The clinic's records ----------------------------------------------------------------------------------------


@pytest.fixture
def live_clinic(browser_db: Any) -> Any:
    from backcare.clinic.models import Clinic

    return Clinic.objects.create(name="Riverside Back Clinic", time_zone="Europe/London", phone="01632 960000")


@pytest.fixture
def live_therapist(live_clinic: Any) -> Any:
    """A therapist ("theo", PASSWORD) qualified for every technique."""
    from django.contrib.auth import get_user_model

    from backcare.clinic.models import StaffMember
    from backcare.clinical.vocabulary import TECHNIQUES

    user = get_user_model().objects.create_user(username="theo", password=PASSWORD, email="theo@x.test")
    return StaffMember.objects.create(
        user=user,
        clinic=live_clinic,
        role="therapist",
        display_name="Theo Therapist",
        qualified_techniques=list(TECHNIQUES),
    )


@dataclass
class Invited:
    client: Any
    link: str
    inbox: Any

    @property
    def path(self) -> str:
        return "/" + self.link.split("/", 3)[3]


@pytest.fixture
def live_client(live_therapist: Any) -> Any:
    """A client of `live_therapist`, not invited to the portal yet."""
    import datetime as dt

    from backcare.clinic.services.clients import create_client

    return create_client(
        staff=live_therapist,
        therapist=live_therapist,
        first_name="Nora",
        last_name="Fielding",
        date_of_birth=dt.date(1979, 6, 2),
        sex="female",
        email="nora@x.test",
    )


@pytest.fixture
def live_smtp(browser_db: Any, settings: Any) -> Iterator[Any]:
    """A real SMTP server on loopback (aiosmtpd) that the live server sends to; yields its inbox. Links in emails
    point at the live server."""
    from scheduling.test_reminders_smtp import smtp_server

    settings.BACKCARE = {**settings.BACKCARE, "SITE_URL": browser_db.url}
    with smtp_server() as (_controller, inbox):
        yield inbox


def emailed_link(inbox: Any, address: str) -> str:
    """The one registration link in the last email to `address`, as the client receives it."""
    from scheduling.test_reminders_smtp import body_text

    messages = inbox.to(address)
    assert messages, f"no email reached {address}"
    links = re.findall(r"https?://\S+/register/\S+/", body_text(messages[-1]))
    assert len(links) == 1, links
    return links[0]


@pytest.fixture
def live_invitation(live_client: Any, live_therapist: Any, live_smtp: Any) -> Invited:
    """`live_client`, invited by the therapist through the service: the link as the SMTP server received it."""
    from backcare.clinic.services.consent import send_invitation

    _invitation, sent = send_invitation(live_client, live_therapist)
    assert sent
    return Invited(client=live_client, link=emailed_link(live_smtp, live_client.email), inbox=live_smtp)


# --- One page in the browser -------------------------------------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-").lower() or "step"


@dataclass
class Ui:
    """The browser of one test: its current page, what went wrong in it, and the test's screenshots.

    `new_person()` starts a separate browser context (another person at another computer, with no shared cookies);
    what went wrong is collected across all of them.
    """

    browser: Any
    base_url: str
    folder: Path
    page: Any = None
    context: Any = None
    console_errors: list[str] = field(default_factory=list)
    csp_violations: list[dict[str, Any]] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    steps: int = 0

    def new_person(self) -> Any:
        self.close()
        self.context = self.browser.new_context(base_url=self.base_url, viewport={"width": 1280, "height": 900})
        self.context.set_default_timeout(TIMEOUT_MS)
        self.context.expose_binding("__backcareCspViolation", lambda _source, found: self.csp_violations.append(found))
        self.context.add_init_script(_CSP_LISTENER)
        self.page = self.context.new_page()
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda error: self.console_errors.append(f"uncaught exception: {error}"))
        self.page.on("response", self._on_response)
        return self.page

    def close(self) -> None:
        if self.context is not None:
            self.context.close()
            self.context = self.page = None

    def _on_console(self, message: Any) -> None:
        if message.type == "error":
            where = message.location.get("url", "") if message.location else ""
            self.console_errors.append(f"{message.text} [{where} on {self.path()}]")

    def _on_response(self, response: Any) -> None:
        if response.status >= 500 and response.status != 501:
            self.server_errors.append(f"{response.status} {response.request.method} {response.url}")

    def unexpected_console_errors(self, *expected: str) -> list[str]:
        """Console errors, less those containing one of `expected` and the browser's own favicon request (the pages
        declare no icon, so Chromium asks for /favicon.ico by itself and logs the 404; no page content causes it)."""
        return [
            e
            for e in self.console_errors
            if not any(x in e for x in expected) and not re.search(r"status of 404 .*/favicon\.ico ", e)
        ]

    def url(self, name: str, *args: Any) -> str:
        from django.urls import reverse

        return self.base_url + reverse(name, args=args)

    def goto(self, target: str, *args: Any, status: int = 200) -> Any:
        """Open a page by URL name (with its arguments) or path, and check the status it answered."""
        url = self.url(target, *args) if not target.startswith(("/", "http")) else target
        if url.startswith("/"):
            url = self.base_url + url
        response = self.page.goto(url)
        assert response is not None, f"no response from {url}"
        assert response.status == status, f"GET {url} answered {response.status}, not {status}: {self.text()[:400]}"
        return response

    def submit(self, button: Any, status: int = 200) -> Any:
        """Click a button that sends a form and wait for the page that comes back (after any redirect)."""
        return self._navigate(button, status, "sending the form")

    def follow(self, link: Any, status: int = 200) -> Any:
        """Click a link and wait for the page it opens."""
        return self._navigate(link, status, "following the link")

    def _navigate(self, target: Any, status: int, what: str) -> Any:
        with self.page.expect_navigation() as navigation:
            target.click()
        response = navigation.value
        assert response is not None, f"{what}: no page came back"
        assert response.status == status, (
            f"{what} gave {response.status} at {response.url}, not {status}: " + (self.text()[:400])
        )
        return response

    def text(self) -> str:
        """The visible text of the page, with white space collapsed, once no part of it is still loading (a part that
        fetches its content after the page, like the calendar's time grid, says so with aria-busy="true")."""
        # Still busy after 15 s, or the page is gone mid-navigation: read what is there.
        with contextlib.suppress(Exception):
            self.page.wait_for_selector("[aria-busy=true]", state="detached", timeout=15_000)
        try:
            return " ".join(self.page.inner_text("body").split())
        except Exception:  # the page may be gone mid-navigation
            return ""

    def path(self) -> str:
        return self.page.url.removeprefix(self.base_url) if self.page is not None else ""

    def shot(self, step: str, part: Any = None, *, full: bool = True) -> Path:
        """A screenshot named after the step, artifacts/browser/<test>/<NN>-<step>.png: the full page, only what the
        window shows (`full=False`), or only `part` (a locator)."""
        self.steps += 1
        path = self.folder / f"{self.steps:02d}-{_slug(step)}.png"
        if part is not None:
            part.screenshot(path=str(path))
        else:
            self.page.screenshot(path=str(path), full_page=full)
        return path


def pass_code_step(ui: Ui, user: Any) -> None:
    """On the code step after the password: type the code the user's authenticator app shows now, computed from the
    key of their app (clinic_fixtures.enrol_app), and go on."""
    from clinic_fixtures import enrol_app, fresh_totp_code

    assert ui.path().startswith("/login/code/"), f"not on the code step but on {ui.path()}"
    ui.page.get_by_label("Code", exact=True).fill(fresh_totp_code(enrol_app(user)))
    ui.submit(ui.page.get_by_role("button", name="Continue"))


@pytest.fixture
def ui(chromium: Any, browser_db: Any, request: pytest.FixtureRequest) -> Iterator[Ui]:
    folder = ARTIFACTS / _slug(request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    screen = Ui(browser=chromium, base_url=browser_db.url, folder=folder)
    screen.new_person()
    try:
        yield screen
    finally:
        if request.node.stash.get(_CALL_FAILED, False) and screen.page is not None:
            try:
                screen.shot("failed")
                (folder / f"{screen.steps:02d}-failed.html").write_text(screen.page.content(), encoding="utf-8")
            except Exception as error:  # keep the test's own failure as the report
                (folder / "failed-no-screenshot.txt").write_text(str(error), encoding="utf-8")
        screen.close()
