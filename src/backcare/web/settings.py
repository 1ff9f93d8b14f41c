"""Django settings for the Backcare clinic application.

Everything that differs between machines comes from the environment (see README, "Configuration"); nothing secret is
in this file. `BACKCARE_ENV=production` turns on the production posture and refuses to start without a secret key.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import secrets
from pathlib import Path
from typing import Any

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from backcare.web.env import env_bool, env_int, env_list

# Lets the classes django-stubs makes generic be subscripted at run time too (admin.ModelAdmin[Client]).
django_stubs_ext.monkeypatch()

PACKAGE_DIR = Path(__file__).resolve().parent.parent
ENVIRONMENT = os.environ.get("BACKCARE_ENV", "development")
if ENVIRONMENT not in ("development", "production", "test"):
    raise ImproperlyConfigured(f"BACKCARE_ENV must be development, production or test, not {ENVIRONMENT!r}")
PRODUCTION = ENVIRONMENT == "production"

# Health data is for this process's user only: every file made from here on (the database and its WAL, uploads,
# backups) is 0600 and every folder 0700, whoever starts the application (serve, commands, another WSGI server).
os.umask(0o077)
DATA_DIR = Path(os.environ.get("BACKCARE_DATA_DIR", Path.cwd() / "var")).resolve()
DATA_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
if DATA_DIR.stat().st_uid == os.geteuid():
    DATA_DIR.chmod(0o700)  # a folder made 0755 by an earlier version

SECRET_KEY = os.environ.get("BACKCARE_SECRET_KEY", "")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("BACKCARE_SECRET_KEY must be set in production (50 or more random characters)")
    # Development and tests: a fresh key per process; sessions do not survive a restart, which is harmless here.
    SECRET_KEY = secrets.token_urlsafe(50)
elif PRODUCTION and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5):
    # The key signs sessions, password-reset links and form keys: a short one can be guessed offline.
    _why = (
        f"it has {len(SECRET_KEY)}"
        if len(SECRET_KEY) < 50
        else f"it uses only {len(set(SECRET_KEY))} different characters"
    )
    raise ImproperlyConfigured(
        "BACKCARE_SECRET_KEY must be 50 or more random characters with at least 5 different ones in production"
        f" ({_why}); make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )


# The audit trail's HMAC key (backcare.common.auditchain), "key-id:secret" or just the secret (key id "1"); never
# stored in the database. After a rotation the old keys stay in BACKCARE_AUDIT_RETIRED_KEYS (comma-separated
# "key-id:secret") so the events they signed still verify.
def _audit_key(raw: str, name: str) -> tuple[str, bytes]:
    key_id, sep, secret = raw.strip().partition(":")
    if not sep:
        key_id, secret = "1", raw.strip()
    if not key_id.strip() or len(key_id) > 40 or len(secret) < 32:
        raise ImproperlyConfigured(f"{name} must be a key id and a secret of 32 or more characters, as id:secret")
    return key_id.strip(), secret.encode()


AUDIT_KEYS: dict[str, bytes] = {}
for _raw in env_list("BACKCARE_AUDIT_RETIRED_KEYS", []):
    _kid, _secret = _audit_key(_raw, "BACKCARE_AUDIT_RETIRED_KEYS")
    AUDIT_KEYS[_kid] = _secret
if os.environ.get("BACKCARE_AUDIT_KEY", "").strip():
    AUDIT_KEY_ID, _secret = _audit_key(os.environ["BACKCARE_AUDIT_KEY"], "BACKCARE_AUDIT_KEY")
elif PRODUCTION:
    raise ImproperlyConfigured(
        "BACKCARE_AUDIT_KEY must be set in production (32 or more random characters; see README, Deploying)"
    )
else:
    # Development and tests: a key derived from the data folder, so every command on one folder agrees. It is no
    # secret, which is why production refuses to start without a real one.
    AUDIT_KEY_ID = "dev"
    _secret = hashlib.sha256(b"backcare development audit key\0" + str(DATA_DIR).encode()).hexdigest().encode()
AUDIT_KEYS[AUDIT_KEY_ID] = _secret

DEBUG = env_bool("BACKCARE_DEBUG", default=not PRODUCTION and ENVIRONMENT != "test")
if PRODUCTION and DEBUG:
    # Debug pages show settings, queries and local variables: clinical data on any error, to anyone.
    raise ImproperlyConfigured("BACKCARE_DEBUG must not be on in production (error pages would show clinical data)")
ALLOWED_HOSTS = env_list("BACKCARE_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("BACKCARE_CSRF_TRUSTED_ORIGINS", [])
# Behind a reverse proxy (TLS ends there): `backcare serve` trusts X-Forwarded-For and X-Forwarded-Proto from the
# proxy's address only, and takes the client's address and the scheme from them.
BEHIND_PROXY = env_bool("BACKCARE_BEHIND_PROXY", False)
PROXY_ADDRESS = os.environ.get("BACKCARE_PROXY_ADDRESS", "127.0.0.1").strip()
if BEHIND_PROXY:
    try:
        ipaddress.ip_address(PROXY_ADDRESS)
    except ValueError:
        raise ImproperlyConfigured(
            f"BACKCARE_PROXY_ADDRESS must be the proxy's IP address (e.g. 127.0.0.1), not {PROXY_ADDRESS!r}"
        ) from None

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "backcare.common",
    "backcare.clinic",
    "backcare.scheduling",
    "backcare.billing",
    "backcare.interop",
    "backcare.datarights",
    "backcare.api",
    "backcare.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "backcare.web.middleware.RequestSizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",
    "backcare.clinic.signin.TrustDeviceMiddleware",
    "backcare.clinic.middleware.IdleTimeoutMiddleware",
    "backcare.clinic.middleware.SecondFactorMiddleware",
]

ROOT_URLCONF = "backcare.web.urls"
WSGI_APPLICATION = "backcare.web.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "backcare.clinic.context.roles",
            ],
        },
    },
]

# SQLite out of the box; a chain sets DATABASE_URL=postgres://... (see README).
_default_db = f"sqlite:///{DATA_DIR / 'backcare.sqlite3'}"
_database_url = os.environ.get("DATABASE_URL", _default_db)
# PostgreSQL with two roles (README, Deploying): the application connects as DATABASE_URL's role, which may only
# read and add audit events; migrations, backups and restores connect as BACKCARE_MIGRATE_DATABASE_URL's role,
# which owns the tables. The `backcare` command sets BACKCARE_DATABASE_AS_OWNER for those commands only.
MIGRATE_DATABASE_URL = os.environ.get("BACKCARE_MIGRATE_DATABASE_URL", "").strip()
APP_DATABASE_ROLE = ""
if MIGRATE_DATABASE_URL:
    APP_DATABASE_ROLE = str(dj_database_url.parse(_database_url).get("USER") or "")
    if env_bool("BACKCARE_DATABASE_AS_OWNER", False):
        _database_url = MIGRATE_DATABASE_URL
DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock when a transaction starts, so two writers queue instead of failing half-way;
    # WAL lets readers go on while one writes.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        # recursive_triggers: REPLACE INTO fires the audit trail's delete trigger instead of deleting silently.
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA recursive_triggers=ON;"
        ),
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The cache lives in the database, so every application server shares it: one-time form keys (a double
# submission creates nothing twice) hold across processes. The table is created by a migration.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "backcare_cache"}}

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "backcare.clinic.signin.SignInGuardBackend",
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Password reset links work once and for an hour (Django's token views; backcare.clinic.services.passwords).
PASSWORD_RESET_TIMEOUT = env_int("BACKCARE_PASSWORD_RESET_MINUTES", 60) * 60
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Sign-in throttling (backcare.clinic.signin, README "Sign-in throttling"): per account, a delay after 5 failures
# that doubles from 1 minute up to 15; per address (django-axes), 20 failures lock the address for 15 minutes; a
# device the user signed in from before is exempt from both for that user, with its own count.
BACKCARE_LOGIN = {
    "FREE_FAILURES": env_int("BACKCARE_LOGIN_FAILURES", 5),
    "MAX_DELAY_MINUTES": env_int("BACKCARE_LOGIN_MAX_DELAY_MINUTES", 15),
    "COOLOFF_MINUTES": env_int("BACKCARE_LOGIN_COOLOFF_MINUTES", 15),
    "DEVICE_DAYS": env_int("BACKCARE_DEVICE_DAYS", 90),
}
AXES_FAILURE_LIMIT = env_int("BACKCARE_LOGIN_ADDRESS_FAILURES", 20)
AXES_COOLOFF_TIME = BACKCARE_LOGIN["COOLOFF_MINUTES"] / 60
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_RESET_ON_SUCCESS = False  # one good account's sign-in must not clear an address's failed guesses at others
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # trying on during a lock does not lengthen it
AXES_WHITELIST_CALLABLE = "backcare.clinic.signin.axes_whitelisted"
AXES_CLIENT_IP_CALLABLE = "backcare.clinic.signin.client_address"
AXES_LOCKOUT_CALLABLE = "backcare.clinic.signin.lockout_response"
AXES_VERBOSE = False

# Two-factor sign-in (django-otp): staff who have an authenticator app, every owner, and all staff of a clinic that
# requires it enter a code after their password (SecondFactorMiddleware). Wrong codes wait ever longer (1 s, 2 s,
# 4 s, ...); five wrong codes in one sign-in send the user back to the password.
OTP_TOTP_ISSUER = os.environ.get("BACKCARE_TOTP_ISSUER", "Backcare")
BACKCARE_SECOND_FACTOR_TRIES = env_int("BACKCARE_SECOND_FACTOR_TRIES", 5)

# Sessions end after 30 minutes without a request (IdleTimeoutMiddleware) and when the browser closes.
# Database sessions that know their user, so one user's sessions can be ended at once (backcare.common.sessions).
SESSION_ENGINE = "backcare.common.sessions"
SESSION_IDLE_SECONDS = env_int("BACKCARE_IDLE_MINUTES", 30) * 60
SESSION_COOKIE_AGE = SESSION_IDLE_SECONDS
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True

# Content security policy: nothing inline, nothing from elsewhere.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("BACKCARE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("BACKCARE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("BACKCARE_HSTS_PRELOAD", False)
    if BEHIND_PROXY:
        # `backcare serve` keeps this header only from BACKCARE_PROXY_ADDRESS (waitress trusted_proxy); another WSGI
        # server must be set to drop it from anyone else.
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("BACKCARE_TIME_ZONE", "Europe/London")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
MEDIA_ROOT = DATA_DIR / "media"
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
MAX_LETTER_BYTES = 10 * 1024 * 1024
FILE_UPLOAD_PERMISSIONS = 0o600  # Django's default is 0644: uploaded letters are health data
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700
# No request body larger than the largest upload plus room for the form around it: waitress (`backcare serve`)
# refuses it before reading it, RequestSizeLimitMiddleware under any other server.
MAX_REQUEST_BYTES = MAX_LETTER_BYTES + 1024 * 1024

# Email: the console by default; SMTP when BACKCARE_EMAIL_HOST is set.
EMAIL_HOST = os.environ.get("BACKCARE_EMAIL_HOST", "")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("BACKCARE_EMAIL_PORT", 25)
    EMAIL_HOST_USER = os.environ.get("BACKCARE_EMAIL_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("BACKCARE_EMAIL_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("BACKCARE_EMAIL_TLS", False)
    EMAIL_TIMEOUT = 20
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = os.environ.get("BACKCARE_EMAIL_FROM", "Backcare <clinic@localhost>")

# Clinic policy (values of several types, read by key: each reader converts what it reads).
BACKCARE: dict[str, Any] = {
    # Keele's STarT Back Tool is free for non-commercial use; an operator who may not use it switches it off.
    "START_BACK": env_bool("BACKCARE_START_BACK", True),
    "INVITATION_DAYS": env_int("BACKCARE_INVITATION_DAYS", 14),
    "STAFF_INVITATION_DAYS": env_int("BACKCARE_STAFF_INVITATION_DAYS", 7),
    "RETENTION_YEARS": env_int("BACKCARE_RETENTION_YEARS", 8),
    "FINANCIAL_RETENTION_YEARS": env_int("BACKCARE_FINANCIAL_RETENTION_YEARS", 10),
    # The clinic's public address (https://clinic.example): emails sent without a request (reminders, offers,
    # invitations sent from a command) need it to make absolute links.
    "SITE_URL": os.environ.get("BACKCARE_SITE_URL", ""),
    # Password reset requests an hour: per email address (more are answered alike but send nothing), and per
    # client address (more are refused).
    "RESET_PER_ADDRESS": env_int("BACKCARE_RESET_PER_ADDRESS", 3),
    "RESET_PER_IP": env_int("BACKCARE_RESET_PER_IP", 20),
}

# The outbox (backcare.common.outbox): every email is queued with the change that caused it and sent by a worker.
BACKCARE_OUTBOX = {
    # `backcare serve` runs a worker thread beside the web server: right for one clinic on SQLite. A chain runs
    # `backcare worker` (or `backcare manage send_outbox` every minute) instead and sets this false.
    "IN_PROCESS": env_bool("BACKCARE_OUTBOX_IN_PROCESS", DATABASES["default"]["ENGINE"].endswith("sqlite3")),
    # Without an in-process worker, send each new email right after its transaction commits (best effort).
    "SEND_ON_COMMIT": env_bool("BACKCARE_OUTBOX_SEND_ON_COMMIT", True),
    "MAX_ATTEMPTS": env_int("BACKCARE_OUTBOX_MAX_ATTEMPTS", 8),
    "BACKOFF_SECONDS": 60,
    "BACKOFF_CAP_SECONDS": 3600,
    "LEASE_SECONDS": 600,
    "POLL_SECONDS": env_int("BACKCARE_OUTBOX_POLL", 15),
}

# REST API rate limit per personal API token (backcare.api.throttling), e.g. 600/minute, 10/second, 5000/hour.
BACKCARE_API_RATE = os.environ.get("BACKCARE_API_RATE", "600/minute")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("BACKCARE_LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}},
}
