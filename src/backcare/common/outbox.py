"""No email is lost when the mail server is down: every email goes into the outbox (`OutboundMessage`) in the same
transaction as the change that caused it, and a worker sends it, with retries.

Enqueue, inside the caller's transaction (a rolled-back change leaves no email behind):

    enqueue_email(key="appointment-7-booked-...", kind="scheduling.booked", to=[...], subject=..., body=...)

The same `key` enqueues once: asking again returns the first row. After the commit, the row is "kicked": the
in-process worker is woken (`backcare serve`), or, without one, the message is sent there and then (best effort;
`BACKCARE_OUTBOX_SEND_ON_COMMIT`). Either way the row is the source of truth, and whatever the kick did not send a
worker sends: `backcare worker` (a loop) or `backcare manage send_outbox` (once, from cron every minute).

Sending (`send_due`), safe with any number of workers at once:
1. claim up to a batch of due rows in one short transaction: pending rows whose next attempt has come, and rows
   being sent whose lease ran out (their worker died). On PostgreSQL the rows are read `FOR UPDATE SKIP LOCKED`, so
   two workers take different rows without waiting; on SQLite the transaction starts with BEGIN IMMEDIATE (the
   project's connections are configured so, see `backcare.scheduling.locking`), so claims run one at a time. Each
   row is then taken with a conditional UPDATE (still in the state it was read in), which alone would also keep two
   claimers apart. The claim marks the row SENDING with this worker's token and a lease, and counts the attempt;
2. ask the app that enqueued it whether it is still true (`register_check`): a confirmation of a booking that was
   moved since is CANCELLED instead of sent;
3. send it through Django's email backend, outside any transaction;
4. mark it SENT, or record the error and make it PENDING again after an exponential backoff (BACKOFF_SECONDS, then
   twice that, ... capped at BACKOFF_CAP_SECONDS); after `max_attempts` attempts it is FAILED, and the owner sees it
   on the outbox page, where a retry puts it back.

Exactly once: a row is sent by the one worker that claimed it. A worker that dies after handing the email to the
mail server but before step 4 leaves the row SENDING; after the lease (LEASE_SECONDS, longer than any send takes) it
is claimed and sent again, so in that one case the email may arrive twice; it carries the same Message-ID both
times, so mail programs can tell. The lease must stay well above EMAIL_TIMEOUT.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.mime.base import MIMEBase
from email.mime.text import MIMEText
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.utils import DNS_NAME
from django.db import close_old_connections, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from backcare.common.models import OutboundMessage
from backcare.common.rowlock import locked

logger = logging.getLogger(__name__)
Status = OutboundMessage.Status

DEFAULTS: dict[str, Any] = {
    "MAX_ATTEMPTS": 8,
    "BACKOFF_SECONDS": 60,
    "BACKOFF_CAP_SECONDS": 3600,
    "LEASE_SECONDS": 600,
    "BATCH": 20,
    "POLL_SECONDS": 15,
    "SEND_ON_COMMIT": True,
    "IN_PROCESS": False,
    "KEEP_BODIES_DAYS": 30,
}


def option(name: str) -> Any:
    """One outbox setting: settings.BACKCARE_OUTBOX[name], else the default above."""
    return getattr(settings, "BACKCARE_OUTBOX", {}).get(name, DEFAULTS[name])


# --- enqueue ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attachment:
    """A file sent with the email. Text (an .ics) is stored as text; `params` are added to its Content-Type (an
    iTIP calendar part needs `method=REQUEST`)."""

    filename: str
    content: str | bytes
    mimetype: str = "application/octet-stream"
    params: tuple[tuple[str, str], ...] = ()

    def stored(self) -> dict[str, Any]:
        text = isinstance(self.content, str)
        content = self.content if isinstance(self.content, str) else base64.b64encode(self.content).decode("ascii")
        return {
            "filename": self.filename,
            "mimetype": self.mimetype,
            "encoding": "text" if text else "base64",
            "content": content,
            "params": dict(self.params),
        }


def enqueue_email(
    *,
    key: str,
    kind: str,
    to: Sequence[str],
    subject: str,
    body: str,
    html: str = "",
    attachments: Iterable[Attachment] = (),
    from_email: str | None = None,
    reply_to: Sequence[str] = (),
    clinic_id: int | None = None,
    client_id: int | None = None,
    context: dict[str, Any] | None = None,
    secret: bool = False,
    max_attempts: int | None = None,
) -> tuple[OutboundMessage, bool]:
    """Put one email in the outbox, in the caller's transaction. Returns (row, created); an existing `key` returns
    its row untouched (the event was enqueued already). The row is kicked once the transaction commits."""
    if not to or not all(to):
        raise ValueError("an email needs at least one recipient")
    message, created = OutboundMessage.objects.get_or_create(
        idempotency_key=key,
        defaults={
            "kind": kind,
            "to": list(to),
            "subject": " ".join(subject.split()),
            "body_text": body,
            "body_html": html,
            "attachments": [a.stored() for a in attachments],
            "from_email": from_email or settings.DEFAULT_FROM_EMAIL,
            "reply_to": list(reply_to),
            "clinic_id": clinic_id,
            "client_id": client_id,
            "context": context or {},
            "secret": secret,
            "max_attempts": max_attempts or int(option("MAX_ATTEMPTS")),
        },
    )
    if created:
        pk = message.pk
        transaction.on_commit(lambda: kick(pk), robust=True)
    return message, created


# --- what the apps above may say before a message goes -----------------------------------------------------------

Check = Callable[[OutboundMessage], str]
_checks: dict[str, Check] = {}


def register_check(app: str, check: Check) -> None:
    """`check(message)` is asked just before a message of kind "<app>.*" is sent; a non-empty answer (the reason)
    cancels it instead. The apps above register theirs when they are ready (their AppConfig.ready)."""
    _checks[app] = check


def _reason_not_to_send(message: OutboundMessage) -> str:
    check = _checks.get(message.kind.split(".", 1)[0])
    return check(message) if check is not None else ""


# --- claim, send, mark -----------------------------------------------------------------------------------------------


@dataclass
class SendResult:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    cancelled: int = 0

    @property
    def claimed(self) -> int:
        return self.sent + self.retrying + self.failed + self.cancelled

    def summary(self) -> str:
        return (
            f"{self.sent} email(s) sent, {self.retrying} to be tried again later, {self.failed} failed for good, "
            f"{self.cancelled} not sent (no longer true)"
        )


def backoff(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed attempt: BACKOFF_SECONDS doubled each time, up to the cap."""
    base, cap = float(option("BACKOFF_SECONDS")), float(option("BACKOFF_CAP_SECONDS"))
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), cap))


