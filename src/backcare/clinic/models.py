"""The clinic's records. Every write goes through `backcare.clinic.services`; views only read and call services.

Clinical results are stored as the clinical core returned them (JSON) together with the rule base's version and
digest, so a decision can always be explained later exactly as it was made.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_otp.models import Device, ThrottlingMixin, TimestampMixin

from backcare.clinical.vocabulary import DECISIONS, REGIONS, TECHNIQUES


def _choices(codes: Any) -> list[tuple[str, str]]:
    return [(c, c.replace("_", " ")) for c in codes]


class Clinic(models.Model):
    name = models.CharField(max_length=200)
    time_zone = models.CharField(max_length=64, default="Europe/London")
    address = models.TextField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    email = models.EmailField(blank=True)
    start_back_enabled = models.BooleanField(
        default=True, help_text="Ask Keele's STarT Back questions in the online intake."
    )
    retention_years = models.PositiveSmallIntegerField(default=8)
    cancellation_hours = models.PositiveSmallIntegerField(default=24)
    require_two_factor = models.BooleanField(
        default=False,
        help_text="Every staff member signs in with a code from an authenticator app (owners always do).",
    )

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", "Clinic owner"
    THERAPIST = "therapist", "Therapist"
    FRONT_DESK = "front_desk", "Front desk"


class StaffMember(models.Model):
    """A user who works at a clinic, with one role."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="staff")
    role = models.CharField(max_length=20, choices=Role.choices)
    display_name = models.CharField(max_length=200)
    qualified_techniques = models.JSONField(
        default=list, blank=True, help_text="Technique codes this therapist is qualified for."
    )
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["display_name"]

    def __str__(self) -> str:
        return self.display_name

    @property
    def is_owner(self) -> bool:
        return self.role == Role.OWNER

    @property
    def is_therapist(self) -> bool:
        return self.role == Role.THERAPIST

    @property
    def is_front_desk(self) -> bool:
        return self.role == Role.FRONT_DESK


def recovery_code_digest(code: str) -> str:
    """The stored form of a recovery code: SHA-256 of the code without spaces or hyphens, in lower case. The codes
    carry 80 random bits, so a digest cannot be turned back into a code (as for API tokens)."""
    normal = "".join(code.split()).replace("-", "").lower()
    return hashlib.sha256(normal.encode("utf-8")).hexdigest()


class RecoveryCodes(TimestampMixin, ThrottlingMixin, Device):
    """A staff member's one-time recovery codes, a django-otp device beside their authenticator app (TOTPDevice).

    Only the digests are stored (see `recovery_code_digest`); a used code is deleted, so each works once. Wrong codes
    are throttled like the app's (an ever longer wait after each failure)."""

    def get_throttle_factor(self) -> int:
        return int(getattr(settings, "OTP_STATIC_THROTTLE_FACTOR", 1))

    def verify_token(self, token: Any) -> bool:
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        match = self.codes.filter(digest=recovery_code_digest(str(token))).first()
        if match is None:
            self.throttle_increment()
            return False
        match.delete()
        self.throttle_reset(commit=False)
        self.set_last_used_timestamp(commit=False)
        self.save()
        return True


class RecoveryCode(models.Model):
    device = models.ForeignKey(RecoveryCodes, on_delete=models.CASCADE, related_name="codes")
    digest = models.CharField(max_length=64, db_index=True)


class Client(models.Model):
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="clients")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="client"
    )
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    date_of_birth = models.DateField()
    sex = models.CharField(max_length=10, choices=_choices(("female", "male", "other", "unknown")), default="unknown")
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    address = models.TextField(blank=True)
    physician_name = models.CharField(max_length=200, blank=True)
    physician_address = models.TextField(blank=True)
    therapist = models.ForeignKey(
        StaffMember, null=True, blank=True, on_delete=models.SET_NULL, related_name="own_clients"
    )
    shared_with = models.ManyToManyField(StaffMember, blank=True, related_name="shared_clients")
    created_at = models.DateTimeField(default=timezone.now)
    erasure_requested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["last_name", "first_name"]
        # The client lists' order (name, then id, so pages are stable), read from the index without a sort. Name
        # search has its own index, made by migration (clinic.search).
        indexes = [models.Index(fields=["clinic", "last_name", "first_name", "id"], name="client_clinic_name_order")]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    def age_on(self, day: Any = None) -> int:
        day = day or timezone.localdate()
        dob = self.date_of_birth
        return day.year - dob.year - ((day.month, day.day) < (dob.month, dob.day))


