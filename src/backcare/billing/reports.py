"""The owner's reports: outstanding balances by age (aged receivables) and revenue by therapist, service and month.

Everything is computed by SQL aggregates: the number of queries does not grow with the clinic's clients or
documents (tests/billing/test_billing_reports.py holds it constant). Amounts stay integer minor units; the CSV
writes them as decimal strings in the currency's precision ("-12.50"), dates in ISO 8601.

Aged receivables: an invoice's open amount is its total less the credit notes against it and the payments taken
against it. It is due `BillingSettings.payment_terms_days` after its date (0: on the day); the buckets count days
past that due date in the clinic's time zone. Money on account (and paid beyond an invoice) is the client's
unapplied credit, shown beside the buckets, so the client's balance is open invoices less unapplied credit.

Revenue: invoices add, credit notes subtract (net, tax, gross), by the document's date in the range.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import (
    Case,
    Count,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncMonth

from backcare.billing.models import CURRENCIES, Invoice, Payment
from backcare.clinic.models import Clinic

BUCKETS = (("current", "Current"), ("d1_30", "1-30 days"), ("d31_60", "31-60 days"), ("d61_90", "61-90 days"),
           ("over_90", "Over 90 days"))  # fmt: skip
PER_PAGE = 50
REPORTS = ("aged", "therapist", "service", "month")


def _zone(clinic: Clinic) -> Any:
    from backcare.scheduling.services.availability import clinic_zone

    return clinic_zone(clinic)


def _day_start(day: dt.date, zone: Any) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone)


def minor_decimal(minor: int, currency: str) -> str:
    """1250 GBP -> "12.50", -5 GBP -> "-0.05", 1200 JPY -> "1200": what an accounting import reads as a number."""
    exponent = CURRENCIES.get(currency, 2)
    return f"{Decimal(int(minor)).scaleb(-exponent):.{exponent}f}"


def safe_cell(text: str) -> str:
    """A text cell a spreadsheet will not run as a formula (as the audit CSV: text beginning = + - @ tab CR).
    Amounts are not passed through it: they are numbers, and a leading minus is their sign."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# --- aged receivables ----------------------------------------------------------------------------------------------


@dataclass
class AgedRow:
    client_id: int
    name: str
    currency: str
    buckets: dict[str, int]
    open: int
    balance: int = 0

    @property
    def unapplied(self) -> int:
        """Money on account not yet set against an invoice (positive: the client's credit)."""
        return self.open - self.balance

    @property
    def bucket_list(self) -> list[int]:
        return [self.buckets[key] for key, _ in BUCKETS]


@dataclass
class Aged:
    as_of: dt.date
    terms_days: int
    page: Page[Any]
    rows: list[AgedRow]
    totals: dict[str, int] = field(default_factory=dict)
    currency: str = "GBP"

    @property
    def total_list(self) -> list[int]:
        return [self.totals.get(key) or 0 for key, _ in BUCKETS]


def open_invoices(clinic: Clinic) -> QuerySet[Invoice]:
    """The clinic's invoices annotated with `open`: total - credit notes against it - payments against it."""
    credited = (
        Invoice.objects.filter(credits=OuterRef("pk")).order_by().values("credits").annotate(s=Sum("total")).values("s")
    )
    paid = (
        Payment.objects.filter(invoice=OuterRef("pk"), kind=Payment.Kind.PAYMENT)
        .order_by()
        .values("invoice")
        .annotate(s=Sum("amount"))
        .values("s")
    )
    zero = Value(0, output_field=IntegerField())
    return (
        Invoice.objects.filter(clinic=clinic, kind=Invoice.Kind.INVOICE)
        .annotate(
            open=ExpressionWrapper(
                F("total")
                - Coalesce(Subquery(credited, output_field=IntegerField()), zero)
                - Coalesce(Subquery(paid, output_field=IntegerField()), zero),
                output_field=IntegerField(),
            )
        )
        .filter(open__gt=0)
    )