def claim(*, now: datetime, worker: str, limit: int, only: Sequence[int] | None = None) -> list[OutboundMessage]:
    """Take up to `limit` due rows for this worker (see the module's step 1). Rows another worker holds are left."""
    due = Q(status=Status.PENDING, next_attempt_at__lte=now) | Q(status=Status.SENDING, lease_expires_at__lte=now)
    lease = now + timedelta(seconds=float(option("LEASE_SECONDS")))
    taken: list[int] = []
    with transaction.atomic():
        rows = OutboundMessage.objects.filter(due)
        if only is not None:
            rows = rows.filter(pk__in=list(only))
        if connection.vendor == "postgresql":
            rows = locked(rows, skip_locked=True)
        for pk, status, attempts in rows.order_by("next_attempt_at", "pk").values_list("pk", "status", "attempts")[
            :limit
        ]:
            won = OutboundMessage.objects.filter(pk=pk, status=status, attempts=attempts).update(
                status=Status.SENDING,
                attempts=F("attempts") + 1,
                claimed_by=worker,
                lease_expires_at=lease,
            )
            if won:
                taken.append(pk)
    return list(OutboundMessage.objects.filter(pk__in=taken, claimed_by=worker).order_by("next_attempt_at", "pk"))


def message_id(message: OutboundMessage) -> str:
    """The same Message-ID every time this row is sent, so a rare second delivery is recognisable as the same."""
    digest = hashlib.sha256(message.idempotency_key.encode("utf-8")).hexdigest()[:20]
    return f"<outbox-{message.pk}.{digest}@{DNS_NAME}>"


def _part(stored: dict[str, Any]) -> MIMEBase:
    maintype, _, subtype = str(stored["mimetype"]).partition("/")
    part: MIMEBase
    if stored.get("encoding") == "text":
        part = MIMEText(str(stored["content"]), subtype if maintype == "text" else "plain", "utf-8")
    else:
        from email import encoders

        part = MIMEBase(maintype, subtype)
        part.set_payload(base64.b64decode(stored["content"]))
        encoders.encode_base64(part)
    for name, value in (stored.get("params") or {}).items():
        part.set_param(name, value)
    part.add_header("Content-Disposition", "attachment", filename=stored["filename"])
    return part


