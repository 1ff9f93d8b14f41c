"""Every write to the ledger, and the reads the pages share (balance, statement, takings).

Each write runs in `locking.ledger_transaction` and records its audit event in the same transaction. Documents are
issued through `_issue`, the only place a number is taken.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max, Sum
from django.utils import timezone

from backcare.billing import locking
from backcare.billing.models import (
    BillingSettings,
    Invoice,
    InvoiceCounter,
    InvoiceLine,
    Package,
    Payment,
    Practitioner,
    Price,
    Redemption,
)
from backcare.billing.money import format_money, split_gross, tax_on
from backcare.clinic import access, audit
from backcare.clinic.models import Client, Clinic, Course, Role, StaffMember
from backcare.common.rowlock import locked
from backcare.scheduling.models import Appointment, Service

FEE_SOURCES = (Invoice.Source.LATE_CANCELLATION, Invoice.Source.NO_SHOW)


def settings_for(clinic: Clinic) -> BillingSettings:
    found, _ = BillingSettings.objects.get_or_create(clinic=clinic)
    return found


def price_for(service: Service, therapist: StaffMember | None) -> int | None:
    """The therapist's own price for the service where one is set, else the service's price; None: not priced."""
    prices = {p.therapist_id: p.amount for p in Price.objects.filter(service=service)}
    if therapist is not None and therapist.pk in prices:
        return prices[therapist.pk]
    return prices.get(None)


def set_price(
    service: Service, amount: int, *, by: Any, therapist: StaffMember | None = None, request: Any = None
) -> Price:
    """The owner sets a service's price, or one therapist's price for it (audited with what it was)."""
    owner = access.require_staff(by, Role.OWNER)
    if service.clinic_id != owner.clinic_id or (therapist is not None and therapist.clinic_id != owner.clinic_id):
        raise PermissionDenied("Not a service or therapist of your clinic.")
    with locking.ledger_transaction():
        before = Price.objects.filter(service=service, therapist=therapist).values_list("amount", flat=True).first()
        price, _ = Price.objects.update_or_create(
            service=service, therapist=therapist, defaults={"amount": amount, "clinic": service.clinic}
        )
        detail = {"service": service.pk, "therapist": getattr(therapist, "pk", None), "price": [before, amount]}
        audit.record(by, "update", obj=price, detail=detail, request=request)
    return price


def remove_price(price: Price, *, by: Any, request: Any = None) -> None:
    """The owner removes a therapist's own price (the service's price applies again) or a service's price."""
    owner = access.require_staff(by, Role.OWNER)
    if price.clinic_id != owner.clinic_id:
        raise PermissionDenied("Not a price of your clinic.")
    with locking.ledger_transaction():
        detail = {"service": price.service_id, "therapist": price.therapist_id, "price": [price.amount, None]}
        audit.record(by, "delete", obj=price, detail=detail, request=request)
        Price.objects.filter(pk=price.pk).delete()


BILLING_FIELDS = (
    "currency",
    "tax_exempt",
    "tax_rate_bp",
    "tax_label",
    "legal_name",
    "tax_number",
    "company_number",
    "payment_terms_days",
)
FEE_FIELDS = ("late_cancellation_fee", "no_show_fee")


def update_billing_settings(
    clinic: Clinic, values: dict[str, Any], *, by: Any, request: Any = None, fields: tuple[str, ...] = BILLING_FIELDS
) -> dict[str, list[Any]]:
    """The owner changes the clinic's billing settings; returns (and audits) {field: [before, after]}.

    The currency cannot change once a document was issued: every amount is kept in its minor unit, so the
    ledger's history would change meaning."""
    owner = access.require_staff(by, Role.OWNER)
    if owner.clinic_id != clinic.pk:
        raise PermissionDenied("Only the clinic's owner changes its billing.")
    unknown = set(values) - set(fields)
    if unknown:
        raise ValidationError(f"Not a billing setting: {', '.join(sorted(unknown))}.")
    with locking.ledger_transaction():
        billing = settings_for(clinic)
        billing = locked(BillingSettings.objects.all()).get(pk=billing.pk)
        changed = {k: [getattr(billing, k), v] for k, v in values.items() if getattr(billing, k) != v}
        if "currency" in changed and Invoice.objects.filter(clinic=clinic).exists():
            raise ValidationError(
                {"currency": f"Currency: documents were issued in {billing.currency}; it can no longer change."}
            )
        if not changed:
            return {}
        for name, (_, value) in changed.items():
            setattr(billing, name, value)
        try:
            billing.full_clean(exclude=["clinic"])
        except ValidationError as error:
            raise ValidationError({k: [f"{k.replace('_', ' ').capitalize()}: {m}" for m in v]
                                   for k, v in error.message_dict.items()}) from None  # fmt: skip
        billing.save(update_fields=list(changed))
        audit.record(by, "billing_settings_update", obj=billing, detail={"changed": changed}, request=request)
    return changed


