"""The demo clinic: fictional staff and clients in every state a clinic meets, built through the services.

`build_demo()` fills an empty database with "Backcare Demo Clinic": an owner, two therapists, a front desk user and
six clients, each at a different point of the care process (intake pending, clearance pending, mid-course,
reassessment due, discharged, referred). One client has a portal login. Every clinical write goes through
`backcare.clinic.services`, so screenings, hard stops and the audit trail are exactly what real use produces.

Staff accounts have no service (the operator creates them) and are written here directly. Sessions and outcomes are
recorded now (a session needs a fresh health update) and then dated back to the weeks they stand for, so charts and
timelines look like a real course; audit events keep their true time. No e-mail is sent while the demo is built.

Everything here is fictional. Phone numbers are in Ofcom's drama range and e-mail addresses use example.org.
The passwords are public: `backcare demo` refuses to run in production.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone

from backcare.clinic.models import (
    Client,
    Clinic,
    Consent,
    Course,
    Intake,
    Invitation,
    Outcome,
    Role,
    Screening,
    StaffMember,
    TreatmentSession,
)
from backcare.clinic.services import clients, consent, courses, intake, outcomes, referrals, sessions
from backcare.clinical.instruments import RMDQ_ITEMS
from backcare.clinical.vocabulary import TECHNIQUES
from backcare.common.models import OutboundMessage

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

DEMO_CLINIC_NAME = "Backcare Demo Clinic"


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    who: str


LOGINS: tuple[DemoLogin, ...] = (
    DemoLogin("owner", "demo-owner-2026", "Harriet Cole, clinic owner (sees everything)"),
    DemoLogin("therapist1", "demo-therapist1-2026", "Samuel Reyes, therapist"),
    DemoLogin("therapist2", "demo-therapist2-2026", "Aisha Rahman, therapist"),
    DemoLogin("frontdesk", "demo-frontdesk-2026", "Tom Fletcher, front desk (no clinical records)"),
    DemoLogin("client", "demo-client-2026", "Nadia Kowalski, a client: the portal, health questions half done"),
)
PASSWORDS = {login.username: login.password for login in LOGINS}

ALL_TECHNIQUES = list(TECHNIQUES)


def demo_clinic() -> Clinic | None:
    return Clinic.objects.filter(name=DEMO_CLINIC_NAME).first()


def working_logins() -> list[DemoLogin]:
    """The demo logins that still have their demo password (a changed password is not printed)."""
    users = {u.username: u for u in get_user_model().objects.filter(username__in=PASSWORDS, is_active=True)}
    return [
        login for login in LOGINS if login.username in users and users[login.username].check_password(login.password)
    ]


def format_logins(logins: list[DemoLogin]) -> str:
    width = max((len(login.username) for login in logins), default=0)
    lines = ["Demo logins (demo only; the passwords are public):"]
    for login in logins:
        lines.append(f"  {login.username:<{width}}  password {login.password:<22}  {login.who}")
    if any(login.username == "owner" for login in logins):
        lines.append(
            "  The owner also signs in with an authenticator app: at the first sign-in the page shows a QR code"
        )
        lines.append("  and its key to add to one (two-factor sign-in is required for owners).")
    return "\n".join(lines)


# --- helpers --------------------------------------------------------------------------------------------


def _user(username: str, email: str, first: str, last: str) -> Any:
    return get_user_model().objects.create_user(
        username=username, password=PASSWORDS[username], email=email, first_name=first, last_name=last
    )


def _staff(clinic: Clinic, username: str, role: str, first: str, last: str, techniques: list[str]) -> StaffMember:
    user = _user(username, f"{username}@demo-clinic.example.org", first, last)
    return StaffMember.objects.create(
        user=user, clinic=clinic, role=role, display_name=f"{first} {last}", qualified_techniques=techniques
    )


def _answers(client: Client, *, therapist: bool, **given: Any) -> dict[str, Any]:
    return form_answers(intake.Context.for_client(client, therapist=therapist), **given)


def form_answers(
    ctx: intake.Context,
    *,
    pain: dict[str, Any],
    findings: tuple[dict[str, Any], ...] = (),
    goals: tuple[str, ...] = (),
    start_back: tuple[str, str] | None = None,
    notes: str = "",
) -> dict[str, Any]:
    """The intake form filled in as a person would: every question `ctx` asks answered, "yes" only for `findings`.

    `pain` holds regions, intensity, duration_weeks, first_episode, onset, medically_assessed; `start_back` the nine
    answers as ("ynnnnnnn", bothersomeness): y where the client agrees with items 1 to 8, then item 9."""
    yes = {f["code"]: f for f in findings}
    answers: dict[str, Any] = {
        "pain_regions": list(pain.get("regions", ["lower_back"])),
        "pain_intensity": str(pain["intensity"]),
        "pain_duration_weeks": str(pain["duration_weeks"]),
        "pain_first_episode": "yes" if pain.get("first_episode") else "no",
        "pain_onset": pain.get("onset", "gradual"),
        "pain_medically_assessed": "yes" if pain.get("medically_assessed") else "no",
        "goals": list(goals),
        "notes": notes,
    }
    if ctx.pregnancy:
        answers["pregnant"] = "no"
    for question in intake.intake_form().questions:
        if not intake.asked(question, ctx) or question.only_if == "pregnant":
            continue
        finding = yes.get(question.finding)
        answers[question.name] = "yes" if finding else "no"
        if finding and "region" in finding:
            answers[question.regions_name] = [finding["region"]]
        if finding and "weeks_ago" in finding:
            answers[question.weeks_name] = str(finding["weeks_ago"])
    if ctx.start_back and start_back:
        agreed, bothersomeness = start_back
        answers.update({f"sb_{i}": "agree" if a == "y" else "disagree" for i, a in enumerate(agreed, start=1)})
        answers["sb_9"] = bothersomeness
    unknown = set(yes) - {q.finding for q in intake.intake_form().questions}
    assert not unknown, f"the intake form does not ask about {unknown}"
    return answers


def ticks(score: int) -> list[bool]:
    """A Roland-Morris answer sheet with `score` statements ticked, spread over the questionnaire."""
    order = [1, 2, 12, 17, 10, 8, 20, 15, 3, 5, 11, 22, 9, 13, 6, 16, 4, 0, 7, 14, 18, 19, 21, 23]
    chosen = set(order[:score])
    return [i in chosen for i in range(len(RMDQ_ITEMS))]


def _backdate(when: dt.datetime, *objects: Any) -> None:
    """Date records back to when they stand for (demo only; audit events keep their true time)."""
    for obj in objects:
        model = type(obj)
        fields = {
            Screening: ["created_at"],
            Intake: ["started_at", "updated_at", "submitted_at"],
            Course: ["started_at"],
            TreatmentSession: ["held_at", "recorded_at"],
            Outcome: ["recorded_at"],
            Invitation: ["created_at"],
            Consent: ["signed_at"],
            Client: ["created_at"],
        }[model]
        values = {name: when for name in fields if name != "submitted_at" or obj.submitted_at is not None}
        model.objects.filter(pk=obj.pk).update(**values)


class _Builder:
    def __init__(self, now: dt.datetime, out: SupportsWrite[str] | None) -> None:
        self.now = now
        self.out = out

    def say(self, text: str) -> None:
        if self.out is not None:
            self.out.write(text + "\n")

    def ago(self, days: float, hour: int = 10) -> dt.datetime:
        day = timezone.localtime(self.now - timedelta(days=days))
        return day.replace(hour=hour, minute=0, second=0, microsecond=0)

    # -- invitation, consent, intake ---------------------------------------------------------------------

    def portal_client(self, client: Client, staff: StaffMember, when: dt.datetime) -> None:
        """Invited by the clinic, registered through the link and signed the consent form."""
        invitation, token = consent.new_invitation(client, staff)  # the demo client's fictional address
        consent.accept_invitation(
            token, "client", PASSWORDS["client"], PASSWORDS["client"], date_of_birth=client.date_of_birth
        )
        client.refresh_from_db()
        text = consent.current_consent_text()
        assert text is not None, "the consent text is published by a migration"
        signed = consent.sign_consent(client, text, client.full_name, by=client.user)
        invitation.refresh_from_db()
        _backdate(when - timedelta(days=1), invitation)
        Invitation.objects.filter(pk=invitation.pk).update(used_at=when)
        _backdate(when, signed)

    def consent_in_clinic(self, client: Client, staff: StaffMember, when: dt.datetime) -> None:
        """A client without a portal login signs the consent form on the clinic's tablet."""
        if consent.has_current_consent(client):
            return
        text = consent.current_consent_text()
        assert text is not None, "the consent text is published by a migration"
        signed = consent.record_consent_in_clinic(
            client, text, staff=staff, method="device", signature=client.full_name
        )
        _backdate(when - timedelta(minutes=5), signed)

    def draft(self, client: Client, when: dt.datetime, answers: dict[str, Any]) -> Intake:
        draft = intake.save_draft(client, answers, by=client.user)
        _backdate(when, draft)
        return draft

    def submitted(self, client: Client, staff: StaffMember, when: dt.datetime, answers: dict[str, Any]) -> Screening:
        """A paper intake typed in by the therapist before the visit: submitted, waiting for the review."""
        self.consent_in_clinic(client, staff, when)
        form = intake.save_draft(client, answers, by=staff.user)
        result = intake.submit(form, by=staff.user)
        form.refresh_from_db()
        _backdate(when, form, result, *client.outcomes.filter(instrument="start_back"))
        return result

    def reviewed(self, client: Client, staff: StaffMember, when: dt.datetime, answers: dict[str, Any]) -> Screening:
        """The intake taken in person: the therapist asks every question with the client and reviews it."""
        self.consent_in_clinic(client, staff, when)
        result = intake.review(
            None, staff, answers, "Went through every question with the client at the first visit.", client=client
        )
        form = result.intake
        assert form is not None
        _backdate(when, form, result, *client.outcomes.filter(instrument="start_back"))
        Intake.objects.filter(pk=form.pk).update(reviewed_at=when + timedelta(minutes=40))
        return result

    # -- treatment -------------------------------------------------------------------------------------

    def course(self, client: Client, staff: StaffMember, when: dt.datetime, goals: str, rmdq: int) -> Course:
        course = courses.start_course(client, staff=staff, sessions_planned=4, weeks=6, reassess_after=2, goals=goals)
        baseline = outcomes.record_rmdq(client, ticked=ticks(rmdq), timepoint="baseline", course=course, by=staff.user)
        _backdate(when.replace(hour=8), course, baseline)
        return course

    def session(
        self,
        course: Course,
        staff: StaffMember,
        when: dt.datetime,
        *,
        pain: tuple[int, int],
        tension: int,
        subjective: str,
        assessment: str,
        response: str = "relaxed",
    ) -> TreatmentSession:
        update = sessions.health_update(course, staff=staff, new_findings=[], pain_now=pain[0])
        limit = update.result["precautions"].get("max_pressure")
        pressure = min(3, limit) if limit else 3
        avoid = set(update.result["precautions"].get("avoid_regions", []))
        chart = {
            region: {"treated": True, "tension": tension, "pain": pain[0]}
            for region in ("lower_back", "buttock_left", "buttock_right")
            if region not in avoid
        }
        session = sessions.record_session(
            course,
            staff=staff,
            health_update=update,
            techniques=list(course.techniques),
            pressure=pressure,
            body_chart=chart,
            pain_before=pain[0],
            pain_after=pain[1],
            response=response,
            subjective=subjective,
            objective=f"Paraspinal tension {tension} of 3 at the lumbar spine; moves freely between positions.",
            assessment=assessment,
            plan_note="Continue the plan; keep up the daily walk and the exercises shown.",
        )
        _backdate(when, update, session, *session.outcomes.all())
        return session

    def rmdq(self, course: Course, staff: StaffMember, when: dt.datetime, timepoint: str, score: int) -> Outcome:
        outcome = outcomes.record_rmdq(
            course.client, ticked=ticks(score), timepoint=timepoint, course=course, by=staff.user
        )
        _backdate(when, outcome)
        return outcome


