"""The demo clinic at scale (`backcare demo --scale`): full clinical records from the real services' rules, the
clinical core's screenings, a sealed audit chain, and the demo logins through the real sign-in page."""

from __future__ import annotations

import io
import re
import subprocess

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from process_support import BACKCARE, fresh_database, process_env

SIZES = {"clients": 30, "appointments": 300, "therapists": 4, "rooms": 2}


@pytest.fixture
def scale_demo(db):
    from backcare.demo.scale import build_scale_demo

    return build_scale_demo(**SIZES)


def test_every_client_has_a_full_record(scale_demo):
    from backcare.clinic.models import (
        AuditEvent,
        Client,
        Consent,
        Course,
        Intake,
        Outcome,
        Referral,
        Screening,
        TreatmentSession,
    )
    from backcare.demo.clinic import DEMO_CLINIC_NAME
    from backcare.scheduling.models import Appointment

    clinic_clients = Client.objects.filter(clinic__name=DEMO_CLINIC_NAME)
    assert clinic_clients.count() == 30
    assert Consent.objects.count() == Intake.objects.count() == 30
    assert Intake.objects.filter(status="reviewed").exists() and Intake.objects.filter(document__isnull=False).exists()
    assert Course.objects.filter(status="completed").exists() and TreatmentSession.objects.exists()
    assert Appointment.objects.filter(clinic__name=DEMO_CLINIC_NAME).count() == 300
    counts = scale_demo.counts
    assert counts["screenings"] == Screening.objects.count() and counts["sessions"] == TreatmentSession.objects.count()
    # Each distinct input was screened once, and results came from the clinical core as the services keep them.
    assert 0 < scale_demo.screenings_computed <= Screening.objects.count()
    for screening in Screening.objects.all():
        assert screening.result["id"] == screening.document["id"]
        assert screening.decision == screening.result["decision"]
    # Every session stands on its own health update, with pain before and after; every course on a review that
    # allowed treatment.
    for session in TreatmentSession.objects.select_related("health_update", "course__screening"):
        assert session.health_update.kind == "pre_session"
        assert session.health_update.client_id == session.course.client_id
        assert session.health_update.created_at <= session.held_at
        assert session.outcomes.filter(instrument="pain_nrs").count() == 2
    for course in Course.objects.select_related("screening"):
        assert course.screening.decision not in ("postpone", "refer_urgent", "refer_emergency", "clearance_required")
        assert course.outcomes.filter(instrument="rmdq", timepoint="baseline").count() == 1
        if course.status == "completed":
            assert course.sessions.count() == course.sessions_planned
    # The audit trail has what each service writes.
    assert AuditEvent.objects.filter(action="screen").count() == Screening.objects.count()
    assert AuditEvent.objects.filter(action="record_session").count() == TreatmentSession.objects.count()
    scored = Outcome.objects.filter(instrument__in=["rmdq", "start_back"]).count()
    assert AuditEvent.objects.filter(action="record_outcome").count() == scored
    assert AuditEvent.objects.filter(action="create_referral").count() == Referral.objects.count()
    assert AuditEvent.objects.filter(action="create_client").count() == 30


def test_the_audit_chain_verifies(scale_demo):
    out = io.StringIO()
    call_command("audit", "verify", stdout=out)
    assert "verified" in out.getvalue()


def test_a_second_build_makes_new_rows_after_the_first(scale_demo):
    """Ids are given by the builder: the database's own counters must follow them (PostgreSQL's sequences)."""
    from backcare.clinic.models import Screening
    from backcare.clinic.services.screening import run_screening
    from backcare.demo.clinic import demo_clinic

    clinic = demo_clinic()
    assert clinic is not None
    client = clinic.clients.order_by("pk").first()
    before = Screening.objects.order_by("-pk").first()
    made = run_screening(client, {**before.document, "id": "after"}, kind="intake")
    assert made.pk > before.pk
    out = io.StringIO()
    call_command("audit", "verify", stdout=out)
    assert "verified" in out.getvalue()


@pytest.mark.parametrize("username", ["owner", "therapist1", "frontdesk", "client"])
def test_the_demo_logins_sign_in_through_the_login_page(scale_demo, client, username):
    from backcare.demo.clinic import PASSWORDS

    response = client.post("/login/", {"username": username, "password": PASSWORDS[username]}, follow=True)
    expected = {"client": "/portal/", "owner": "/account/two-factor/setup/"}.get(username, "/dashboard/")
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == expected  # the owner sets up an authenticator app first
    if username == "therapist1":
        page = client.get("/clients/")
        assert page.status_code == 200
        assert re.search(r"clients/\d+/", page.content.decode())


def test_bad_sizes_are_refused_naming_the_option(db):
    with pytest.raises(CommandError, match="--clients must be 1 or more"):
        call_command("demo", "--scale", "--clients", "0", stdout=io.StringIO())
    with pytest.raises(CommandError, match="--therapists must be 2 or more"):
        call_command("demo", "--scale", "--therapists", "1", stdout=io.StringIO())


def test_the_command_builds_it_and_prints_the_logins(tmp_path):
    """The real `backcare demo --scale` on a database of its own, then `backcare audit verify` on it."""
    fresh_database("scale_demo_command")
    env = process_env(tmp_path, "scale_demo_command")

    def backcare(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BACKCARE), *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False
        )

    done = backcare("demo", "--scale", "--clients", "25", "--appointments", "100", "--therapists", "3", "--rooms", "2")
    assert done.returncode == 0, done.stderr
    assert "Built 25 clients" in done.stdout
    for username in ("owner", "therapist1", "frontdesk"):
        assert re.search(rf"^\s+{username}\s+password demo-{username}-2026", done.stdout, re.M), done.stdout
    verified = backcare("audit", "verify")
    assert verified.returncode == 0, verified.stderr
    again = backcare("demo", "--scale", "--clients", "25")
    assert again.returncode != 0 and "already holds 1 clinic" in again.stderr
