"""Who may open what, for EVERY page of the project: the URL patterns are enumerated from the resolver, so a new
page fails `test_every_page_is_in_the_table` until its expected access is written into EXPECTED below.

Data: client X of therapist A and client Y of therapist B, each with every kind of record (tests/matrix_support.py).
Every URL is filled with X's objects and requested by each role, GET and (where the view accepts it) POST with no
data; every request is rolled back, so each role meets the same data.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from matrix_support import accepts_post, all_patterns, login_as, request, url_kwargs

ROLES = ("anonymous", "owner", "therapist_a", "therapist_b", "front_desk", "client_x", "client_y")

# URL name: one entry per role in ROLES order; "GET" or "GET/POST" status codes (POST with empty data).
# therapist_b is NOT shared on X. Read a row as: anonymous, owner, A, B, front desk, client X, client Y.
L = "302/302"  # anonymous sent to the login page, for GET and POST
EXPECTED: dict[str, tuple[str, ...]] = {
    # accounts
    "home": (L, "302/302", "302/302", "302/302", "302/302", "302/302", "302/302"),
    "login": ("200/200", "302/302", "302/302", "302/302", "302/302", "302/302", "302/302"),
    "logout": ("405/302", "405/302", "405/302", "405/302", "405/302", "405/302", "405/302"),
    "dashboard": (L, "200/200", "200/200", "200/200", "200/200", "302/302", "302/302"),
    # two-factor sign-in: staff manage their own app; the code step sends everyone on who has passed it or needs none;
    # the clinic's rule and resetting a member's app (here therapist A's) are the owner's
    "two_factor_verify": (L, "302/302", "302/302", "302/302", "302/302", "302/302", "302/302"),
    "two_factor": ("302", "200", "200", "200", "200", "403", "403"),
    "two_factor_setup": (L, "200/200", "200/200", "200/200", "200/200", "403/403", "403/403"),
    "two_factor_recovery_codes": (L, "405/200", "405/302", "405/302", "405/302", "405/403", "405/403"),
    "staff_security": (L, "200/302", "403/403", "403/403", "403/403", "403/403", "403/403"),
    "staff_two_factor_reset": (L, "405/302", "405/403", "405/403", "405/403", "405/403", "405/403"),
    # clients: contact details for all staff, the record for X's therapists, sharing and audit for the owner
    "client_list": ("302", "200", "200", "200", "200", "403", "403"),
    "client_create": (L, "200/200", "200/200", "200/200", "200/200", "403/403", "403/403"),
    "client_detail": ("302", "200", "200", "404", "200", "403", "403"),
    "client_edit": (L, "200/200", "200/200", "200/200", "200/200", "403/403", "403/403"),
    "client_share": (L, "200/302", "403/403", "403/403", "403/403", "403/403", "403/403"),
    "client_audit": ("302", "200", "403", "403", "403", "403", "403"),
    # portal invitations: the owner and the client's own therapist only; the link never shows (test_portal_takeover)
    "invite_client": (L, "200/302", "200/302", "404/404", "403/403", "403/403", "403/403"),
    # clinical pages: 404 for therapist B, 403 for the front desk
    "intake_review": (L, "200/200", "200/200", "404/404", "403/403", "403/403", "403/403"),
    "clearance_create": (L, "200/200", "200/200", "404/404", "403/403", "403/403", "403/403"),
    "clearance_letter": ("302", "200", "200", "404", "403", "403", "403"),
    "consent_record": (L, "200/302", "200/302", "404/404", "403/403", "403/403", "403/403"),
    "consent_paper_form": ("302", "200", "200", "404", "403", "403", "403"),
    "referral_create": (L, "200/200", "200/200", "404/404", "403/403", "403/403", "403/403"),
    "referral_detail": ("302", "200", "200", "404", "403", "403", "403"),
    "referral_outcome": (L, "200/200", "200/200", "404/404", "403/403", "403/403", "403/403"),
    "course_start": (L, "302/302", "302/302", "404/404", "403/403", "404/404", "404/404"),
    "course_detail": ("302", "200", "200", "404", "403", "404", "404"),
    "course_edit": (L, "200/200", "200/200", "404/404", "403/403", "404/404", "404/404"),
    "course_end": (L, "200/200", "200/200", "404/404", "403/403", "404/404", "404/404"),
    "rmdq_record": (L, "200/302", "200/302", "404/404", "403/403", "404/404", "404/404"),
    "health_update": (L, "200/200", "200/200", "404/404", "403/403", "404/404", "404/404"),
    "session_record": (L, "200/200", "200/200", "404/404", "403/403", "404/404", "404/404"),
    "session_detail": ("302", "200", "200", "404", "403", "404", "404"),
    # signing is the session's therapist's (the owner's press comes back with a message); addenda follow signing
    "session_sign": (L, "405/302", "405/302", "404/404", "403/403", "404/404", "404/404"),
    "session_addendum": (L, "200/200", "200/200", "404/404", "403/403", "404/404", "404/404"),
    "referral_letter_pdf": ("302", "200", "200", "404", "403", "404", "404"),
    "discharge_pdf": ("302", "200", "200", "404", "403", "404", "404"),
    "progress_chart_svg": ("302", "200", "200", "404", "403", "404", "404"),
    # the client's own home programme is theirs to download
    "home_programme_pdf": ("302", "200", "200", "404", "403", "200", "404"),
    # the portal: clients only, each their own
    "portal": (L, "403/403", "403/403", "403/403", "403/403", "200/200", "200/200"),
    "consent": (L, "403/403", "403/403", "403/403", "403/403", "200/302", "200/302"),
    "portal_intake": (L, "403/403", "403/403", "403/403", "403/403", "302/302", "302/302"),
    "portal_home_programme": (L, "403/403", "403/403", "403/403", "403/403", "200/200", "200/200"),
    # the questionnaire due now (none is due for X or Y: back to the portal with a message)
    "portal_questionnaire": (L, "403/403", "403/403", "403/403", "403/403", "302/302", "302/302"),
    "register": ("200/200", "409/409", "409/409", "409/409", "409/409", "409/409", "409/409"),
    # the in-clinic hand-over: opens only in the session a staff member's hand-over started (and signed out)
    "register_handover": ("404/404", "409/409", "409/409", "409/409", "409/409", "409/409", "409/409"),
    # scheduling: appointments are contact data (front desk and every therapist), never for clients
    "calendar": ("302", "200", "200", "200", "200", "403", "403"),
    "appointment_detail": ("302", "200", "200", "200", "200", "403", "403"),
    "slot_search": ("302", "200", "200", "200", "200", "403", "403"),
    "appointment_book": (L, "200/200", "200/200", "200/200", "200/200", "403/403", "403/403"),
    "appointment_move": (L, "200/200", "200/200", "200/200", "200/200", "403/403", "403/403"),
    "appointment_cancel": (L, "200/200", "200/200", "200/200", "200/200", "403/403", "403/403"),
    # the calendar's time grid: its events (no range asked for: 400) and a drag (an empty one moves nothing: 400)
    "calendar_events": ("302", "400", "400", "400", "400", "403", "403"),
    "appointment_drop": (L, "405/400", "405/400", "405/400", "405/400", "405/403", "405/403"),
    # the day: every member of staff reads Today (a therapist their own); a status button with no status, or one
    # pressed on a day ahead, comes back with its message; starting the note opens the record: not for B or the desk
    "today": ("302", "200", "200", "200", "200", "403", "403"),
    "appointment_status": (L, "405/302", "405/302", "405/302", "405/302", "405/403", "405/403"),
    "appointment_start_note": (L, "405/302", "405/302", "405/404", "405/403", "405/403", "405/403"),
    # booking a course's sessions reads the course: not for therapist B
    "course_booking": (L, "200/200", "200/200", "404/404", "200/200", "403/403", "403/403"),
    "portal_appointments": ("302", "403", "403", "403", "403", "200", "200"),
    "portal_book": ("302", "403", "403", "403", "403", "200", "200"),
    "portal_book_confirm": (L, "403/403", "403/403", "403/403", "403/403", "200/400", "200/400"),
    "portal_cancel": (L, "403/403", "403/403", "403/403", "403/403", "200/302", "404/404"),
    # moving one's own appointment: an empty POST names no time (400); another client's appointment is 404
    "portal_reschedule": (L, "403/403", "403/403", "403/403", "403/403", "200/400", "404/404"),
    "portal_offer": (L, "405/403", "405/403", "405/403", "405/403", "405/302", "405/404"),
    "portal_waitlist": (L, "403/403", "403/403", "403/403", "403/403", "200/200", "200/200"),
    "portal_waitlist_leave": (L, "405/403", "405/403", "405/403", "405/403", "405/302", "405/404"),
    # the staff waitlist: front desk and owner all entries, a therapist their clients' (B's withdraw of X's is 404)
    "staff_waitlist": ("302", "200", "200", "200", "200", "403", "403"),
    "staff_waitlist_add": (L, "200/200", "200/200", "200/200", "200/200", "403/403", "403/403"),
    "staff_waitlist_withdraw": (L, "405/302", "405/302", "405/404", "405/302", "405/403", "405/403"),
    # clinic set-up: all staff read the overview; rooms and services are the owner's; a therapist's hours and
    # absences (here therapist A's) are the owner's, the front desk's and A's own (see STAFF_PAGES)
    "setup": ("302", "200", "200", "200", "200", "403", "403"),
    "setup_room_add": (L, "200/200", "403/403", "403/403", "403/403", "403/403", "403/403"),
    "setup_room": (L, "200/200", "403/403", "403/403", "403/403", "403/403", "403/403"),
    "setup_service_add": (L, "200/200", "403/403", "403/403", "403/403", "403/403", "403/403"),
    "setup_service": (L, "200/200", "403/403", "403/403", "403/403", "403/403", "403/403"),
    "setup_hours": (L, "200/200", "200/200", "403/403", "200/200", "403/403", "403/403"),
    "setup_absences": (L, "200/200", "200/200", "403/403", "200/200", "403/403", "403/403"),
    "setup_absence_remove": (L, "405/302", "405/302", "405/403", "405/302", "405/403", "405/403"),
    # public holidays: the owner opens one for booking (an empty post names the missing day: 400)
    "setup_holidays": (L, "200/400", "403/403", "403/403", "403/403", "403/403", "403/403"),
    "my_calendar": (L, "403/403", "200/302", "200/302", "403/403", "200/302", "200/302"),
    # data rights: the export is clinical (the client's own from the portal), erasure and research for the owner
    "client_export": ("302", "200", "200", "404", "403", "403", "403"),
    "client_erasure": (L, "200/200", "403/403", "403/403", "403/403", "403/403", "403/403"),
    "client_retention_delete": (L, "200/200", "403/403", "403/403", "403/403", "403/403", "403/403"),
    "portal_export": ("302", "403", "403", "403", "403", "200", "200"),
    "portal_erasure": (L, "403/403", "403/403", "403/403", "403/403", "200/200", "200/200"),
    "datarights_overview": ("302", "200", "403", "403", "403", "403", "403"),
    "research_export": ("302", "200", "403", "403", "403", "403", "403"),
    # the outbox: the owner's only (what, to whom, the mail server's answer; never a body); retry is a button
    "outbox": ("302", "200", "403", "403", "403", "403", "403"),
    "outbox_retry": (L, "405/302", "405/403", "405/403", "405/403", "405/403", "405/403"),
    # FHIR import of clients: owner and therapists (an empty post shows the form again with its message)
    "client_import": (L, "200/200", "200/200", "200/200", "403/403", "403/403", "403/403"),
    # the secret feed address is the credential: it answers without a login
    "calendar_feed": ("200", "200", "200", "200", "200", "200", "200"),
    # billing: the front desk and the owner take money and see every client's billing (no clinical notes on it); a
    # therapist reads their own sessions' billing; a client downloads their own invoices and receipts
    "client_billing": (L, "200/200", "200/403", "404/404", "200/200", "403/403", "403/403"),
    "invoice_detail": (L, "200/200", "200/403", "404/404", "200/200", "403/403", "403/403"),
    "invoice_pdf": ("302", "200", "200", "404", "200", "200", "404"),
    "appointment_invoice": (L, "405/302", "405/403", "405/403", "405/302", "405/403", "405/403"),
    "takings": ("302", "200", "403", "403", "403", "403", "403"),
    "portal_billing": ("302", "403", "403", "403", "403", "200", "200"),
    # the owner's reports (aged balances, revenue, their CSVs), billing settings and prices
    "billing_reports": ("302", "200", "403", "403", "403", "403", "403"),
    "billing_settings": (L, "200/200", "403/403", "403/403", "403/403", "403/403", "403/403"),
    "price_list": (L, "200/200", "403/403", "403/403", "403/403", "403/403", "403/403"),
    # personal API tokens: every signed-in user manages their own (tests/api has the API's own matrix)
    "api_tokens": (L, "200/200", "200/200", "200/200", "200/200", "200/200", "200/200"),
    # passwords: every signed-in user changes their own; a reset by email is open to all (its link is the credential,
    # and Django moves it out of the address into the session at once)
    "password_change": (L, "200/200", "200/200", "200/200", "200/200", "200/200", "200/200"),
    "password_change_done": ("302", "200", "200", "200", "200", "200", "200"),
    "password_reset": ("200/200", "200/200", "200/200", "200/200", "200/200", "200/200", "200/200"),
    "password_reset_done": ("200", "200", "200", "200", "200", "200", "200"),
    "password_reset_confirm": ("302/302", "302/302", "302/302", "302/302", "302/302", "302/302", "302/302"),
    "password_reset_complete": ("200", "200", "200", "200", "200", "200", "200"),
    # the first-run set-up exists only on an empty database: here a clinic exists, so it is gone for everyone
    "first_run": ("404/404", "404/404", "404/404", "404/404", "404/404", "404/404", "404/404"),
    # staff, clinic settings and the clinic-wide audit trail are the owner's (here about therapist A)
    "staff_list": ("302", "200", "403", "403", "403", "403", "403"),
    "staff_invite": (L, "200/200", "403/403", "403/403", "403/403", "403/403", "403/403"),
    "staff_edit": (L, "200/200", "403/403", "403/403", "403/403", "403/403", "403/403"),
    "staff_deactivate": (L, "405/302", "405/403", "405/403", "405/403", "405/403", "405/403"),
    "staff_resend": (L, "405/302", "405/403", "405/403", "405/403", "405/403", "405/403"),
    # a staff invitation's link is the credential (here a link that is no invitation: "this link cannot be used")
    "staff_join": ("200/200", "200/200", "200/200", "200/200", "200/200", "200/200", "200/200"),
    "clinic_settings": (L, "200/200", "403/403", "403/403", "403/403", "403/403", "403/403"),
    "consent_texts": (L, "200/200", "403/403", "403/403", "403/403", "403/403", "403/403"),
    "audit_log": ("302", "200", "403", "403", "403", "403", "403"),
    "audit_export": ("302", "200", "403", "403", "403", "403", "403"),
}

# Pages that take an id of X's clinical record (client, course, session, referral, clearance, screening).
CLINICAL_KINDS = {
    "client",
    "course",
    "session",
    "referral",
    "clearance",
    "clearance_screening",
    "health_update",
    "consent",
}
# Pages taking a client id that show only contact details, which every staff member may see.
CONTACT_PAGES = {"client_edit"}
# Pages for the client's own therapist (and the owner), not for a therapist the record is only shared with.
OWN_THERAPIST_PAGES = {"invite_client"}
PASSWORD_RESET_PAGES = {"password_reset", "password_reset_done", "password_reset_confirm", "password_reset_complete"}
# Pages about therapist A (their hours and absences), not about client X: sharing X with B opens none of them.
STAFF_PAGES = {
    "setup_hours",
    "setup_absences",
    "setup_absence_remove",
    "staff_two_factor_reset",
    "staff_edit",
    "staff_deactivate",
    "staff_resend",
}
# Billing of therapist A's own sessions with X: sharing X's record with B does not make them B's sessions.
OWN_SESSION_PAGES = {"invoice_detail", "invoice_pdf"}


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def observe(page_client, url, pattern, user):
    statuses = [str(request(page_client, "GET", url, user=user).status_code)]
    if accepts_post(pattern):
        statuses.append(str(request(page_client, "POST", url, user=user).status_code))
    return "/".join(statuses)


def x_urls(world):
    from matrix_support import PARAMETER_SOURCES

    for pattern in all_patterns():
        kinds = set(PARAMETER_SOURCES.get(pattern.name, {}).values())
        yield pattern, reverse(pattern.name, kwargs=url_kwargs(pattern, world.x.ids)), kinds


def test_every_page_is_in_the_table():
    names = [p.name for p in all_patterns()]
    assert all(names), "every page must have a URL name"
    missing = sorted(set(names) - set(EXPECTED))
    assert not missing, f"pages missing from EXPECTED in {__file__}: {missing}"
    assert not set(EXPECTED) - set(names), "EXPECTED lists pages that no longer exist"
    assert all(len(row) == len(ROLES) for row in EXPECTED.values())


def test_every_page_answers_every_role_as_expected(client, world):
    wrong = []
    for role in ROLES:
        for pattern, url, _ in x_urls(world):
            expected = EXPECTED[pattern.name][ROLES.index(role)]
            got = observe(client, url, pattern, world.users[role])
            if got != expected:
                wrong.append(f"{pattern.name} {url} as {role}: expected {expected}, got {got}")
    assert not wrong, "\n".join(wrong)


def test_anonymous_is_sent_to_login_everywhere_but_login_register_and_feed(client, world):
    open_pages = {
        "login",
        "register",
        "register_handover",
        "calendar_feed",
        "logout",
        "first_run",
        "staff_join",
        *PASSWORD_RESET_PAGES,
    }
    for pattern, url, _ in x_urls(world):
        if pattern.name in open_pages:
            continue
        response = request(client, "GET", url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), (url, response["Location"])


def test_another_therapists_client_is_refused_by_id_on_every_page(client, world):
    """Therapist B, not shared on X, asks for every page with one of X's record ids: nothing is shown or done."""
    from backcare.clinic.models import AuditEvent

    login_as(client, world.therapist_b.user)
    checked = 0
    for pattern, url, kinds in x_urls(world):
        if not kinds & CLINICAL_KINDS or pattern.name in CONTACT_PAGES:
            continue
        checked += 1
        for method in ("GET", "POST") if accepts_post(pattern) else ("GET",):
            before = AuditEvent.objects.count()
            response = request(client, method, url, user=world.therapist_b.user)
            assert response.status_code in (403, 404), f"{method} {url}: {response.status_code}"
            body = response.content.decode("utf-8", "replace")
            assert "first name X" not in body, url
            assert AuditEvent.objects.count() == before
    assert checked >= 20


