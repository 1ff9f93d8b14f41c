"""The billing pages. Who sees what (docs/billing.md):

- owner: everything, and the daily takings;
- front desk: every client's billing (balance, invoices, payments), takes payments, refunds, sells and closes
  packages, waives fees; never a clinical note (these pages show none);
- therapist: the billing of their own sessions, read-only;
- client: their own invoices and payments in the portal, and the PDFs.

Every page that shows financial data records a "view" audit event; every change is audited by the service.
"""

from __future__ import annotations

import csv
import datetime as dt
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from backcare.billing import documents, reports, services
from backcare.billing.forms import (
    BillingSettingsForm,
    ClosePackageForm,
    CreditNoteForm,
    PackageForm,
    PaymentForm,
    PriceForm,
    RefundForm,
    ReportFilterForm,
    WaiveForm,
)
from backcare.billing.models import Invoice, Package, Payment, Price
from backcare.billing.money import format_money, format_plain
from backcare.clinic import access, audit, once
from backcare.clinic.models import Client, Role, StaffMember
from backcare.scheduling.models import Appointment, Service
from backcare.scheduling.views import render_local, staff_appointment


def _billing_client(user: Any, pk: int) -> tuple[StaffMember, Client]:
    """The till roles see every client of the clinic; a therapist only those whose record they may see."""
    staff = access.require_staff(user)
    if staff.role == Role.THERAPIST:
        return staff, access.get_client(user, pk, clinical=True)
    return staff, access.get_client(user, pk, clinical=False)


