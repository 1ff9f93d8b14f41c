"""The scheduling model: therapists' weekly hours and absences, rooms, services, appointments and the waitlist.

Times are stored in UTC and shown in the clinic's zone (`Clinic.time_zone`). Weekly working hours are wall-clock
times in that zone, so 09:00-17:00 means 09:00 local on both sides of a daylight-saving change.

Every write goes through `backcare.scheduling.services`; the rules that keep appointments from overlapping are
described once, in `backcare.scheduling.locking` (and docs/scheduling.md).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from backcare.clinic.models import Client, Clinic, Course, StaffMember, TreatmentSession


class Room(models.Model):
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="rooms")
    name = models.CharField(max_length=100)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["clinic", "name"], name="scheduling_room_name_unique")]

    def __str__(self) -> str:
        return self.name


class Service(models.Model):
    """What a client books: a duration, turnover time before and after (the therapist and the room are busy then,
    the client is not), the techniques a therapist must be qualified for, and the rooms it can take place in."""

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="services")
    name = models.CharField(max_length=200)
    duration_minutes = models.PositiveSmallIntegerField()
    turnover_before_minutes = models.PositiveSmallIntegerField(default=0)
    turnover_after_minutes = models.PositiveSmallIntegerField(default=0)
    assessment = models.BooleanField(
        default=False,
        help_text="A first assessment visit, where the intake is reviewed: bookable before the client is screened.",
    )
    techniques = models.JSONField(default=list, blank=True, help_text="Technique codes the therapist must hold.")
    rooms = models.ManyToManyField(Room, blank=True, related_name="services", help_text="Empty: any room.")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.CheckConstraint(condition=Q(duration_minutes__gt=0), name="scheduling_service_duration")]

    def __str__(self) -> str:
        return self.name

    @property
    def duration(self) -> timedelta:
        return timedelta(minutes=self.duration_minutes)

    @property
    def before(self) -> timedelta:
        return timedelta(minutes=self.turnover_before_minutes)

    @property
    def after(self) -> timedelta:
        return timedelta(minutes=self.turnover_after_minutes)


class WorkingHours(models.Model):
    """One block of a therapist's weekly hours, in the clinic's local time (several blocks a day are allowed)."""

    class Weekday(models.IntegerChoices):
        MONDAY = 0, "Monday"
        TUESDAY = 1, "Tuesday"
        WEDNESDAY = 2, "Wednesday"
        THURSDAY = 3, "Thursday"
        FRIDAY = 4, "Friday"
        SATURDAY = 5, "Saturday"
        SUNDAY = 6, "Sunday"

    therapist = models.ForeignKey(StaffMember, on_delete=models.CASCADE, related_name="working_hours")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    starts = models.TimeField()
    ends = models.TimeField()

    class Meta:
        ordering = ["therapist", "weekday", "starts"]
        constraints = [
            models.CheckConstraint(condition=Q(ends__gt=F("starts")), name="scheduling_hours_order"),
            models.CheckConstraint(condition=Q(weekday__lte=6), name="scheduling_hours_weekday"),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.starts:%H:%M}-{self.ends:%H:%M}"


class Absence(models.Model):
    """An exception to the weekly hours: a holiday, a sick day, training. The therapist cannot be booked then."""

    class Kind(models.TextChoices):
        HOLIDAY = "holiday", "Holiday"
        SICK = "sick", "Sick"
        OTHER = "other", "Other"

    therapist = models.ForeignKey(StaffMember, on_delete=models.CASCADE, related_name="absences")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.HOLIDAY)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["starts_at"]
        indexes = [models.Index(fields=["therapist", "starts_at"])]
        constraints = [models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="scheduling_absence_order")]


# The statuses that take their time (a hold only until it expires). An appointment keeps its time from booking to
# completion: arrived, in treatment and completed are the booked visit going ahead, so the therapist, the room and
# the client stay taken (and a completed visit stays in the history exactly as its booking did). Cancelled, late
# cancelled and no-show free it (a no-show is marked once the visit has begun: the rest of the hour may be used),
# as do a lapsed or declined offer. The partial indexes below, the exclusion constraints (migration 0009) and
# `live_q` all read this one list.
# In alphabetical order, as `LiteralIn` writes them, so that the queries' condition reads as the indexes' does.
LIVE_STATUSES = ("arrived", "booked", "completed", "held", "in_treatment")
# The live statuses of a visit that is going ahead (the booking and what follows it; every one but a hold).
VISIT_STATUSES = ("arrived", "booked", "completed", "in_treatment")
# What the availability search reads of a live appointment besides whose it is (see Appointment.Meta.indexes).
BUSY_COLUMNS = ("busy_from", "busy_until", "starts_at", "ends_at", "status", "hold_expires_at")


class Appointment(models.Model):
    """A booked visit, or a time-limited hold offered to a waitlisted client.

    `starts_at`-`ends_at` is the client's time; `busy_from`-`busy_until` adds the service's turnover and is the time
    the therapist and the room are taken. An appointment is *live* while it is booked (or arrived, in treatment,
    completed: see LIVE_STATUSES), or held and its hold has not expired. No therapist, room or client is in two
    live appointments at once (see `backcare.scheduling.locking`), except rows the owner deliberately overbooked
    (`override`), which the database constraints leave out.
    """

    class Status(models.TextChoices):
        HELD = "held", "Offered (held for a waitlisted client)"
        BOOKED = "booked", "Booked"
        ARRIVED = "arrived", "Arrived"
        IN_TREATMENT = "in_treatment", "In treatment"
        COMPLETED = "completed", "Completed"
        NO_SHOW = "no_show", "Did not come"
        CANCELLED = "cancelled", "Cancelled"
        LATE_CANCELLED = "late_cancelled", "Cancelled late (inside the cancellation window)"
        EXPIRED = "expired", "Offer expired"
        DECLINED = "declined", "Offer declined"

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="appointments")
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="appointments")
    therapist = models.ForeignKey(StaffMember, on_delete=models.PROTECT, related_name="appointments")
    room = models.ForeignKey(Room, on_delete=models.PROTECT, related_name="appointments")
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="appointments")
    course = models.ForeignKey(Course, null=True, blank=True, on_delete=models.SET_NULL, related_name="appointments")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    busy_from = models.DateTimeField()
    busy_until = models.DateTimeField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.BOOKED)
    hold_expires_at = models.DateTimeField(null=True, blank=True)
    waitlist_entry = models.ForeignKey(
        "WaitlistEntry", null=True, blank=True, on_delete=models.SET_NULL, related_name="holds"
    )
    override = models.BooleanField(default=False, help_text="Deliberately overbooked by the owner.")
    override_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.TextField(blank=True)
    late_change_reason = models.TextField(blank=True, help_text="Why staff changed it inside the cancellation window.")
    submission_key = models.CharField(max_length=64, unique=True, null=True, blank=True)
    # The session note written for this visit. The link lives here, on the scheduling side, because scheduling sits
    # above the clinic (the clinic's session knows nothing of appointments); one note belongs to one appointment.
    session = models.OneToOneField(
        TreatmentSession, null=True, blank=True, on_delete=models.SET_NULL, related_name="appointment"
    )
    status_changed_at = models.DateTimeField(null=True, blank=True, help_text="When the status last changed.")

    class Meta:
        ordering = ["starts_at", "id"]
        # The busy-interval searches read only live rows, so their indexes hold only live rows: at chain scale most
        # rows are history (cancelled, lapsed offers) that would otherwise be read and thrown away. `live_q` names
        # the statuses as literals (`LiteralIn`) so that SQLite, which does not match bound parameters against an
        # index's condition, uses them too. Each index also holds every column the searches read (BUSY_COLUMNS), so
        # they are answered from the index alone: live rows lie scattered among the history in the table, and
        # fetching each from there was what made a search slower at a million rows than at ten thousand.
        indexes = [
            models.Index(
                fields=["clinic", *BUSY_COLUMNS, "therapist", "room", "client", "id"],
                condition=Q(status__in=LIVE_STATUSES),
                name="appt_busy_clinic",
            ),
            models.Index(
                fields=["therapist", *BUSY_COLUMNS, "room", "client", "id"],
                condition=Q(status__in=LIVE_STATUSES),
                name="appt_busy_therapist",
            ),
            models.Index(
                fields=["client", *BUSY_COLUMNS, "therapist", "room", "id"],
                condition=Q(status__in=LIVE_STATUSES),
                name="appt_busy_client",
            ),
            models.Index(fields=["client", "starts_at"]),
            # The API's list of a clinic's appointments in its order (and its keyset pages), without a sort.
            models.Index(fields=["clinic", "starts_at", "id"], name="appt_clinic_start"),
            # The set-up page's count of each room's upcoming appointments: only live rows, from the index alone.
            models.Index(
                fields=["room", "ends_at", "status", "hold_expires_at"],
                condition=Q(status__in=LIVE_STATUSES),
                name="appt_live_room_end",
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="scheduling_appt_order"),
            models.CheckConstraint(
                condition=Q(busy_from__lte=F("starts_at"), busy_until__gte=F("ends_at")),
                name="scheduling_appt_busy_covers",
            ),
            models.CheckConstraint(
                condition=~Q(status="held") | Q(hold_expires_at__isnull=False), name="scheduling_hold_expires"
            ),
            # The PostgreSQL exclusion constraints are added by migration 0002 (raw SQL, no-op on SQLite).
        ]

    def __str__(self) -> str:
        return f"{self.service} for {self.client} with {self.therapist} at {self.starts_at:%Y-%m-%d %H:%M} UTC"

    def is_live(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        if self.status in VISIT_STATUSES:
            return True
        return self.status == self.Status.HELD and self.hold_expires_at is not None and self.hold_expires_at > now

    @property
    def is_cancelled(self) -> bool:
        return self.status in (self.Status.CANCELLED, self.Status.LATE_CANCELLED)


class LiteralIn(models.lookups.In):
    """`IN` with the values written into the SQL rather than bound as parameters, so that SQLite can match the
    condition of a partial index. Only for fixed, known values (checked: lower-case letters and underscores)."""

    lookup_name = "literal_in"

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        if not all(isinstance(v, str) and v.replace("_", "").isalpha() and v.islower() for v in self.rhs):
            raise ValueError(f"literal_in takes fixed lower-case words, not {self.rhs!r}")
        lhs, params = self.process_lhs(compiler, connection)
        return f"{lhs} IN ({', '.join(repr(v) for v in sorted(self.rhs))})", tuple(params)


Appointment._meta.get_field("status").register_lookup(LiteralIn)


def live_q(now: datetime, prefix: str = "") -> Q:
    """Appointments that take their time: a visit going ahead (booked, arrived, in treatment, completed), or held
    with an unexpired hold. The first term repeats the
    statuses in the form the partial indexes' condition has, so that the database may use them."""
    return Q(**{f"{prefix}status__literal_in": LIVE_STATUSES}) & (
        Q(**{f"{prefix}status__literal_in": VISIT_STATUSES})
        | Q(**{f"{prefix}status": Appointment.Status.HELD, f"{prefix}hold_expires_at__gt": now})
    )


