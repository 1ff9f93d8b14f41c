"""What of the ledger a user may read, as querysets (the API's lists and details; the pages decide the same way,
docs/billing.md "Who sees what"):

- owner and front desk: every document, payment and package of their clinic;
- a therapist: the documents of their own sessions and the payments against them, and the packages of the clients
  whose record they may see;
- a client: their own.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet

from backcare.billing.models import Invoice, Package, Payment
from backcare.clinic import access
from backcare.clinic.models import Role


def invoices_visible(user: Any) -> QuerySet[Invoice]:
    staff = access.staff_of(user)
    if staff is not None:
        qs = Invoice.objects.filter(clinic=staff.clinic)
        return qs.filter(therapist=staff) if staff.role == Role.THERAPIST else qs
    client = access.client_of(user)
    if client is not None:
        return Invoice.objects.filter(client=client)
    return Invoice.objects.none()


def payments_visible(user: Any) -> QuerySet[Payment]:
    staff = access.staff_of(user)
    if staff is not None:
        qs = Payment.objects.filter(clinic=staff.clinic)
        return qs.filter(invoice__therapist=staff) if staff.role == Role.THERAPIST else qs
    client = access.client_of(user)
    if client is not None:
        return Payment.objects.filter(client=client)
    return Payment.objects.none()


def packages_visible(user: Any) -> QuerySet[Package]:
    """With `used`: the number of sessions redeemed so far."""
    staff = access.staff_of(user)
    client = access.client_of(user)
    if staff is not None:
        qs = Package.objects.filter(clinic=staff.clinic)
        if staff.role == Role.THERAPIST:
            qs = qs.filter(client__in=access.clinical_clients_for(user))
    elif client is not None:
        qs = Package.objects.filter(client=client)
    else:
        qs = Package.objects.none()
    return qs.annotate(used=Count("redemptions"))
