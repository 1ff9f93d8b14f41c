"""Shared set-up for the cross-cutting page tests (permission matrix, XSS canary, forms contract).

`build_world` makes one object of each kind through the services, as users would: a clinic with an owner, two
therapists and a front desk; client X of therapist A and client Y of therapist B, both with portal logins, each with
signed consent, a submitted and reviewed intake, screenings, a physician's clearance, an ended course and an active
course with sessions (one completed with a deviation, one stopped), Roland-Morris scores, a referral, appointments
(one booked, one cancelled, one offered from the waitlist, one that began ten minutes ago) and a waitlist entry;
a client Z without a portal login who has an open invitation; a calendar feed token for therapist A.

Every free text a user can type is filled with `text(label)`, so the XSS canary test can fill it with a script.

`all_patterns()` walks the project's URL resolver; `url_kwargs(pattern, ids)` fills a pattern's parameters.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

from clinic_fixtures import pass_second_factor

PASSWORD = "correct-horse-battery-9"
SKIPPED_PREFIXES = ("admin/", "static/", "media/", "api/", "fhir/")  # the API has its own matrix (tests/api)
LETTER = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


# --- URL patterns --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pattern:
    route: str
    name: str
    params: tuple[str, ...]
    callback: Any


def all_patterns() -> list[Pattern]:
    """Every URL pattern under the project's resolver (recursively), without the admin and static files."""
    found: list[Pattern] = []

    def walk(patterns: list[Any], prefix: str, params: tuple[str, ...]) -> None:
        for p in patterns:
            route = prefix + str(p.pattern)
            if route.startswith(SKIPPED_PREFIXES):
                continue
            converters = tuple(getattr(p.pattern, "converters", {}).keys())
            if isinstance(p, URLResolver):
                walk(p.url_patterns, route, params + converters)
            elif isinstance(p, URLPattern):
                found.append(Pattern(route, p.name or "", params + converters, p.callback))

    walk(get_resolver().url_patterns, "", ())
    return found


# Which object of a data set fills each URL parameter, by URL name (parameters not listed here are "pk").
PARAMETER_SOURCES: dict[str, dict[str, str]] = {
    # client pages
    "client_detail": {"pk": "client"},
    "client_edit": {"pk": "client"},
    "client_share": {"pk": "client"},
    "client_audit": {"pk": "client"},
    "invite_client": {"pk": "client"},
    "intake_review": {"pk": "client"},
    "referral_create": {"pk": "client"},
    "course_start": {"pk": "client"},
    "progress_chart_svg": {"pk": "client"},
    "client_export": {"pk": "client"},
    "client_erasure": {"pk": "client"},
    "client_retention_delete": {"pk": "client"},
    "clearance_create": {"pk": "client", "screening": "clearance_screening"},
    "clearance_letter": {"pk": "clearance"},
    "consent_record": {"pk": "client"},
    "consent_paper_form": {"pk": "consent"},
    "referral_detail": {"pk": "referral"},
    "referral_outcome": {"pk": "referral"},
    "referral_letter_pdf": {"pk": "referral"},
    # course pages
    "course_detail": {"pk": "course"},
    "course_edit": {"pk": "course"},
    "course_end": {"pk": "course"},
    "rmdq_record": {"pk": "course"},
    "health_update": {"pk": "course"},
    "session_record": {"pk": "course", "update": "health_update"},
    "discharge_pdf": {"pk": "course"},
    "home_programme_pdf": {"pk": "course"},
    "course_booking": {"pk": "course"},
    "session_detail": {"pk": "session"},
    "session_sign": {"pk": "session"},
    "session_addendum": {"pk": "session"},
    # scheduling
    "appointment_detail": {"pk": "appointment"},
    "appointment_move": {"pk": "appointment"},
    "appointment_drop": {"pk": "appointment"},
    "appointment_cancel": {"pk": "appointment"},
    "appointment_status": {"pk": "appointment"},
    "appointment_start_note": {"pk": "appointment"},
    "portal_cancel": {"pk": "appointment"},
    "portal_reschedule": {"pk": "appointment"},
    "portal_offer": {"pk": "hold"},
    "portal_waitlist_leave": {"pk": "waitlist_entry"},
    "staff_waitlist_withdraw": {"pk": "waitlist_entry"},
    "setup_room": {"pk": "room"},
    "setup_service": {"pk": "service"},
    "setup_hours": {"pk": "therapist"},
    "staff_two_factor_reset": {"pk": "therapist"},
    "staff_edit": {"pk": "therapist"},
    "staff_deactivate": {"pk": "therapist"},
    "staff_resend": {"pk": "therapist"},
    "setup_absences": {"pk": "therapist"},
    "setup_absence_remove": {"pk": "absence"},
    # the outbox (an email about X)
    "outbox_retry": {"pk": "outbox_message"},
    # tokens
    "register": {"token": "invitation_token"},
    "password_reset_confirm": {"uidb64": "reset_uid", "token": "reset_token"},
    "staff_join": {"uidb64": "reset_uid", "token": "reset_token"},
    "calendar_feed": {"token": "calendar_token"},
    # billing
    "client_billing": {"pk": "client"},
    "invoice_detail": {"pk": "invoice"},
    "invoice_pdf": {"pk": "invoice"},
    "appointment_invoice": {"pk": "appointment"},
}