class Invitation(models.Model):
    """A link that lets a client register, sign consent and fill in the intake. Only the token's hash is stored.

    The secret reaches the client only: by email to their address, or in a hand-over on the clinic's device that
    signs the staff member out first. It is never shown to staff."""

    class Method(models.TextChoices):
        EMAIL = "email", "Emailed to the client"
        HANDOVER = "handover", "Handed over on the clinic's device"

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="invitations")
    token_hash = models.CharField(max_length=64, unique=True)
    method = models.CharField(max_length=10, choices=Method.choices, default=Method.EMAIL)
    created_by = models.ForeignKey(StaffMember, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    # Wrong dates of birth typed at registration; at INVITATION_CHECKS the link stops working.
    failed_checks = models.PositiveSmallIntegerField(default=0)

    @staticmethod
    def new_token() -> str:
        return secrets.token_urlsafe(32)

    @property
    def usable(self) -> bool:
        return self.used_at is None and self.expires_at > timezone.now()


class ConsentText(models.Model):
    """A published version of the informed-consent text; never edited once a client has signed it."""

    version = models.CharField(max_length=20, unique=True)
    title = models.CharField(max_length=200)
    body = models.TextField()
    published_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-published_at"]

    def __str__(self) -> str:
        return f"{self.title} (version {self.version})"


class Consent(models.Model):
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="consents")
    text = models.ForeignKey(ConsentText, on_delete=models.PROTECT, related_name="consents")
    signature = models.CharField(max_length=200, help_text="The client's full name, typed.")
    signed_at = models.DateTimeField(default=timezone.now)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-signed_at"]


class Intake(models.Model):
    """The anamnesis. `answers` holds the form as the client left it (a draft may be half-finished); `document` is
    the contract intake built from it on submission, which is what the clinical core screens."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Being filled in"
        SUBMITTED = "submitted", "Submitted, awaiting review"
        REVIEWED = "reviewed", "Reviewed by the therapist"

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="intakes")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    answers = models.JSONField(default=dict, blank=True)
    document = models.JSONField(null=True, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(StaffMember, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        get_latest_by = "started_at"


class Screening(models.Model):
    """One run of the clinical core, kept exactly as it was returned. Never changed after it is made."""

    class Kind(models.TextChoices):
        INTAKE = "intake", "Intake screening"
        REVIEW = "review", "Screening after the therapist's review"
        PRE_SESSION = "pre_session", "Pre-session health update"

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="screenings")
    intake = models.ForeignKey(Intake, null=True, blank=True, on_delete=models.SET_NULL, related_name="screenings")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    document = models.JSONField(help_text="The intake document that was screened.")
    result = models.JSONField()
    decision = models.CharField(max_length=30, choices=_choices(DECISIONS))
    referral = models.CharField(max_length=20, default="none")
    rule_base_version = models.CharField(max_length=40)
    rule_base_digest = models.CharField(max_length=80)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        get_latest_by = ["created_at", "id"]

    @property
    def blocks_treatment(self) -> bool:
        return self.decision in ("postpone", "refer_urgent", "refer_emergency")

    @property
    def needs_clearance(self) -> bool:
        return self.decision == "clearance_required"


class Clearance(models.Model):
    """A physician's clearance for a screening that required one."""

    screening = models.ForeignKey(Screening, on_delete=models.PROTECT, related_name="clearances")
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="clearances")
    given_by = models.CharField(max_length=200, help_text="Name and role of the clinician who gave clearance.")
    given_on = models.DateField()
    note = models.TextField(blank=True)
    letter = models.FileField(upload_to="clearances/%Y/%m/", blank=True)
    recorded_by = models.ForeignKey(StaffMember, null=True, on_delete=models.SET_NULL, related_name="+")
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-recorded_at"]


