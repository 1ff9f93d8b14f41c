"""The staff page that imports clients from a FHIR R4 bundle (`/clients/import/`), for the owner and therapists.

A bundle is pasted or uploaded; every problem is listed with its place in the bundle and the pasted text stays in
the box to be corrected, or the clients are imported and listed with links. The import itself, its checks and its
audit trail are `backcare.interop.fhir.importer.import_bundle`; this view only reads the form and shows the result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_http_methods

from backcare.clinic.access import require_staff
from backcare.clinic.forms.clients import therapist_choices
from backcare.clinic.models import Role, StaffMember
from backcare.common.forms import name_fields
from backcare.interop.fhir import MAX_BUNDLE_BYTES

if TYPE_CHECKING:  # fhirclient is imported by the first import, not when the server starts (issue 14)
    from backcare.interop.fhir.importer import ImportResult
    from backcare.interop.fhir.validation import Problem

MAX_MB = MAX_BUNDLE_BYTES // (1024 * 1024)


class ImportForm(forms.Form):
    bundle = forms.CharField(
        label="Paste the bundle (JSON)",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 16, "cols": 90, "spellcheck": "false", "class": "bundle-text"}),
        help_text="A FHIR R4 Bundle (collection, transaction or batch) of Patient and QuestionnaireResponse resources.",
    )
    bundle_file = forms.FileField(
        label="Or upload a .json file",
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": ".json,application/json,application/fhir+json"}),
        help_text=f"At most {MAX_MB} MB. A file takes the place of pasted text.",
    )
    therapist = forms.ModelChoiceField(
        label="Assign the imported clients to", queryset=StaffMember.objects.none(), required=False
    )

    def __init__(self, *args: Any, staff: StaffMember, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["therapist"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = therapist_choices(staff.clinic)
        if staff.role == Role.THERAPIST:
            field.empty_label = "Me"
            self.initial.setdefault("therapist", staff.pk)
        else:
            field.empty_label = "Nobody yet (assign later)"
        name_fields(self)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        upload = data.get("bundle_file")
        if upload is not None:
            if upload.size > MAX_BUNDLE_BYTES:
                self.add_error(
                    "bundle_file",
                    f"Or upload a .json file: the file is {upload.size:,} bytes; at most {MAX_BUNDLE_BYTES:,}.",
                )
            else:
                data["content"] = upload.read()
        elif data.get("bundle", "").strip():
            data["content"] = data["bundle"]
        else:
            self.add_error("bundle", "Paste the bundle (JSON): paste a FHIR bundle here, or upload a .json file.")
        return data


def _problem_rows(problems: list[Problem]) -> list[dict[str, str]]:
    return [{"location": p.location, "message": p.message} for p in problems]


@login_required
@require_http_methods(["GET", "POST"])
def client_import(request: HttpRequest) -> HttpResponse:
    staff = require_staff(request.user, Role.OWNER, Role.THERAPIST)
    problems: list[Problem] = []
    if request.method == "POST":
        from backcare.interop.fhir.importer import BundleRejected, import_bundle

        form = ImportForm(request.POST, request.FILES, staff=staff)
        if form.is_valid():
            try:
                result = import_bundle(
                    form.cleaned_data["content"],
                    clinic=staff.clinic,
                    user=request.user,
                    therapist=form.cleaned_data.get("therapist"),
                    request=request,
                )
            except BundleRejected as rejected:
                problems = rejected.problems
            else:
                return render(request, "interop/import_done.html", _done_context(result))
    else:
        form = ImportForm(staff=staff)
    uploaded = request.FILES.get("bundle_file")
    context = {
        "form": form,
        "problems": _problem_rows(problems),
        "uploaded_name": uploaded.name if uploaded is not None else "",
        "max_mb": MAX_MB,
    }
    return render(request, "interop/import.html", context)


def _done_context(result: ImportResult) -> dict[str, Any]:
    rows = []
    for client in result.clients:
        intake = next((i for i in result.intakes if i.client_id == client.pk), None)
        outcomes = [o for o in result.outcomes if o.client_id == client.pk]
        rows.append({"client": client, "intake": intake, "outcomes": outcomes})
    return {"result": result, "rows": rows, "not_imported": sorted(result.not_imported.items())}


urlpatterns = [path("clients/import/", client_import, name="client_import")]