CANCELLED_STATUSES = ("cancelled", "late_cancelled")


class WaitlistEntry(models.Model):
    """A client waiting for a slot: a service, an optional preferred therapist, and the local dates that suit."""

    class Status(models.TextChoices):
        WAITING = "waiting", "Waiting"
        OFFERED = "offered", "Offered a slot"
        BOOKED = "booked", "Booked"
        WITHDRAWN = "withdrawn", "Withdrawn"

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="waitlist")
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="waitlist_entries")
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="waitlist_entries")
    therapist = models.ForeignKey(
        StaffMember, null=True, blank=True, on_delete=models.SET_NULL, related_name="waitlist_entries"
    )
    earliest = models.DateField()
    latest = models.DateField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.WAITING)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "waitlist entries"
        constraints = [models.CheckConstraint(condition=Q(latest__gte=F("earliest")), name="scheduling_wait_order")]

    def __str__(self) -> str:
        return f"{self.client} waiting for {self.service} ({self.earliest} to {self.latest})"


def as_dict(appointment: Appointment) -> dict[str, Any]:
    """The fields an audit event records about an appointment."""
    return {
        "starts_at": appointment.starts_at.isoformat(),
        "ends_at": appointment.ends_at.isoformat(),
        "therapist": appointment.therapist_id,
        "room": appointment.room_id,
        "service": appointment.service_id,
        "status": appointment.status,
    }


