"""Why the screening stops a booking, in words fit for whoever reads it (the front desk never reads a clinical
decision, a client never reads the therapist's wording), and which services a client may book online. The booking
pages and the API both take their texts from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

from backcare.clinic import access
from backcare.clinic.models import Client, Intake
from backcare.clinic.services.screening import BLOCKING, Gate
from backcare.clinic.services.screening import treatment_gate as clinical_gate
from backcare.scheduling.models import Service

AWAITING_REVIEW = (
    "The client's intake has not been reviewed yet: only a first assessment can be booked until their therapist "
    "reviews it."
)


@dataclass
class BookingGate(Gate):
    """The clinical gate, and the order of care on top: a client whose latest intake still awaits the therapist's
    review may book a first assessment only (the visit where it is reviewed), as before the first screening."""

    awaiting_review: bool = False


def treatment_gate(client: Client) -> Gate:
    """Whether a treatment (a service that is not a first assessment) may be booked for the client, and why not:
    the screening's hard stops (`clinic.services.screening.treatment_gate`), then the order of care (the client's
    latest intake must be reviewed). The booking service, the pages and the API all ask here."""
    gate = clinical_gate(client)
    if not gate.allowed:
        return gate
    latest = client.intakes.order_by("-started_at", "-pk").first()
    if latest is not None and latest.status == Intake.Status.SUBMITTED:
        return BookingGate(False, AWAITING_REVIEW, gate.screening, awaiting_review=True)
    return gate


def assessment_only(gate: Gate) -> bool:
    """Whether a first assessment may still be booked while treatment may not: before the first screening, and while
    the intake awaits review."""
    return not gate.allowed and (gate.screening is None or getattr(gate, "awaiting_review", False))


def staff_gate_text(user: Any, client: Client, gate: Gate) -> str:
    """Why this client cannot be booked, for staff. Only those who may see the clinical record read the decision."""
    if gate.allowed:
        return ""
    if access.can_see_clinical(user, client) or getattr(gate, "awaiting_review", False):
        return gate.reason
    if gate.screening is None:
        return "No screening yet: only a first assessment can be booked until the client's intake is screened."
    return (
        "This client cannot be booked for treatment at the moment because of their health screening. "
        "Please ask their therapist."
    )


def client_gate_text(gate: Gate) -> str:
    """Why the client cannot book online, in plain language (never the therapist's wording)."""
    if gate.allowed:
        return ""
    if gate.screening is None:
        return (
            "You can book a massage once you have filled in your health questionnaire and the clinic has looked at "
            "it. Until then you can book a first assessment visit, if the clinic offers one."
        )
    if getattr(gate, "awaiting_review", False):
        return (
            "The clinic has not looked at your health questionnaire yet. Until then you can book a first assessment "
            "visit, where your therapist goes through it with you."
        )
    if gate.needs_consent:
        return "Please read and sign the consent form in your portal (or at the clinic) before booking a massage."
    decision = gate.screening.decision
    if decision == "refer_emergency":
        return (
            "Online booking is not possible. Your answers can be signs of a problem that needs urgent care: please "
            f"get medical help now (call {gate.screening.client.clinic.emergency}). Do not wait for a massage "
            "appointment."
        )
    if decision == "refer_urgent":
        return (
            "Online booking is not possible at the moment: please see a doctor first, within the next few days. "
            "Some of your answers need a doctor's check before massage. Then contact the clinic."
        )
    if decision in BLOCKING:
        return (
            "Online booking is paused: massage should wait until you are well again. Please contact the clinic "
            "when you feel better."
        )
    if gate.needs_clearance or decision == "clearance_required":
        return (
            "Before you can book a massage, the clinic needs to record that your doctor agrees massage is safe for "
            "you. Please ask your doctor and send or bring their letter to the clinic."
        )
    return "Online booking is not possible at the moment. Please contact the clinic."


def client_services(client: Client, gate: Gate) -> Any:
    """The services the client may book online: all when the screening allows it, only a first assessment before
    the first screening, none while a screening stops treatment."""
    qs = Service.objects.filter(clinic_id=client.clinic_id, active=True).order_by("name", "pk")
    if gate.allowed:
        return qs
    if assessment_only(gate):
        return qs.filter(assessment=True)
    return qs.none()


def replace_gate_error(error: ValidationError, text: str) -> ValidationError:
    """The booking service words the screening stop for clinicians; swap in the reader's own wording."""
    if hasattr(error, "error_dict") and "client" in error.error_dict and text:
        errors = {k: v for k, v in error.message_dict.items() if k != "client"}
        errors["client"] = [text]
        return ValidationError(errors)
    return error


__all__ = [
    "AWAITING_REVIEW",
    "BookingGate",
    "Gate",
    "assessment_only",
    "client_gate_text",
    "client_services",
    "replace_gate_error",
    "staff_gate_text",
    "treatment_gate",
]