def update_fee_policy(clinic: Clinic, values: dict[str, int], *, by: Any, request: Any = None) -> dict[str, list[Any]]:
    """The late-cancellation and no-show fees (minor units; 0: none), audited as the other billing settings."""
    return update_billing_settings(clinic, values, by=by, request=request, fields=FEE_FIELDS)


def price_table(clinic: Clinic) -> list[tuple[Service, Price | None, list[Price]]]:
    """Each service of the clinic with its price and the therapists' own prices (two queries)."""
    prices = list(Price.objects.filter(clinic=clinic).select_related("therapist").order_by("therapist__display_name"))
    table = []
    for service in Service.objects.filter(clinic=clinic).order_by("-active", "name"):
        own = [p for p in prices if p.service_id == service.pk]
        table.append((service, next((p for p in own if p.therapist_id is None), None),
                      [p for p in own if p.therapist_id is not None]))  # fmt: skip
    return table


def policy_text(clinic: Clinic) -> list[str]:
    """The fee policy in words, for reminders and pages ([] when the clinic charges no fee)."""
    billing = settings_for(clinic)
    said = []
    if billing.late_cancellation_fee:
        said.append(
            f"Cancelling or moving less than {clinic.cancellation_hours} hours before the appointment is charged "
            f"a late-cancellation fee of {format_money(billing.late_cancellation_fee, billing.currency)}."
        )
    if billing.no_show_fee:
        said.append(f"Missing the appointment without notice is charged a no-show fee of "
                    f"{format_money(billing.no_show_fee, billing.currency)}.")  # fmt: skip
    return said


# --- numbering -------------------------------------------------------------------------------------------------------


def _next_number(clinic: Clinic) -> int:
    """The clinic's next document number, inside the caller's transaction (see `backcare.billing.locking`)."""
    InvoiceCounter.objects.bulk_create([InvoiceCounter(clinic=clinic)], ignore_conflicts=True)
    counter = locked(InvoiceCounter.objects.all()).get(clinic=clinic)
    locking.pause()
    counter.last_number += 1
    InvoiceCounter.objects.filter(pk=counter.pk).update(last_number=counter.last_number)
    return counter.last_number


def _unlocked_number(clinic: Clinic) -> int:
    """The control's number: the highest so far plus one, read without a lock (the race the counter prevents)."""
    highest = Invoice.objects.filter(clinic=clinic).aggregate(n=Max("number"))["n"] or 0
    locking.pause()
    return int(highest) + 1


@dataclass(frozen=True)
class Line:
    description: str
    unit_amount: int
    quantity: int = 1


def _issue(
    client: Client,
    lines: list[Line],
    *,
    source: str,
    by: Any,
    appointment: Appointment | None = None,
    therapist: StaffMember | None = None,
    kind: str = Invoice.Kind.INVOICE,
    credits: Invoice | None = None,
    reason: str = "",
    gross: int | None = None,
    request: Any = None,
) -> Invoice:
    clinic = client.clinic
    billing = settings_for(clinic)
    rate = credits.tax_rate_bp if credits is not None else (0 if billing.tax_exempt else billing.tax_rate_bp)
    if gross is not None:  # a credit note of part of an invoice: the amount given includes tax
        net, tax = split_gross(gross, rate)
    else:
        net = sum(line.unit_amount * line.quantity for line in lines)
        tax = tax_on(net, rate)
    registration = ""
    if therapist is not None:
        practitioner = Practitioner.objects.filter(staff=therapist).first()
        if practitioner is not None and practitioner.registration_number:
            registration = f"{practitioner.registration_body} {practitioner.registration_number}".strip()
    values = {
        "clinic": clinic,
        "client": client,
        "kind": kind,
        "source": source,
        "credits": credits,
        "appointment": appointment,
        "therapist": therapist,
        "therapist_name": therapist.display_name if therapist is not None else "",
        "therapist_registration": registration,
        "currency": credits.currency if credits is not None else billing.currency,
        "tax_rate_bp": rate,
        "net": net,
        "tax": tax,
        "total": net + tax,
        "reason": reason,
        "issued_by": by if getattr(by, "is_authenticated", False) else None,
    }
    if not locking.COUNTER_LOCK:
        number = _unlocked_number(clinic)
        with transaction.atomic():
            return _write(Invoice(number=number, **values), lines, by, request)
    with locking.ledger_transaction():
        return _write(Invoice(number=_next_number(clinic), **values), lines, by, request)


