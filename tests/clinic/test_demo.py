"""The demo clinic: `backcare demo` through the real command, and what it builds, checked with the services."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import BACKCARE

# Run inside the demo's own database by `backcare manage shell`; prints one line of JSON describing every client.
SUMMARY = """
import json
from backcare.clinic.models import AuditEvent, Clinic, Client, StaffMember
from backcare.clinic.services.courses import reassessment_due, sessions_done
from backcare.clinic.services.outcomes import review_course
from backcare.clinic.services.screening import treatment_gate
out = {"clinics": list(Clinic.objects.values_list("name", flat=True)),
       "staff": sorted((s.user.username, s.role) for s in StaffMember.objects.all()), "clients": {}}
for c in Client.objects.all():
    gate = treatment_gate(c)
    course = c.courses.order_by("-started_at").first()
    row = {
        "intakes": [i.status for i in c.intakes.all()],
        "invitations": c.invitations.count(),
        "decisions": [s.decision for s in c.screenings.order_by("created_at", "id")],
        "allowed": gate.allowed,
        "clearance_pending": gate.clearance_pending,
        "referrals": [r.urgency for r in c.referrals.all()],
        "login": c.user.username if c.user else None,
        "consents": c.consents.count(),
        "audited": AuditEvent.objects.filter(client=c).count(),
        "course": None,
    }
    if course is not None:
        review = review_course(course)
        row["course"] = {
            "status": course.status,
            "done": sessions_done(course),
            "planned": course.sessions_planned,
            "reassessment_due": reassessment_due(course),
            "rmdq": {o.timepoint: o.score for o in course.outcomes.filter(instrument="rmdq")},
            "rmdq_meaningful": review.rmdq.meaningful if review.rmdq else None,
            "session_days_ago": [(course.started_at.now(course.started_at.tzinfo) - s.held_at).days
                                 for s in course.sessions.all()],
        }
    out["clients"][c.full_name] = row