def _add_errors(form: Any, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for name, problems in error.message_dict.items():
            form.add_error(name if name in form.fields else None, problems)
    else:
        form.add_error(None, error.messages)


# --- a client's billing --------------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def client_billing(request: HttpRequest, pk: int) -> HttpResponse:
    staff, client = _billing_client(request.user, pk)
    till = staff.role in (Role.OWNER, Role.FRONT_DESK)
    if request.method == "POST" and not till:
        raise PermissionDenied("Payments are taken by the front desk and the owner.")
    currency = services.settings_for(client.clinic).currency
    invoices = list(services.invoices_for(request.user, client))
    packages = list(Package.objects.filter(client=client).select_related("service", "invoice"))
    active = [p for p in packages if p.status == Package.Status.ACTIVE]
    service_list = list(Service.objects.filter(clinic=client.clinic, active=True))
    action = request.POST.get("action", "") if request.method == "POST" else ""
    data = request.POST if request.method == "POST" else None
    payable = [i for i in invoices if i.kind == Invoice.Kind.INVOICE]  # a paid one too: a form sent twice stays valid
    pay = PaymentForm(data if action == "pay" else None, prefix="pay", currency=currency, invoices=payable)
    refund = RefundForm(data if action == "refund" else None, prefix="refund", currency=currency)
    package = PackageForm(
        data if action == "package" else None, prefix="package", currency=currency, services=service_list
    )
    close = ClosePackageForm(data if action == "close" else None, prefix="close", packages=active)
    done = _act(request, client, action, pay, refund, package, close, payable, active, service_list)
    if done:
        return redirect("client_billing", pk=client.pk)
    audit.record(request.user, "view", client=client, obj=client, detail={"page": "billing"}, request=request)
    context = {
        "client": client,
        "till": till,
        "own_sessions_only": staff.role == Role.THERAPIST,
        "balance": services.balance(client) if till else None,
        "currency": currency,
        "invoices": [(i, services.outstanding(i) if i.kind == Invoice.Kind.INVOICE else 0) for i in invoices],
        "payments": list(Payment.objects.filter(client=client)) if till else [],
        "statement": services.statement(client) if till else [],
        "packages": [(p, p.redemptions.count()) for p in packages],
        "unbilled": _unbilled(client) if till else [],
        "pay": pay,
        "refund": refund,
        "package": package,
        "close": close,
    }
    return render_local(request, "billing/client_billing.html", context, client.clinic, status=200)


def _unbilled(client: Client) -> list[Appointment]:
    """The client's visits (completed, or booked: a prepaid service) with no invoice and no package session yet."""
    return list(
        Appointment.objects.filter(client=client, status__in=("completed", "booked"))
        .exclude(invoices__source=Invoice.Source.SESSION)
        .exclude(redemption__isnull=False)
        .select_related("service")
        .order_by("-starts_at")[:20]
    )


def _act(
    request: HttpRequest,
    client: Client,
    action: str,
    pay: PaymentForm,
    refund: RefundForm,
    package: PackageForm,
    close: ClosePackageForm,
    payable: list[Invoice],
    active: list[Package],
    service_list: list[Service],
) -> bool:
    """Carry out the posted form; True when it was done (the page then redirects)."""
    try:
        if action == "pay" and pay.is_valid():
            data = pay.cleaned_data
            invoice = next((i for i in payable if i.pk == data["invoice"]), None)
            payment, created = services.take_payment(
                client, data["amount"], data["method"], key=data["key"], by=request.user, invoice=invoice,
                reference=data["reference"], request=request,
            )  # fmt: skip
            said = format_money(payment.amount, payment.currency)
            messages.success(request, f"{said} recorded." if created else f"{said} was already recorded.")
            return True
        if action == "refund" and refund.is_valid():
            data = refund.cleaned_data
            payment, created = services.take_payment(
                client, data["amount"], data["method"], key=data["key"], by=request.user, note=data["note"],
                kind=Payment.Kind.REFUND, request=request,
            )  # fmt: skip
            messages.success(request, f"Refund of {format_money(payment.amount, payment.currency)} recorded.")
            return True
        if action == "package" and package.is_valid():
            data = package.cleaned_data
            service = next(s for s in service_list if s.pk == data["service"])
            sold = services.sell_package(
                client, service, data["sessions"], data["price"], data["expires_on"], by=request.user, request=request
            )
            messages.success(request, f"Package sold: invoice {sold.invoice.number}.")
            return True
        if action == "close" and close.is_valid():
            chosen = next(p for p in active if p.pk == close.cleaned_data["package"])
            note = services.close_package(chosen, close.cleaned_data["reason"], by=request.user, request=request)
            messages.success(request, f"Package closed{f': credit note {note.number}' if note else ''}.")
            return True
    except ValidationError as error:
        form = {"pay": pay, "refund": refund, "package": package, "close": close}[action]
        _add_errors(form, error)
    return False


# --- one invoice ---------------------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def invoice_detail(request: HttpRequest, pk: int) -> HttpResponse:
    staff = access.require_staff(request.user)
    invoice = services.visible_invoice(request.user, pk)
    till = staff.role in (Role.OWNER, Role.FRONT_DESK)
    owner = staff.role == Role.OWNER
    if request.method == "POST" and not till:
        raise PermissionDenied("Only the front desk and the owner change billing.")
    action = request.POST.get("action", "") if request.method == "POST" else ""
    data = request.POST if request.method == "POST" else None
    credit = CreditNoteForm(data if action == "credit" else None, prefix="credit", currency=invoice.currency)
    waive = WaiveForm(data if action == "waive" else None, prefix="waive")
    form = {"credit": credit, "waive": waive}.get(action)
    if action == "credit" and not owner:
        raise PermissionDenied("Credit notes are the owner's.")
    if form is not None and form.is_valid():
        first, _ = once.claim(request.user, form.cleaned_data["key"], "billing")
        if not first:
            return redirect("invoice_detail", pk=invoice.pk)
        try:
            if action == "credit":
                note = services.credit_note(
                    invoice, form.cleaned_data["amount"], form.cleaned_data["reason"], by=request.user, request=request
                )
            else:
                note = services.waive_fee(invoice, form.cleaned_data["reason"], by=request.user, request=request)
        except ValidationError as error:
            once.release(request.user, form.cleaned_data["key"], "billing")
            _add_errors(form, error)
        else:
            messages.success(request, f"Credit note {note.number} issued.")
            return redirect("invoice_detail", pk=note.pk)
    audit.record(request.user, "view", client=invoice.client, obj=invoice, detail={"page": "invoice"}, request=request)
    context = {
        "invoice": invoice,
        "lines": list(invoice.lines.all()),
        "credit_notes": list(invoice.credit_notes.all()),
        "payments": list(invoice.payments.all()),
        "outstanding": services.outstanding(invoice) if invoice.kind == Invoice.Kind.INVOICE else 0,
        "can_credit": owner and invoice.kind == Invoice.Kind.INVOICE,
        "can_waive": till and invoice.source in services.FEE_SOURCES and services.credited(invoice) < invoice.total,
        "credit": credit,
        "waive": waive,
        "till": till,
    }
    return render_local(request, "billing/invoice_detail.html", context, invoice.clinic)


@login_required
@require_GET
def invoice_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    invoice = services.visible_invoice(request.user, pk)
    pdf = documents.invoice_pdf(invoice)
    audit.record(
        request.user, "export", client=invoice.client, obj=invoice, detail={"document": pdf.filename}, request=request
    )
    response = HttpResponse(pdf.content, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{pdf.filename}"'
    return response


@login_required
@require_POST
def appointment_invoice(request: HttpRequest, pk: int) -> HttpResponse:
    services.require_till(request.user)
    _, appointment = staff_appointment(request.user, pk)
    try:
        result = services.raise_for_appointment(appointment, by=request.user, request=request)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("appointment_detail", pk=appointment.pk)
    if isinstance(result, Invoice):
        return redirect("invoice_detail", pk=result.pk)
    messages.success(request, "Paid from the client's package.")
    return redirect("client_billing", pk=appointment.client_id)


# --- the owner's takings -------------------------------------------------------------------------------------------


@login_required
@require_GET
def takings(request: HttpRequest) -> HttpResponse:
    staff = access.require_staff(request.user, Role.OWNER)
    clinic = staff.clinic
    day_text = request.GET.get("day", "")
    error = ""
    try:
        day = dt.date.fromisoformat(day_text) if day_text else timezone.localdate()
    except ValueError:
        day, error = timezone.localdate(), f"“{day_text}” is not a date: showing today."
    rows, redeemed = services.takings(clinic, day)
    currency = services.settings_for(clinic).currency
    audit.record(request.user, "view", detail={"page": "takings", "day": day.isoformat()}, request=request)
    if request.GET.get("format") == "csv":
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="takings-{day.isoformat()}.csv"'
        writer = csv.writer(response)
        writer.writerow(["date", "method", "currency", "count", "taken", "refunded", "net"])
        for row in rows:
            writer.writerow(
                [day.isoformat(), row.method, currency, row.count]
                + [format_plain(v, currency).replace(",", "") for v in (row.taken, row.refunded, row.net)]
            )
        return response
    context = {
        "day": day,
        "rows": rows,
        "total": sum(r.net for r in rows),
        "redeemed": redeemed,
        "currency": currency,
        "error": error,
    }
    return render_local(request, "billing/takings.html", context, clinic)


# --- the owner's reports -------------------------------------------------------------------------------------------


@login_required
@require_GET
def billing_reports(request: HttpRequest) -> HttpResponseBase:
    """Aged balances (today, paged by client) and revenue by therapist, service and month over a date range; each
    as a CSV with `?format=csv&report=aged|therapist|service|month`."""
    staff = access.require_staff(request.user, Role.OWNER)
    clinic = staff.clinic
    today = timezone.localdate()
    given = "date_from" in request.GET or "date_to" in request.GET
    form = ReportFilterForm(request.GET if given else {"date_from": today.replace(month=1, day=1), "date_to": today})
    valid = form.is_valid()
    start = form.cleaned_data["date_from"] if valid else today.replace(month=1, day=1)
    end = form.cleaned_data["date_to"] if valid else today
    billing = services.settings_for(clinic)
    report = request.GET.get("report", "")
    if request.GET.get("format") == "csv" and report in reports.REPORTS and valid:
        audit.record(request.user, "export", detail={"report": report, "from": start.isoformat(),
                     "to": end.isoformat()}, request=request)  # fmt: skip
        if report == "aged":
            rows = reports.aged_csv(clinic, today, terms_days=billing.payment_terms_days)
            name = f"aged-balances-{today.isoformat()}.csv"
        else:
            rows = reports.revenue_csv(clinic, report, start, end)
            name = f"revenue-by-{report}-{start.isoformat()}-{end.isoformat()}.csv"
        response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    aged = reports.aged_receivables(
        clinic, today, terms_days=billing.payment_terms_days, page=request.GET.get("page", 1)
    )
    revenue = {by: reports.revenue(clinic, by, start, end) for by in ("therapist", "service", "month")}
    audit.record(request.user, "view", detail={"page": "billing_reports", "from": start.isoformat(),
                 "to": end.isoformat()}, request=request)  # fmt: skip
    context = {
        "form": form,
        "start": start,
        "end": end,
        "aged": aged,
        "buckets": reports.BUCKETS,
        "revenue": [(by, rows, reports.revenue_total(rows)) for by, rows in revenue.items()],
        "currency": billing.currency,
        "range_query": f"date_from={start.isoformat()}&date_to={end.isoformat()}",
    }
    return render_local(request, "billing/reports.html", context, clinic)


# --- the owner's billing settings and prices -----------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def billing_settings(request: HttpRequest) -> HttpResponse:
    """Currency, tax (or exempt), payment terms and the legal details printed on invoices. The fee policy is on the
    clinic's settings page, beside the cancellation window it follows."""
    owner = access.require_staff(request.user, Role.OWNER)
    clinic = owner.clinic
    billing = services.settings_for(clinic)
    form = BillingSettingsForm(request.POST if request.method == "POST" else None,
                               initial=BillingSettingsForm.initial_of(billing))  # fmt: skip
    if request.method == "POST" and form.is_valid():
        values = dict(form.cleaned_data)
        values["tax_rate_bp"] = values.pop("tax_rate")
        try:
            changed = services.update_billing_settings(clinic, values, by=request.user, request=request)
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, "Saved." if changed else "Nothing was changed.")
            return redirect("billing_settings")
    audit.record(request.user, "view", obj=billing, detail={"page": "billing_settings"}, request=request)
    return render_local(request, "billing/billing_settings.html", {"form": form, "billing": billing}, clinic)


@login_required
@require_http_methods(["GET", "POST"])
def price_list(request: HttpRequest) -> HttpResponse:
    """The price of each service, and the therapists' own prices where they differ (the therapist's wins)."""
    owner = access.require_staff(request.user, Role.OWNER)
    clinic = owner.clinic
    currency = services.settings_for(clinic).currency
    service_list = list(Service.objects.filter(clinic=clinic).order_by("-active", "name"))
    therapists = list(StaffMember.objects.filter(clinic=clinic, active=True, role=Role.THERAPIST)
                      .order_by("display_name"))  # fmt: skip
    action = request.POST.get("action", "set") if request.method == "POST" else ""
    form = PriceForm(request.POST if action == "set" else None, currency=currency, services=service_list,
                     therapists=therapists)  # fmt: skip
    if action == "remove":
        price = Price.objects.filter(clinic=clinic, pk=request.POST.get("price") or 0).select_related("service").first()
        if price is not None:
            services.remove_price(price, by=request.user, request=request)
            messages.success(request, f"Price of {price.service.name} removed.")
        return redirect("price_list")
    if action == "set" and form.is_valid():
        data = form.cleaned_data
        service = next(s for s in service_list if s.pk == data["service"])
        therapist = next((t for t in therapists if t.pk == data["therapist"]), None)
        try:
            services.set_price(service, data["amount"], by=request.user, therapist=therapist, request=request)
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, f"Price of {service.name} set to {format_money(data['amount'], currency)}.")
            return redirect("price_list")
    audit.record(request.user, "view", detail={"page": "price_list"}, request=request)
    context = {"form": form, "table": services.price_table(clinic), "currency": currency}
    return render_local(request, "billing/price_list.html", context, clinic)


