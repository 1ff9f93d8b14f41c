"""Settings for the test suite: the normal settings in the "test" environment, with a throwaway data folder and a
fast password hasher (Argon2 itself is checked by a test that uses the production hasher list).

The database is SQLite unless BACKCARE_TEST_DB=postgres: then a throwaway PostgreSQL cluster is started (or the one
in BACKCARE_TEST_DATABASE_URL reused); see backcare.testing.pgcluster.
"""

import atexit
import os
import shutil
import tempfile

from django.core.exceptions import ImproperlyConfigured

os.environ["BACKCARE_ENV"] = "test"
if "BACKCARE_DATA_DIR" not in os.environ:
    _data_dir = tempfile.mkdtemp(prefix="backcare-test-")
    os.environ["BACKCARE_DATA_DIR"] = _data_dir
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

    from backcare.testing.pgcluster import test_database_url

    DATABASES = {"default": dj_database_url.parse(test_database_url(), conn_max_age=0)}
    # Django's backend, except that ending the run ends sessions still open on the test database (see there).
    DATABASES["default"]["ENGINE"] = "backcare.testing.postgresql"
elif TEST_DB != "sqlite":
    raise ImproperlyConfigured(f"BACKCARE_TEST_DB must be sqlite or postgres, not {TEST_DB!r}")
