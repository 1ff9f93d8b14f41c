"""Start fast (issue 14): the served application, URLconf and views included, loads without matplotlib and
WeasyPrint, which take seconds to import, nor django-ninja, fhirclient, icalendar and qrcode; each is imported
when first used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

LOADED = """
import json, os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "backcare.web.settings"
from backcare.web.wsgi import application
from django.urls import get_resolver
get_resolver().url_patterns
names = ("matplotlib", "weasyprint", "backcare.clinic.charts", "backcare.clinic.documents", "ninja", "pydantic",
         "fhirclient", "icalendar", "qrcode", "backcare.api.api")
print(json.dumps({name: name in sys.modules for name in names}))
"""


def test_the_served_application_does_not_import_matplotlib_or_weasyprint(tmp_path: Path) -> None:
    env = {**os.environ, "BACKCARE_DATA_DIR": str(tmp_path), "BACKCARE_ENV": "development"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run([sys.executable, "-c", LOADED], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    # The modules that draw the chart and make the PDFs are loaded with the views; their libraries are not.
    assert loaded == {
        "matplotlib": False,
        "weasyprint": False,
        "backcare.clinic.charts": True,
        "backcare.clinic.documents": True,
        # The REST API (django-ninja, pydantic), FHIR (fhirclient), calendars (icalendar) and the two-factor QR code
        # load on their first use (backcare.api.urls mounts the API lazily).
        "ninja": False,
        "pydantic": False,
        "fhirclient": False,
        "icalendar": False,
        "qrcode": False,
        "backcare.api.api": False,
    }