# === Reminders and calendar feeds ====================================================================================
# Owned by the "reminders & calendars" area: backcare.scheduling.reminders, .notifications, .calendars and .feeds.


class ReminderLog(models.Model):
    """One email about one appointment: a reminder for one start time, a confirmation of one change, or the offer of
    a time held for a waitlisted client (one per hold).

    The row is written with the email's outbox row (`message`), in the transaction that queues it; the unique
    constraint and the outbox's idempotency key let the same email be queued once, even when two runs of
    `send_reminders` overlap. Whether it went, and the retries, are the outbox row's (`message.status`). Rows from
    before the outbox (sending, sent, failed, skipped) keep their own status.
    """

    class Kind(models.TextChoices):
        REMINDER = "reminder", "Reminder"
        BOOKED = "booked", "Booking confirmation"
        RESCHEDULED = "rescheduled", "Change confirmation"
        CANCELLED = "cancelled", "Cancellation confirmation"
        OFFERED = "offered", "Waitlist offer (a held time)"

    class Status(models.TextChoices):
        QUEUED = "queued", "In the outbox (see its message)"
        SENDING = "sending", "Being sent"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed (tried again later)"
        SKIPPED = "skipped", "Not sent"

    appointment = models.ForeignKey(Appointment, on_delete=models.CASCADE, related_name="reminder_logs")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    starts_at = models.DateTimeField(help_text="The appointment's start when the email was claimed.")
    sequence = models.PositiveIntegerField(
        default=0, help_text="Confirmations: the calendar SEQUENCE of the change. Reminders: always 0."
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.SENDING)
    recipient = models.EmailField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=1)
    claimed_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    message = models.OneToOneField(
        "common.OutboundMessage", null=True, blank=True, on_delete=models.SET_NULL, related_name="reminderlog"
    )

    class Meta:
        ordering = ["claimed_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["appointment", "kind", "starts_at", "sequence"], name="scheduling_reminder_once"
            )
        ]
        indexes = [models.Index(fields=["status", "kind"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for appointment {self.appointment_id} ({self.get_status_display()})"


class CalendarToken(models.Model):
    """The secret address of one therapist's or one client's calendar feed. Only the token's SHA-256 is stored; a
    new token revokes the old one (at most one live token per therapist and per client)."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="calendar_tokens")
    therapist = models.ForeignKey(
        StaffMember, null=True, blank=True, on_delete=models.CASCADE, related_name="calendar_tokens"
    )
    client = models.ForeignKey(Client, null=True, blank=True, on_delete=models.CASCADE, related_name="calendar_tokens")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(therapist__isnull=False, client__isnull=True)
                | Q(therapist__isnull=True, client__isnull=False),
                name="scheduling_caltoken_one_owner",
            ),
            models.UniqueConstraint(
                fields=["therapist"], condition=Q(revoked_at__isnull=True), name="scheduling_caltoken_therapist_live"
            ),
            models.UniqueConstraint(
                fields=["client"], condition=Q(revoked_at__isnull=True), name="scheduling_caltoken_client_live"
            ),
        ]

    def __str__(self) -> str:
        who = self.therapist if self.therapist_id else self.client
        return f"Calendar feed of {who}{' (revoked)' if self.revoked_at else ''}"

    @property
    def audience(self) -> str:
        return "therapist" if self.therapist_id else "client"


class OpenedHoliday(models.Model):
    """A public holiday of the clinic's country on which the owner opens the clinic for booking after all. Every
    other public holiday is closed (`backcare.scheduling.services.holidays`); the holidays themselves come from the
    `holidays` package, so only the exceptions are stored."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="opened_holidays")
    day = models.DateField()
    name = models.CharField(max_length=200, blank=True, help_text="The holiday's name when it was opened.")
    opened_at = models.DateTimeField(default=timezone.now)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["day"]
        constraints = [models.UniqueConstraint(fields=["clinic", "day"], name="scheduling_opened_holiday_unique")]

    def __str__(self) -> str:
        return f"{self.name or 'Holiday'} {self.day:%Y-%m-%d} opened"
