"""Data rights: erasure requests under the clinical-record retention duty (this module), a client's full export
(`backcare.datarights.export`) and the de-identified research export (`backcare.datarights.research`).
docs/data-rights.md explains every choice to the clinic. Every write is in these modules and audited; the views only
check who asks.

Erasure in two steps. `request_erasure` records the request (portal or owner); `confirm_erasure` (the owner) deletes
at once what the clinic has no duty to keep and marks the clinical record with the day it may go (`keep_until`: last
clinical contact + `retention_years`); `run_retention` (the `retention` command, from cron) deletes the clinical
records whose day has passed. The audit trail itself is never touched.

Records nobody asked to erase are not kept for ever either: `past_retention` lists the clients whose clinical record
has outlived its retention period, and the owner deletes each after checking (`delete_past_retention`); the
`retention` command counts them so the owner hears of them.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

from django.apps import apps
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import (
    DateTimeField,
    Exists,
    Expression,
    F,
    Func,
    Max,
    OuterRef,
    ProtectedError,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from backcare.billing.models import Invoice, InvoiceLine, LedgerPurge, Package, Payment, Redemption
from backcare.clinic import access, audit
from backcare.clinic.models import (
    Clearance,
    Client,
    Clinic,
    Consent,
    Course,
    ErasureRequest,
    Intake,
    Invitation,
    Outcome,
    Referral,
    Role,
    Screening,
    SignInFailures,
    StaffMember,
    TreatmentSession,
)
from backcare.clinic.signin import account_key
from backcare.common import outbox
from backcare.common.ids import ascii_id
from backcare.common.rowlock import locked
from backcare.datarights.export import client_zone
from backcare.interop.models import ExternalIdentifier
from backcare.scheduling.models import Appointment, CalendarToken, ReminderLog, WaitlistEntry, live_q
from backcare.scheduling.services import booking, waitlist

# --- Erasure ------------------------------------------------------------------------------------------------------

OPEN = (ErasureRequest.Status.REQUESTED, ErasureRequest.Status.CONFIRMED)
STAFF_CHANNELS = [c for c in ErasureRequest.Channel if c != ErasureRequest.Channel.PORTAL]
ERASED_CONTACT_FIELDS = ("email", "phone", "address")
CANCEL_REASON = "Cancelled by the clinic: the client asked for their data to be erased."


def open_request(client: Client) -> ErasureRequest | None:
    return client.erasure_requests.filter(status__in=OPEN).first()


def add_years(day: dt.date, years: int) -> dt.date:
    """The same calendar day `years` later (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def respond_by(erasure: ErasureRequest) -> dt.date:
    """One calendar month after the request (the GDPR's time to act; the last day of a shorter month if needed)."""
    day = erasure.requested_at.astimezone(client_zone(erasure.client)).date()
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


# Every moment that adds to the clinical record, as (model, path to the client, field, which rows): retention runs
# from the latest. The one definition, read in SQL for one client or for a whole clinic at once.
CLINICAL_MOMENTS: tuple[tuple[type[Any], str, str, Q], ...] = (
    (Intake, "client", "updated_at", ~Q(status=Intake.Status.DRAFT)),
    (Intake, "client", "reviewed_at", Q()),
    (Screening, "client", "created_at", Q()),
    (Clearance, "client", "recorded_at", Q()),
    (Course, "client", "started_at", Q()),
    (Course, "client", "ended_at", Q()),
    (TreatmentSession, "course__client", "held_at", Q()),
    (TreatmentSession, "course__client", "recorded_at", Q()),
    (Outcome, "client", "recorded_at", Q()),
    (Referral, "client", "created_at", Q()),
    (Consent, "client", "signed_at", Q()),
    (Consent, "client", "withdrawn_at", Q()),
)
# Stands for "nothing recorded" inside GREATEST, which on SQLite is NULL as soon as one argument is.
NEVER = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)


def _moments(client_ref: str) -> list[tuple[QuerySet[Any], str]]:
    """Each kind of clinical moment of the client `client_ref` names in the outer query: its rows that have one."""
    return [
        (model.objects.filter(rows, **{path: OuterRef(client_ref), f"{name}__isnull": False}).order_by(), name)
        for model, path, name, rows in CLINICAL_MOMENTS
    ]


