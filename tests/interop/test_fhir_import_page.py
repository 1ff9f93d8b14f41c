"""The staff page `/clients/import/` and the `backcare fhir_export` / `fhir_import` commands, as people use them."""

from __future__ import annotations

import html
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from fhir_support import PASSWORD, other_system_bundle

from clinic_fixtures import login as clinic_login

pytestmark = pytest.mark.django_db
URL = "/clients/import/"


def login(page, staff_or_user):
    clinic_login(page, getattr(staff_or_user, "user", staff_or_user))


def test_who_may_open_the_page(client, owner, therapist, front_desk, client_record):
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    for staff, status in ((owner, 200), (therapist, 200), (front_desk, 403), (client_record.user, 403)):
        client.logout()
        login(client, staff)
        assert client.get(URL).status_code == status, staff
        assert client.post(URL, {"bundle": json.dumps(other_system_bundle())}).status_code == status, staff
    from backcare.clinic.models import Client

    # Only the owner's and the therapist's posts imported (then the therapist's was a duplicate): one client.
    assert Client.objects.filter(first_name="Rowan").count() == 1


def test_the_form_offers_the_clinics_therapists(client, owner, therapist, therapist2):
    login(client, therapist)
    page = client.get(URL).content.decode()
    assert "Theo Therapist" in page and "Tara Therapist" in page and 'name="bundle_file"' in page
    assert f'<option value="{therapist.pk}" selected>' in page  # a therapist imports for themself by default


def test_problems_are_listed_and_the_pasted_text_is_kept(client, owner):
    from backcare.clinic.models import AuditEvent, Client

    login(client, owner)
    bundle = other_system_bundle()
    bundle["entry"][0]["resource"]["birthDate"] = "1980"
    bundle["entry"][2]["resource"]["item"].append({"linkId": "rmdq_99", "answer": [{"valueBoolean": True}]})
    pasted = json.dumps(bundle, indent=2) + "\n<script>alert(1)</script>"
    response = client.post(URL, {"bundle": pasted})
    assert response.status_code == 200
    page = response.content.decode()
    assert "not JSON" in page  # the script tail makes it invalid JSON: named first
    assert html.escape(pasted, quote=False) in page or html.escape(pasted) in page
    assert "<script>alert(1)</script>" not in page
    # The same bundle as valid JSON: every FHIR problem listed, with its place.
    response = client.post(URL, {"bundle": json.dumps(bundle, indent=2)})
    page = html.unescape(response.content.decode())
    assert "2 problems to correct" in page
    assert "Bundle.entry[0].resource.birthDate" in page and "'1980' is not a full date" in page
    assert "Bundle.entry[2].resource.item[24].linkId" in page and "'rmdq_99' is not an item" in page
    assert json.dumps(bundle, indent=2) in page
    assert not Client.objects.exists()
    assert AuditEvent.objects.filter(action="import_fhir_rejected", user=owner.user).count() == 2


def test_nothing_given(client, owner):
    login(client, owner)
    response = client.post(URL, {"bundle": "   "})
    assert response.status_code == 200
    assert "paste a FHIR bundle here, or upload a .json file" in response.content.decode()


def test_a_successful_import_is_summarised_with_links_and_audited(client, owner, therapist):
    from backcare.clinic.models import AuditEvent, Client

    login(client, owner)
    response = client.post(URL, {"bundle": json.dumps(other_system_bundle()), "therapist": therapist.pk})
    assert response.status_code == 200
    page = response.content.decode()
    imported = Client.objects.get(first_name="Rowan")
    assert imported.therapist == therapist
    assert f'href="/clients/{imported.pk}/"' in page
    assert "Imported 1 client, 0 intakes and 2 outcome scores" in page
    assert "Roland-Morris" in page and "medium risk" in page
    assert "1 Practitioner" in page  # what stayed behind is said
    events = AuditEvent.objects.filter(user=owner.user)
    bundle_event = events.get(action="import_fhir_bundle")
    assert bundle_event.detail["clients"] == 1 and bundle_event.ip_address == "127.0.0.1"
    assert events.filter(action="import_fhir", client=imported).count() == 1
    assert events.filter(action="create_client", client=imported).count() == 1
    assert events.filter(action="record_outcome", client=imported).count() == 2