def _bucket_sums(clinic: Clinic, as_of: dt.date, terms_days: int) -> dict[str, Any]:
    zone = _zone(clinic)

    def edge(days_past: int) -> dt.datetime:
        """Invoices issued before this instant are at least `days_past` days past their due date on `as_of`."""
        return _day_start(as_of - dt.timedelta(days=terms_days + days_past - 1), zone)

    ranges = {
        "current": Q(issued_at__gte=edge(1)),
        "d1_30": Q(issued_at__gte=edge(31), issued_at__lt=edge(1)),
        "d31_60": Q(issued_at__gte=edge(61), issued_at__lt=edge(31)),
        "d61_90": Q(issued_at__gte=edge(91), issued_at__lt=edge(61)),
        "over_90": Q(issued_at__lt=edge(91)),
    }
    sums: dict[str, Any] = {
        key: Coalesce(Sum(Case(When(condition, then=F("open")), default=0, output_field=IntegerField())), 0)
        for key, condition in ranges.items()
    }
    sums["open_total"] = Coalesce(Sum("open"), 0)
    return sums


def aged_receivables(clinic: Clinic, as_of: dt.date, *, terms_days: int = 0, page: Any = 1) -> Aged:
    """One page of clients with open invoices (by name), their open amounts by age, unapplied credit and balance;
    and the totals over every client. A fixed number of queries whatever the number of clients."""
    from backcare.billing.services import settings_for

    currency = settings_for(clinic).currency
    sums = _bucket_sums(clinic, as_of, terms_days)
    upto = _day_start(as_of + dt.timedelta(days=1), _zone(clinic))
    invoices = open_invoices(clinic).filter(issued_at__lt=upto)
    per_client: Any = (
        invoices.values("client_id", "client__first_name", "client__last_name")
        .annotate(**sums)
        .order_by("client__last_name", "client__first_name", "client_id")
    )
    paged = Paginator(per_client, PER_PAGE).get_page(page)
    rows = [
        AgedRow(
            client_id=r["client_id"],
            name=f"{r['client__first_name']} {r['client__last_name']}".strip(),
            currency=currency,
            buckets={key: int(r[key]) for key, _ in BUCKETS},
            open=int(r["open_total"]),
        )
        for r in paged.object_list
    ]
    balances = client_balances([r.client_id for r in rows])
    for row in rows:
        row.balance = balances.get(row.client_id, 0)
    totals = {key: int(value) for key, value in invoices.aggregate(**sums).items()}
    return Aged(as_of, terms_days, paged, rows, totals, currency)


def client_balances(client_ids: list[int]) -> dict[int, int]:
    """Each client's balance (invoices - credit notes - payments + refunds) in two grouped queries."""
    if not client_ids:
        return {}
    sign_doc = Case(
        When(kind=Invoice.Kind.CREDIT_NOTE, then=-F("total")), default=F("total"), output_field=IntegerField()
    )
    sign_pay = Case(When(kind=Payment.Kind.REFUND, then=-F("amount")), default=F("amount"), output_field=IntegerField())
    out: dict[int, int] = dict.fromkeys(client_ids, 0)
    docs = Invoice.objects.filter(client_id__in=client_ids).values("client_id").annotate(s=Sum(sign_doc)).order_by()
    for row in docs:
        out[row["client_id"]] += int(row["s"] or 0)
    money = Payment.objects.filter(client_id__in=client_ids).values("client_id").annotate(s=Sum(sign_pay)).order_by()
    for row in money:
        out[row["client_id"]] -= int(row["s"] or 0)
    return out


def aged_all(clinic: Clinic, as_of: dt.date, *, terms_days: int = 0) -> Iterator[AgedRow]:
    """Every client's row for the CSV, a page at a time (the same queries per page as the page)."""
    number = 1
    while True:
        aged = aged_receivables(clinic, as_of, terms_days=terms_days, page=number)
        yield from aged.rows
        if not aged.page.has_next():
            return
        number += 1


# --- revenue ---------------------------------------------------------------------------------------------------------


@dataclass
class RevenueRow:
    key: str
    label: str
    currency: str
    documents: int
    net: int
    tax: int
    gross: int


def _signed(name: str) -> Any:
    return Sum(Case(When(kind=Invoice.Kind.CREDIT_NOTE, then=-F(name)), default=F(name), output_field=IntegerField()))


