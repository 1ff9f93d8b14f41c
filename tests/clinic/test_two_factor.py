"""Two-factor sign-in through the pages, as people sign in: the password on /login/, then the code step or the app's
set-up (SecondFactorMiddleware), with real TOTP codes computed from the device's key (RFC 6238, django-otp's code).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from clinic_fixtures import PASSWORD, enrol_app, fresh_totp_code, totp_code

pytestmark = pytest.mark.django_db


def password_step(page: Any, username: str, password: str = PASSWORD, next_url: str = "") -> Any:
    return page.post(reverse("login"), {"username": username, "password": password, "next": next_url})


def events(action: str) -> list[Any]:
    from backcare.clinic.models import AuditEvent

    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def secret_of(page: Any) -> str:
    found = re.search(r'data-secret="([A-Z2-7]+)"', page.content.decode())
    assert found, "the set-up page shows the key as text"
    return found.group(1)


def code_for(secret: str, steps_ahead: int = 0) -> str:
    """What an authenticator app shows for this base32 key, computed here as the app does (RFC 6238)."""
    import base64
    import time

    from django_otp.oath import TOTP

    totp = TOTP(base64.b32decode(secret + "=" * (-len(secret) % 8)))
    totp.time = time.time() + 30 * steps_ahead
    return f"{totp.token():06d}"


def codes_on(page: Any) -> list[str]:
    return re.findall(r"<li><code>([a-z2-9-]{19})</code></li>", page.content.decode())


def wait_out_failures(user: Any) -> None:
    """Move the last failure back an hour: the throttle's wait (1 s, 2 s, 4 s, ...) is over, as if the user waited."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from backcare.clinic.models import RecoveryCodes

    for model in (TOTPDevice, RecoveryCodes):
        model.objects.filter(user=user).update(throttling_failure_timestamp=timezone.now() - dt.timedelta(hours=1))


# --- Enrolment ---------------------------------------------------------------------------------------------------


def test_an_owner_without_an_app_sets_one_up_after_the_password_and_reaches_nothing_else_first(client, owner):
    response = password_step(client, "olivia")
    assert response.status_code == 302
    setup = reverse("two_factor_setup")
    for url in (reverse("dashboard"), reverse("client_list"), reverse("calendar"), reverse("two_factor"), "/admin/"):
        held = client.get(url)
        assert held.status_code == 302 and held["Location"] == setup, url
    assert client.post(reverse("client_create"), {"first_name": "X"})["Location"] == setup

    page = client.get(setup)
    assert page.status_code == 200 and page["Cache-Control"].startswith("max-age=0")
    body = page.content.decode()
    secret = secret_of(page)
    assert 'src="data:image/svg+xml;base64,' in body  # the QR code, an SVG image (no inline script or style)
    assert "<script" not in body.split("<body>")[1] and "style=" not in body
    assert client.get(setup).content.decode().count(secret) >= 1  # a reload shows the same key

    wrong = client.post(setup, {"code": "123 456" if code_for(secret) != "123456" else "654321"})
    assert wrong.status_code == 200
    assert "That code did not match" in wrong.content.decode() and 'value="123 456"' in wrong.content.decode()
    assert client.get(reverse("dashboard"))["Location"] == setup  # still not on

    wait_out_failures(owner.user)
    done = client.post(setup, {"code": code_for(secret)})
    assert done.status_code == 200 and "Two-factor sign-in is on" in done.content.decode()
    codes = codes_on(done)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert client.get(reverse("dashboard")).status_code == 200
    (enrolled,) = events("two_factor_enrol")
    assert enrolled.user == owner.user and events("two_factor_setup_refused")


def test_recovery_codes_are_kept_only_as_digests(client, owner):
    from backcare.clinic.models import RecoveryCode, recovery_code_digest

    password_step(client, "olivia")
    secret = secret_of(client.get(reverse("two_factor_setup")))
    codes = codes_on(client.post(reverse("two_factor_setup"), {"code": code_for(secret)}))
    stored = set(RecoveryCode.objects.filter(device__user=owner.user).values_list("digest", flat=True))
    assert stored == {recovery_code_digest(c) for c in codes}
    assert not stored & set(codes) and all(len(d) == 64 for d in stored)
    # shown once: the overview counts them but never shows them again
    overview = client.get(reverse("two_factor")).content.decode()
    assert not any(c in overview for c in codes) and 'id="codes-left">10<' in overview