def as_email(message: OutboundMessage, mail_connection: Any = None) -> EmailMultiAlternatives:
    email = EmailMultiAlternatives(
        message.subject,
        message.body_text,
        message.from_email or settings.DEFAULT_FROM_EMAIL,
        list(message.to),
        reply_to=list(message.reply_to) or None,
        headers={"Message-ID": message_id(message)},
        connection=mail_connection,
    )
    if message.body_html:
        email.attach_alternative(message.body_html, "text/html")
    for stored in message.attachments:
        email.attach(_part(stored))
    return email


def _mine(message: OutboundMessage) -> Any:
    """The row, while this worker's claim on it stands (a claim taken over after its lease ran out is not)."""
    return OutboundMessage.objects.filter(pk=message.pk, status=Status.SENDING, claimed_by=message.claimed_by)


def deliver(message: OutboundMessage, *, now: datetime | None = None, mail_connection: Any = None) -> str:
    """Send one claimed message and mark it; returns its new status. Never raises for a mail failure."""
    check_error: Exception | None
    try:
        reason = _reason_not_to_send(message)
    except Exception as error:  # a broken check must not stop the other messages; it is retried like a send
        logger.exception("the check before sending outbox message %s failed", message.pk)
        reason, check_error = "", error
    else:
        check_error = None
    if reason:
        _mine(message).update(status=Status.CANCELLED, last_error=reason[:1000], lease_expires_at=None)
        return Status.CANCELLED
    try:
        if check_error is not None:
            raise check_error
        as_email(message, mail_connection).send(fail_silently=False)
    except Exception as error:  # any failure to hand the email over is recorded and tried again
        now = now or timezone.now()
        text = f"{type(error).__name__}: {error}"[:1000]
        gave_up = message.attempts >= message.max_attempts
        logger.warning(
            "outbox message %s (%s), attempt %s of %s, failed: %s",
            message.pk,
            message.kind,
            message.attempts,
            message.max_attempts,
            text,
        )
        status = Status.FAILED if gave_up else Status.PENDING
        _mine(message).update(
            status=status,
            last_error=text,
            lease_expires_at=None,
            next_attempt_at=now if gave_up else now + backoff(message.attempts),
        )
        return status
    scrub: dict[str, Any] = {"body_text": "", "body_html": "", "attachments": []} if message.secret else {}
    _mine(message).update(status=Status.SENT, sent_at=timezone.now(), last_error="", lease_expires_at=None, **scrub)
    return Status.SENT


def release(messages: Iterable[OutboundMessage]) -> int:
    """Give back claimed messages not tried yet (a worker told to stop): due again at once, the attempt uncounted."""
    return sum(
        _mine(m).update(status=Status.PENDING, attempts=F("attempts") - 1, claimed_by="", lease_expires_at=None)
        for m in messages
    )


def send_due(
    *,
    now: datetime | None = None,
    worker: str | None = None,
    only: Sequence[int] | None = None,
    batches: int = 0,
    stopping: Callable[[], bool] | None = None,
) -> SendResult:
    """Send every message that is due, batch after batch until none is left (or `batches` batches, when given).
    When `stopping()` turns true, the message in hand is finished and the rest of the batch given back."""
    worker = worker or uuid.uuid4().hex
    result = SendResult()
    done = 0
    while not batches or done < batches:
        done += 1
        claimed = claim(now=now or timezone.now(), worker=worker, limit=int(option("BATCH")), only=only)
        if not claimed:
            break
        mail_connection = get_connection()
        for n, message in enumerate(claimed):
            if stopping is not None and stopping():
                release(claimed[n:])
                return result
            status = deliver(message, now=now, mail_connection=mail_connection)
            if status == Status.SENT:
                result.sent += 1
            elif status == Status.PENDING:
                result.retrying += 1
            elif status == Status.FAILED:
                result.failed += 1
            else:
                result.cancelled += 1
    return result


# --- the owner's retry, erasure ------------------------------------------------------------------------------------