def url_kwargs(pattern: Pattern, ids: dict[str, Any]) -> dict[str, Any]:
    """The pattern's parameters filled from `ids` (a dict of object kind -> id). Fails for an unknown parameter, so
    a new page with a new parameter must be added to PARAMETER_SOURCES."""
    sources = PARAMETER_SOURCES.get(pattern.name, {})
    kwargs = {}
    for param in pattern.params:
        kind = sources.get(param)
        assert kind is not None, (
            f"URL {pattern.name!r} ({pattern.route}) takes {param!r}: add it to PARAMETER_SOURCES in "
            "tests/matrix_support.py"
        )
        kwargs[param] = ids[kind]
    return kwargs


def accepts_post(pattern: Pattern) -> bool:
    """False for views limited to GET/HEAD by require_http_methods/require_GET (found from the decorator's
    closure); True otherwise (the view may still answer 405 itself)."""
    func = pattern.callback
    seen = 0
    while func is not None and seen < 10:
        seen += 1
        closure = getattr(func, "__closure__", None) or ()
        for cell in closure:
            try:
                value = cell.cell_contents
            except ValueError:
                continue
            if isinstance(value, list | tuple | set) and value and all(isinstance(v, str) for v in value):
                methods = {v.upper() for v in value}
                if methods <= {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}:
                    return "POST" in methods
        func = getattr(func, "__wrapped__", None)
    return True


# --- The data set --------------------------------------------------------------------------------------------------


@dataclass
class Side:
    """One therapist's client with everything attached."""

    client: Any
    ids: dict[str, Any] = field(default_factory=dict)


@dataclass
class World:
    clinic: Any
    owner: Any
    therapist_a: Any
    therapist_b: Any
    front_desk: Any
    x: Side
    y: Side
    z: Any
    users: dict[str, Any]


def default_text(label: str) -> str:
    return f"Plain {label.replace('_', ' ')}"


def _user(username: str) -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(username=username, password=PASSWORD, email=f"{username}@x.test")


def _staff(clinic: Any, role: str, username: str, name: str) -> Any:
    from backcare.clinic.models import StaffMember
    from backcare.clinical.vocabulary import TECHNIQUES

    return StaffMember.objects.create(
        user=_user(username),
        clinic=clinic,
        role=role,
        display_name=name,
        qualified_techniques=list(TECHNIQUES) if role != "front_desk" else [],
    )