def build_demo(stdout: SupportsWrite[str] | None = None, *, now: dt.datetime | None = None) -> Clinic:
    """Create the demo clinic in the database, all or nothing. The caller makes sure it holds no clinic yet."""
    # The demo's addresses are fictional: the emails its making queues (invitations, confirmations) go nowhere,
    # whatever e-mail the installation has set up. Emails of the demo in use go out as usual (the console in `make
    # run`).
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"), transaction.atomic():
        clinic = _build(_Builder(now or timezone.now(), stdout))
        OutboundMessage.objects.filter(status=OutboundMessage.Status.PENDING).update(
            status=OutboundMessage.Status.CANCELLED, last_error="made with the demo data: never sent"
        )
        return clinic


def _build(b: _Builder) -> Clinic:
    clinic = Clinic.objects.create(
        name=DEMO_CLINIC_NAME,
        time_zone="Europe/London",
        address="12 Example Street\nDemoton\nDT1 2AB",
        phone="020 7946 0000",
        email="hello@demo-clinic.example.org",
    )
    owner = _staff(clinic, "owner", Role.OWNER, "Harriet", "Cole", ALL_TECHNIQUES)
    sam = _staff(clinic, "therapist1", Role.THERAPIST, "Samuel", "Reyes", ["swedish_relaxation", "remedial"])
    aisha = _staff(clinic, "therapist2", Role.THERAPIST, "Aisha", "Rahman", ALL_TECHNIQUES)
    front = _staff(clinic, "frontdesk", Role.FRONT_DESK, "Tom", "Fletcher", [])
    b.say(f"Created {clinic.name} with 4 staff.")

    def new_client(
        therapist: StaffMember, first: str, last: str, born: dt.date, sex: str, n: int, since: float
    ) -> Client:
        client = clients.create_client(
            staff=front,
            therapist=therapist,
            first_name=first,
            last_name=last,
            date_of_birth=born,
            sex=sex,
            email=f"{first.lower()}.{last.lower()}@example.org",
            phone=f"07700 900{n:03d}",
            address=f"{n} Fictional Road, Demoton",
            physician_name="Dr Rowan Hale, Demoton Health Centre",
            physician_address="Demoton Health Centre\n1 Surgery Lane\nDemoton DT1 9ZZ",
        )
        _backdate(b.ago(since, hour=9), client)
        return client

    # 1. Intake pending, with the portal login: invited, registered, consent signed, health questions half done.
    nadia = new_client(sam, "Nadia", "Kowalski", dt.date(1991, 6, 2), "female", 101, since=3)
    b.portal_client(nadia, sam, b.ago(2, hour=18))  # invited by her own therapist
    b.draft(
        nadia,
        b.ago(1, hour=19),
        {"pain_regions": ["lower_back", "neck"], "pain_intensity": "4", "pain_duration_weeks": "6", "goals": []},
    )
    b.say("  Nadia Kowalski: invited, consent signed, health questions half done (portal login: client).")

    # 2. Clearance pending: a past deep-vein thrombosis needs the physician's clearance before any session.
    gareth = new_client(sam, "Gareth", "Lloyd", dt.date(1968, 11, 23), "male", 102, since=4)
    b.submitted(
        gareth,
        sam,
        b.ago(3),
        _answers(
            gareth,
            therapist=False,
            pain={"intensity": 4, "duration_weeks": 8},
            findings=({"code": "dvt_history"},),
            goals=("muscle_tension", "mobility"),
            start_back=("nnnnnnnn", "slightly"),
            notes="Clot in the left calf in 2019, treated for six months.",
        ),
    )
    b.say("  Gareth Lloyd: intake screened, waiting for his physician's clearance.")

    # 3. Mid-course: one of four sessions done.
    maya = new_client(sam, "Maya", "Okafor", dt.date(1987, 2, 17), "female", 103, since=17)
    b.reviewed(
        maya,
        sam,
        b.ago(15),
        _answers(
            maya,
            therapist=True,
            pain={"intensity": 5, "duration_weeks": 3, "onset": "sudden_movement"},
            goals=("postural_strain", "muscle_tension"),
            start_back=("nnynnnnn", "moderately"),
            notes="Works at a desk all day.",
        ),
    )
    course = b.course(maya, sam, b.ago(8), "Sit at her desk through a working day without pain above 3.", rmdq=9)
    b.session(
        course,
        sam,
        b.ago(8, hour=11),
        pain=(5, 3),
        tension=2,
        subjective="Lower back stiff since lifting a box three weeks ago; worse after long meetings.",
        assessment="Good response to remedial work; less guarding by the end.",
    )
    b.say("  Maya Okafor: course started, 1 of 4 sessions done.")

    # 4. Reassessment due: two sessions done, no reassessment Roland-Morris yet.
    tomasz = new_client(aisha, "Tomasz", "Nowak", dt.date(1975, 9, 8), "male", 104, since=23)
    b.reviewed(
        tomasz,
        aisha,
        b.ago(22),
        _answers(
            tomasz,
            therapist=True,
            pain={"intensity": 6, "duration_weeks": 14, "regions": ["lower_back", "buttock_left"]},
            findings=({"code": "varicose_veins_severe", "region": "leg_left"},),
            goals=("muscle_tension", "mobility"),
            start_back=("ynynnynn", "moderately"),
        ),
    )
    course = b.course(tomasz, aisha, b.ago(21), "Garden for an hour at a time again.", rmdq=11)
    for n, (days, pain, tension) in enumerate(((21, (6, 5), 3), (14, (5, 4), 2)), start=1):
        b.session(
            course,
            aisha,
            b.ago(days, hour=15),
            pain=pain,
            tension=tension,
            subjective="Aching across the low back, into the left buttock; left leg not treated (varicose veins)."
            if n == 1
            else "A little easier; slept better after the last session.",
            assessment="Tolerated moderate pressure; left leg avoided as the screening asks.",
        )
    b.say("  Tomasz Nowak: 2 sessions done, reassessment due.")

    # 5. Discharged: four sessions, course completed, meaningful improvement on Roland-Morris and pain.
    eleanor = new_client(sam, "Eleanor", "Price", dt.date(1959, 4, 30), "female", 105, since=51)
    b.reviewed(
        eleanor,
        sam,
        b.ago(50),
        _answers(
            eleanor,
            therapist=True,
            pain={"intensity": 6, "duration_weeks": 5, "medically_assessed": True},
            goals=("postural_strain", "mobility"),
            start_back=("nynnnnnn", "slightly"),
        ),
    )
    course = b.course(eleanor, sam, b.ago(49), "Walk the dog for 30 minutes without stopping.", rmdq=12)
    visits = ((49, (6, 4), 3), (42, (5, 3), 2), (35, (3, 2), 2), (28, (2, 1), 1))
    notes = (
        "Stiff every morning; sitting over 30 minutes hurts.",
        "Mornings easier; walked the dog twice this week.",
        "Much better; a twinge only after gardening.",
        "Hardly any pain; back to her usual walks.",
    )
    for (days, pain, tension), note in zip(visits, notes, strict=True):
        b.session(
            course,
            sam,
            b.ago(days, hour=11),
            pain=pain,
            tension=tension,
            subjective=note,
            assessment="Steady improvement; tension easing each week.",
        )
        if days == 42:
            b.rmdq(course, sam, b.ago(days, hour=12), "reassessment", 8)
    b.rmdq(course, sam, b.ago(28, hour=12), "discharge", 4)
    courses.end_course(
        course,
        status=Course.Status.COMPLETED,
        staff=sam,
        note="Goal met: walks 30 minutes without pain. Keeps up the home exercises; return if it flares.",
    )
    Course.objects.filter(pk=course.pk).update(ended_at=b.ago(28, hour=12))
    clients.share_client(eleanor, therapist=aisha, staff=owner)
    b.say("  Eleanor Price: course completed and discharged (Roland-Morris 12 to 4); shared with Aisha Rahman.")

    # 6. Referred: numbness in the saddle area is a sign of cauda equina syndrome; emergency referral.
    derek = new_client(aisha, "Derek", "Holt", dt.date(1972, 1, 19), "male", 106, since=2)
    result = b.reviewed(
        derek,
        aisha,
        b.ago(1, hour=9),
        _answers(
            derek,
            therapist=True,
            pain={
                "intensity": 7,
                "duration_weeks": 1,
                "onset": "sudden_movement",
                "regions": ["lower_back", "thigh_left"],
            },
            findings=({"code": "saddle_anaesthesia"},),
            goals=("muscle_spasm",),
            start_back=("yynynynn", "very_much"),
            notes="Numb 'where you sit on a bike' since yesterday.",
        ),
    )
    urgency = result.referral if result.referral != "none" else "urgent"
    referrals.create_referral(
        derek,
        staff=aisha,
        urgency=urgency,
        reason="Numbness in the saddle area with new low back pain: possible cauda equina syndrome. "
        "Sent to the emergency department the same day; no massage.",
        screening=result,
    )
    b.say(f"  Derek Holt: red flag at intake, {urgency} referral made, no treatment.")

    massage, assessment = _schedule(b, clinic, owner, sam, aisha, front, maya=maya, tomasz=tomasz, nadia=nadia)
    _billing(b, owner, front, (sam, aisha), massage, assessment, maya=maya, tomasz=tomasz, eleanor=eleanor)
    return clinic