def _write(invoice: Invoice, lines: list[Line], by: Any, request: Any) -> Invoice:
    invoice.save()
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            invoice=invoice,
            description=line.description[:300],
            unit_amount=line.unit_amount,
            quantity=line.quantity,
            amount=line.unit_amount * line.quantity,
        )
        for line in lines
    )
    audit.record(
        by,
        "create",
        client=invoice.client,
        obj=invoice,
        detail={"kind": invoice.kind, "number": invoice.number, "total": invoice.total, "source": invoice.source},
        request=request,
    )
    return invoice


# --- invoices for appointments ---------------------------------------------------------------------------------------


def _local_day(appointment: Appointment) -> dt.date:
    from backcare.scheduling.services.availability import clinic_zone

    return appointment.starts_at.astimezone(clinic_zone(appointment.clinic)).date()


def _session_line(appointment: Appointment, amount: int) -> Line:
    when = timezone.localtime(appointment.starts_at).strftime("%d %b %Y %H:%M")
    return Line(f"{appointment.service.name}, {when}, with {appointment.therapist.display_name}", amount)


def bill_session(appointment: Appointment, *, by: Any, request: Any = None) -> Invoice | Redemption | None:
    """A completed session: paid from the client's package for the service if one has a session left, else
    invoiced at its price. Once per appointment (None when the service has no price)."""
    with locking.ledger_transaction():
        existing = Invoice.objects.filter(appointment=appointment, source=Invoice.Source.SESSION).first()
        if existing is not None:
            return existing
        if (done := Redemption.objects.filter(appointment=appointment).first()) is not None:
            return done
        redemption = _redeem(appointment, by=by, request=request)
        if redemption is not None:
            return redemption
        amount = price_for(appointment.service, appointment.therapist)
        if amount is None:
            return None
        return _issue(
            appointment.client,
            [_session_line(appointment, amount)],
            source=Invoice.Source.SESSION,
            appointment=appointment,
            therapist=appointment.therapist,
            by=by,
            request=request,
        )


def _redeem(appointment: Appointment, *, by: Any, request: Any) -> Redemption | None:
    day = _local_day(appointment)
    packages = locked(Package.objects.all()).filter(
        client=appointment.client, service=appointment.service, status=Package.Status.ACTIVE, expires_on__gte=day
    )
    for package in packages.order_by("expires_on", "pk"):
        used = package.redemptions.count()
        if used >= package.sessions:
            continue
        redemption = Redemption.objects.create(package=package, appointment=appointment)
        if used + 1 == package.sessions:
            Package.objects.filter(pk=package.pk).update(status=Package.Status.USED)
        audit.record(
            by,
            "redeem",
            client=appointment.client,
            obj=package,
            detail={"appointment": appointment.pk, "session": used + 1, "of": package.sessions},
            request=request,
        )
        return redemption
    return None


def raise_fee(appointment: Appointment, source: str, *, by: Any, request: Any = None) -> Invoice | None:
    """The clinic's late-cancellation or no-show fee for an appointment (once; None when the policy has no fee)."""
    billing = settings_for(appointment.clinic)
    amount = billing.late_cancellation_fee if source == Invoice.Source.LATE_CANCELLATION else billing.no_show_fee
    if amount <= 0:
        return None
    with locking.ledger_transaction():
        existing = Invoice.objects.filter(appointment=appointment, source=source).first()
        if existing is not None:
            return existing
        label = Invoice.Source(source).label
        when = timezone.localtime(appointment.starts_at).strftime("%d %b %Y %H:%M")
        return _issue(
            appointment.client,
            [Line(f"{label}: {appointment.service.name}, {when}", amount)],
            source=source,
            appointment=appointment,
            therapist=appointment.therapist,
            by=by,
            request=request,
        )