class Course(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "In progress"
        COMPLETED = "completed", "Completed"
        REFERRED = "referred", "Ended with a referral"
        STOPPED = "stopped", "Stopped"

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="courses")
    therapist = models.ForeignKey(StaffMember, null=True, on_delete=models.SET_NULL, related_name="courses")
    screening = models.ForeignKey(Screening, on_delete=models.PROTECT, related_name="courses")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    recommended_plan = models.JSONField(help_text="The plan the screening recommended, kept for comparison.")
    techniques = models.JSONField(default=list)
    sessions_planned = models.PositiveSmallIntegerField(default=4)
    weeks = models.PositiveSmallIntegerField(default=6)
    reassess_after = models.PositiveSmallIntegerField(default=2)
    goals = models.TextField(blank=True)
    adjuncts = models.JSONField(default=list, blank=True)
    home_programme = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_note = models.TextField(blank=True)
    created_by = models.ForeignKey(StaffMember, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            # One course in progress per client at a time.
            models.UniqueConstraint(fields=["client"], condition=Q(status="active"), name="one_active_course"),
        ]

    @property
    def precautions(self) -> dict[str, Any]:
        result: dict[str, Any] = self.screening.result
        return result.get("precautions", {})


class TreatmentSession(models.Model):
    class Status(models.TextChoices):
        COMPLETED = "completed", "Completed"
        STOPPED = "stopped", "Stopped"

    class Response(models.TextChoices):
        RELAXED = "relaxed", "Relaxed, comfortable with the pressure"
        TOLERATED = "tolerated", "Tolerated with some discomfort"
        GUARDING = "guarding", "Guarding: tensing against the pressure, pain"

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="sessions")
    number = models.PositiveSmallIntegerField()
    therapist = models.ForeignKey(StaffMember, null=True, on_delete=models.SET_NULL, related_name="+")
    health_update = models.ForeignKey(
        Screening, null=True, blank=True, on_delete=models.SET_NULL, related_name="treatment_sessions"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.COMPLETED)
    held_at = models.DateTimeField(default=timezone.now)
    subjective = models.TextField(blank=True)
    objective = models.TextField(blank=True)
    assessment = models.TextField(blank=True)
    plan_note = models.TextField(blank=True)
    body_chart = models.JSONField(default=dict, blank=True, help_text="{region: {treated, tension 0-3, pain 0-10}}")
    techniques = models.JSONField(default=list)
    pressure = models.PositiveSmallIntegerField(null=True, blank=True)
    deviation_reason = models.TextField(blank=True)
    deviations = models.JSONField(default=list, blank=True)
    response = models.CharField(max_length=20, choices=Response.choices, blank=True)
    pain_before = models.PositiveSmallIntegerField(null=True, blank=True)
    pain_after = models.PositiveSmallIntegerField(null=True, blank=True)
    aftercare = models.TextField(blank=True)
    stop_reason = models.TextField(blank=True)
    recorded_at = models.DateTimeField(default=timezone.now)
    submission_key = models.CharField(max_length=64, unique=True, null=True, blank=True)

    class Meta:
        ordering = ["course", "number"]
        constraints = [models.UniqueConstraint(fields=["course", "number"], name="one_session_number_per_course")]


