"""WSGI entry point, for `backcare serve` (waitress) or any WSGI server (gunicorn backcare.web.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backcare.web.settings")
application = get_wsgi_application()