def documents_between(clinic: Clinic, start: dt.date, end: dt.date) -> QuerySet[Invoice]:
    """The clinic's invoices and credit notes dated from `start` to `end` inclusive (the clinic's local days)."""
    zone = _zone(clinic)
    return Invoice.objects.filter(
        clinic=clinic,
        issued_at__gte=_day_start(start, zone),
        issued_at__lt=_day_start(end + dt.timedelta(days=1), zone),
    ).order_by()


def revenue(clinic: Clinic, by: str, start: dt.date, end: dt.date) -> list[RevenueRow]:
    """Net, tax and gross by therapist, service or month, credit notes subtracted: one grouped query.

    A credit note counts for the therapist and service of the invoice it credits (its own copies them); package
    sales have no therapist (the sessions are redeemed later, with no money), so they show as "No therapist"."""
    docs = documents_between(clinic, start, end)
    grouped: Any
    order: list[Any]
    amounts = {"documents": Count("pk"), "net": _signed("net"), "tax": _signed("tax"), "gross": _signed("total")}
    if by == "therapist":
        grouped = docs.values("currency", group=F("therapist_id"), label=F("therapist__display_name"))
        order = [F("label").asc(nulls_first=True), "group", "currency"]
    elif by == "service":
        grouped = docs.values(
            "currency",
            group=Coalesce(
                "appointment__service_id",
                "package__service_id",
                "credits__appointment__service_id",
                "credits__package__service_id",
            ),
            label=Coalesce(
                "appointment__service__name",
                "package__service__name",
                "credits__appointment__service__name",
                "credits__package__service__name",
            ),
        )
        order = [F("label").asc(nulls_first=True), "group", "currency"]
    elif by == "month":
        grouped = docs.values("currency", group=TruncMonth("issued_at", tzinfo=_zone(clinic)))
        order = [F("group").asc(), "currency"]
    else:
        raise ValueError(f"No such report: {by}")
    rows = []
    for r in grouped.annotate(**amounts).order_by(*order):
        group = r["group"]
        if by == "month":
            month = group.date() if isinstance(group, dt.datetime) else group
            key, label = month.strftime("%Y-%m"), month.strftime("%B %Y")
        else:
            key = "" if group is None else str(group)
            label = r["label"] or ("No therapist (package sales, manual)" if by == "therapist" else "No service")
        rows.append(
            RevenueRow(key, label, r["currency"], int(r["documents"]), int(r["net"]), int(r["tax"]), int(r["gross"]))
        )
    return rows


def revenue_total(rows: Iterable[RevenueRow]) -> tuple[int, int, int]:
    rows = list(rows)
    return sum(r.net for r in rows), sum(r.tax for r in rows), sum(r.gross for r in rows)


# --- CSV -------------------------------------------------------------------------------------------------------------


class _Echo:
    def write(self, value: str) -> str:
        return value


AGED_HEADER = ["as_of", "client_id", "client", "currency", *[key for key, _ in BUCKETS], "open", "unapplied_credit",
               "balance"]  # fmt: skip
REVENUE_HEADER = ["from", "to", "group_by", "key", "label", "currency", "documents", "net", "tax", "gross"]


def aged_csv(clinic: Clinic, as_of: dt.date, *, terms_days: int = 0) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(AGED_HEADER)
    for row in aged_all(clinic, as_of, terms_days=terms_days):
        amounts = [*row.bucket_list, row.open, row.unapplied, row.balance]
        yield writer.writerow(
            [as_of.isoformat(), row.client_id, safe_cell(row.name), row.currency]
            + [minor_decimal(v, row.currency) for v in amounts]
        )


def revenue_csv(clinic: Clinic, by: str, start: dt.date, end: dt.date) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(REVENUE_HEADER)
    for row in revenue(clinic, by, start, end):
        yield writer.writerow(
            [start.isoformat(), end.isoformat(), by, row.key, safe_cell(row.label), row.currency, row.documents]
            + [minor_decimal(v, row.currency) for v in (row.net, row.tax, row.gross)]
        )