def test_a_therapist_in_a_clinic_without_the_rule_signs_in_with_the_password_only(client, therapist):
    password_step(client, "theo")
    assert client.get(reverse("dashboard")).status_code == 200


def test_portal_clients_are_never_asked(client, clinic, owner, client_record):
    owner.clinic.require_two_factor = True
    owner.clinic.save()
    password_step(client, "cora")
    assert client.get(reverse("portal")).status_code == 200
    assert client.get(reverse("two_factor_setup")).status_code == 403


# --- The code step -----------------------------------------------------------------------------------------------


def test_with_an_app_the_code_step_follows_the_password_and_goes_on_to_the_page_asked_for(client, owner):
    device = enrol_app(owner.user)
    response = password_step(client, "olivia", next_url="/clients/")
    assert response["Location"] == "/clients/"
    held = client.get("/clients/")
    assert held.status_code == 302 and held["Location"] == "/login/code/?next=/clients/"
    assert client.get(reverse("two_factor_setup"))["Location"].startswith("/login/code/")  # no new app before it
    page = client.get(held["Location"])
    assert page.status_code == 200 and "Code from your app" in page.content.decode()
    before = client.cookies["sessionid"].value
    done = client.post("/login/code/", {"code": totp_code(device), "next": "/clients/"})
    assert done.status_code == 302 and done["Location"] == "/clients/"
    assert client.cookies["sessionid"].value != before  # a new session id once fully signed in
    assert client.get("/clients/").status_code == 200
    assert events("two_factor_sign_in")[-1].detail == {"kind": "app code"}


def test_the_code_step_sends_nowhere_outside_the_site(client, owner):
    device = enrol_app(owner.user)
    password_step(client, "olivia")
    done = client.post("/login/code/", {"code": totp_code(device), "next": "https://evil.example/"})
    assert done["Location"] == reverse("home")


def test_a_code_works_only_once(client, owner):
    device = enrol_app(owner.user)
    password_step(client, "olivia")
    code = totp_code(device)
    assert client.post("/login/code/", {"code": code})["Location"] == reverse("home")
    client.post(reverse("logout"))
    password_step(client, "olivia")
    wait_out_failures(owner.user)
    again = client.post("/login/code/", {"code": code})
    assert again.status_code == 200 and "used already" in again.content.decode()
    assert client.get(reverse("dashboard"))["Location"].startswith("/login/code/")
    wait_out_failures(owner.user)
    assert client.post("/login/code/", {"code": fresh_totp_code(device)}).status_code == 302
    assert client.get(reverse("dashboard")).status_code == 200


def test_an_empty_or_wrong_code_is_named_and_kept(client, owner):
    enrol_app(owner.user)
    password_step(client, "olivia")
    empty = client.post("/login/code/", {"code": ""})
    assert empty.status_code == 200 and "Code: type the 6 digits" in empty.content.decode()
    wrong = client.post("/login/code/", {"code": "abc-def"})
    assert wrong.status_code == 200
    assert "recovery code did not match" in wrong.content.decode() and 'value="abc-def"' in wrong.content.decode()


def test_wrong_codes_wait_ever_longer(client, owner):
    device = enrol_app(owner.user)
    password_step(client, "olivia")
    assert client.post("/login/code/", {"code": "000000" if totp_code(device) != "000000" else "111111"}).status_code
    right_now = client.post("/login/code/", {"code": totp_code(device)})
    assert right_now.status_code == 200 and "Too many wrong codes: wait" in right_now.content.decode()
    wait_out_failures(owner.user)
    assert client.post("/login/code/", {"code": totp_code(device)}).status_code == 302


def test_five_wrong_codes_send_the_user_back_to_the_password_and_are_audited(client, owner, settings):
    device = enrol_app(owner.user)
    password_step(client, "olivia")
    wrong = "000000" if totp_code(device) != "000000" else "111111"
    for attempt in range(1, 5):
        response = client.post("/login/code/", {"code": wrong})
        assert response.status_code == 200, attempt
        wait_out_failures(owner.user)
    last = client.post("/login/code/", {"code": wrong})
    assert last.status_code == 302 and last["Location"] == reverse("login")
    assert "5 wrong codes" in client.get(reverse("login")).content.decode()
    assert client.get(reverse("dashboard"))["Location"].startswith("/login/?next=")  # signed out
    assert len(events("two_factor_refused")) == 5
    (locked,) = events("two_factor_locked")
    assert locked.user == owner.user and locked.detail == {"tries": 5}
    wait_out_failures(owner.user)
    password_step(client, "olivia")  # the password again, then a right code works
    assert client.post("/login/code/", {"code": totp_code(device)}).status_code == 302