def intake_answers(text: Any, *yes: str, **regions: list[str]) -> dict[str, Any]:
    """A complete online intake: every question answered "no" except the findings in `yes`."""
    from backcare.clinic.services.intake import intake_form

    data: dict[str, Any] = {
        "pain_regions": ["lower_back"],
        "pain_intensity": "5",
        "pain_duration_weeks": "4",
        "pain_first_episode": "no",
        "pain_onset": "gradual",
        "pain_medically_assessed": "yes",
        "goals": ["mobility"],
        "goals_text": text("intake goals text"),
        "pregnant": "no",
        "pregnancy_weeks": "",
        "notes": text("intake notes"),
    }
    for q in intake_form().questions:
        if not q.only_if:
            data[q.name] = "yes" if q.finding in yes else "no"
    for finding, where in regions.items():
        data[f"f_{finding}_regions"] = where
    data.update({f"sb_{i}": "disagree" for i in range(1, 9)})
    data["sb_9"] = "slightly"
    return data


def build_side(world: dict[str, Any], therapist: Any, username: str, text: Any, tag: str) -> Side:
    """A client of `therapist` with a portal login and one of every clinical object."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.utils import timezone

    from backcare.clinic.models import Client, Intake
    from backcare.clinic.services import consent, courses, intake, outcomes, referrals, screening, sessions

    clinic = world["clinic"]
    client = Client.objects.create(
        clinic=clinic,
        therapist=therapist,
        user=_user(username),
        first_name=text(f"first name {tag}"),
        last_name=text(f"last name {tag}"),
        date_of_birth=dt.date(1980, 6, 1),
        sex="female",
        email=f"{username}@x.test",
        phone=text("phone"),
        address=text("address"),
        physician_name=text("physician name"),
        physician_address=text("physician address"),
    )
    if tag == "X":  # X's consent was given in the clinic on paper (signed for by a guardian), Y's online
        signed = consent.record_consent_in_clinic(
            client,
            consent.current_consent_text(),
            staff=therapist,
            method="paper",
            paper_form=SimpleUploadedFile("form.pdf", LETTER, content_type="application/pdf"),
            witnessed_by=text("consent witnessed by"),
            guardian_name=text("guardian name"),
            guardian_relationship=text("guardian relationship")[:100],
            guardian_signature=text("guardian signature"),
        )
    else:
        signed = consent.sign_consent(client, consent.current_consent_text(), client.full_name, by=client.user)
    answers = intake_answers(text, "dvt_history", "bruise", bruise=["thigh_left"])
    draft = intake.save_draft(client, answers, by=client.user)
    intake.submit(draft, by=client.user)
    reviewed = intake.review(
        Intake.objects.get(pk=draft.pk),
        therapist,
        {**answers, "f_impaired_consent": "no"},
        note=text("review note"),
    )
    assert reviewed.decision == "clearance_required", reviewed.decision
    clearance = screening.record_clearance(
        reviewed,
        given_by=text("clearance given by"),
        given_on=timezone.localdate(),
        note=text("clearance note"),
        letter=SimpleUploadedFile("clearance.pdf", LETTER, content_type="application/pdf"),
        staff=therapist,
    )
    # An ended course (with an end note), then the active one.
    first = courses.start_course(client, staff=therapist, goals=text("course goals (ended course)"))
    courses.end_course(first, status="stopped", staff=therapist, note=text("course end note"))
    course = courses.start_course(
        client,
        staff=therapist,
        goals=text("course goals"),
        sessions_planned=6,
        home_programme={key: text(f"home programme {key}") for key in courses.DEFAULT_HOME_PROGRAMME},
    )
    outcomes.record_rmdq(
        client, ticked=[True] * 8 + [False] * 16, timepoint="baseline", course=course, by=therapist.user
    )
    update = sessions.health_update(course, staff=therapist, new_findings=[], pain_now=5)
    avoid = list(update.result.get("precautions", {}).get("avoid_regions", []))
    chart = {"lower_back": {"treated": True, "tension": 2, "pain": 4}}
    for region in avoid[:1]:
        chart[region] = {"treated": True, "tension": 1, "pain": 2}
    session = sessions.record_session(
        course,
        staff=therapist,
        health_update=update,
        techniques=["swedish_relaxation"],
        pressure=2,
        body_chart=chart,
        pain_before=5,
        pain_after=3,
        response="relaxed",
        subjective=text("SOAP subjective"),
        objective=text("SOAP objective"),
        assessment=text("SOAP assessment"),
        plan_note=text("SOAP plan"),
        aftercare=text("aftercare"),
        deviation_reason=text("deviation reason"),
    )
    sessions.sign_session(session, staff=therapist)
    sessions.add_addendum(session, staff=therapist, text=text("addendum text"), reason=text("addendum reason"))
    update2 = sessions.health_update(course, staff=therapist, new_findings=[], pain_now=4)
    stopped = sessions.record_session(
        course,
        staff=therapist,
        health_update=update2,
        techniques=["swedish_relaxation"],
        pressure=2,
        body_chart={"lower_back": {"treated": True}},
        pain_before=4,
        pain_after=None,
        stopped=True,
        stop_reason=text("stop reason"),
        stop_advice=text("stop advice"),
    )
    fresh_update = sessions.health_update(course, staff=therapist, new_findings=[], pain_now=4)
    referral = referrals.create_referral(
        client, staff=therapist, urgency="routine", reason=text("referral reason"), screening=reviewed, course=course
    )
    if tag == "Y":  # X's referral keeps its outcome form open (the forms pages); Y's shows a recorded outcome
        from backcare.clinic.services.assessments import Assessment, record_referral_outcome

        record_referral_outcome(
            referral,
            Assessment(
                assessed_by=text("outcome seen by"),
                service=text("outcome service"),
                assessed_on=timezone.localdate(),
                outcome=text("outcome advised"),
                reason=text("outcome note"),
            ),
            staff=therapist,
        )
    side = Side(client)
    side.ids.update(
        client=client.pk,
        intake=draft.pk,
        screening=reviewed.pk,
        clearance_screening=fresh_update.pk,  # a clearance is recorded against the latest screening
        clearance=clearance.pk,
        consent=signed.pk,
        course=course.pk,
        ended_course=first.pk,
        session=session.pk,
        stopped_session=stopped.pk,
        health_update=fresh_update.pk,
        referral=referral.pk,
    )
    return side


def add_scheduling(world: dict[str, Any], side: Side, therapist: Any, text: Any, day_offset: int) -> None:
    """Appointments for the side's client: one booked, one cancelled (with a reason), a waitlist entry and an
    offered hold."""
    from django.utils import timezone

    from backcare.scheduling.services import booking, waitlist

    zone = dt.UTC
    import holidays

    closed = holidays.country_holidays(world["clinic"].country)  # the clinic is closed on public holidays
    day = timezone.localdate() + dt.timedelta(days=10 + day_offset)
    while day in closed or day + dt.timedelta(days=1) in closed:
        day += dt.timedelta(days=1)
    at = dt.datetime.combine(day, dt.time(10), tzinfo=zone)
    service, room = world["service"], world["room"]
    client = side.client
    course_id = side.ids["course"]
    from backcare.clinic.models import Course

    course = Course.objects.get(pk=course_id)
    booked = booking.book_appointment(
        client, service, at, therapist=therapist, room=room, by=therapist.user, course=course
    )
    cancelled = booking.book_appointment(
        client, service, at + dt.timedelta(hours=2), therapist=therapist, room=room, by=therapist.user
    )
    booking.cancel_appointment(cancelled, by=therapist.user, reason=text("cancel reason"))
    # Cancelled by staff inside the cancellation window (the window made long for the moment), with a reason.
    late = booking.book_appointment(
        client, service, at + dt.timedelta(hours=4), therapist=therapist, room=room, by=therapist.user
    )
    clinic = client.clinic
    clinic.cancellation_hours = 2000
    clinic.save(update_fields=["cancellation_hours"])
    booking.cancel_appointment(
        late, by=therapist.user, reason=text("cancel reason (late)"), late_reason=text("late change reason")
    )
    clinic.cancellation_hours = 24
    clinic.save(update_fields=["cancellation_hours"])
    # The owner deliberately overbooks the same hour.
    overbooked = booking.book_appointment(
        client,
        service,
        at,
        therapist=therapist,
        room=world["room2"],
        by=world["owner"].user,
        override_reason=text("override reason"),
    )
    entry = waitlist.join_waitlist(
        client,
        service,
        day,
        day + dt.timedelta(days=5),
        by=client.user,
        therapist=therapist,
        note=text("waitlist note"),
    )
    hold = waitlist.place_hold(entry, therapist=therapist, room=room, starts_at=at + dt.timedelta(days=1))
    # An appointment that began ten minutes ago (booked ahead, then moved to now), for the day's pages.
    from django.db.models import F

    from backcare.scheduling.models import Appointment, ReminderLog

    now_on = booking.book_appointment(
        client,
        service,
        at + dt.timedelta(hours=6),
        therapist=therapist,
        room=world["room2"] if day_offset else room,
        by=therapist.user,
        course=course,
    )
    shift = timezone.now() - dt.timedelta(minutes=10) - now_on.starts_at
    Appointment.objects.filter(pk=now_on.pk).update(
        starts_at=F("starts_at") + shift,
        ends_at=F("ends_at") + shift,
        busy_from=F("busy_from") + shift,
        busy_until=F("busy_until") + shift,
    )
    side.ids.update(
        outbox_message=ReminderLog.objects.get(appointment=booked, kind="booked").message_id,
        appointment=booked.pk,
        cancelled_appointment=cancelled.pk,
        late_cancelled_appointment=late.pk,
        overbooked_appointment=overbooked.pk,
        appointment_today=now_on.pk,
        waitlist_entry=entry.pk,
        hold=hold.pk,
    )


def add_clinic_billing(world: dict[str, Any], x: Side, y: Side, front_desk: Any, text: Any) -> None:
    from backcare.billing import services

    world["front_desk"] = front_desk
    settings = services.settings_for(world["clinic"])
    for name in ("legal_name", "tax_number", "company_number", "tax_label"):
        setattr(settings, name, text(f"billing {name.replace('_', ' ')}"))
    settings.late_cancellation_fee = 2500
    settings.save()
    services.set_price(world["service"], 6000, by=world["owner"].user)
    add_billing(world, x, x.client.therapist, text)
    add_billing(world, y, y.client.therapist, text)


def add_billing(world: dict[str, Any], side: Side, therapist: Any, text: Any) -> None:
    """The side's booked session invoiced, part paid (with a reference and a note), credited in part (a reason);
    its late cancellation's fee; a package of four for the active course (shown on the course page)."""
    from django.utils import timezone

    from backcare.billing import services
    from backcare.billing.models import Practitioner
    from backcare.clinic.models import Course
    from backcare.scheduling.models import Appointment

    owner, desk = world["owner"].user, world["front_desk"].user
    Practitioner.objects.create(
        staff=therapist, registration_body=text("registration body"), registration_number=text("registration number")
    )
    invoice = services.bill_session(Appointment.objects.get(pk=side.ids["appointment"]), by=therapist.user)
    payment, _ = services.take_payment(
        side.client, 1000, "card", key=f"world-{side.client.pk}", by=desk, invoice=invoice,
        reference=text("payment reference"), note=text("payment note"),
    )  # fmt: skip
    services.credit_note(invoice, 500, text("credit note reason"), by=owner)
    fee = services.raise_fee(
        Appointment.objects.get(pk=side.ids["late_cancelled_appointment"]), "late_cancellation", by=desk
    )
    package = services.sell_package(
        side.client, world["service"], 4, 20000, timezone.localdate() + dt.timedelta(days=90), by=desk,
        course=Course.objects.get(pk=side.ids["course"]),
    )  # fmt: skip
    side.ids.update(invoice=invoice.pk, fee_invoice=fee.pk if fee else None, payment=payment.pk, package=package.pk)


