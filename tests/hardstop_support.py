"""Helpers for the hard-stop tests: an episode of back pain (a submitted intake and its screening) and a clearance."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from backcare.clinic.models import Intake
from backcare.clinic.services.screening import record_clearance, run_screening
from clinic_fixtures import sign
from conftest import make_intake

YEAR_AGO = timezone.now() - dt.timedelta(days=380)


def episode(client: Any, *findings: Any, when: Any = None, **changes: Any) -> Any:
    """A submitted intake (one episode of back pain) and its screening, made `when`."""
    when = when or timezone.now()
    sign(client)
    document = make_intake(*findings, **changes)
    document["id"] = f"client-{client.pk}-{when:%Y%m%d%H%M%S%f}"
    document["age"] = client.age_on()
    intake = Intake.objects.create(
        client=client, status=Intake.Status.SUBMITTED, document=document, started_at=when, submitted_at=when
    )
    screening = run_screening(client, document, kind="intake", intake=intake)
    screening.created_at = when
    screening.save(update_fields=["created_at"])
    return screening


def clear(screening: Any, staff: Any, *, given_on: Any = None, **extra: Any) -> Any:
    return record_clearance(
        screening,
        given_by="Dr A. Jones, GP",
        given_on=given_on or timezone.localdate(),
        note="Massage may go ahead.",
        staff=staff,
        **extra,
    )