def test_a_recovery_code_signs_in_once(client, owner):
    from backcare.clinic.services import two_factor

    enrol_app(owner.user)
    codes = two_factor.new_recovery_codes(owner.user)
    password_step(client, "olivia")
    used = client.post("/login/code/", {"code": codes[3].upper().replace("-", " ")})  # as typed from paper
    assert used.status_code == 302
    page = client.get(reverse("dashboard"))
    assert page.status_code == 200 and "9 left" in page.content.decode()
    assert events("two_factor_sign_in")[-1].detail == {"kind": "recovery code", "recovery_codes_left": 9}
    client.post(reverse("logout"))
    password_step(client, "olivia")
    again = client.post("/login/code/", {"code": codes[3]})
    assert again.status_code == 200 and "used already" in again.content.decode()
    wait_out_failures(owner.user)
    assert client.post("/login/code/", {"code": codes[4]}).status_code == 302


def test_new_recovery_codes_replace_the_old_ones(client, owner):
    from backcare.clinic.services import two_factor

    enrol_app(owner.user)
    old = two_factor.new_recovery_codes(owner.user)
    password_step(client, "olivia")
    client.post("/login/code/", {"code": totp_code(enrol_app(owner.user))})
    page = client.post(reverse("two_factor_recovery_codes"))
    new = codes_on(page)
    assert page.status_code == 200 and len(new) == 10 and not set(new) & set(old)
    assert page["Cache-Control"].startswith("max-age=0") and "no-store" in page["Cache-Control"]
    assert events("two_factor_new_recovery_codes")
    client.post(reverse("logout"))
    password_step(client, "olivia")
    assert client.post("/login/code/", {"code": old[0]}).status_code == 200
    wait_out_failures(owner.user)
    assert client.post("/login/code/", {"code": new[0]}).status_code == 302


def test_a_new_app_replaces_the_old_one_only_once_confirmed(client, owner):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    old = enrol_app(owner.user)
    password_step(client, "olivia")
    client.post("/login/code/", {"code": totp_code(old)})
    secret = secret_of(client.get(reverse("two_factor_setup")))
    assert TOTPDevice.objects.filter(user=owner.user, confirmed=True).get() == old
    codes = codes_on(client.post(reverse("two_factor_setup"), {"code": code_for(secret)}))
    assert len(codes) == 10
    (new,) = TOTPDevice.objects.filter(user=owner.user)
    assert new.pk != old.pk and new.confirmed
    assert events("two_factor_enrol")[-1].detail == {"replaced_apps": 1}


def test_the_admin_sign_in_does_not_skip_the_code_step(client, owner):
    owner.user.is_staff = owner.user.is_superuser = True
    owner.user.save()
    enrol_app(owner.user)
    response = client.post("/admin/login/", {"username": "olivia", "password": PASSWORD, "next": "/admin/"})
    assert response.status_code == 302
    for url in ("/admin/", "/admin/clinic/auditevent/", reverse("dashboard")):
        assert client.get(url)["Location"].startswith("/login/code/?next="), url


# --- The clinic's rule and the owner's reset ---------------------------------------------------------------------


def test_the_owner_requires_an_app_for_all_staff(client, owner, therapist, front_desk):
    from django.test import Client

    therapist_page = Client()
    password_step(therapist_page, "theo")
    assert therapist_page.get(reverse("dashboard")).status_code == 200
    enrol_app(owner.user)
    password_step(client, "olivia")
    client.post("/login/code/", {"code": totp_code(enrol_app(owner.user))})
    page = client.get(reverse("staff_security"))
    assert page.status_code == 200 and "Theo Therapist" in page.content.decode()
    saved = client.post(reverse("staff_security"), {"require_two_factor": "on"})
    assert saved.status_code == 302
    owner.clinic.refresh_from_db()
    assert owner.clinic.require_two_factor
    (policy,) = events("two_factor_policy")
    assert policy.user == owner.user and policy.detail == {"required_for_all_staff": True}
    # the therapist's open session is held at once, and a new sign-in goes to the set-up
    assert therapist_page.get(reverse("dashboard"))["Location"] == reverse("two_factor_setup")
    desk = Client()
    password_step(desk, "fred")
    assert desk.get(reverse("calendar"))["Location"] == reverse("two_factor_setup")
    # turned off again, staff without an app sign in with the password only
    client.post(reverse("staff_security"), {})
    assert desk.get(reverse("calendar")).status_code == 200
    assert [e.detail for e in events("two_factor_policy")][-1] == {"required_for_all_staff": False}