def build_world(text: Any = default_text, *, billing: bool = False) -> World:
    """The data set; with `billing`, each side's invoices, payments, credit note, fee and package too (the billing
    page and API tests' data; left out elsewhere, since erasing a client with financial records keeps the ledger:
    see docs/billing.md)."""
    from django.contrib.auth.tokens import default_token_generator
    from django.core.cache import cache
    from django.utils import timezone
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    from backcare.clinic.models import Client, Clinic
    from backcare.clinic.services import consent
    from backcare.scheduling import calendars
    from backcare.scheduling.services import resources

    cache.clear()  # one-time form keys live in the cache, which outlives a test's database
    clinic = Clinic.objects.create(
        name=text("clinic name"), time_zone="UTC", address=text("clinic address"), phone=text("clinic phone")
    )
    owner = _staff(clinic, "owner", "olivia", text("Olivia Owner"))
    therapist_a = _staff(clinic, "therapist", "theo", text("Theo Therapist"))
    therapist_b = _staff(clinic, "therapist", "tara", text("Tara Therapist"))
    front_desk = _staff(clinic, "front_desk", "fred", text("Fred Frontdesk"))
    world: dict[str, Any] = {"clinic": clinic, "owner": owner}
    world["room"] = resources.create_room(clinic, text("room name"), by=owner.user)
    world["room2"] = resources.create_room(clinic, text("room name 2"), by=owner.user)
    world["service"] = resources.create_service(
        clinic, by=owner.user, name=text("service name"), duration_minutes=60, techniques=["swedish_relaxation"]
    )
    every_day = {d: [(dt.time(8), dt.time(18))] for d in range(7)}
    for t in (therapist_a, therapist_b):
        resources.set_working_hours(t, every_day, by=owner.user)
    far = timezone.localdate() + dt.timedelta(days=60)
    absence, _ = resources.add_absence(therapist_a, far, far, by=owner.user, note=text("absence note"))
    x = build_side(world, therapist_a, "xena", text, "X")
    y = build_side(world, therapist_b, "yuri", text, "Y")
    add_scheduling(world, x, therapist_a, text, 0)
    add_scheduling(world, y, therapist_b, text, 3)
    if billing:
        add_clinic_billing(world, x, y, front_desk, text)
    for side, own in ((x, therapist_a), (y, therapist_b)):  # the set-up pages: each side's therapist
        side.ids.update(room=world["room"].pk, service=world["service"].pk, therapist=own.pk, absence=absence.pk)
    z = Client.objects.create(
        clinic=clinic,
        therapist=therapist_a,
        first_name=text("first name Z"),
        last_name=text("last name Z"),
        date_of_birth=dt.date(1990, 1, 1),
    )
    _, token = consent.new_invitation(z, therapist_a)
    x.ids["invitation_token"] = token
    y.ids["invitation_token"] = token
    # A password reset link of a user who never signs in here (a sign-in would end the link).
    lapsed = _user("lapsed")
    reset = {
        "reset_uid": urlsafe_base64_encode(force_bytes(lapsed.pk)),
        "reset_token": default_token_generator.make_token(lapsed),
    }
    x.ids.update(reset)
    y.ids.update(reset)
    _, feed = calendars.create_token(by=therapist_a.user, therapist=therapist_a)
    x.ids["calendar_token"] = feed
    y.ids["calendar_token"] = feed
    users = {
        "anonymous": None,
        "owner": owner.user,
        "therapist_a": therapist_a.user,
        "therapist_b": therapist_b.user,
        "front_desk": front_desk.user,
        "client_x": x.client.user,
        "client_y": y.client.user,
    }
    return World(clinic, owner, therapist_a, therapist_b, front_desk, x, y, z, users)


