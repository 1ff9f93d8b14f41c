"""What the FHIR import remembers: the identifiers a client came with from the other system.

They let a second import of the same person be recognised (a duplicate is refused, never a second client), and the
client's export carries them on as secondary identifiers, so the record can be traced back to where it came from.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from backcare.clinic.models import Client, Clinic


class ExternalIdentifier(models.Model):
    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="+")
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="external_identifiers")
    system = models.CharField(max_length=255)
    value = models.CharField(max_length=255)
    imported_at = models.DateTimeField(default=timezone.now)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["client", "id"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "system", "value"], name="interop_identifier_once_per_clinic")
        ]

    def __str__(self) -> str:
        return f"{self.system}|{self.value}"