def raise_for_appointment(appointment: Appointment, *, by: Any, request: Any = None) -> Invoice | Redemption:
    """Staff raise the invoice of a visit by hand (it was not completed through the day's flow, or is prepaid)."""
    require_till(by)
    result = bill_session(appointment, by=by, request=request)
    if result is None:
        raise ValidationError(f"“{appointment.service.name}” has no price yet: the owner sets it first.")
    return result


# --- corrections --------------------------------------------------------------------------------------------------


def credited(invoice: Invoice) -> int:
    return int(invoice.credit_notes.aggregate(s=Sum("total"))["s"] or 0)


def credit_note(
    invoice: Invoice, amount: int, reason: str, *, by: Any, source: str = Invoice.Source.CORRECTION, request: Any = None
) -> Invoice:
    """A credit note of `amount` (tax included) against an invoice: never more than is left to credit."""
    if invoice.kind != Invoice.Kind.INVOICE:
        raise ValidationError("Only an invoice can be credited.")
    if not reason.strip():
        raise ValidationError({"reason": "Say why the invoice is credited."})
    with locking.ledger_transaction():
        invoice = locked(Invoice.objects.all()).get(pk=invoice.pk)
        left = invoice.total - credited(invoice)
        if amount <= 0 or amount > left:
            raise ValidationError(
                {"amount": f"Credit between 0.01 and {format_money(left, invoice.currency)} (what is left to credit)."}
            )
        line = Line(f"Credit against invoice {invoice.number}: {reason.strip()}"[:300], amount)
        return _issue(
            invoice.client,
            [line] if invoice.tax == 0 else [Line(line.description, split_gross(amount, invoice.tax_rate_bp)[0])],
            source=source,
            kind=Invoice.Kind.CREDIT_NOTE,
            credits=invoice,
            therapist=invoice.therapist,
            reason=reason.strip(),
            gross=amount,
            by=by,
            request=request,
        )


def waive_fee(invoice: Invoice, reason: str, *, by: Any, request: Any = None) -> Invoice:
    """The staff override of an automatic fee: credited in full, with the reason recorded."""
    require_till(by)
    if invoice.source not in FEE_SOURCES:
        raise ValidationError("Only a cancellation or no-show fee can be waived.")
    left = invoice.total - credited(invoice)
    return credit_note(invoice, left, reason, by=by, source=Invoice.Source.WAIVER, request=request)


# --- payments ------------------------------------------------------------------------------------------------------


def require_till(user: Any) -> StaffMember:
    """Taking money, refunds and waivers: the front desk and the owner."""
    return access.require_staff(user, Role.OWNER, Role.FRONT_DESK)


def take_payment(
    client: Client,
    amount: int,
    method: str,
    *,
    key: str,
    by: Any,
    invoice: Invoice | None = None,
    reference: str = "",
    note: str = "",
    kind: str = Payment.Kind.PAYMENT,
    request: Any = None,
) -> tuple[Payment, bool]:
    """Record money taken (or refunded). The form's `key` makes it once: sent twice, by two staff at the same
    moment, it is recorded once and the second gets the first's payment back (created False)."""
    staff = require_till(by)
    if staff.clinic_id != client.clinic_id:
        raise PermissionDenied("Not a client of your clinic.")
    if amount <= 0:
        raise ValidationError({"amount": "Enter an amount above zero."})
    if method not in Payment.Method.values:
        raise ValidationError({"method": "Choose how it was paid."})
    if invoice is not None and (invoice.client_id != client.pk or invoice.kind != Invoice.Kind.INVOICE):
        raise ValidationError({"invoice": "Choose one of this client's invoices."})
    if (found := Payment.objects.filter(idempotency_key=key).first()) is not None:
        return found, False
    billing = settings_for(client.clinic)
    try:
        with locking.ledger_transaction():
            if kind == Payment.Kind.REFUND:
                locked(Client.objects.filter(pk=client.pk)).first()  # refunds one at a time
                credit = -balance(client)
                if amount > credit:
                    most = format_money(max(credit, 0), billing.currency)
                    raise ValidationError({"amount": f"Refund at most the client's credit, {most}."})
            payment = Payment.objects.create(
                clinic=client.clinic,
                client=client,
                invoice=invoice,
                kind=kind,
                method=method,
                amount=amount,
                currency=billing.currency,
                reference=reference,
                note=note,
                idempotency_key=key,
                taken_by=by,
            )
            audit.record(
                by,
                "create",
                client=client,
                obj=payment,
                detail={"kind": kind, "method": method, "amount": amount, "invoice": getattr(invoice, "number", None)},
                request=request,
            )
    except IntegrityError:
        found = Payment.objects.filter(idempotency_key=key).first()
        if found is None:
            raise
        return found, False
    return payment, True