# --- the client's portal -------------------------------------------------------------------------------------------


@login_required
@require_GET
def portal_billing(request: HttpRequest) -> HttpResponse:
    client = access.client_of(request.user)
    if client is None or access.staff_of(request.user) is not None:
        raise PermissionDenied("These pages are for clients.")
    audit.record(request.user, "view", client=client, obj=client, detail={"page": "portal_billing"}, request=request)
    context = {
        "client": client,
        "balance": services.balance(client),
        "currency": services.settings_for(client.clinic).currency,
        "invoices": list(Invoice.objects.filter(client=client)),
        "payments": list(Payment.objects.filter(client=client)),
    }
    return render_local(request, "billing/portal_billing.html", context, client.clinic)


urlpatterns = [
    path("clients/<int:pk>/billing/", client_billing, name="client_billing"),
    path("invoices/<int:pk>/", invoice_detail, name="invoice_detail"),
    path("invoices/<int:pk>/pdf/", invoice_pdf, name="invoice_pdf"),
    path("appointments/<int:pk>/invoice/", appointment_invoice, name="appointment_invoice"),
    path("billing/takings/", takings, name="takings"),
    path("billing/reports/", billing_reports, name="billing_reports"),
    path("billing/settings/", billing_settings, name="billing_settings"),
    path("billing/prices/", price_list, name="price_list"),
    path("portal/billing/", portal_billing, name="portal_billing"),
]
