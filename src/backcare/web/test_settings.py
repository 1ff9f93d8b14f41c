"""Settings for the test suite: the normal settings in the "test" environment, with a throwaway data folder and a
fast password hasher (Argon2 itself is checked by a test that uses the production hasher list).

The database is SQLite unless BACKCARE_TEST_DB=postgres: then the PostgreSQL cluster in BACKCARE_TEST_DATABASE_URL,
which the test suite's plugin (tests/pgcluster.py) starts before these settings are read.

Each pytest-xdist worker gets a data folder of its own; a subprocess of a worker (or of a serial run) shares its.
"""

import atexit
import os
import shutil
import tempfile

from django.core.exceptions import ImproperlyConfigured

os.environ["BACKCARE_ENV"] = "test"
# A folder per process that pytest-xdist started (PYTEST_XDIST_WORKER), which that process's subprocesses share.
if "BACKCARE_DATA_DIR" not in os.environ or os.environ.get("BACKCARE_TEST_DATA_WORKER", "") != os.environ.get(
    "PYTEST_XDIST_WORKER", ""
):
    os.environ["BACKCARE_TEST_DATA_WORKER"] = os.environ.get("PYTEST_XDIST_WORKER", "")
    os.environ["BACKCARE_DATA_DIR"] = tempfile.mkdtemp(prefix="backcare-test-")
    _data_dir = os.environ["BACKCARE_DATA_DIR"]
    # Subprocesses inherit the folder through the environment; it goes when the process that made it ends.
    atexit.register(shutil.rmtree, _data_dir, ignore_errors=True)

from backcare.web.settings import *  # noqa: F403
from backcare.web.settings import PASSWORD_HASHERS as PRODUCTION_PASSWORD_HASHERS

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PRODUCTION_PASSWORD_HASHERS]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405  # WhiteNoise warns about a missing folder otherwise

TEST_DB = os.environ.get("BACKCARE_TEST_DB", "sqlite").strip().lower() or "sqlite"
if TEST_DB in ("postgres", "postgresql"):
    import dj_database_url

    _url = os.environ.get("BACKCARE_TEST_DATABASE_URL")
    if not _url:
        raise ImproperlyConfigured(
            "BACKCARE_TEST_DB=postgres needs BACKCARE_TEST_DATABASE_URL: pytest starts a throwaway cluster itself "
            "(tests/pgcluster.py); outside pytest, start one with `python tests/pgcluster.py serve`"
        )
    DATABASES = {"default": dj_database_url.parse(_url, conn_max_age=0)}
elif TEST_DB != "sqlite":
    raise ImproperlyConfigured(f"BACKCARE_TEST_DB must be sqlite or postgres, not {TEST_DB!r}")
