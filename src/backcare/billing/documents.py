"""The invoice, credit note and receipt PDF: the clinic's legal details, the therapist's registration number (what
insurers ask of a massage receipt), the lines, tax and what was paid. An invoice paid in full prints as a receipt."""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone

from backcare.billing import services
from backcare.billing.models import Invoice
from backcare.clinic.documents import Pdf, html_to_pdf, slug
from backcare.scheduling.services.availability import clinic_zone


def invoice_context(invoice: Invoice) -> dict[str, Any]:
    paid = invoice.kind == Invoice.Kind.INVOICE and invoice.total > 0 and services.outstanding(invoice) == 0
    title = "Receipt" if paid else invoice.get_kind_display()
    return {
        "invoice": invoice,
        "title": title,
        "billing": services.settings_for(invoice.clinic),
        "clinic": invoice.clinic,
        "client": invoice.client,
        "lines": list(invoice.lines.all()),
        "payments": list(invoice.payments.all()),
        "outstanding": services.outstanding(invoice) if invoice.kind == Invoice.Kind.INVOICE else 0,
        "appointment": invoice.appointment,
    }


def invoice_html(invoice: Invoice) -> str:
    with timezone.override(clinic_zone(invoice.clinic)):
        return render_to_string("billing/pdf/invoice.html", invoice_context(invoice))


def invoice_pdf(invoice: Invoice) -> Pdf:
    html = invoice_html(invoice)
    kind = "credit-note" if invoice.kind == Invoice.Kind.CREDIT_NOTE else "invoice"
    name = f"{kind}-{invoice.number}-{slug(invoice.client.last_name)}.pdf"
    return Pdf(html_to_pdf(html), name, html)
