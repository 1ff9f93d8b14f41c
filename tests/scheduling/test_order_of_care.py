"""The order of care: a client whose intake is submitted but not yet reviewed by their therapist books a first
assessment only (the visit where it is reviewed); treatment can be booked once it is reviewed. Before the first
screening only a first assessment could already be booked (`gates.treatment_gate`). The booking service refuses it
for pages and API alike, each worded for its reader."""

from __future__ import annotations

import html as html_lib
import json

import pytest
from django.core.exceptions import ValidationError
from django.test import Client as HttpClient
from django.urls import reverse
from sched_helpers import at, future_day

from backcare.api import tokens
from backcare.clinic.models import Intake
from backcare.scheduling.gates import AWAITING_REVIEW
from backcare.scheduling.services import booking
from clinic_fixtures import login

FOR_CLIENT = "The clinic has not looked at your health questionnaire yet."


@pytest.fixture
def awaiting(world):
    """Cora's latest intake, submitted (screened) and waiting for the therapist's review."""
    return Intake.objects.create(client=world.cora, status=Intake.Status.SUBMITTED)


def book(world, service, hour=10, by=None):
    return booking.book_appointment(
        world.cora,
        service,
        at(future_day(7), hour),
        therapist=world.therapist,
        room=world.room1,
        by=by or world.front_desk.user,
    )


def text(response):
    return html_lib.unescape(response.content.decode())


def test_treatment_waits_for_the_intake_review_but_the_assessment_does_not(world, awaiting):
    with pytest.raises(ValidationError) as refused:
        book(world, world.massage)
    assert refused.value.message_dict["client"] == [AWAITING_REVIEW]
    assert book(world, world.assessment).status == "booked"
    awaiting.status = Intake.Status.REVIEWED
    awaiting.save()
    assert book(world, world.massage, hour=14).status == "booked"


def test_the_booking_page_names_the_rule_on_the_client_field(client, world, awaiting):
    login(client, world.front_desk.user)
    data = {
        "client": world.cora.pk,
        "service": world.massage.pk,
        "day": future_day(7).isoformat(),
        "time": "10:00",
        "therapist": world.therapist.pk,
        "room": world.room1.pk,
    }
    page = text(client.post(reverse("appointment_book"), data))
    assert AWAITING_REVIEW in page and not world.cora.appointments.exists()


def test_the_portal_offers_only_the_assessment_and_says_why(client, world, awaiting):
    login(client, world.cora.user)
    page = text(client.get(reverse("portal_book")))
    assert FOR_CLIENT in page
    assert "First assessment" in page and "Remedial massage" not in page
    with pytest.raises(ValidationError):
        book(world, world.massage, by=world.cora.user)


def test_the_api_refuses_treatment_with_the_same_rule(world, awaiting):
    _, secret = tokens.create_token(world.front_desk.user, name="desk", scopes=["read", "write"])
    body = {
        "client": world.cora.pk,
        "service": world.massage.pk,
        "therapist": world.therapist.pk,
        "room": world.room1.pk,
        "starts_at": at(future_day(7), 10).isoformat(),
    }
    response = HttpClient().post(
        "/api/appointments",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 422
    assert AWAITING_REVIEW in response.content.decode()
    body["service"] = world.assessment.pk
    response = HttpClient().post(
        "/api/appointments",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 201