def retry(message: OutboundMessage, *, now: datetime | None = None) -> bool:
    """Try a failed or waiting message again now, with a fresh set of attempts. False when it is sent, cancelled or
    being sent (nothing to retry). The caller records who asked."""
    now = now or timezone.now()
    changed = OutboundMessage.objects.filter(pk=message.pk, status__in=[Status.FAILED, Status.PENDING]).update(
        status=Status.PENDING, attempts=0, next_attempt_at=now, lease_expires_at=None
    )
    if changed:
        pk = message.pk
        transaction.on_commit(lambda: kick(pk), robust=True)
    return bool(changed)


def forget_client(client_id: int) -> int:
    """Erasure: the client's messages lose their address, subject and body; those not yet sent are never sent."""
    rows = OutboundMessage.objects.filter(client_id=client_id)
    rows.filter(status__in=[Status.PENDING, Status.FAILED, Status.SENDING]).update(
        status=Status.CANCELLED, last_error="the client's data was erased", lease_expires_at=None
    )
    return rows.update(to=[], reply_to=[], subject="(erased)", body_text="", body_html="", attachments=[], context={})


def prune(*, now: datetime | None = None) -> int:
    """Blank the bodies and attachments of emails sent or cancelled more than KEEP_BODIES_DAYS ago: what they said
    is the record's business, not the outbox's. What, to whom, when and how it went stays."""
    cutoff = (now or timezone.now()) - timedelta(days=float(option("KEEP_BODIES_DAYS")))
    old = Q(status=Status.SENT, sent_at__lt=cutoff) | Q(status=Status.CANCELLED, created_at__lt=cutoff)
    return (
        OutboundMessage.objects.filter(old)
        .exclude(body_text="", body_html="", attachments=[])
        .update(body_text="", body_html="", attachments=[])
    )


# --- workers ---------------------------------------------------------------------------------------------------------


class Worker:
    """Sends what is due, then waits POLL_SECONDS (or until woken by a new message), until stopped.

    `run()` in the foreground (`backcare worker`), or `start()` in a thread beside the web server (`backcare
    serve` with BACKCARE_OUTBOX_IN_PROCESS). `stop()` lets the message in hand finish, then returns."""

    def __init__(self, poll_seconds: float | None = None) -> None:
        self.poll_seconds = float(option("POLL_SECONDS") if poll_seconds is None else poll_seconds)
        self.name = f"worker-{uuid.uuid4().hex[:12]}"
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.total = SendResult()
        self._pruned_at: datetime | None = None

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run_once(self) -> SendResult:
        if self._pruned_at is None or timezone.now() - self._pruned_at > timedelta(hours=1):
            prune()
            self._pruned_at = timezone.now()
        result = send_due(worker=self.name, batches=1, stopping=self._stop.is_set)
        for name in ("sent", "retrying", "failed", "cancelled"):
            setattr(self.total, name, getattr(self.total, name) + getattr(result, name))
        return result

    def run(self) -> None:
        try:
            while not self._stop.is_set():
                close_old_connections()  # as between requests: a connection the database dropped is replaced
                try:
                    result = self.run_once()
                except Exception:  # the database went away for a moment, say: log, wait, go on
                    logger.exception("the outbox worker could not send; trying again in %s s", self.poll_seconds)
                    result = SendResult()
                if result.claimed and not self._stop.is_set():
                    continue  # there may be more due right away
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
        finally:
            connection.close()

    def start(self) -> None:
        global _in_process
        self._thread = threading.Thread(target=self.run, name="backcare-outbox", daemon=True)
        self._thread.start()
        _in_process = self

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)


_in_process: Worker | None = None


def start_in_process(poll_seconds: float | None = None) -> Worker:
    """A worker thread in this process; new messages wake it at once."""
    worker = Worker(poll_seconds)
    worker.start()
    return worker


def stop_in_process() -> None:
    global _in_process
    if _in_process is not None:
        _in_process.stop()
        _in_process = None


def kick(pk: int) -> None:
    """After the commit that enqueued message `pk`: wake this process's worker, or else send the message now (best
    effort; a failure is recorded on the row and a worker tries again)."""
    if _in_process is not None and not _in_process.stopping:
        _in_process.wake()
    elif option("SEND_ON_COMMIT"):
        send_due(only=[pk], batches=1)


__all__ = [
    "Attachment",
    "SendResult",
    "Worker",
    "as_email",
    "backoff",
    "claim",
    "deliver",
    "enqueue_email",
    "forget_client",
    "kick",
    "prune",
    "register_check",
    "release",
    "retry",
    "send_due",
    "start_in_process",
    "stop_in_process",
]
