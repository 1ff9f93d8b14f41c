"""Billing: invoices and credit notes (with their lines), payments and refunds, packages. Who sees what is the
billing pages' rule (`backcare.billing.selectors`): owner and front desk all of the clinic (no clinical notes are
part of any of it), a therapist their own sessions' billing, a client their own. Every read is audited, as the
billing pages are; payments and refunds are recorded by `backcare.billing.services.take_payment`, which audits them.

Amounts are integers in the minor unit of `currency` (ISO 4217: pence, cents; JPY has none): 1250 GBP is £12.50.

Recording money needs an `Idempotency-Key` header (any text the caller picks, one per payment): a POST sent again
with the same key, after a timeout say, records nothing more and answers 200 with the payment recorded the first
time; the same key with a different payment is a 409.
"""

import hashlib
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.pagination import paginate
from ninja.params.functions import Header

from backcare.api.auth import WRITE_AUTH
from backcare.api.pagination import KeysetPagination
from backcare.api.problems import Problem, rule_violation
from backcare.api.routers.common import contact_client, documented, path_id, unprocessable, viewed
from backcare.api.schemas import Id, IdIn, In, LongText, ShortText, whole
from backcare.billing import selectors, services
from backcare.billing.models import CURRENCIES, Invoice, InvoiceLine, Package, Payment
from backcare.clinic import audit

router = Router(tags=["billing"])
Method = Literal["cash", "card", "transfer"]
MAX_AMOUNT = 10**9  # minor units: ten million pounds, far beyond any visit
if TYPE_CHECKING:  # what the validators below check, as mypy reads it
    Currency = str
    Amount = int
else:
    Currency = Literal[tuple(CURRENCIES)]
    Amount = whole(1, MAX_AMOUNT)
INVOICE_ID = path_id("The invoice's (or credit note's) id")
PACKAGE_ID = path_id("The package's id")
MINOR = "Minor units of `currency` (1250 GBP is £12.50)."
KEY_PATTERN = r"^[A-Za-z0-9._:\-]{8,100}$"
IDEMPOTENCY_KEY = Header(
    ...,
    alias="Idempotency-Key",
    pattern=KEY_PATTERN,
    description="One key per payment (a UUID, say): sent again, the payment is recorded once.",
)


class AuditedKeysetPagination(KeysetPagination):
    """Keyset pages of financial records; each page read records one `view` event naming the clients shown."""

    def __init__(self, *, what: str, **kwargs: Any) -> None:
        self.what = what
        super().__init__(**kwargs)

    def paginate_queryset(
        self, queryset: QuerySet[Any], pagination: Any, request: HttpRequest, **params: Any
    ) -> dict[str, Any]:
        page = super().paginate_queryset(queryset, pagination, request, **params)
        audit.viewed_page(request, [item.client for item in page["items"]], f"API: {self.what}")
        return page


# --- schemas -------------------------------------------------------------------------------------------------------


class LineOut(Schema):
    description: str
    quantity: int
    unit_amount: int = Field(description=MINOR)
    amount: int = Field(description=MINOR)


class InvoiceOut(Schema):
    id: int
    number: int = Field(description="In the clinic's one gapless sequence of invoices and credit notes.")
    kind: Literal["invoice", "credit_note"]
    source: str = Field(description="Why it was raised: session, late_cancellation, no_show, package, manual...")
    client: int
    client_name: str
    credits: int | None = Field(description="A credit note: the invoice it credits.")
    appointment: int | None
    therapist: int | None
    therapist_name: str
    therapist_registration: str
    currency: str
    tax_rate_bp: int = Field(description="Tax rate in basis points (2000 is 20 %).")
    net: int = Field(description=MINOR)
    tax: int = Field(description=MINOR)
    total: int = Field(description=f"net + tax. {MINOR}")
    reason: str = Field(description="Why a credit note was issued or a fee waived.")
    issued_at: datetime

    @staticmethod
    def resolve_client(obj: Invoice) -> int:
        return obj.client_id

    @staticmethod
    def resolve_client_name(obj: Invoice) -> str:
        return obj.client.full_name

    @staticmethod
    def resolve_credits(obj: Invoice) -> int | None:
        return obj.credits_id

    @staticmethod
    def resolve_appointment(obj: Invoice) -> int | None:
        return obj.appointment_id

    @staticmethod
    def resolve_therapist(obj: Invoice) -> int | None:
        return obj.therapist_id


class PaymentOut(Schema):
    id: int
    kind: Literal["payment", "refund"]
    client: int
    invoice: int | None = Field(description="The invoice paid; null: on account.")
    method: str
    amount: int = Field(description=MINOR)
    currency: str
    reference: str
    note: str
    taken_at: datetime

    @staticmethod
    def resolve_client(obj: Payment) -> int:
        return obj.client_id

    @staticmethod
    def resolve_invoice(obj: Payment) -> int | None:
        return obj.invoice_id