def test_front_desk_never_sees_clinical_pages(client, world):
    login_as(client, world.front_desk.user)
    for pattern, url, kinds in x_urls(world):
        if kinds & CLINICAL_KINDS and pattern.name not in CONTACT_PAGES | {
            "client_detail",
            "course_booking",
            "client_billing",
        }:
            assert request(client, "GET", url).status_code == 403, url
    for name in ("client_list", "client_detail", "client_edit", "calendar", "appointment_detail", "slot_search"):
        pattern = next(p for p in all_patterns() if p.name == name)
        assert request(client, "GET", reverse(name, kwargs=url_kwargs(pattern, world.x.ids))).status_code == 200


def test_client_y_gets_nothing_of_client_x(client, world):
    login_as(client, world.y.client.user)
    for pattern, url, _kinds in x_urls(world):
        if not pattern.params or pattern.name in ("register", "calendar_feed", "password_reset_confirm", "staff_join"):
            continue
        response = request(client, "GET", url)
        assert response.status_code in (403, 404, 405), url
        assert "first name X" not in response.content.decode("utf-8", "replace"), url


def test_sharing_x_with_b_opens_every_page_a_can_open(client, world):
    from backcare.clinic.services.clients import share_client

    share_client(world.x.client, therapist=world.therapist_b, staff=world.owner)
    a, b = ROLES.index("therapist_a"), ROLES.index("therapist_b")
    login_as(client, world.therapist_b.user)
    for pattern, url, _ in x_urls(world):
        expected = EXPECTED[pattern.name][a]
        if (
            expected != EXPECTED[pattern.name][b]
            and pattern.name not in STAFF_PAGES | OWN_THERAPIST_PAGES | OWN_SESSION_PAGES
        ):
            assert observe(client, url, pattern, world.therapist_b.user) == expected, url
    detail = request(client, "GET", reverse("client_detail", args=[world.x.client.pk]))
    assert detail.status_code == 200 and "first name X" in detail.content.decode()