def _schedule(
    b: _Builder, clinic: Clinic, owner: StaffMember, *therapists: StaffMember, **clients_: Any
) -> tuple[Any, Any]:
    """Rooms, services, working hours and upcoming appointments, all through the scheduling services."""
    from backcare.scheduling.services import availability, booking, resources

    front = therapists[-1]
    therapists = therapists[:-1]
    room1 = resources.create_room(clinic, "Room 1", by=owner.user)
    resources.create_room(clinic, "Room 2", by=owner.user)
    assessment = resources.create_service(
        clinic,
        by=owner.user,
        name="First visit and assessment",
        duration_minutes=60,
        turnover_after_minutes=10,
        assessment=True,
    )
    massage = resources.create_service(
        clinic,
        by=owner.user,
        name="Remedial massage (45 minutes)",
        duration_minutes=45,
        turnover_before_minutes=5,
        turnover_after_minutes=10,
    )
    weekdays: dict[int, Sequence[tuple[dt.time, dt.time]]] = {
        d: [(dt.time(9), dt.time(13)), (dt.time(14), dt.time(18))] for d in range(5)
    }
    for therapist in therapists:
        resources.set_working_hours(therapist, weekdays, by=owner.user)
    today = timezone.localdate()
    plans = [
        (clients_["maya"], massage, 2),
        (clients_["tomasz"], massage, 3),
        (clients_["nadia"], assessment, 4),
    ]
    for client, service, days_ahead in plans:
        slots = availability.find_slots(
            service,
            today + timedelta(days=days_ahead),
            today + timedelta(days=days_ahead + 7),
            therapist=client.therapist,
        )
        if slots:
            booking.book_slot(client, slots[0], by=front.user)
    b.say(f"  Schedule: 2 rooms, 2 services, weekday hours; {room1.clinic.appointments.count()} appointments booked.")
    return massage, assessment


