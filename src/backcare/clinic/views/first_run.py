"""The first-run set-up: on an empty database the clinic's name, country, time zone, contact details and emergency
numbers, and the first owner's account. Thin: `services.first_run` writes (race-safe) and audits. Once a clinic
exists the page answers 404, so it cannot be run again."""

from __future__ import annotations

from django.contrib.auth import login
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods

from backcare.clinic.forms.operations import FirstRunForm
from backcare.clinic.services import first_run as service


@require_http_methods(["GET", "POST"])
def first_run(request: HttpRequest) -> HttpResponse:
    if not service.needs_first_run():
        raise Http404("This clinic is set up already.")
    form = FirstRunForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            staff = service.start_clinic(
                service.NewClinic(
                    name=data["name"],
                    country=data["country"],
                    time_zone=data["time_zone"],
                    address=data["address"],
                    phone=data["phone"],
                    email=data["email"],
                    emergency_number=data["emergency_number"],
                    urgent_care_number=data["urgent_care_number"],
                ),
                service.FirstOwner(
                    display_name=data["display_name"],
                    username=data["username"],
                    email=data["owner_email"],
                    password=data["password1"],
                ),
                request=request,
            )
        except service.AlreadySetUp:
            raise Http404("This clinic is set up already.") from None
        except ValidationError as error:
            for field, messages in error.message_dict.items():
                form.add_error(field if field in form.fields else None, messages)
        else:
            login(request, staff.user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("home")  # the owner sets up an authenticator app next (every owner signs in with one)
    return render(request, "clinic/first_run.html", {"form": form})


urlpatterns = [path("start/", first_run, name="first_run")]
