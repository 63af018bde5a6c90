"""BUS Review settings: one env-driven file with safe local defaults.

Every value that differs between a laptop and the hospital server comes from an environment
variable; a bad value raises ImproperlyConfigured at start-up instead of misbehaving later.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: str) -> bool:
    value = os.getenv(name, default).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {value!r}")


def envint(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.getenv(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


DEBUG = envbool("DEBUG", "1")
SECRET_KEY = os.getenv("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "local-development-only-not-a-secret-" + "x" * 20

ALLOWED_HOSTS = [h for h in os.getenv("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.getenv("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_rq",
    "busreview",  # the failed-login counter (busreview/models.py)
    "annotator",
    "reviewer",
    "curator",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "busreview.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Below WhiteNoise, so static files keep their own (long) caching; the ETag is added after the
    # Cache-Control header (responses pass the list bottom-up).
    "django.middleware.http.ConditionalGetMiddleware",
    "busreview.middleware.FreshResponsesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Every page needs a login; the few public ones (login, static) opt out explicitly.
    "busreview.middleware.PagesLoginRequiredMiddleware",
]

ROOT_URLCONF = "busreview.urls"
WSGI_APPLICATION = "busreview.wsgi.application"

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
                "annotator.context_processors.roles",
            ],
        },
    },
]

DATABASE_URL = os.getenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/busreview")
if not DATABASE_URL.startswith(("postgres://", "postgresql://")):
    raise ImproperlyConfigured("DATABASE_URL must be a PostgreSQL URL (postgres://...)")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=envint("DB_CONN_MAX_AGE", 60))}

REDIS_URL = os.getenv("REDIS_URL", "redis://127.0.0.1:6379/0")
RQ_QUEUES = {"default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 3600}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    # Not a rule on passwords: Django tells every validator when a password changes (busreview/auth.py).
    {"NAME": "busreview.auth.RevokeTokensOnPasswordChange"},
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

# Django's model backend, reading the signed-in user's roles in the same query as the user.
AUTHENTICATION_BACKENDS = ["busreview.auth.RolesModelBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Uploads: ultrasound PNGs are ~0.5-1 MB; a whole-dataset ZIP import can be large.
MAX_IMAGE_BYTES = envint("MAX_IMAGE_BYTES", 20 * 1024 * 1024)
MAX_IMAGE_PIXELS = envint("MAX_IMAGE_PIXELS", 3840 * 2160)  # 4K UHD; ultrasound frames are < 2 Mpx
MAX_UPLOAD_BYTES = envint("MAX_UPLOAD_BYTES", 2 * 1024 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 32 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 8 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = 5000
# DICOM import: a cine loop is larger than a PNG; frames and pixels are counted from the header
# before anything is decoded (decompression bombs), each frame also within MAX_IMAGE_PIXELS.
DICOM_MAX_BYTES = envint("DICOM_MAX_BYTES", 512 * 1024 * 1024, minimum=1)
DICOM_MAX_FRAMES = envint("DICOM_MAX_FRAMES", 2000, minimum=1)
DICOM_MAX_PIXELS = envint("DICOM_MAX_PIXELS", 200_000_000, minimum=1)
# The key of the HMACs that recognise a source patient (and a SOP instance) again without storing
# their IDs: kept outside the database, so a dump alone cannot be reversed. Losing it means the
# same patient imported later gets a new code. Without it (DEBUG off), DICOM import is refused.
PATIENT_KEY_SECRET = os.getenv("PATIENT_KEY_SECRET", "")
if PATIENT_KEY_SECRET and len(PATIENT_KEY_SECRET.encode()) < 16:
    raise ImproperlyConfigured("PATIENT_KEY_SECRET must be at least 16 bytes")
if not PATIENT_KEY_SECRET and DEBUG:
    PATIENT_KEY_SECRET = "local-development-only-patient-key"  # the DICOM import warns when it is used
DEV_PATIENT_KEY_SECRET = "local-development-only-patient-key"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "busreview.auth.ExpiringTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PARSER_CLASSES": [
        "busreview.rest.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "busreview.rest.Pagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "busreview.api.exception_handler",
    "DEFAULT_THROTTLE_RATES": {"login": os.getenv("LOGIN_THROTTLE", "10/min")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "BUS Review API",
    "DESCRIPTION": "Two-reader breast-ultrasound lesion segmentation workflow.",
    "VERSION": "1.0.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ImageStatusEnum": "annotator.models.Status",
        "LayerStatusEnum": "annotator.models.LayerStatus",
        "ExportJobStatusEnum": "curator.models.ExportJob.Status",
    },
}

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = envint("SESSION_COOKIE_AGE", 12 * 3600)  # a working day, not Django's two weeks
CSRF_COOKIE_HTTPONLY = False  # the drawing page reads it to send X-CSRFToken
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Reverse proxies in front of gunicorn (0: clients connect directly). Only then are X-Forwarded-For
# (the n-th address from the right is the client's) and X-Forwarded-Proto believed: without a proxy
# that overwrites them, any client could write them. Behind a TLS-terminating proxy set this, or
# with SECURE_SSL_REDIRECT every request looks like plain HTTP and is redirected for ever.
TRUSTED_PROXY_COUNT = envint("TRUSTED_PROXY_COUNT", 0, minimum=0)
REST_FRAMEWORK["NUM_PROXIES"] = TRUSTED_PROXY_COUNT
if TRUSTED_PROXY_COUNT > 0:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if not DEBUG:
    SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", "1")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# Logs carry ids and image names (anonymised codes), never names of people, dates of birth or pixels.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.getenv("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": os.getenv("CACHE_PREFIX", "busreview"),
    }
}
# Failed logins per address and user name (login page and token endpoint together), in PostgreSQL.
LOGIN_FAILURES_ALLOWED = envint("LOGIN_FAILURES_ALLOWED", 10, minimum=1)
LOGIN_FAILURE_WINDOW_S = envint("LOGIN_FAILURE_WINDOW_S", 900, minimum=1)
# API tokens expire this long after they are issued (a working day, like the session).
TOKEN_TTL_HOURS = envint("TOKEN_TTL_HOURS", 12, minimum=1)
EXPORT_JOB_TIMEOUT_S = envint("EXPORT_JOB_TIMEOUT_S", 6 * 3600, minimum=1)
# The burned-in text search of DICOM imports: queued on the RQ workers (default) or run during the
# import (TEXT_SEARCH_INLINE=1; also what happens when the queue cannot be reached).
TEXT_SEARCH_INLINE = envbool("TEXT_SEARCH_INLINE", "0")
# A queued export no worker has started after this long is marked failed (is the worker running?).
EXPORT_QUEUE_TIMEOUT_S = envint("EXPORT_QUEUE_TIMEOUT_S", 1800, minimum=1)