def last_contact_expression(client_ref: str = "pk") -> Expression:
    """The latest clinical moment of the client `client_ref` names in the outer query (NEVER when there is none):
    one correlated MAX per kind of record, each on the client's index."""
    latest = [
        Coalesce(
            Subquery(rows.annotate(m=Func(F(name), function="MAX")).values("m"), output_field=DateTimeField()),
            Value(NEVER, output_field=DateTimeField()),
        )
        for rows, name in _moments(client_ref)
    ]
    return Greatest(*latest, output_field=DateTimeField())


def _no_contact_since(moment: dt.datetime) -> Q:
    """The client has a clinical record and nothing in it is from `moment` on: a probe of the client's index per
    kind of record, each stopping at the first row it finds, so no MAX is computed for clients that do not qualify."""
    moments = _moments("pk")
    some = Q()
    for rows, _ in moments:
        some |= Q(Exists(rows))
    newer = [~Exists(rows.filter(**{f"{name}__gte": moment})) for rows, name in moments]
    return Q(*newer) & some


def _moment(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None or value <= NEVER else value


def last_clinical_contact(client: Client) -> dt.datetime | None:
    """The latest moment anything was added to the clinical record; retention runs from here."""
    found = Client.objects.filter(pk=client.pk).annotate(last=last_contact_expression()).values_list("last", flat=True)
    return _moment(found.first())


def retention_years(clinic: Clinic) -> int:
    """How long clinical records are kept: the clinic's own period (`Clinic.retention_years`), never less than the
    installation's minimum (BACKCARE_RETENTION_YEARS), which the operator sets to the law where the clinic works."""
    return max(int(clinic.retention_years), int(settings.BACKCARE.get("RETENTION_YEARS", 0)))


def financial_retention_years() -> int:
    """How long invoices, credit notes, payments and packages are kept (BACKCARE_FINANCIAL_RETENTION_YEARS, 10 by
    default: what tax and accounting law asks in most places), counted from the client's last financial record."""
    years: Any = settings.BACKCARE.get("FINANCIAL_RETENTION_YEARS", 10)
    return int(years)


def last_financial_record(client: Client) -> dt.datetime | None:
    moments = [
        Invoice.objects.filter(client=client).aggregate(m=Max("issued_at"))["m"],
        Payment.objects.filter(client=client).aggregate(m=Max("taken_at"))["m"],
        Package.objects.filter(client=client).aggregate(m=Max("sold_at"))["m"],
        Package.objects.filter(client=client).aggregate(m=Max("closed_at"))["m"],
    ]
    found = [m for m in moments if m is not None]
    return max(found) if found else None


def financial_keep_until(client: Client) -> dt.date | None:
    """The last day the client's financial records must be kept (None: there are none)."""
    last = last_financial_record(client)
    if last is None:
        return None
    return add_years(last.astimezone(client_zone(client)).date(), financial_retention_years())


def keep_until(client: Client, *, today: dt.date | None = None) -> dt.date:
    """The last day the clinical record is kept: last clinical contact + the clinic's retention years. A client with
    no clinical record at all has nothing to keep: today."""
    return _keep_until(client, last_clinical_contact(client), today=today)


def _keep_until(client: Client, last: dt.datetime | None, *, today: dt.date | None = None) -> dt.date:
    zone = client_zone(client)
    if last is None:
        return today or timezone.localdate(timezone=zone)
    return add_years(last.astimezone(zone).date(), retention_years(client.clinic))


@dataclass
class ErasurePlan:
    """What confirming an erasure does, for the pages to show before anyone confirms."""

    delete_now: list[tuple[str, int]]
    keep: list[tuple[str, int]]
    keep_until: dt.date
    retention_years: int


def _future_appointments(client: Client, now: dt.datetime) -> QuerySet[Any]:
    return Appointment.objects.filter(client=client, starts_at__gt=now).filter(live_q(now)).order_by("starts_at")


def erasure_plan(client: Client) -> ErasurePlan:
    now = timezone.now()
    contact = [f for f in ERASED_CONTACT_FIELDS if getattr(client, f)]
    delete_now = [
        ("portal login", 1 if client.user_id else 0),
        ("contact details (" + ", ".join(contact) + ")" if contact else "contact details", len(contact)),
        ("portal invitations", client.invitations.count()),
        ("calendar feed addresses", CalendarToken.objects.filter(client=client).count()),
        ("waitlist places", WaitlistEntry.objects.filter(client=client).count()),
        ("future appointments (cancelled)", _future_appointments(client, now).count()),
        ("unfinished health questionnaires", client.intakes.filter(status=Intake.Status.DRAFT).count()),
    ]
    keep = [
        ("signed consent forms", client.consents.count()),
        ("health questionnaires", client.intakes.exclude(status=Intake.Status.DRAFT).count()),
        ("screenings", client.screenings.count()),
        ("doctor's clearances", client.clearances.count()),
        ("courses", client.courses.count()),
        ("session notes", TreatmentSession.objects.filter(course__client=client).count()),
        ("scores", client.outcomes.count()),
        ("referrals", client.referrals.count()),
    ]
    return ErasurePlan(delete_now, keep, keep_until(client), retention_years(client.clinic))


def _owner(by: Any, client: Client) -> StaffMember:
    staff = access.staff_of(by)
    if staff is None or staff.role != Role.OWNER or staff.clinic_id != client.clinic_id:
        raise PermissionDenied("Only the clinic owner records and confirms erasure requests.")
    return staff


@transaction.atomic
def request_erasure(
    client: Client,
    *,
    by: Any,
    channel: str = ErasureRequest.Channel.PORTAL,
    requested_on: dt.date | None = None,
    request: Any = None,
) -> ErasureRequest:
    """Record a request to erase the client's data: from the portal by the client, or by the owner for a request
    made by phone, letter, email or in person. An open request is returned as it is (asking twice is harmless)."""
    locked(Client.objects.filter(pk=client.pk)).first()
    existing = open_request(client)
    if existing is not None:
        return existing
    own = access.client_of(by)
    staff: StaffMember | None = None
    if access.staff_of(by) is None and own is not None and own.pk == client.pk:
        channel = ErasureRequest.Channel.PORTAL
        requested_at = timezone.now()
    else:
        staff = _owner(by, client)
        if channel not in STAFF_CHANNELS:
            raise ValidationError({"channel": "Choose how the client made the request: telephone, letter, email or in "
                                   "person."})  # fmt: skip
        today = timezone.localdate(timezone=client_zone(client))
        requested_on = requested_on or today
        if requested_on > today:
            raise ValidationError({"requested_on": "The day the request was made cannot be in the future."})
        requested_at = (
            timezone.now()
            if requested_on == today
            else dt.datetime.combine(requested_on, dt.time(12), tzinfo=client_zone(client))
        )
    erasure = ErasureRequest.objects.create(
        client=client, channel=channel, requested_at=requested_at, recorded_by=staff
    )
    client.erasure_requested_at = requested_at
    client.save(update_fields=["erasure_requested_at"])
    audit.record(
        by,
        "erasure_requested",
        client=client,
        obj=erasure,
        detail={"channel": channel, "requested_at": requested_at.isoformat()},
        request=request,
    )
    return erasure


@transaction.atomic
def withdraw_erasure(erasure: ErasureRequest, *, by: Any, request: Any = None) -> ErasureRequest:
    """The client changed their mind before the owner confirmed: nothing was erased, nothing will be."""
    erasure = locked(ErasureRequest.objects.select_related("client"), "client").get(pk=erasure.pk)
    client = erasure.client
    own = access.client_of(by)
    if not (access.staff_of(by) is None and own is not None and own.pk == client.pk):
        _owner(by, client)
    if erasure.status == ErasureRequest.Status.WITHDRAWN:
        return erasure
    if erasure.status != ErasureRequest.Status.REQUESTED:
        raise ValidationError("This request was already carried out and can no longer be withdrawn.")
    erasure.status = ErasureRequest.Status.WITHDRAWN
    erasure.withdrawn_at = timezone.now()
    erasure.save(update_fields=["status", "withdrawn_at"])
    client.erasure_requested_at = None
    client.save(update_fields=["erasure_requested_at"])
    audit.record(by, "erasure_withdrawn", client=client, obj=erasure, request=request)
    return erasure


@transaction.atomic
def confirm_erasure(erasure: ErasureRequest, *, by: Any, request: Any = None) -> ErasureRequest:
    """Step 1, by the owner: delete now what the clinic has no duty to keep, and mark the clinical record with the
    day it may be deleted. Confirming again changes nothing."""
    erasure = locked(ErasureRequest.objects.select_related("client", "client__clinic"), "client").get(pk=erasure.pk)
    client = erasure.client
    owner = _owner(by, client)
    if erasure.status == ErasureRequest.Status.CONFIRMED:
        return erasure
    if erasure.status != ErasureRequest.Status.REQUESTED:
        raise ValidationError("This request was withdrawn; record a new request if the client asks again.")
    now = timezone.now()
    done: Counter[str] = Counter()
    # The waitlist first, so that freeing the client's appointments never offers them to the client again.
    done["waitlist_entries"] = (
        WaitlistEntry.objects.filter(client=client).delete()[1].get("scheduling.WaitlistEntry", 0)
    )
    for hold in Appointment.objects.filter(client=client, status=Appointment.Status.HELD):
        waitlist.decline_hold(hold, by=owner.user, request=request)
        done["offers_declined"] += 1
    for appointment in _future_appointments(client, now).filter(status=Appointment.Status.BOOKED):
        booking.cancel_appointment(
            appointment, by=owner.user, reason=CANCEL_REASON, late_reason=CANCEL_REASON, request=request
        )
        done["appointments_cancelled"] += 1
    ReminderLog.objects.filter(appointment__client=client).exclude(recipient="").update(recipient="")
    outbox.forget_client(client.pk)  # the emails about them: no address, subject or body kept; unsent ones never go
    done["calendar_tokens"] = CalendarToken.objects.filter(client=client).delete()[1].get("scheduling.CalendarToken", 0)
    done["invitations"] = Invitation.objects.filter(client=client).delete()[1].get("clinic.Invitation", 0)
    done["draft_intakes"] = client.intakes.filter(status=Intake.Status.DRAFT).delete()[1].get("clinic.Intake", 0)
    if client.user_id is not None:
        user = client.user
        assert user is not None
        tokens = getattr(user, "api_tokens", None)  # the API's personal tokens go with the login (cascade)
        done["api_tokens"] = tokens.count() if tokens is not None else 0
        done["login_records"] = _delete_login_records(user.get_username())
        client.user = None
        client.save(update_fields=["user"])
        user.delete()  # every session of this login stops working: the user it names no longer exists
        done["portal_login"] = 1
    erased = [f for f in ERASED_CONTACT_FIELDS if getattr(client, f)]
    for name in ERASED_CONTACT_FIELDS:
        setattr(client, name, "")
    client.save(update_fields=list(ERASED_CONTACT_FIELDS))
    erasure.status = ErasureRequest.Status.CONFIRMED
    erasure.confirmed_at = now
    erasure.confirmed_by = owner
    erasure.keep_until = keep_until(client)
    erasure.save(update_fields=["status", "confirmed_at", "confirmed_by", "keep_until"])
    audit.record(
        by,
        "erasure_confirmed",
        client=client,
        obj=erasure,
        detail={
            "deleted": {k: v for k, v in done.items() if v},
            "contact_fields_erased": erased,
            "keep_until": erasure.keep_until.isoformat(),
            "retention_years": retention_years(client.clinic),
        },
        request=request,
    )
    return erasure


def _delete_login_records(username: str) -> int:
    """The login throttle's records of this username (django-axes: attempts, failures, successful logins with IP
    address and browser; the account's failure count): security logs of a login that no longer exists."""
    counted = SignInFailures.objects.filter(key=account_key(username)).delete()[0]
    if not apps.is_installed("axes"):
        return counted
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    models = (AccessAttempt, AccessFailureLog, AccessLog)
    deleted: int = sum(model.objects.filter(username=username).delete()[0] for model in models)  # axes is untyped
    return counted + deleted


def effective_keep_until(erasure: ErasureRequest) -> dt.date:
    """The later of the day set at confirmation and the day computed now (anything added since, or a longer
    retention period, keeps the record longer; nothing makes it go sooner). Reads the client's last clinical
    contact from `client_last_contact` when the query annotated it (see `open_requests`)."""
    if hasattr(erasure, "client_last_contact"):
        computed = _keep_until(erasure.client, _moment(erasure.client_last_contact))
    else:
        computed = keep_until(erasure.client)
    return max(erasure.keep_until, computed) if erasure.keep_until else computed


def open_requests(clinic: Clinic) -> list[ErasureRequest]:
    """The clinic's open erasure requests, those waiting for the owner first, each with its `effective_keep_until`,
    in one query."""
    found: list[ErasureRequest] = list(
        ErasureRequest.objects.filter(client__clinic=clinic, status__in=OPEN)
        .select_related("client", "client__clinic")
        .annotate(client_last_contact=last_contact_expression("client"))
        .order_by("-status", "requested_at")
    )
    for erasure in found:
        # for the template: the model does not declare it
        erasure.effective_keep_until = effective_keep_until(erasure)  # type: ignore[attr-defined]
    return found


# --- Retention (step 2) ---------------------------------------------------------------------------------------------


@dataclass
class RetentionItem:
    client_id: int
    clinic: str
    keep_until: dt.date
    due: bool
    counts: dict[str, int]
    error: str = ""


@dataclass
class RetentionRun:
    now: dt.datetime
    dry_run: bool
    items: list[RetentionItem] = field(default_factory=list)

    @property
    def due(self) -> list[RetentionItem]:
        return [i for i in self.items if i.due]

    @property
    def failed(self) -> list[RetentionItem]:
        return [i for i in self.items if i.error]


def record_counts(client: Client) -> dict[str, int]:
    """How many rows of each kind deleting this client's clinical record removes (for the dry run)."""
    counts = {
        "clinic.Client": 1,
        "clinic.Consent": client.consents.count(),
        "clinic.Intake": client.intakes.count(),
        "clinic.Screening": client.screenings.count(),
        "clinic.Clearance": client.clearances.count(),
        "clinic.Course": client.courses.count(),
        "clinic.TreatmentSession": TreatmentSession.objects.filter(course__client=client).count(),
        "clinic.Outcome": client.outcomes.count(),
        "clinic.Referral": client.referrals.count(),
        "clinic.MedicalAssessment": client.assessments.count(),
        "clinic.Invitation": client.invitations.count(),
        "clinic.ErasureRequest": client.erasure_requests.count(),
        "scheduling.Appointment": Appointment.objects.filter(client=client).count(),
        "scheduling.ReminderLog": ReminderLog.objects.filter(appointment__client=client).count(),
        "scheduling.WaitlistEntry": WaitlistEntry.objects.filter(client=client).count(),
        "scheduling.CalendarToken": CalendarToken.objects.filter(client=client).count(),
    }
    return {k: v for k, v in counts.items() if v}


def _billed_visits(client: Client) -> QuerySet[Any]:
    """The client's appointments an invoice or a package session points at (the ledger's rows cannot change)."""
    return Appointment.objects.filter(client=client).filter(
        Q(pk__in=Invoice.objects.filter(client=client, appointment__isnull=False).values("appointment"))
        | Q(pk__in=Redemption.objects.filter(package__client=client).values("appointment"))
    )


def clinical_left(client: Client) -> dict[str, int]:
    """What `_delete_record` would still remove while the financial records are kept (empty: it was done)."""
    counts = record_counts(client)
    counts.pop("clinic.Client", None)
    counts.pop("clinic.ErasureRequest", None)
    left = counts.pop("scheduling.Appointment", 0) - _billed_visits(client).count()
    if left:
        counts["scheduling.Appointment"] = left
    counts.pop("scheduling.ReminderLog", None)
    return counts


def _keeps_ledger(client: Client, today: dt.date) -> dt.date | None:
    """The day the client's financial records are kept until, when that is today or later (else None)."""
    until = financial_keep_until(client)
    return until if until is not None and until >= today else None


def _delete_record(client: Client, today: dt.date | None = None) -> dict[str, int]:
    """Delete the client and everything about them except the audit trail. The order matters: appointments,
    clearances and courses protect the client or its screenings, so they go first.

    A client with financial records still within their retention (`financial_keep_until`) loses the clinical
    record only: the invoices, credit notes, payments and packages stay with the appointments they bill (their free
    text cleared) and a client row reduced to the name and address the invoices are made out to."""
    letters = [c.letter for c in client.clearances.all() if c.letter]
    letters += [a.letter for a in client.assessments.all() if a.letter]
    letters += [c.paper_form for c in client.consents.all() if c.paper_form]
    counts: Counter[str] = Counter()
    ledger_until = _keeps_ledger(client, today or timezone.localdate(timezone=client_zone(client)))
    appointments = Appointment.objects.filter(client=client)
    if ledger_until is None:
        counts.update(_purge_ledger(client))
    else:
        billed = list(_billed_visits(client).values_list("pk", flat=True))
        counts.update(ReminderLog.objects.filter(appointment__in=billed).delete()[1])
        Appointment.objects.filter(pk__in=billed).update(
            course=None, cancel_reason="", late_change_reason="", override_reason=""
        )
        appointments = appointments.exclude(pk__in=billed)
    for qs in (
        appointments,
        Clearance.objects.filter(client=client),
        Referral.objects.filter(client=client),
        Course.objects.filter(client=client),
        Outcome.objects.filter(client=client),
        Screening.objects.filter(client=client),
        Consent.objects.filter(client=client),
    ):
        counts.update(qs.delete()[1])
    if ledger_until is None:
        counts.update(Client.objects.filter(pk=client.pk).delete()[1])
    else:
        counts.update(_keep_for_the_ledger(client))
    # a file kept above is set, so it has a name
    names = [(letter.storage, cast(str, letter.name)) for letter in letters]

    def delete_files() -> None:
        for storage, name in names:
            storage.delete(name)

    transaction.on_commit(delete_files)
    return {k: v for k, v in counts.items() if v}


def _purge_ledger(client: Client) -> dict[str, int]:
    """The client's ledger rows, past their retention period: deleted with the client named in `LedgerPurge`, the
    one DELETE the append-only triggers let through (billing migration 0003), inside the caller's transaction."""
    counts: Counter[str] = Counter()
    if last_financial_record(client) is None:
        return {}
    LedgerPurge.objects.create(client_id=client.pk)
    for qs in (
        Redemption.objects.filter(package__client=client),
        Payment.objects.filter(client=client),
        Package.objects.filter(client=client),
        InvoiceLine.objects.filter(invoice__client=client),
        Invoice.objects.filter(client=client, kind=Invoice.Kind.CREDIT_NOTE),
        Invoice.objects.filter(client=client),
    ):
        counts.update(qs.delete()[1])
    LedgerPurge.objects.filter(client_id=client.pk).delete()
    return dict(counts)


def _keep_for_the_ledger(client: Client) -> dict[str, int]:
    """The client row as the kept invoices need it: name and address (what an invoice is made out to); no contact
    details, no doctor, no login, no sharing. The date of birth cannot be empty: it becomes 1 January 1900."""
    deleted: Counter[str] = Counter()
    for qs in (
        client.intakes.all(),
        client.assessments.all(),
        client.invitations.all(),
        WaitlistEntry.objects.filter(client=client),
        CalendarToken.objects.filter(client=client),
        ExternalIdentifier.objects.filter(client=client),
    ):
        deleted.update(qs.delete()[1])
    client.shared_with.clear()
    Client.objects.filter(pk=client.pk).update(
        user=None,
        email="",
        phone="",
        physician_name="",
        physician_address="",
        sex="unknown",
        date_of_birth=dt.date(1900, 1, 1),
        therapist=None,
    )
    return dict(deleted)


def run_retention(*, now: dt.datetime | None = None, dry_run: bool = False) -> RetentionRun:
    """Step 2: delete the clinical record of every confirmed erasure whose retention has ended (`keep_until` is
    before today in the clinic's zone). One transaction per client; an audit event for each deletion stays.
    `dry_run` lists what would go and changes nothing. Running it again finds nothing more to do."""
    now = now or timezone.now()
    run = RetentionRun(now=now, dry_run=dry_run)
    pending = ErasureRequest.objects.filter(status=ErasureRequest.Status.CONFIRMED).select_related("client__clinic")
    for erasure in pending.order_by("keep_until", "id"):
        client = erasure.client
        until = effective_keep_until(erasure)
        today = now.astimezone(client_zone(client)).date()
        due = until < today
        ledger_until = _keeps_ledger(client, today) if due else None
        if ledger_until is not None and not clinical_left(client):
            due, until = False, ledger_until  # the clinical record is gone; the ledger waits for its own period
        counts = (clinical_left(client) if ledger_until is not None else record_counts(client)) if due else {}
        item = RetentionItem(client.pk, client.clinic.name, until, due, counts)
        run.items.append(item)
        if not due or dry_run:
            continue
        try:
            with transaction.atomic():
                audit.record(
                    None,
                    "erasure_completed",
                    client=client,
                    detail={
                        "by": "system",
                        "command": "retention",
                        "erasure_request": erasure.pk,
                        "keep_until": until.isoformat(),
                        "retention_years": retention_years(client.clinic),
                        "deleted": item.counts,
                        **(
                            {"financial_records_kept_until": ledger_until.isoformat()}
                            if ledger_until is not None
                            else {}
                        ),
                    },
                )
                item.counts = _delete_record(client, today)
        except ProtectedError as e:
            item.error = f"could not delete client {client.pk}: {e.args[0] if e.args else e}"
    return run


# --- Records past their retention period, with no erasure request -------------------------------------------------


@dataclass
class PastRetention:
    client: Client
    last_contact: dt.datetime
    keep_until: dt.date


def retention_status(client: Client, *, now: dt.datetime | None = None) -> tuple[PastRetention | None, str]:
    """The client's record as past its retention period, or None and why it is kept."""
    now = now or timezone.now()
    today = now.astimezone(client_zone(client)).date()
    if client.erasure_requests.filter(status__in=OPEN).exists():
        return None, "An erasure request is under way: it deletes the record when its retention period ends."
    last = last_clinical_contact(client)
    if last is None:
        return None, "The client has no clinical record, so no retention period applies."
    until = add_years(last.astimezone(client_zone(client)).date(), retention_years(client.clinic))
    if until >= today:
        return None, f"The clinical record is kept until {until:%d %b %Y} (last clinical contact + retention period)."
    if _future_appointments(client, now).exists():
        return None, "The client has appointments to come: cancel them first if the record should go."
    return PastRetention(client, last, until), ""


PAGE_SIZE = 50


def first_day_kept(today: dt.date, years: int) -> dt.date:
    """The earliest last-contact day whose record is still kept today: a record whose last clinical contact falls
    before it is past retention (`add_years(day, years) < today`, 29 February included)."""
    day = add_years(today, -years)
    while add_years(day - dt.timedelta(days=1), years) >= today:
        day -= dt.timedelta(days=1)
    while add_years(day, years) < today:
        day += dt.timedelta(days=1)
    return day


def past_retention_query(clinic: Clinic, *, now: dt.datetime | None = None) -> QuerySet[Client]:
    """The clinic's clients whose clinical record has outlived its retention period (last clinical contact +
    `retention_years` before today), with no erasure request under way and nothing booked: records the clinic no
    longer has a duty to keep, for the owner to review. One query, in client order, each client annotated with
    `last_contact`. It asks whether anything is newer than the cutoff rather than computing every client's latest
    moment, so a page of it reads only as many clients as it takes to fill the page. Only clients added longer ago
    than the retention period can qualify (their record is newer than they are), so only those are looked at."""
    now = now or timezone.now()
    zone = clinic.zone
    today = now.astimezone(zone).date()
    years = retention_years(clinic)
    added_before = dt.datetime.combine(add_years(today, -years), dt.time.min, tzinfo=zone)
    contact_before = dt.datetime.combine(first_day_kept(today, years), dt.time.min, tzinfo=zone)
    under_way = ErasureRequest.objects.filter(client=OuterRef("pk"), status__in=OPEN)
    booked = Appointment.objects.filter(client=OuterRef("pk"), starts_at__gt=now).filter(live_q(now))
    return (
        Client.objects.filter(clinic=clinic, created_at__lt=added_before)
        .filter(_no_contact_since(contact_before), ~Exists(under_way), ~Exists(booked))
        .annotate(last_contact=last_contact_expression())
        .select_related("clinic")
        .order_by("pk")
    )


def _past(client: Client) -> PastRetention:
    # annotated by past_retention_query; the model does not declare it
    last: dt.datetime = client.last_contact  # type: ignore[attr-defined]
    return PastRetention(client, last, _keep_until(client, last))


def past_retention(clinic: Clinic, *, now: dt.datetime | None = None) -> list[PastRetention]:
    """Every record of the clinic past its retention period (`past_retention_query`), oldest contact first."""
    found = [_past(client) for client in past_retention_query(clinic, now=now)]
    return sorted(found, key=lambda d: (d.last_contact, d.client.pk))


@dataclass
class PastRetentionPage:
    items: list[PastRetention]
    next_after: int | None  # the client id the next page starts after, None on the last page


def past_retention_page(
    clinic: Clinic, *, after: str | int | None = None, size: int | None = None, now: dt.datetime | None = None
) -> PastRetentionPage:
    """One page of `past_retention_query` in client order, after the client id `after` (from the previous page; one
    that cannot be read starts over): a keyset, so a page costs the same wherever it is."""
    size = size or PAGE_SIZE
    qs = past_retention_query(clinic, now=now)
    start = after if isinstance(after, int) else ascii_id(after)
    if start is not None:
        qs = qs.filter(pk__gt=start)
    rows = list(qs[: size + 1])
    items = [_past(client) for client in rows[:size]]
    return PastRetentionPage(items, items[-1].client.pk if len(rows) > size else None)


@transaction.atomic
def delete_past_retention(
    client: Client, *, by: Any, request: Any = None, now: dt.datetime | None = None
) -> dict[str, int]:
    """The owner deletes a record that has outlived its retention period (see `past_retention`): the client and
    their whole clinical record, as the retention job does after an erasure; the audit trail stays, with a
    `retention_deleted` event. Refused, saying why, when the record must still be kept."""
    _owner(by, client)
    now = now or timezone.now()
    locked(Client.objects.filter(pk=client.pk)).first()
    due, why = retention_status(client, now=now)
    if due is None:
        raise ValidationError(why)
    ledger_until = _keeps_ledger(client, now.astimezone(client_zone(client)).date())
    detail = {
        "last_clinical_contact": due.last_contact.isoformat(),
        "keep_until": due.keep_until.isoformat(),
        "retention_years": retention_years(client.clinic),
        "deleted": record_counts(client) if ledger_until is None else clinical_left(client),
    }
    if ledger_until is not None:
        detail["financial_records_kept_until"] = ledger_until.isoformat()
    audit.record(by, "retention_deleted", client=client, detail=detail, request=request)
    try:
        with transaction.atomic():
            return _delete_record(client, now.astimezone(client_zone(client)).date())
    except ProtectedError as e:
        raise ValidationError(f"The record could not be deleted: {e.args[0] if e.args else e}") from None


__all__ = [
    "ErasurePlan",
    "PastRetention",
    "PastRetentionPage",
    "RetentionRun",
    "confirm_erasure",
    "delete_past_retention",
    "effective_keep_until",
    "erasure_plan",
    "financial_keep_until",
    "keep_until",
    "open_request",
    "open_requests",
    "past_retention",
    "past_retention_page",
    "past_retention_query",
    "request_erasure",
    "respond_by",
    "retention_status",
    "retention_years",
    "run_retention",
    "withdraw_erasure",
]
