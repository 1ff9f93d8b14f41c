"""The clinic's records. Every write goes through `backcare.clinic.services`; views only read and call services.

Clinical results are stored as the clinical core returned them (JSON) together with the rule base's version and
digest, so a decision can always be explained later exactly as it was made.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import zoneinfo
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models, router, transaction
from django.db.models import Q
from django.utils import timezone
from django_otp.models import Device, ThrottlingMixin, TimestampMixin

from backcare.clinical.vocabulary import DECISIONS, REGIONS, TECHNIQUES


def _choices(codes: Any) -> list[tuple[str, str]]:
    return [(c, c.replace("_", " ")) for c in codes]


# Emergency and urgent-care numbers by country (ISO 3166 alpha-2): what a clinic gets unless it sets its own.
# 112 is the emergency number across the EU and on most mobile networks; urgent care has no common number.
EMERGENCY_NUMBERS: dict[str, tuple[str, str]] = {
    "GB": ("999", "111"),
    "IE": ("112", ""),
    "US": ("911", ""),
    "CA": ("911", "811"),
    "AU": ("000", ""),
    "NZ": ("111", ""),
    "DE": ("112", "116117"),
    "AT": ("112", "1450"),
    "CH": ("144", ""),
    "NL": ("112", ""),
    "FR": ("112", "116117"),
}
DEFAULT_EMERGENCY = ("112", "")
PHONE_DIGITS = RegexValidator(r"^[0-9 +()-]*$", "Digits, spaces and + ( ) - only.")


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
    clearance_valid_days = models.PositiveSmallIntegerField(
        default=183,
        help_text=(
            "How long a physician's clearance stands, in days (default 183, about six months: the conditions that "
            "ask for clearance, such as cancer treatment, pregnancy, blood pressure or healing after an operation, "
            "can change materially in that time, so the physician is asked again). A new episode or a change in a "
            "cleared finding ends a clearance sooner."
        ),
    )

    country = models.CharField(
        max_length=2,
        default="GB",
        validators=[RegexValidator(r"^[A-Za-z]{2}$", "A two-letter country code, e.g. GB, IE, US, DE.")],
        help_text="ISO country code (GB, IE, US, DE...): sets the default numbers below.",
    )
    emergency_number = models.CharField(
        max_length=20,
        blank=True,
        validators=[PHONE_DIGITS],
        help_text="Emergency number told to clients; empty: the country's (GB 999, 112).",
    )
    urgent_care_number = models.CharField(
        max_length=20,
        blank=True,
        validators=[PHONE_DIGITS],
        help_text="Urgent-care number (GB 111, DE 116117); empty: the country's, if any.",
    )

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The clinic's time zone, in which its days, hours and documents are shown; UTC if the stored name is
        not one this machine knows (the settings form offers only known zones)."""
        try:
            return zoneinfo.ZoneInfo(self.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return zoneinfo.ZoneInfo("UTC")

    @property
    def emergency(self) -> str:
        """The emergency number to tell clients: the clinic's own, or its country's."""
        return self.emergency_number or EMERGENCY_NUMBERS.get(self.country.upper(), DEFAULT_EMERGENCY)[0]

    @property
    def urgent_care(self) -> str:
        """The urgent-care number (may be empty where a country has none)."""
        return self.urgent_care_number or EMERGENCY_NUMBERS.get(self.country.upper(), DEFAULT_EMERGENCY)[1]


class Installation(models.Model):
    """The first-run set-up, done once (`services.first_run`): one row, id 1, so two set-ups sent at once make one
    clinic (the second insert of id 1 fails inside its transaction)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    set_up_at = models.DateTimeField(default=timezone.now)


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


# django-otp is untyped: its device bases are Any to mypy (hence ignore[misc])
class RecoveryCodes(TimestampMixin, ThrottlingMixin, Device):  # type: ignore[misc]
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

    def age_on(self, day: dt.date | None = None) -> int:
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
    """A signature of a consent text: online in the portal, on the clinic's device, or a signed paper form uploaded
    with who witnessed it. A client under 16 needs a parent's or guardian's consent (`services.consent`)."""

    class Method(models.TextChoices):
        ONLINE = "online", "Signed online in the portal"
        DEVICE = "device", "Signed on the clinic's device"
        PAPER = "paper", "Signed paper form, uploaded"

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="consents")
    text = models.ForeignKey(ConsentText, on_delete=models.PROTECT, related_name="consents")
    signature = models.CharField(max_length=200, help_text="The client's full name, typed.")
    signed_at = models.DateTimeField(default=timezone.now)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    method = models.CharField(max_length=10, choices=Method.choices, default=Method.ONLINE)
    witnessed_by = models.CharField(max_length=200, blank=True, help_text="Who witnessed the paper form's signing.")
    paper_form = models.FileField(upload_to="consents/%Y/%m/", blank=True)
    guardian_name = models.CharField(max_length=200, blank=True)
    guardian_relationship = models.CharField(max_length=100, blank=True)
    guardian_signature = models.CharField(max_length=200, blank=True, help_text="The guardian's full name, typed.")
    recorded_by = models.ForeignKey(
        StaffMember,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The staff member who recorded a consent given in the clinic.",
    )

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
    """A physician's clearance of named findings of the client's latest screening (`services.clearances`).

    It clears only the findings in `findings` (rule, region, the intake facts that made it fire, with their dates),
    only for the episode of `screening` (its intake), and only until `valid_until`; a changed finding needs a new
    clearance. The physician's restrictions are structured precautions the session checks enforce."""

    screening = models.ForeignKey(Screening, on_delete=models.PROTECT, related_name="clearances")
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="clearances")
    given_by = models.CharField(max_length=200, help_text="Name and role of the clinician who gave clearance.")
    given_on = models.DateField()
    note = models.TextField(blank=True)
    letter = models.FileField(upload_to="clearances/%Y/%m/", blank=True)
    findings = models.JSONField(default=list, blank=True, help_text="The findings this clearance clears.")
    valid_until = models.DateField(null=True, blank=True, help_text="The clearance lapses after this day.")
    avoid_regions = models.JSONField(default=list, blank=True, help_text="Regions the physician said to avoid.")
    avoid_techniques = models.JSONField(default=list, blank=True, help_text="Techniques the physician ruled out.")
    max_pressure = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="The highest pressure (1-5) the physician allows."
    )
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
        precautions: dict[str, Any] = result.get("precautions", {})
        return precautions


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
    stop_advice = models.TextField(blank=True, help_text="What the client was advised when the session stopped.")
    stop_referral = models.ForeignKey(
        "Referral",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The referral made when the session stopped.",
    )
    recorded_at = models.DateTimeField(default=timezone.now)
    submission_key = models.CharField(max_length=64, unique=True, null=True, blank=True)
    copied_from = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The earlier session whose techniques, pressure, body chart and plan prefilled this note.",
    )
    signed_at = models.DateTimeField(null=True, blank=True)
    signed_by = models.ForeignKey(StaffMember, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    #: What a signature locks: once `signed_at` is set, the model, the service and a database trigger (migration
    #: 0018) refuse to change any of these; a correction is an addendum (`SessionAddendum`).
    LOCKED_FIELDS = (
        "course_id",
        "number",
        "status",
        "held_at",
        "subjective",
        "objective",
        "assessment",
        "plan_note",
        "body_chart",
        "techniques",
        "pressure",
        "deviation_reason",
        "deviations",
        "response",
        "pain_before",
        "pain_after",
        "aftercare",
        "stop_reason",
        "stop_advice",
        "signed_at",
        "signed_by_id",
    )

    class Meta:
        ordering = ["course", "number"]
        constraints = [models.UniqueConstraint(fields=["course", "number"], name="one_session_number_per_course")]
        # The therapist's dashboard finds the sessions held today without reading the clinic's history.
        indexes = [models.Index(fields=["held_at", "course"], name="session_held_at")]

    @property
    def is_signed(self) -> bool:
        return self.signed_at is not None

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Refuse to change a signed note's locked fields (as read from the database, so a stale copy cannot)."""
        if self.pk is not None:
            stored = type(self).objects.filter(pk=self.pk, signed_at__isnull=False).values(*self.LOCKED_FIELDS).first()
            if stored is not None:
                changed = sorted(name for name, value in stored.items() if getattr(self, name) != value)
                if changed:
                    raise ValidationError(
                        f"Session {self.number} is signed; its note cannot be changed ({', '.join(changed)}). "
                        "Add an addendum instead."
                    )
        super().save(*args, **kwargs)


class SessionAddendum(models.Model):
    """A note added to a signed session: append-only (a database trigger refuses UPDATE, migration 0018)."""

    session = models.ForeignKey(TreatmentSession, on_delete=models.CASCADE, related_name="addenda")
    author = models.ForeignKey(StaffMember, on_delete=models.PROTECT, related_name="+")
    written_at = models.DateTimeField(default=timezone.now)
    text = models.TextField()
    reason = models.TextField()

    class Meta:
        ordering = ["session", "written_at", "id"]


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
    by_client = models.BooleanField(default=False, help_text="Filled in by the client in the portal.")

    class Meta:
        ordering = ["recorded_at", "id"]
        # A course's first and latest score of an instrument in one index seek each (the owner's dashboard reads
        # them for every course of the clinic; services.outcomes for one).
        indexes = [
            models.Index(fields=["course", "instrument", "recorded_at", "id", "score"], name="outcome_course_scores")
        ]


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


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    """Events are only ever added, each sealed into the hash chain (`auditchain.seal`) as it is written."""

    def bulk_create(self, objs: Iterable[AuditEvent], *args: Any, **kwargs: Any) -> list[AuditEvent]:
        from backcare.common import auditchain

        events = list(objs)
        with transaction.atomic(using=self.db):
            auditchain.seal(events, using=self.db)
            return super().bulk_create(events, *args, **kwargs)

    def update(self, **kwargs: Any) -> int:
        raise PermissionError("audit events cannot be changed")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionError("audit events cannot be deleted")


class MedicalAssessment(models.Model):
    """A medical assessment on record: what allows a red flag to be withdrawn (a finding that gave emergency, urgent,
    postpone or clearance removed or downgraded in a health update or the intake review), or the outcome of a
    referral. Who assessed, when, what they found or advised; optionally their letter."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="assessments")
    screening = models.ForeignKey(
        Screening,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assessments",
        help_text="The screening made after the finding was withdrawn.",
    )
    referral = models.OneToOneField(
        "Referral",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="outcome",
        help_text="The referral this is the outcome of.",
    )
    withdrawn = models.JSONField(default=list, blank=True, help_text="The findings withdrawn or downgraded.")
    assessed_by = models.CharField(max_length=200, help_text="Name and role of the clinician who assessed.")
    service = models.CharField(max_length=200, blank=True, help_text="Where: GP practice, A&E, clinic...")
    assessed_on = models.DateField()
    outcome = models.TextField(help_text="What the assessment found, and what was advised.")
    reason = models.TextField(blank=True, help_text="Why the finding no longer applies.")
    letter = models.FileField(upload_to="assessments/%Y/%m/", blank=True)
    recorded_by = models.ForeignKey(StaffMember, null=True, on_delete=models.SET_NULL, related_name="+")
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-recorded_at", "-id"]


class AuditEvent(models.Model):
    """Who saw or changed what, when. Rows are only ever added: the model refuses updates and deletes, the admin
    shows them read-only, and database triggers refuse UPDATE, DELETE and out-of-order inserts (migrations 0002
    and 0005). Each event is sealed into an HMAC hash chain (`backcare.common.auditchain`): its id is its place in
    the chain, `prev_mac` links it to the event before and `mac` signs both with the audit key `key_id`, so a
    change made around the application shows in `backcare audit verify`."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False
    )
    actor = models.CharField(max_length=200, help_text="The user's name and role at the time.")
    action = models.CharField(max_length=40)
    client = models.ForeignKey(Client, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False)
    # The clinic the event belongs to (the client's, else the acting staff member's), for the owner's clinic-wide
    # audit page; not covered by the MAC, which signs what was done, by whom, to whom.
    clinic = models.ForeignKey(
        Clinic,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # the indexes below start with it
        related_name="+",
    )
    object_type = models.CharField(max_length=60, blank=True)
    object_id = models.CharField(max_length=60, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    prev_mac = models.CharField(max_length=64, default="", help_text="The MAC of the event before this one.")
    mac = models.CharField(max_length=64, default="", help_text="HMAC-SHA256 of this event and the link before it.")
    key_id = models.CharField(max_length=40, default="", help_text="Which audit key signed this event.")

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["client", "at"]),
            # The owner's audit page (backcare.clinic.services.auditlog): newest first, paged by (at, id), within
            # the clinic and one filter.
            models.Index(fields=["clinic", "at", "id"], name="audit_clinic_at"),
            models.Index(fields=["clinic", "user", "at", "id"], name="audit_clinic_user_at"),
            models.Index(fields=["clinic", "client", "at", "id"], name="audit_clinic_client_at"),
            models.Index(fields=["clinic", "action", "at", "id"], name="audit_clinic_action_at"),
        ]

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise PermissionError("audit events cannot be changed")
        from backcare.common import auditchain

        using = kwargs.get("using") or router.db_for_write(AuditEvent, instance=self)
        with transaction.atomic(using=using):
            auditchain.seal([self], using=using)
            kwargs["force_insert"] = True
            super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError("audit events cannot be deleted")


REGION_CHOICES = _choices(REGIONS)
TECHNIQUE_CHOICES = [(code, name) for code, name in TECHNIQUES.items()]


class ErasureRequest(models.Model):
    """A client's request to erase their data (see docs/data-rights.md and `backcare.datarights.erasure`).

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


class SignInFailures(models.Model):
    """Failed sign-ins counted per account ("account:<username>") and per trusted device ("device:<id>"), for the
    progressive delay of backcare.clinic.signin. Forgotten a day after the last failure, and on a success."""

    key = models.CharField(max_length=200, unique=True)
    failures = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.key}: {self.failures}"