class InvoiceDetail(InvoiceOut):
    lines: list[LineOut]
    credit_notes: list[InvoiceOut] = Field(description="The credit notes against this invoice.")
    payments: list[PaymentOut] = Field(description="Payments recorded against this invoice.")
    outstanding: int = Field(description=f"What is left to pay of an invoice (0 for a credit note). {MINOR}")

    @staticmethod
    def resolve_lines(obj: Invoice) -> list[InvoiceLine]:
        return list(obj.lines.order_by("pk"))

    @staticmethod
    def resolve_credit_notes(obj: Invoice) -> list[Invoice]:
        return list(obj.credit_notes.select_related("client").order_by("issued_at", "pk"))

    @staticmethod
    def resolve_payments(obj: Invoice) -> list[Payment]:
        return list(obj.payments.order_by("taken_at", "pk"))

    @staticmethod
    def resolve_outstanding(obj: Invoice) -> int:
        return services.outstanding(obj) if obj.kind == Invoice.Kind.INVOICE else 0


class PackageOut(Schema):
    id: int
    client: int
    service: int
    service_name: str
    course: int | None
    invoice: int
    sessions: int
    used: int = Field(description="Sessions redeemed so far.")
    remaining: int = Field(description="Sessions left to redeem (0 once used up or closed).")
    price: int = Field(description=f"Net, for all sessions. {MINOR}")
    currency: str
    status: Literal["active", "used", "closed"]
    expires_on: str = Field(description="Sessions not used by this day lapse (YYYY-MM-DD).")
    sold_at: datetime
    closed_at: datetime | None

    @staticmethod
    def resolve_client(obj: Package) -> int:
        return obj.client_id

    @staticmethod
    def resolve_service(obj: Package) -> int:
        return obj.service_id

    @staticmethod
    def resolve_service_name(obj: Package) -> str:
        return obj.service.name

    @staticmethod
    def resolve_course(obj: Package) -> int | None:
        return obj.course_id

    @staticmethod
    def resolve_invoice(obj: Package) -> int:
        return obj.invoice_id

    @staticmethod
    def resolve_remaining(obj: Package) -> int:
        return max(0, obj.sessions - obj.used) if obj.status == Package.Status.ACTIVE else 0  # type: ignore[attr-defined]  # annotated by packages_visible

    @staticmethod
    def resolve_currency(obj: Package) -> str:
        return obj.invoice.currency

    @staticmethod
    def resolve_expires_on(obj: Package) -> str:
        return obj.expires_on.isoformat()


class InvoiceQuery(Schema):
    client: Id | None = None
    kind: Literal["invoice", "credit_note"] | None = None


class PaymentQuery(Schema):
    client: Id | None = None
    invoice: Id | None = None
    kind: Literal["payment", "refund"] | None = None


class PackageQuery(Schema):
    client: Id | None = None
    status: Literal["active", "used", "closed"] | None = None


class PaymentIn(In):
    client: IdIn
    amount: Amount = Field(description=MINOR)
    currency: Currency = Field(description="The clinic's currency (ISO 4217); another is refused.")
    method: Method
    invoice: IdIn | None = Field(None, description="One of the client's invoices; left out: paid on account.")
    reference: ShortText = Field("", description="Terminal slip or bank reference.")
    note: LongText = ""


class RefundIn(In):
    client: IdIn
    amount: Amount = Field(description=f"At most the client's credit. {MINOR}")
    currency: Currency
    method: Method
    note: LongText = Field("", description="Why the money was given back.")


# --- invoices ------------------------------------------------------------------------------------------------------

INVOICE_ORDER = ("issued_at", "pk")
PAYMENT_ORDER = ("taken_at", "pk")
PACKAGE_ORDER = ("sold_at", "pk")


@router.get("/invoices", response=documented(200, list[InvoiceOut]), summary="List invoices and credit notes")
@paginate(AuditedKeysetPagination, keys=INVOICE_ORDER, what="invoices")
def list_invoices(request: HttpRequest, query: Query[InvoiceQuery]) -> Any:
    """The clinic's for the owner and the front desk, a therapist's own sessions', a client's own; oldest first."""
    qs = selectors.invoices_visible(request.user)
    if query.client is not None:
        qs = qs.filter(client_id=query.client)
    if query.kind is not None:
        qs = qs.filter(kind=query.kind)
    return qs.select_related("client").order_by(*INVOICE_ORDER)


@router.get("/invoices/{invoice_id}", response=documented(200, InvoiceDetail), summary="One invoice or credit note")
def get_invoice(request: HttpRequest, invoice_id: Id = INVOICE_ID) -> Any:
    """With its lines, the credit notes against it, the payments against it and what is left to pay."""
    invoice = services.visible_invoice(request.user, invoice_id)
    viewed(request, invoice.client, "invoice", invoice)
    return invoice


# --- payments ------------------------------------------------------------------------------------------------------