print(json.dumps(out))
"""


def command_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment a person has: no test settings, this data folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKCARE_", "DJANGO_"))}
    env.update({"BACKCARE_DATA_DIR": str(data_dir), "PYTHONIOENCODING": "utf-8"})
    env.update(extra)
    return env


def backcare(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    assert BACKCARE.exists(), f"the backcare command is not installed at {BACKCARE}; run `make test`"
    return subprocess.run(
        [str(BACKCARE), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=command_env(data_dir, **env),
        timeout=180,
        cwd=data_dir,
    )


def summary(data_dir: Path) -> dict[str, Any]:
    done = backcare(data_dir, "manage", "shell", "--no-imports", "-c", SUMMARY)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


#: The tests that use the module's demo stay on one xdist worker, which builds it once.
uses_demo = pytest.mark.xdist_group("clinic-demo-fixture")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    data_dir = tmp_path_factory.mktemp("demo")
    return data_dir, backcare(data_dir, "demo")


@uses_demo
def test_demo_loads_and_prints_the_logins(demo):
    data_dir, done = demo
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert (data_dir / "backcare.sqlite3").exists()
    for username, password in [
        ("owner", "demo-owner-2026"),
        ("therapist1", "demo-therapist1-2026"),
        ("therapist2", "demo-therapist2-2026"),
        ("frontdesk", "demo-frontdesk-2026"),
        ("client", "demo-client-2026"),
    ]:
        line = next(line for line in done.stdout.splitlines() if line.strip().startswith(username + " "))
        assert password in line
    assert "The owner also signs in with an authenticator app" in done.stdout  # set up at the first sign-in
    assert "http://localhost:8000/" in done.stdout
    assert "backcare serve" in done.stdout


@uses_demo
def test_demo_covers_every_state(demo):
    data_dir, done = demo
    assert done.returncode == 0, done.stderr
    state = summary(data_dir)
    assert state["clinics"] == ["Backcare Demo Clinic"]
    assert state["staff"] == [
        ["frontdesk", "front_desk"],
        ["owner", "owner"],
        ["therapist1", "therapist"],
        ["therapist2", "therapist"],
    ]
    clients = state["clients"]
    assert len(clients) == 6

    pending = clients["Nadia Kowalski"]
    assert pending["intakes"] == ["draft"] and pending["invitations"] == 1
    assert pending["decisions"] == [] and not pending["allowed"]
    assert pending["login"] == "client" and pending["consents"] == 1

    clearance = clients["Gareth Lloyd"]
    assert clearance["intakes"] == ["submitted"]
    assert clearance["decisions"] == ["clearance_required"]
    assert clearance["clearance_pending"] == ["clearance.dvt_history"] and not clearance["allowed"]

    mid = clients["Maya Okafor"]
    assert mid["intakes"] == ["reviewed"] and mid["allowed"]
    assert mid["course"]["status"] == "active"
    assert mid["course"]["done"] == 1 and mid["course"]["planned"] == 4
    assert not mid["course"]["reassessment_due"]

    due = clients["Tomasz Nowak"]
    assert due["course"]["status"] == "active" and due["course"]["done"] == 2
    assert due["course"]["reassessment_due"]
    assert "reassessment" not in due["course"]["rmdq"]
    assert due["decisions"][0] == "proceed_with_precautions"

    discharged = clients["Eleanor Price"]
    course = discharged["course"]
    assert course["status"] == "completed" and course["done"] == 4
    assert set(course["rmdq"]) == {"baseline", "reassessment", "discharge"}
    assert course["rmdq"]["baseline"] - course["rmdq"]["discharge"] >= 5 and course["rmdq_meaningful"]

    referred = clients["Derek Holt"]
    assert referred["decisions"] == ["refer_emergency"] and not referred["allowed"]
    assert referred["referrals"] == ["emergency"] and referred["course"] is None

    for name, row in clients.items():
        assert row["audited"] >= 2, f"{name}: the demo's changes must be in the audit trail"
        if row["course"]:
            days = row["course"]["session_days_ago"]
            assert days == sorted(days, reverse=True), f"{name}: sessions out of order"
            assert all(7 <= d <= 60 for d in days), f"{name}: sessions should be dated in past weeks, got {days}"


@uses_demo
def test_a_second_run_refuses_and_changes_nothing(demo):
    data_dir, done = demo
    assert done.returncode == 0, done.stderr
    again = backcare(data_dir, "demo")
    assert again.returncode != 0
    assert "already holds 1 clinic" in again.stderr and "--if-empty" in again.stderr
    assert "Traceback" not in again.stderr
    assert len(summary(data_dir)["clients"]) == 6


@uses_demo
def test_if_empty_does_nothing_and_says_so(demo):
    data_dir, done = demo
    assert done.returncode == 0, done.stderr
    again = backcare(data_dir, "demo", "--if-empty", "--port", "8123")
    assert again.returncode == 0, again.stderr
    assert "already loaded; nothing to do" in again.stdout
    assert "demo-therapist1-2026" in again.stdout and "http://localhost:8123/" in again.stdout
    assert len(summary(data_dir)["clients"]) == 6


def test_if_empty_leaves_a_real_clinic_alone(tmp_path):
    made = backcare(
        tmp_path,
        "manage",
        "shell",
        "--no-imports",
        "-c",
        "from django.core.management import call_command; "
        "call_command('migrate', verbosity=0); from backcare.clinic.models import Clinic; "
        "Clinic.objects.create(name='Real Clinic')",
    )
    assert made.returncode == 0, made.stderr
    done = backcare(tmp_path, "demo", "--if-empty")
    assert done.returncode == 0, done.stderr
    assert "not loaded" in done.stdout and "password" not in done.stdout
    assert summary(tmp_path)["clinics"] == ["Real Clinic"]
    refused = backcare(tmp_path, "demo")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr


def test_demo_is_never_loaded_in_production(tmp_path):
    done = backcare(
        tmp_path,
        "demo",
        BACKCARE_ENV="production",
        BACKCARE_SECRET_KEY="demo-refused-in-production-" + "k3y" * 12,
        BACKCARE_AUDIT_KEY="1:" + "a" * 40,
        BACKCARE_ALLOWED_HOSTS="clinic.example.org",
    )
    assert done.returncode != 0
    assert "not loaded in production" in done.stderr and "Traceback" not in done.stderr
    assert "password" not in done.stdout


# In-process: the same builder in the test database, to look closer with the ORM.


@pytest.mark.django_db
def test_demo_goes_through_the_services():
    from django.contrib.auth import get_user_model

    from backcare.clinic.models import AuditEvent, Outcome, Screening, TreatmentSession
    from backcare.demo.clinic import build_demo, working_logins

    build_demo()
    # Every screening, session and outcome the services made has its audit event.
    assert AuditEvent.objects.filter(action="screen").count() == Screening.objects.count()
    assert AuditEvent.objects.filter(action="record_session").count() == TreatmentSession.objects.count() == 7
    rmdq = Outcome.objects.filter(instrument="rmdq").count()
    start_back = Outcome.objects.filter(instrument="start_back").count()
    assert AuditEvent.objects.filter(action="record_outcome").count() == rmdq + start_back
    assert AuditEvent.objects.filter(action="create_referral").count() == 1
    # Each session has the health update it was recorded on, and pain before and after.
    for session in TreatmentSession.objects.all():
        assert session.health_update.kind == "pre_session"
        assert session.health_update.created_at <= session.held_at
        assert session.outcomes.filter(instrument="pain_nrs").count() == 2
        assert session.pain_after < session.pain_before

    # A login whose password was changed is no longer printed as a demo login.
    assert [login.username for login in working_logins()] == [
        "owner",
        "therapist1",
        "therapist2",
        "frontdesk",
        "client",
    ]
    owner = get_user_model().objects.get(username="owner")
    owner.set_password("a-private-password-77")
    owner.save()
    assert "owner" not in [login.username for login in working_logins()]


@pytest.mark.django_db
def test_demo_logins_open_the_right_pages(client):
    from backcare.demo.clinic import LOGINS, build_demo

    build_demo()
    for login in LOGINS:
        client.logout()
        response = client.post("/login/", {"username": login.username, "password": login.password}, follow=True)
        expected = {"client": "/portal/", "owner": "/account/two-factor/setup/"}.get(login.username, "/dashboard/")
        assert response.redirect_chain[-1][0] == expected, login.username  # the owner sets up an app first
        assert response.status_code == 200, login.username


@pytest.mark.django_db
def test_demo_sends_no_email():
    from django.core import mail

    from backcare.clinic.models import Invitation
    from backcare.common import outbox
    from backcare.common.models import OutboundMessage
    from backcare.demo.clinic import build_demo

    build_demo()
    assert Invitation.objects.count() == 1
    assert outbox.send_due().claimed == 0  # nothing the demo queued is ever sent
    assert mail.outbox == []
    assert OutboundMessage.objects.exists()
    assert set(OutboundMessage.objects.values_list("status", flat=True)) == {"cancelled"}


def app_code(secret: str) -> str:
    """What an authenticator app shows now for this base32 key (RFC 6238, with django-otp's code)."""
    import base64
    import time

    from django_otp.oath import TOTP

    totp = TOTP(base64.b32decode(secret + "=" * (-len(secret) % 8)))
    totp.time = time.time()
    return f"{totp.token():06d}"


@pytest.mark.django_db
@pytest.mark.parametrize("username", ["owner", "therapist1", "therapist2", "frontdesk", "client"])
def test_every_page_reachable_with_the_demo_data_answers_without_an_error(client, username):
    """Follow every link from the start page (three clicks deep) as each demo user: no page may fail."""
    import re
    from urllib.parse import urldefrag, urlsplit

    from backcare.demo.clinic import PASSWORDS, build_demo

    build_demo()
    response = client.post("/login/", {"username": username, "password": PASSWORDS[username]}, follow=True)
    assert response.status_code == 200
    if response.redirect_chain[-1][0] == "/account/two-factor/setup/":  # the owner sets up an app first
        secret = re.search(r'data-secret="([A-Z2-7]+)"', response.content.decode())
        assert secret
        client.post("/account/two-factor/setup/", {"code": app_code(secret.group(1))})
        response = client.get("/", follow=True)
    start = response.redirect_chain[-1][0]
    assert start in ("/dashboard/", "/portal/")
    seen: set[str] = {start}
    frontier = [(start, response)]
    failures = []
    for _depth in range(3):
        found = []
        for _url, page in frontier:
            if "text/html" not in page.get("Content-Type", ""):
                continue
            for href in re.findall(r'href="([^"]+)"', page.content.decode()):
                href = urldefrag(href.replace("&amp;", "&"))[0]
                parts = urlsplit(href)
                if parts.scheme or parts.netloc or not href.startswith("/"):
                    continue
                if href.startswith(("/logout", "/admin", "/static")) or href in seen:
                    continue
                seen.add(href)
                found.append(href)
        frontier = []
        for href in found[:80]:
            page = client.get(href)
            if page.status_code >= 500 and page.status_code != 501:  # 501: a page not built yet
                failures.append((href, page.status_code))
            frontier.append((href, page))
    assert not failures, failures
    assert len(seen) > 1
