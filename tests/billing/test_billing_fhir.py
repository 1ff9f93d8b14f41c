"""Billing in the client's FHIR R4 bundle: each invoice and credit note an Invoice (status, totalNet and totalGross
as Money), each line a ChargeItem (subject the Patient, the Appointment it charges for, its occurrence and code)
that the Invoice's lineItem.chargeItemReference points at; the bundle validates. The importer leaves financial
records out and counts them in its result (docs/fhir.md)."""

from __future__ import annotations

import copy

from fhirclient.models.bundle import Bundle

from matrix_support import build_world


def by_url(bundle):
    return {e["fullUrl"]: e["resource"] for e in bundle["entry"]}


def test_invoices_and_charge_items_validate_and_refer_to_the_patient_and_appointment(db):
    from backcare.billing.models import Invoice
    from backcare.interop.fhir.export import patient_bundle
    from backcare.interop.fhir.validation import validate_bundle

    world = build_world(billing=True)
    x = world.x.client
    bundle = patient_bundle(x)  # validated inside; raises ExportInvalid otherwise
    assert validate_bundle(bundle) == []
    assert Bundle(copy.deepcopy(bundle), strict=True).as_json() == bundle
    resources = by_url(bundle)
    patient = next(url for url, r in resources.items() if r["resourceType"] == "Patient")
    invoices = [r for r in resources.values() if r["resourceType"] == "Invoice"]
    assert len(invoices) == Invoice.objects.filter(client=x).count()
    session = Invoice.objects.get(pk=world.x.ids["invoice"])
    fhir = next(r for r in invoices if r["identifier"][0]["value"] == str(session.number))
    assert fhir["status"] == "issued" and fhir["subject"]["reference"] == patient
    assert fhir["totalNet"] == {"value": 60.0, "currency": "GBP"} and fhir["totalGross"]["value"] == 60.0
    [item] = fhir["lineItem"]
    charge = resources[item["chargeItemReference"]["reference"]]
    assert charge["resourceType"] == "ChargeItem" and charge["status"] == "billed"
    assert charge["subject"]["reference"] == patient
    appointment = resources[charge["supportingInformation"][0]["reference"]]
    assert appointment["resourceType"] == "Appointment"
    assert charge["occurrencePeriod"]["start"] == appointment["start"]
    assert charge["code"]["coding"][0]["code"] == "session" and charge["priceOverride"]["value"] == 60.0
    note = next(r for r in invoices if r["type"]["coding"][0]["code"] == "credit_note")
    assert note["totalGross"]["value"] == -5.0 and str(session.number) in note["note"][0]["text"]
    # nothing of Y's billing
    y_numbers = {str(n) for n in Invoice.objects.filter(client=world.y.client).values_list("number", flat=True)}
    assert y_numbers.isdisjoint({r["identifier"][0]["value"] for r in invoices})


def test_the_importer_counts_financial_records_as_not_imported(db):
    from backcare.clinic.models import Clinic
    from backcare.interop.fhir.export import patient_bundle
    from backcare.interop.fhir.importer import import_bundle

    world = build_world(billing=True)
    bundle = patient_bundle(world.x.client)
    charges = sum(1 for e in bundle["entry"] if e["resource"]["resourceType"] == "ChargeItem")
    other = Clinic.objects.create(name="Second clinic", time_zone="UTC")
    from backcare.clinic.models import StaffMember

    owner = StaffMember.objects.create(
        clinic=other, user=world.owner.user.__class__.objects.create(username="second-owner"), role="owner"
    )
    result = import_bundle(bundle, clinic=other, user=owner.user)
    assert result.not_imported["Invoice"] == 4 and result.not_imported["ChargeItem"] == charges
    from backcare.billing.models import Invoice

    assert not Invoice.objects.filter(clinic=other).exists()