def test_a_file_upload_is_imported(client, therapist):
    from backcare.clinic.models import Client

    login(client, therapist)
    upload = SimpleUploadedFile("bundle.json", json.dumps(other_system_bundle()).encode(), "application/json")
    response = client.post(URL, {"bundle_file": upload, "bundle": ""})
    assert response.status_code == 200 and "Clients imported" in response.content.decode()
    assert Client.objects.get(first_name="Rowan").therapist == therapist


def test_a_bad_file_names_the_file(client, therapist):
    login(client, therapist)
    upload = SimpleUploadedFile("broken.json", b"\x89PNG not json", "application/json")
    page = client.post(URL, {"bundle_file": upload}).content.decode()
    assert "not UTF-8" in page and "broken.json" in page


# --- the commands -----------------------------------------------------------------------------------------------


@pytest.fixture
def second_clinic_owner(db):
    from django.contrib.auth import get_user_model

    from backcare.clinic.models import Clinic, StaffMember

    clinic = Clinic.objects.create(name="Second")
    user = get_user_model().objects.create_user(username="second", password=PASSWORD)
    return StaffMember.objects.create(user=user, clinic=clinic, role="owner", display_name="Second Owner")


def test_export_then_import_a_clinic_with_the_commands(tmp_path, owner, make_client, second_clinic_owner, capsys):
    from backcare.clinic.models import AuditEvent, Client

    make_client(first_name="Ada", last_name="One", phone="01632 960001")
    make_client(first_name="Bo", last_name="Two")
    call_command("fhir_export", "--user", owner.user.username, "--out", str(tmp_path / "out"))
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(files) == 2 and all(f.endswith(".json") for f in files)
    assert AuditEvent.objects.filter(action="export", detail__document="fhir_bundle").count() == 2

    call_command("fhir_import", str(tmp_path / "out"), "--user", "second", "--dry-run")
    assert "Would import 2 clients" in capsys.readouterr().out
    assert not Client.objects.filter(clinic=second_clinic_owner.clinic).exists()

    call_command("fhir_import", str(tmp_path / "out"), "--user", "second")
    assert "Imported 2 clients" in capsys.readouterr().out
    moved = Client.objects.filter(clinic=second_clinic_owner.clinic)
    assert sorted(c.first_name for c in moved) == ["Ada", "Bo"]
    assert moved.get(first_name="Ada").phone == "01632 960001"

    # Again: both files are duplicates now; every problem is printed and nothing is imported.
    with pytest.raises(CommandError, match="nothing imported: 4 problem"):
        call_command("fhir_import", str(tmp_path / "out"), "--user", "second")
    assert "already a client of this clinic" in capsys.readouterr().err
    assert moved.count() == 2


def test_one_bad_file_imports_nothing(tmp_path, owner, make_client, second_clinic_owner, capsys):
    from backcare.clinic.models import Client

    make_client(first_name="Ada", last_name="One")
    call_command("fhir_export", "--user", owner.user.username, "--out", str(tmp_path))
    (tmp_path / "zz-broken.json").write_text('{"resourceType": "Bundle"}')
    with pytest.raises(CommandError, match="nothing imported"):
        call_command("fhir_import", str(tmp_path), "--user", "second")
    assert "zz-broken.json: Bundle.type: is required" in capsys.readouterr().err
    assert not Client.objects.filter(clinic=second_clinic_owner.clinic).exists()


def test_the_commands_refuse_the_front_desk_and_clients_they_may_not_see(
    tmp_path, front_desk, therapist, therapist2, make_client
):
    other = make_client(therapist2, first_name="Not", last_name="Theirs")
    with pytest.raises(CommandError, match="only the clinic owner or a therapist"):
        call_command("fhir_export", "--user", front_desk.user.username, "--out", str(tmp_path))
    with pytest.raises(CommandError, match=f"--client {other.pk}: no such client"):
        call_command("fhir_export", "--user", therapist.user.username, "--client", str(other.pk), "--out", "-")
    with pytest.raises(CommandError, match="only the clinic owner or a therapist"):
        call_command("fhir_import", str(tmp_path), "--user", front_desk.user.username)


def test_the_commands_are_part_of_the_backcare_command(cli):
    for name in ("fhir_export", "fhir_import"):
        done = cli(name, "--help")
        assert done.returncode == 0, done.stderr
        assert "--user" in done.stdout


def test_the_client_list_links_to_the_import_for_those_who_may_import(client, owner, therapist, front_desk):
    for staff, shown in ((owner, True), (therapist, True), (front_desk, False)):
        login(client, staff)
        page = client.get("/clients/").content.decode()
        assert ('href="/clients/import/"' in page) is shown, staff.role