def _billing(
    b: _Builder,
    owner: StaffMember,
    front: StaffMember,
    therapists: tuple[StaffMember, StaffMember],
    massage: Any,
    assessment: Any,
    *,
    maya: Client,
    tomasz: Client,
    eleanor: Client,
) -> None:
    """Prices, the fee policy, the therapists' registrations; a package for Maya's course paid by card, Tomasz's
    next visit invoiced ahead and part paid, and Eleanor's late cancellation with its fee (unpaid)."""
    from backcare.billing import services as billing
    from backcare.billing.models import Invoice, Practitioner
    from backcare.scheduling.models import Appointment
    from backcare.scheduling.services import availability, booking

    clinic = owner.clinic
    values = {
        "currency": "GBP",
        "tax_exempt": True,
        "legal_name": "Backcare Demo Clinic Ltd",
        "company_number": "00000000",
        "payment_terms_days": 14,
    }
    billing.update_billing_settings(clinic, values, by=owner.user)
    billing.update_fee_policy(clinic, {"late_cancellation_fee": 2500, "no_show_fee": 3500}, by=owner.user)
    sam, aisha = therapists
    billing.set_price(assessment, 6500, by=owner.user)
    billing.set_price(massage, 5500, by=owner.user)
    billing.set_price(massage, 6000, by=owner.user, therapist=aisha)  # the senior therapist's own price
    for number, therapist in enumerate(therapists, start=1):
        Practitioner.objects.create(staff=therapist, registration_body="CNHC", registration_number=f"DEMO-00{number}")
    course = courses.active_course(maya)
    package = billing.sell_package(
        maya, massage, 4, 20000, timezone.localdate() + timedelta(days=120), by=front.user, course=course
    )
    billing.take_payment(maya, 20000, "card", key="demo-maya-package", by=front.user, invoice=package.invoice,
                         reference="Terminal slip 4417")  # fmt: skip
    upcoming = tomasz.appointments.filter(status="booked").order_by("starts_at").first()
    if upcoming is not None:
        invoice = billing.raise_for_appointment(upcoming, by=front.user)
        billing.take_payment(tomasz, 2000, "cash", key="demo-tomasz-deposit", by=front.user,
                             invoice=invoice if isinstance(invoice, Invoice) else None)  # fmt: skip
    # Eleanor booked a massage, then phoned three hours before to cancel: a late cancellation and its fee. The
    # booking is made for the next free time and moved to three hours from now (as the sessions are dated back),
    # so the cancellation falls inside the window whatever the hour the demo is built.
    slot = availability.find_slots(massage, timezone.localdate(), timezone.localdate() + timedelta(days=14),
                                   therapist=sam)[0]  # fmt: skip
    booked = booking.book_slot(eleanor, slot, by=front.user)
    soon = (timezone.now() + timedelta(hours=3)).replace(second=0, microsecond=0)
    shift = soon - booked.starts_at
    Appointment.objects.filter(pk=booked.pk).update(
        starts_at=soon, ends_at=booked.ends_at + shift, busy_from=booked.busy_from + shift,
        busy_until=booked.busy_until + shift,
    )  # fmt: skip
    booking.cancel_appointment(
        booked, by=front.user, reason="Could not get away from work", late_reason="Phoned three hours before"
    )
    b.say("  Billing: priced services, a package paid by card, an invoice part paid, a late-cancellation fee.")


__all__ = [
    "DEMO_CLINIC_NAME",
    "LOGINS",
    "PASSWORDS",
    "DemoLogin",
    "build_demo",
    "demo_clinic",
    "form_answers",
    "format_logins",
    "ticks",
    "working_logins",
]