def request(page_client: Any, method: str, url: str, data: Any = None, *, user: Any = "keep") -> Any:
    """One request whose database changes are rolled back, so every role meets the same data set. With `user`,
    log in as that user (None: anonymous) first, since a request such as logging out ends the session."""
    from django.db import transaction

    if user != "keep":
        login_as(page_client, user)
    with transaction.atomic():
        response = page_client.post(url, data or {}) if method == "POST" else page_client.get(url)
        transaction.set_rollback(True)
    return response


def login_as(page_client: Any, user: Any) -> Any:
    page_client.logout()
    if user is not None:
        page_client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        pass_second_factor(page_client, user)
    return page_client


# --- Reading forms and error messages out of a page ----------------------------------------------------------------

VOID = {"input", "br", "img", "meta", "link", "hr", "source", "col", "area", "base", "wbr", "embed", "track", "param"}
CONTAINERS = {"div", "p", "li", "label", "td", "fieldset", "dd", "section"}


@dataclass(eq=False)
class Node:
    tag: str
    attrs: dict[str, str]
    parent: Node | None = None
    children: list[Any] = field(default_factory=list)  # Node or str

    def text(self) -> str:
        return " ".join(c if isinstance(c, str) else c.text() for c in self.children)

    def walk(self) -> Any:
        for c in self.children:
            if isinstance(c, Node):
                yield c
                yield from c.walk()

    def ancestors(self) -> Any:
        node = self.parent
        while node is not None:
            yield node
            node = node.parent