@router.get("/payments", response=documented(200, list[PaymentOut]), summary="List payments and refunds")
@paginate(AuditedKeysetPagination, keys=PAYMENT_ORDER, what="payments")
def list_payments(request: HttpRequest, query: Query[PaymentQuery]) -> Any:
    """The clinic's for the owner and the front desk, those against a therapist's own sessions' invoices, a
    client's own; oldest first."""
    qs = selectors.payments_visible(request.user)
    if query.client is not None:
        qs = qs.filter(client_id=query.client)
    if query.invoice is not None:
        qs = qs.filter(invoice_id=query.invoice)
    if query.kind is not None:
        qs = qs.filter(kind=query.kind)
    return qs.select_related("client").order_by(*PAYMENT_ORDER)


def _stored_key(request: HttpRequest, key: str) -> str:
    """The caller's key, kept apart from every other user's and from the pages' form keys (64 hex characters)."""
    return hashlib.sha256(f"api\x00{request.user.pk}\x00{key}".encode()).hexdigest()


def _record(request: HttpRequest, kind: str, client_id: int, key: str, invoice_id: int | None, **values: Any) -> Any:
    services.require_till(request.user)  # before the client: a therapist or a client learns nothing of ids
    client = contact_client(request, client_id)
    currency = services.settings_for(client.clinic).currency
    if values["currency"] != currency:
        raise unprocessable("body", "currency", f"this clinic takes {currency}")
    invoice = None
    if invoice_id is not None:
        invoice = Invoice.objects.filter(pk=invoice_id, client=client, kind=Invoice.Kind.INVOICE).first()
        if invoice is None:
            raise unprocessable("body", "invoice", "not one of this client's invoices")
    stored = _stored_key(request, key)
    wanted = {"client_id": client.pk, "invoice_id": invoice_id, "kind": kind, **values}
    if (earlier := Payment.objects.filter(idempotency_key=stored).first()) is not None:
        return _replayed(earlier, wanted)
    try:
        payment, created = services.take_payment(
            client,
            values["amount"],
            values["method"],
            key=stored,
            by=request.user,
            invoice=invoice,
            reference=values.get("reference", ""),
            note=values.get("note", ""),
            kind=kind,
            request=request,
        )
    except ValidationError as error:
        raise rule_violation(error) from None
    return Status(201, payment) if created else _replayed(payment, wanted)


def _replayed(payment: Payment, wanted: dict[str, Any]) -> Any:
    """The payment a key recorded before: the same request again answers it (200); another request is a 409."""
    differs = sorted(name.removesuffix("_id") for name, value in wanted.items() if getattr(payment, name) != value)
    if differs:
        raise Problem(
            409,
            f"This Idempotency-Key already recorded another {payment.kind} (differs in {', '.join(differs)}); "
            "send a new key for a new payment.",
            kind="idempotency-key-reused",
            title="The Idempotency-Key was used for another request",
            payment=payment.pk,
        )
    return Status(200, payment)


@router.post(
    "/payments",
    response={200: PaymentOut, **documented(201, PaymentOut)},
    summary="Record a payment",
    auth=WRITE_AUTH,
)
def record_payment(request: HttpRequest, payload: PaymentIn, idempotency_key: str = IDEMPOTENCY_KEY) -> Any:
    """The front desk and the owner (others 403). 201 when recorded; 200 with the same payment when this key
    recorded it before; 409 when the key recorded a different one; 422 when a rule refuses it (another currency, an
    invoice that is not the client's)."""
    values = payload.model_dump(exclude={"client", "invoice"})
    return _record(request, Payment.Kind.PAYMENT, payload.client, idempotency_key, payload.invoice, **values)


@router.post(
    "/refunds",
    response={200: PaymentOut, **documented(201, PaymentOut)},
    summary="Refund a client's credit",
    auth=WRITE_AUTH,
)
def record_refund(request: HttpRequest, payload: RefundIn, idempotency_key: str = IDEMPOTENCY_KEY) -> Any:
    """Money given back, at most the client's credit (to refund a paid invoice the owner credits it first). The
    front desk and the owner; the key works as for payments."""
    values = {**payload.model_dump(exclude={"client"}), "reference": ""}
    return _record(request, Payment.Kind.REFUND, payload.client, idempotency_key, None, **values)


# --- packages ------------------------------------------------------------------------------------------------------


@router.get("/packages", response=documented(200, list[PackageOut]), summary="List packages")
@paginate(AuditedKeysetPagination, keys=PACKAGE_ORDER, what="packages")
def list_packages(request: HttpRequest, query: Query[PackageQuery]) -> Any:
    """Courses sold as packages, with the sessions used and remaining; oldest first."""
    qs = selectors.packages_visible(request.user)
    if query.client is not None:
        qs = qs.filter(client_id=query.client)
    if query.status is not None:
        qs = qs.filter(status=query.status)
    return qs.select_related("client", "service", "invoice").order_by(*PACKAGE_ORDER)


@router.get("/packages/{package_id}", response=documented(200, PackageOut), summary="One package")
def get_package(request: HttpRequest, package_id: Id = PACKAGE_ID) -> Any:
    package = (
        selectors.packages_visible(request.user).select_related("client", "service", "invoice").filter(pk=package_id)
    ).first()
    if package is None:
        raise Http404("No such package.")
    viewed(request, package.client, "package", package)
    return package
