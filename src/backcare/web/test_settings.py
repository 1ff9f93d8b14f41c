"""Settings for the test suite: the normal settings in the "test" environment, with a throwaway data folder and a
fast password hasher (Argon2 itself is checked by a test that uses the production hasher list)."""

import os
import tempfile

os.environ["BACKCARE_ENV"] = "test"
os.environ.setdefault("BACKCARE_DATA_DIR", tempfile.mkdtemp(prefix="backcare-test-"))

from backcare.web.settings import *  # noqa: F403
from backcare.web.settings import PASSWORD_HASHERS as PRODUCTION_PASSWORD_HASHERS

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PRODUCTION_PASSWORD_HASHERS]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