def parse_html(html: str) -> Node:
    from html.parser import HTMLParser

    root = Node("root", {})

    class Parser(HTMLParser):
        current = root

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            node = Node(tag, {k: v or "" for k, v in attrs}, self.current)
            self.current.children.append(node)
            if tag not in VOID:
                self.current = node

        def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.current.children.append(Node(tag, {k: v or "" for k, v in attrs}, self.current))

        def handle_endtag(self, tag: str) -> None:
            node: Node | None = self.current
            while node is not None and node.tag != tag:
                node = node.parent
            if node is not None and node.parent is not None:
                self.current = node.parent

        def handle_data(self, data: str) -> None:
            self.current.children.append(data)

    Parser(convert_charrefs=True).feed(html)
    return root


@dataclass
class FormField:
    name: str
    kind: str  # input type, "textarea" or "select"
    required: bool
    value: str
    node: Node
    label: str
    attrs: dict[str, str]


def post_forms(root: Node) -> list[tuple[Node, list[FormField]]]:
    """Every <form method=post> with its fields (hidden ones included; buttons left out)."""
    labels = {n.attrs.get("for", ""): " ".join(n.text().split()) for n in root.walk() if n.tag == "label"}
    found = []
    for form in (n for n in root.walk() if n.tag == "form" and n.attrs.get("method", "").lower() == "post"):
        fields = []
        for n in form.walk():
            if n.tag not in ("input", "textarea", "select") or not n.attrs.get("name"):
                continue
            kind = n.attrs.get("type", "text").lower() if n.tag == "input" else n.tag
            if kind in ("submit", "button", "reset", "image"):
                continue
            value = n.text() if n.tag == "textarea" else n.attrs.get("value", "")
            fields.append(
                FormField(
                    n.attrs["name"],
                    kind,
                    "required" in n.attrs,
                    value,
                    n,
                    labels.get(n.attrs.get("id", ""), ""),
                    n.attrs,
                )
            )
        found.append((form, fields))
    return found


