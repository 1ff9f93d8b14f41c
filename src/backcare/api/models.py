"""Personal API tokens. Only the SHA-256 of a token is stored (as for invitations and calendar feeds); the secret is
shown once, when it is made. Every token belongs to one user and acts with exactly that user's permissions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

READ = "read"
WRITE = "write"
SCOPES = (READ, WRITE)


class ApiToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for, in the owner's words.")
    prefix = models.CharField(max_length=20, unique=True, help_text="The token's first characters, to recognise it.")
    token_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list, help_text='"read", or "read" and "write".')
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "created_at"])]

    def __str__(self) -> str:
        # Ninja's throttles key on str(request.auth): one bucket per token.
        return f"api-token-{self.pk}"

    @property
    def can_write(self) -> bool:
        return WRITE in (self.scopes or [])

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expired else "active"


class RateCount(models.Model):
    """Requests made with one token in one window of the rate limit, counted with one atomic upsert per request
    (backcare.api.throttling), so concurrent requests on any number of servers are all counted."""

    bucket = models.CharField(max_length=100, help_text="Whose requests: a hash of the token.")
    window_start = models.BigIntegerField(help_text="The window's start, in seconds since 1970 (UTC).")
    hits = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["bucket", "window_start"], name="api_ratecount_one_per_window")]

    def __str__(self) -> str:
        return f"{self.bucket[:12]} @ {self.window_start}: {self.hits}"
