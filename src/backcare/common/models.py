"""The outbox: every email the clinic sends is first a row here, written in the same transaction as the change that
caused it, and sent by a worker (`backcare.common.outbox`)."""

from __future__ import annotations

from typing import Any

from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models
from django.utils import timezone


class OutboundMessage(models.Model):
    """One email to send, with everything needed to send it (the .ics of a confirmation included), so the worker
    never has to look at the record it is about. `idempotency_key` names the event (one confirmation of one change,
    one reminder for one start time, one invitation): the same event is enqueued once, however often it is asked."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENDING = "sending", "Being sent"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed: no more attempts"
        CANCELLED = "cancelled", "Not sent: no longer true"

    idempotency_key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=40, help_text='What the email is, "app.what": "scheduling.booked".')
    clinic_id = models.BigIntegerField(null=True, blank=True, help_text="The clinic whose owner sees it.")
    client_id = models.BigIntegerField(null=True, blank=True, help_text="The client it is to (for erasure).")
    context = models.JSONField(default=dict, blank=True, help_text="What it is about, for the check before sending.")
    from_email = models.CharField(max_length=254, blank=True)
    to = models.JSONField(default=list)
    reply_to = models.JSONField(default=list, blank=True)
    subject = models.TextField()
    body_text = models.TextField(blank=True)
    body_html = models.TextField(blank=True)
    attachments = models.JSONField(default=list, blank=True)
    secret = models.BooleanField(
        default=False, help_text="The body holds a secret (a sign-in link): never shown, blanked once sent."
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=8)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_by = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="common_outbox_due"),
            models.Index(fields=["clinic_id", "status"], name="common_outbox_clinic"),
            models.Index(fields=["client_id"], name="common_outbox_client"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.get_status_display()})"

    @property
    def recipients(self) -> str:
        return ", ".join(self.to)


class UserSession(AbstractBaseSession):
    """A signed-in session that knows whose it is (`backcare.common.sessions`), so a password reset, a second
    factor turned on or a leaver's deactivation ends that user's sessions with one indexed delete, not by decoding
    every session of the clinic."""

    user_id = models.BigIntegerField(null=True, blank=True, db_index=True)

    class Meta(AbstractBaseSession.Meta):
        db_table = "common_usersession"

    @classmethod
    def get_session_store_class(cls) -> type[Any]:
        from backcare.common.sessions import SessionStore  # the engine imports this module

        return SessionStore