def test_only_the_owner_sees_the_rule_and_resets(client, owner, therapist, therapist2):
    from clinic_fixtures import login

    login(client, therapist.user)
    assert client.get(reverse("staff_security")).status_code == 403
    assert client.post(reverse("staff_security"), {"require_two_factor": "on"}).status_code == 403
    enrol_app(therapist2.user)
    assert client.post(reverse("staff_two_factor_reset", args=[therapist2.pk])).status_code == 403
    assert enrol_app(therapist2.user).pk  # still there
    assert not events("two_factor_reset")


def test_the_owner_resets_a_lost_phone_and_the_member_sets_up_a_new_app(client, owner, therapist):
    from django.test import Client
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from backcare.clinic.models import RecoveryCode
    from clinic_fixtures import login

    device = enrol_app(therapist.user)
    therapist_page = Client()
    password_step(therapist_page, "theo")
    therapist_page.post("/login/code/", {"code": totp_code(device)})
    assert therapist_page.get(reverse("dashboard")).status_code == 200

    login(client, owner.user)
    assert "Reset Theo Therapist" in client.get(reverse("staff_security")).content.decode()
    assert client.post(reverse("staff_two_factor_reset", args=[therapist.pk])).status_code == 302
    assert not TOTPDevice.objects.filter(user=therapist.user).exists()
    assert not RecoveryCode.objects.filter(device__user=therapist.user).exists()
    (reset,) = events("two_factor_reset")
    assert reset.user == owner.user and reset.object_id == str(therapist.pk)
    assert reset.detail == {"staff": "Theo Therapist", "devices_removed": 2}
    # the therapist's session was verified by the removed app: no longer. Not required here, so pages open again.
    assert therapist_page.get(reverse("dashboard")).status_code == 200
    # with the clinic's rule on, the therapist is sent to set up a new app
    client.post(reverse("staff_security"), {"require_two_factor": "on"})
    assert therapist_page.get(reverse("dashboard"))["Location"] == reverse("two_factor_setup")
    # the owner cannot reset themself here (they set up a new app instead)
    assert client.post(reverse("staff_two_factor_reset", args=[owner.pk])).status_code == 302
    assert TOTPDevice.objects.filter(user=owner.user, confirmed=True).exists()


def test_the_operator_resets_an_owner_who_lost_phone_and_codes(owner, capsys):
    from django.core.management import CommandError, call_command
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from backcare.clinic.models import RecoveryCodes

    enrol_app(owner.user)
    call_command("two_factor_reset", "olivia")
    assert "Removed olivia's app" in capsys.readouterr().out
    assert not TOTPDevice.objects.filter(user=owner.user).exists()
    assert not RecoveryCodes.objects.filter(user=owner.user).exists()
    (reset,) = events("two_factor_reset")
    assert reset.actor.startswith("operator") and reset.detail == {"username": "olivia", "devices_removed": 2}
    call_command("two_factor_reset", "olivia")
    assert "nothing changed" in capsys.readouterr().out
    with pytest.raises(CommandError, match="no user is called 'nobody'"):
        call_command("two_factor_reset", "nobody")


def test_an_admin_user_with_an_app_passes_the_code_step_too(client, db):
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.create_superuser(username="ada", password=PASSWORD, email="ada@x.test")
    device = enrol_app(admin)
    assert client.post("/admin/login/", {"username": "ada", "password": PASSWORD, "next": "/admin/"}).status_code == 302
    assert client.get("/admin/")["Location"] == "/login/code/?next=/admin/"
    assert client.post("/login/code/", {"code": totp_code(device), "next": "/admin/"})["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