# --- packages ------------------------------------------------------------------------------------------------------


def sell_package(
    client: Client,
    service: Service,
    sessions: int,
    price: int,
    expires_on: dt.date,
    *,
    by: Any,
    course: Course | None = None,
    request: Any = None,
) -> Package:
    """A course sold as a package: invoiced now, redeemed one per completed session of the service."""
    require_till(by)
    if sessions <= 0:
        raise ValidationError({"sessions": "A package has at least one session."})
    if expires_on <= timezone.localdate():
        raise ValidationError({"expires_on": "The expiry must be after today."})
    with locking.ledger_transaction():
        invoice = _issue(
            client,
            [Line(f"Package: {sessions} sessions of {service.name} (until {expires_on:%d %b %Y})", price)],
            source=Invoice.Source.PACKAGE,
            by=by,
            request=request,
        )
        package = Package.objects.create(
            clinic=client.clinic,
            client=client,
            service=service,
            course=course,
            sessions=sessions,
            price=price,
            invoice=invoice,
            expires_on=expires_on,
        )
        audit.record(by, "create", client=client, obj=package, detail={"sessions": sessions, "price": price})
    return package


def unused_value(package: Package) -> tuple[int, int]:
    """(unused sessions, their value tax included, pro rata of what was invoiced, rounded down)."""
    unused = package.sessions - package.redemptions.count()
    value = package.invoice.total * unused // package.sessions
    return unused, min(value, package.invoice.total - credited(package.invoice))


def close_package(package: Package, reason: str, *, by: Any, request: Any = None) -> Invoice | None:
    """The course was cancelled or the client discharged: the unused sessions are credited pro rata to the client's
    account (a credit note on the package's invoice), which the front desk may then refund (docs/billing.md)."""
    require_till(by)
    return _close_package(package, reason, by=by, request=request)


def close_course_packages(course: Course, *, by: Any, request: Any = None) -> list[Package]:
    """The course ended (the client discharged, referred or stopped): its active packages close by the
    unused-session rule, whoever ended it (the therapist, usually). Inside the caller's transaction."""
    closed = []
    reason = f"course {course.get_status_display().lower()}"
    for package in Package.objects.filter(course=course, status=Package.Status.ACTIVE):
        _close_package(package, reason, by=by, request=request)
        closed.append(package)
    return closed


def _close_package(package: Package, reason: str, *, by: Any, request: Any = None) -> Invoice | None:
    with locking.ledger_transaction():
        package = locked(Package.objects.select_related("invoice")).get(pk=package.pk)
        if package.status != Package.Status.ACTIVE:
            raise ValidationError("This package is already used up or closed.")
        unused, value = unused_value(package)
        note = None
        if value > 0:
            note = credit_note(
                package.invoice,
                value,
                f"{unused} unused session{'s' if unused != 1 else ''}: {reason}",
                by=by,
                source=Invoice.Source.PACKAGE_CLOSED,
                request=request,
            )
        Package.objects.filter(pk=package.pk).update(status=Package.Status.CLOSED, closed_at=timezone.now())
        audit.record(by, "close", client=package.client, obj=package, detail={"unused": unused, "credited": value})
    return note


# --- reading -------------------------------------------------------------------------------------------------------


