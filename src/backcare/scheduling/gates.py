"""Why the screening stops a booking, in words fit for whoever reads it (the front desk never reads a clinical
decision, a client never reads the therapist's wording), and which services a client may book online. The booking
pages and the API both take their texts from here.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from backcare.clinic import access
from backcare.clinic.models import Client
from backcare.clinic.services.screening import BLOCKING, Gate, treatment_gate
from backcare.scheduling.models import Service


def staff_gate_text(user: Any, client: Client, gate: Gate) -> str:
    """Why this client cannot be booked, for staff. Only those who may see the clinical record read the decision."""
    if gate.allowed:
        return ""
    if access.can_see_clinical(user, client):
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
    if gate.screening is None:
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
    "Gate",
    "client_gate_text",
    "client_services",
    "replace_gate_error",
    "staff_gate_text",
    "treatment_gate",
]