class Outcome(models.Model):
    class Instrument(models.TextChoices):
        PAIN = "pain_nrs", "Pain (0-10)"
        RMDQ = "rmdq", "Roland-Morris Disability Questionnaire (0-24)"
        START_BACK = "start_back", "Keele STarT Back"

    class Timepoint(models.TextChoices):
        INTAKE = "intake", "Intake"
        BASELINE = "baseline", "Baseline"
        SESSION = "session", "Session"
        REASSESSMENT = "reassessment", "Reassessment"
        DISCHARGE = "discharge", "Discharge"

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="outcomes")
    course = models.ForeignKey(Course, null=True, blank=True, on_delete=models.CASCADE, related_name="outcomes")
    session = models.ForeignKey(
        TreatmentSession, null=True, blank=True, on_delete=models.CASCADE, related_name="outcomes"
    )
    instrument = models.CharField(max_length=20, choices=Instrument.choices)
    timepoint = models.CharField(max_length=20, choices=Timepoint.choices)
    score = models.PositiveSmallIntegerField()
    answers = models.JSONField(default=dict, blank=True)
    interpretation = models.CharField(max_length=200, blank=True)
    recorded_at = models.DateTimeField(default=timezone.now)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["recorded_at", "id"]


class Referral(models.Model):
    class Urgency(models.TextChoices):
        ROUTINE = "routine", "Routine"
        URGENT = "urgent", "Urgent (within 24 hours)"
        EMERGENCY = "emergency", "Emergency (now)"

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="referrals")
    course = models.ForeignKey(Course, null=True, blank=True, on_delete=models.SET_NULL, related_name="referrals")
    screening = models.ForeignKey(Screening, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    urgency = models.CharField(max_length=20, choices=Urgency.choices)
    reason = models.TextField()
    findings = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(StaffMember, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]


class AuditEvent(models.Model):
    """Who saw or changed what, when. Rows are only ever added: the model refuses updates and deletes, the admin
    shows them read-only, and database triggers refuse UPDATE and DELETE (migration 0002)."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False
    )
    actor = models.CharField(max_length=200, help_text="The user's name and role at the time.")
    action = models.CharField(max_length=40)
    client = models.ForeignKey(Client, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False)
    object_type = models.CharField(max_length=60, blank=True)
    object_id = models.CharField(max_length=60, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["client", "at"])]

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise PermissionError("audit events cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError("audit events cannot be deleted")


REGION_CHOICES = _choices(REGIONS)
TECHNIQUE_CHOICES = [(code, name) for code, name in TECHNIQUES.items()]


class ErasureRequest(models.Model):
    """A client's request to erase their data (see docs/data-rights.md and `services.datarights`).

    Requested (from the portal, or recorded by the owner for a request by phone, letter or email) -> confirmed by the
    owner, which deletes at once what may be deleted and keeps the clinical record until `keep_until` -> the
    `retention` command deletes the clinical record, this row with it; the audit trail keeps the history."""

    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested, waiting for the owner to confirm"
        CONFIRMED = "confirmed", "Confirmed: clinical record kept until its retention period ends"
        WITHDRAWN = "withdrawn", "Withdrawn"

    class Channel(models.TextChoices):
        PORTAL = "portal", "The client's portal"
        PHONE = "phone", "Telephone"
        LETTER = "letter", "Letter"
        EMAIL = "email", "Email"
        IN_PERSON = "in_person", "In person"

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="erasure_requests")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.REQUESTED)
    channel = models.CharField(max_length=20, choices=Channel.choices)
    requested_at = models.DateTimeField(default=timezone.now)
    recorded_by = models.ForeignKey(StaffMember, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    confirmed_at = models.DateTimeField(null=True, blank=True)
    confirmed_by = models.ForeignKey(StaffMember, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    keep_until = models.DateField(null=True, blank=True, help_text="The clinical record may be deleted after this day.")
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["client"], condition=Q(status__in=["requested", "confirmed"]), name="one_open_erasure_request"
            )
        ]


class RateCount(models.Model):
    """Requests counted against a rate limit in one window (backcare.clinic.services.ratelimit). `key` is a keyed
    hash of what is limited (an email address, a client address), so the table never holds what a stranger typed."""

    scope = models.CharField(max_length=40)
    key = models.CharField(max_length=64)
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key", "window_start"], name="rate_count_once")]