def balance(client: Client) -> int:
    """What the client owes (negative: their credit): invoices - credit notes - payments + refunds."""
    docs = {
        row["kind"]: row["s"]
        for row in Invoice.objects.filter(client=client).values("kind").annotate(s=Sum("total")).order_by()
    }
    money = {
        row["kind"]: row["s"]
        for row in Payment.objects.filter(client=client).values("kind").annotate(s=Sum("amount")).order_by()
    }
    return int(
        (docs.get("invoice") or 0)
        - (docs.get("credit_note") or 0)
        - (money.get("payment") or 0)
        + (money.get("refund") or 0)
    )


def outstanding(invoice: Invoice) -> int:
    """What is left to pay of one invoice (never below zero: more paid is the client's credit)."""
    paid = invoice.payments.filter(kind=Payment.Kind.PAYMENT).aggregate(s=Sum("amount"))["s"] or 0
    return max(0, invoice.total - credited(invoice) - int(paid))


@dataclass
class Entry:
    when: dt.datetime
    what: str
    debit: int
    credit: int
    running: int
    invoice: Invoice | None = None


def statement(client: Client) -> list[Entry]:
    """Every document and payment of the client in order, with the running balance."""
    items: list[tuple[dt.datetime, int, str, int, Invoice | None]] = []
    inv: Invoice | None
    for inv in Invoice.objects.filter(client=client).order_by("issued_at", "number"):
        items.append((inv.issued_at, 0, f"{inv.get_kind_display()} {inv.number}", inv.signed_total, inv))
    for pay in Payment.objects.filter(client=client).order_by("taken_at", "pk"):
        label = f"{pay.get_kind_display()} ({pay.get_method_display()})"
        items.append((pay.taken_at, 1, label, -pay.signed_amount, None))
    items.sort(key=lambda item: (item[0], item[1]))
    running, entries = 0, []
    for when, _, what, change, doc in items:
        running += change
        entries.append(Entry(when, what, max(change, 0), max(-change, 0), running, doc))
    return entries


def invoices_for(user: Any, client: Client) -> Any:
    """The client's documents this user may see: all for the owner and front desk, a therapist's own sessions."""
    staff = access.staff_of(user)
    qs = Invoice.objects.filter(client=client).select_related("credits")
    if staff is not None and staff.role == Role.THERAPIST:
        qs = qs.filter(therapist=staff)
    return qs


def visible_invoice(user: Any, pk: int) -> Invoice:
    """An invoice the user may see (else 404): the till roles of its clinic, the therapist of its session, the
    client it was issued to."""
    from django.http import Http404

    invoice = Invoice.objects.select_related("client", "clinic", "therapist", "credits").filter(pk=pk).first()
    if invoice is None:
        raise Http404("No such invoice")
    staff = access.staff_of(user)
    if (
        staff is not None
        and staff.clinic_id == invoice.clinic_id
        and (staff.role in (Role.OWNER, Role.FRONT_DESK) or invoice.therapist_id == staff.pk)
    ):
        return invoice
    own = access.client_of(user)
    if own is not None and own.pk == invoice.client_id:
        return invoice
    raise Http404("No such invoice")


@dataclass
class TakingsRow:
    method: str
    label: str
    count: int
    taken: int
    refunded: int

    @property
    def net(self) -> int:
        return self.taken - self.refunded


def takings(clinic: Clinic, day: dt.date) -> tuple[list[TakingsRow], int]:
    """The day's money by method (the clinic's local day), for the till reconciliation; and the number of
    package sessions redeemed that day (no money changes hands for them)."""
    from backcare.scheduling.services.availability import clinic_zone

    zone = clinic_zone(clinic)
    start = dt.datetime.combine(day, dt.time(0), tzinfo=zone)
    end = start + dt.timedelta(days=1)
    rows = {m: TakingsRow(m, str(label), 0, 0, 0) for m, label in Payment.Method.choices}
    for p in Payment.objects.filter(clinic=clinic, taken_at__gte=start, taken_at__lt=end):
        row = rows[p.method]
        row.count += 1
        if p.kind == Payment.Kind.PAYMENT:
            row.taken += p.amount
        else:
            row.refunded += p.amount
    redeemed = Redemption.objects.filter(package__clinic=clinic, redeemed_at__gte=start, redeemed_at__lt=end).count()
    return list(rows.values()), redeemed