def error_nodes(root: Node) -> list[Node]:
    return [
        n
        for n in root.walk()
        if {"error", "errorlist", "errors", "field-error"} & set(n.attrs.get("class", "").split())
        or n.attrs.get("role") == "alert"
    ]


def container(node: Node) -> Node | None:
    return next((a for a in node.ancestors() if a.tag in CONTAINERS), None)


def error_names_field(root: Node, name: str) -> bool:
    """A message for field `name` is shown: an error element names it (label or name), or sits beside it (in the
    same field container as its input)."""
    inputs = [n for n in root.walk() if n.attrs.get("name") == name and n.tag in ("input", "textarea", "select")]
    if not inputs:
        return False
    labels = {
        " ".join(n.text().split()).rstrip("*: ").lower()
        for n in root.walk()
        if n.tag == "label" and n.attrs.get("for") in {i.attrs.get("id") for i in inputs}
    }
    boxes = {id(b) for b in (container(i) for i in inputs) if b is not None}
    for err in error_nodes(root):
        text = " ".join(err.text().split()).lower()
        if not text:
            continue
        if name.lower() in text or name.replace("_", " ").lower() in text or any(lb and lb in text for lb in labels):
            return True
        if boxes & {id(a) for a in err.ancestors()} or (id(err) in boxes):
            return True
    return False
