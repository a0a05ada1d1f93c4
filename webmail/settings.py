"""Courrier settings: one file, driven by the environment.

With no environment at all the product runs on embedded defaults: SQLite and a filesystem Celery
broker in ``DATA_DIR``, generated development keys kept there too. ``COURRIER_MODE=production``
demands real secrets and turns on every transport-security setting that ``check --deploy`` knows.
Every variable is listed, with its meaning, in ``.env.example``.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from webmail.env import (
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_secret,
    env_str,
    env_url,
)
from webmail.keys import development_key, parse_encryption_keys

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / "var"))).resolve()

MODE = env_choice("COURRIER_MODE", ("development", "production"), "development")
PRODUCTION = MODE == "production"
DEBUG = env_bool("DEBUG", default=not PRODUCTION)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off when COURRIER_MODE=production.")

# Secrets. In development they are generated once and kept in DATA_DIR, never in the repository.
_secret_key = env_secret("SECRET_KEY")
_encryption_keys = env_secret("ENCRYPTION_KEYS")
if PRODUCTION and not (_secret_key and _encryption_keys):
    raise ImproperlyConfigured(
        "COURRIER_MODE=production needs SECRET_KEY and ENCRYPTION_KEYS (or their *_FILE forms)."
    )
SECRET_KEY = _secret_key or development_key(DATA_DIR / "secret_key", kind="django")
if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
    raise ImproperlyConfigured(
        "SECRET_KEY must be at least 50 characters long and random (5 distinct characters or more)."
    )
# Fernet keys that encrypt mail passwords and DKIM private keys at rest. The first one encrypts;
# all of them decrypt, so a key can be rotated by putting the new one first.
ENCRYPTION_KEYS = parse_encryption_keys(
    _encryption_keys or development_key(DATA_DIR / "encryption_key", kind="fernet"),
    secret_key=SECRET_KEY,
)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must list the site's host names in production.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
SITE_NAME = env_str("SITE_NAME", "Courrier")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "allauth",
    "allauth.account",
    "allauth.usersessions",
    "core",
    "accounts",
    "mailboxes",
    "mail",
    "compose",
    "domains",
    "spam",
]

MIDDLEWARE = [
    "core.middleware.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "core.middleware.RetryAfterMiddleware",
    "mail.middleware.ResetTimezoneMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.SessionActivityMiddleware",
    # After authentication and OTP: holds back users who owe a second factor.
    "accounts.middleware.SecondFactorMiddleware",
]

ROOT_URLCONF = "webmail.urls"
WSGI_APPLICATION = "webmail.wsgi.application"
ASGI_APPLICATION = "webmail.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "core.context_processors.site",
            ],
        },
    },
]

# Database: PostgreSQL in production (DATABASE_URL), SQLite in DATA_DIR otherwise.
_database_url = env_url(
    "DATABASE_URL", ("postgres", "postgresql", "sqlite"), f"sqlite:///{DATA_DIR / 'courrier.db'}"
)
DATABASES = {
    "default": dj_database_url.parse(
        _database_url, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0)
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the web server, worker and scheduler share one SQLite file.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis serves as Celery broker and shared cache when REDIS_URL is set.
REDIS_URL = env_url("REDIS_URL", ("redis", "rediss", "unix"))
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    # A file cache is shared by all local processes, which rate limits need.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
        }
    }

# Celery. Without a broker server, kombu's filesystem transport queues tasks in DATA_DIR.
CELERY_BROKER_URL = env_url(
    "CELERY_BROKER_URL", ("redis", "rediss", "amqp", "filesystem"), REDIS_URL or "filesystem://"
)
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = DATA_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
    }
    for _folder in ("queue", "control", "processed"):
        # The transport expects its folders to exist.
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # a killed worker's task is delivered again; tasks are idempotent
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "record-heartbeat": {
        "task": "core.tasks.record_heartbeat",
        "schedule": float(env_int("HEARTBEAT_INTERVAL", 30, minimum=1)),
    },
    # Push (IMAP IDLE) brings changes within seconds; this pass catches whatever it missed.
    "sync-all-accounts": {
        "task": "mailboxes.sync_all_accounts",
        "schedule": float(env_int("SYNC_INTERVAL", 300, minimum=10)),
    },
    # Message files that a worker killed mid-batch left without rows.
    "collect-orphan-files": {"task": "mailboxes.collect_orphan_files", "schedule": 6 * 3600.0},
    # Snoozed conversations come back to the Inbox on time; undo entries are forgotten.
    "wake-snoozed": {"task": "mail.wake_snoozed", "schedule": 30.0},
    # Messages due (send later, retries) and any a killed worker left half-way.
    "send-due": {"task": "compose.send_due", "schedule": 30.0},
    # What DNS says of the managed domains; DKIM keys move along their life from it.
    "check-domains-dns": {
        "task": "domains.check_all_domains",
        "schedule": float(env_int("DNS_CHECK_INTERVAL", 3600, minimum=300)),
    },
}

AUTH_USER_MODEL = "accounts.User"
# allauth's backend extends Django's (permissions) and hashes a password for unknown addresses
# too, so that a sign-in takes as long for them as for known ones.
AUTHENTICATION_BACKENDS = ["allauth.account.auth_backends.AuthenticationBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    # zxcvbn ships its own lists of leaked passwords, names and words: nothing is fetched.
    {"NAME": "accounts.validators.GuessablePasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "core-home"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = env_choice(
    "ACCOUNT_EMAIL_VERIFICATION", ("mandatory", "optional", "none"), "mandatory"
)
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = ""
# Rate limits (allauth's syntax: count/period/scope). The second-factor step has its own, in
# accounts.services. When one trips, the 429 page says when to retry (webmail.urls.handler429).
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "10/h/ip",
    "reset_password": "10/h/ip,3/h/key",
    "reset_password_from_key": "20/h/ip",
    "change_password": "5/m/user",
    "reauthenticate": "10/m/user",
    "manage_email": "10/m/user",
    "confirm_email": "1/3m/key",
}
# accounts.middleware.SessionActivityMiddleware records activity, less often than allauth would.
USERSESSIONS_TRACK_ACTIVITY = False
# Site policy that the admin cannot change at run time: see core.SiteSettings for the rest.
OTP_TOTP_ISSUER = SITE_NAME
OTP_TOTP_THROTTLE_FACTOR = 1
OTP_STATIC_THROTTLE_FACTOR = 1

# A PEM file of extra CAs trusted when connecting to users' mail servers, for servers whose
# certificates come from a private CA. Verification itself is never turned off.
MAIL_CA_FILE = env_str("MAIL_CA_FILE", "")
if not MAIL_CA_FILE and not PRODUCTION and (DATA_DIR / "mail-ca.pem").exists():
    # Left by `manage.py demo`: the local mail stack's private CA, for local trials.
    MAIL_CA_FILE = str(DATA_DIR / "mail-ca.pem")
# host:port of a DNS server for account autoconfiguration (SRV lookups); default: the system's.
AUTOCONFIG_DNS_SERVER = env_str("AUTOCONFIG_DNS_SERVER", "")
# host:port of the DNS resolver the domains' health checks ask (default: the system's), and the
# web host that serves autoconfig for them (proposed in the fixes DNS checks give).
DNS_RESOLVER = env_str("DNS_RESOLVER", "")
AUTOCONFIG_HOST = env_str("AUTOCONFIG_HOST", "")

# Sending (compose/): the largest message a user may attach files up to (a domain's policy may
# lower it), and how long transient SMTP failures are retried before the message goes back to
# the user's drafts with the reason.
# A draft's text may be long (the editor allows a million characters): room for it, in UTF-8.
DATA_UPLOAD_MAX_MEMORY_SIZE = 4 * 1024 * 1024
MAX_ATTACHMENTS_BYTES = env_int("MAX_ATTACHMENTS_BYTES", 25 * 1024 * 1024, minimum=1024)
SEND_RETRY_SECONDS = env_int("SEND_RETRY_SECONDS", 2 * 3600, minimum=60)

# The app's own outgoing mail (password resets, notices) — not users' mail, which each account
# sends through its own SMTP server.
EMAIL_HOST = env_str("EMAIL_HOST", "")
if EMAIL_HOST:
    EMAIL_BACKEND = "core.mail.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
    _email_security = env_choice("EMAIL_SECURITY", ("starttls", "tls", "none"), "starttls")
    EMAIL_USE_TLS = _email_security == "starttls"
    EMAIL_USE_SSL = _email_security == "tls"
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD") or ""
    EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30, minimum=1)
    # A private CA's certificate (PEM) to verify the server with, instead of the system's CAs.
    EMAIL_CA_FILE = env_str("EMAIL_CA_FILE", "")
else:
    # No server configured: mail is printed by the web process, which suits a local trial.
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Courrier <noreply@localhost>")
SERVER_EMAIL = env_str("SERVER_EMAIL", DEFAULT_FROM_EMAIL)

# Internationalisation: English and French, chosen from the browser and switchable.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("fr", _("French"))]
# Our own date formats first (webmail/formats/<language>/formats.py), then Django's.
FORMAT_MODULE_PATH = ["webmail.formats"]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "UTC"
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(DATA_DIR / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
MEDIA_ROOT = DATA_DIR / "media"
if not PRODUCTION:
    # WhiteNoise warns about a missing STATIC_ROOT; in production collectstatic creates it.
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# Security headers. The CSP allows no inline script and no eval anywhere in the app.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "frame-src": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        "base-uri": [NONE],
        "object-src": [NONE],
    }
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 14 * 24 * 3600, minimum=300)
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    # The directive only matters once the domain is submitted to browsers' preload lists.
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
if env_bool("TRUST_PROXY_HEADERS", False):
    # Only behind a reverse proxy that sets X-Forwarded-Proto itself and strips the client's.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = env_bool("USE_X_FORWARDED_HOST", False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
