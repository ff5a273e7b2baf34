"""Settings, all from the environment (12-factor).

Production is the default: DEBUG is off unless DEBUG=1, and without DEBUG there is no
built-in SECRET_KEY (starting without one is an ImproperlyConfigured error naming it), so a
forgotten variable fails loudly instead of running an insecure site. Development (`make demo`,
the tests: `uniware.settings_test`) sets DEBUG=1 explicitly. Storage defaults still run on one
laptop: SQLite in the project folder and kombu's filesystem transport as the Celery broker.
Production sets SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL and REDIS_URL (see README, "Running it
for real").
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from uniware.core.logging import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("UNIWARE_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [v.strip() for v in os.environ.get(name, default).split(",") if v.strip()]


def env_int(name: str, default: int, minimum: int) -> int:
    """An integer setting; anything else is refused at start-up, naming the variable."""
    raw = os.environ.get(name, "").strip()
    try:
        value = int(raw) if raw else default
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


DEBUG = env_bool("DEBUG", False)
DEV_SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY and DEBUG:
    SECRET_KEY = DEV_SECRET_KEY
if not SECRET_KEY or (SECRET_KEY == DEV_SECRET_KEY and not DEBUG):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set in the environment: production is the default (DEBUG is off "
        "unless DEBUG=1). Set SECRET_KEY to a long random value (python -c 'import secrets; "
        "print(secrets.token_urlsafe(50))'), or DEBUG=1 for development on your own machine."
    )

# Local hosts only unless told otherwise, in development too (no "*": DNS rebinding).
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "axes",
    "django_celery_beat",
    "import_export",
    "uniware.core",
    "inventory",
    "channels",
    "orders",
    "imports",
    "notifications",
    "documents",
    "demo",
    "stations",
    "listings",
    "workplace",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "uniware.core.admin_audit.AuditActorMiddleware",  # who changed roles, users, settings
    "uniware.core.zones.TenantTimeZoneMiddleware",  # dates shown and typed: the tenant's zone
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: throttles repeated failed logins.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "uniware.urls"
WSGI_APPLICATION = "uniware.wsgi.application"

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
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and immediate transactions let the web process and the Celery worker share the
    # laptop database without "database is locked" errors.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth ---------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Login throttling (uniware/core/throttle.py): failures per username + client address, and a
# higher limit per address alone (password spraying), both within the cool-off period.
AXES_HANDLER = "uniware.core.throttle.LoginThrottleHandler"
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_IP_FAILURE_LIMIT = env_int("AXES_IP_FAILURE_LIMIT", 30, minimum=1)
AXES_COOLOFF_TIME = float(os.environ.get("AXES_COOLOFF_HOURS", "0.25"))  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The client address: REMOTE_ADDR, unless TRUSTED_PROXY_COUNT proxies (load balancers) append
# to TRUSTED_PROXY_HEADER; then the entry that many places from the right. Unset: the header is
# ignored, so a client cannot pick its own address.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0)
TRUSTED_PROXY_HEADER = os.environ.get("TRUSTED_PROXY_HEADER", "X-Forwarded-For")
TRUSTED_PROXY_META_KEY = "HTTP_" + TRUSTED_PROXY_HEADER.upper().replace("-", "_")
AXES_CLIENT_IP_CALLABLE = "uniware.core.throttle.client_ip"

# --- Internationalisation -----------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "Asia/Kolkata")
USE_I18N = True
USE_TZ = True

# --- Static files -------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing folder
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
MEDIA_ROOT = VAR_DIR / "media"

# --- Celery -------------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or REDIS_URL or "filesystem://"
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "celery-broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    for _d in ("queue", "processed", "control"):
        (_broker_dir / _d).mkdir(parents=True, exist_ok=True)
else:
    # What survives a crash (README "What survives a crash"). A message taken by a worker that
    # dies comes back after the visibility timeout, checked every `unacked_restore_interval`
    # seconds and when a worker starts. Each task refuses a second copy of work that is still
    # running (claims, heartbeats, leases), so a task running longer than this is safe.
    # Countdowns must stay below it (the longest is under NOTIFICATIONS_SWEEP_INTERVAL).
    # Publishing never waits on a dead broker: one connection attempt of at most
    # CELERY_BROKER_CONNECT_TIMEOUT seconds, then the caller's fallback (the sweeper, the
    # reapers, a message on the job or run).
    _connect_timeout = float(os.environ.get("CELERY_BROKER_CONNECT_TIMEOUT", "0.5"))
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 600, minimum=5),
        "unacked_restore_interval": 10,
        "unacked_restore_throttle": 1,
        "socket_connect_timeout": _connect_timeout,
        "max_retries": 0,
    }
    CELERY_BROKER_CONNECTION_TIMEOUT = _connect_timeout
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_ENABLE_UTC = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A task is acknowledged when it ends, and rejected (so redelivered) when its worker process
# is killed: killed work runs again, and every task is written to be run again.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Lost broker connection: the tasks under way are cancelled (their messages come back) rather
# than finished and acknowledged on a connection that is gone (Celery 6's default).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# A worker keeps trying to reach the broker however long it is away.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# Work whose worker died (README "What survives a crash"): a sync run holds a lease renewed
# after every batch; a run without one (staff's selection) and an import or export job write a
# heartbeat. Reapers (every minute) end the runs and resume the jobs that stopped.
SYNC_LEASE_SECONDS = env_int("SYNC_LEASE_SECONDS", 15 * 60, minimum=1)
SYNC_STALE_SECONDS = env_int("SYNC_STALE_SECONDS", 15 * 60, minimum=1)
IMPORTS_STALE_SECONDS = env_int("IMPORTS_STALE_SECONDS", 5 * 60, minimum=1)
IMPORTS_MAX_ATTEMPTS = env_int("IMPORTS_MAX_ATTEMPTS", 3, minimum=1)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# One queue per kind of work, so each can get its own workers when the system grows.
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_QUEUES_ALL = ["default", "sync", "notifications", "imports"]
CELERY_TASK_ROUTES = {
    "channels.tasks.*": {"queue": "sync"},
    "listings.tasks.*": {"queue": "sync"},  # the inventory push: channel calls, like syncs
    "notifications.*": {"queue": "notifications"},
    "imports.*": {"queue": "imports"},
}
CELERY_DB_REUSE_MAX = 1000
# The worker keeps Django's LOGGING (one handler, LOG_FORMAT) instead of installing its own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Security (production: DEBUG=0) -------------------------------------------------------
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    if env_bool("BEHIND_TLS_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# --- django-import-export -----------------------------------------------------------------
IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT = True
IMPORT_EXPORT_SKIP_ADMIN_LOG = True
# The preview/confirm flow keeps the upload between two requests: keep it in the shared media
# storage, not in a web process's /tmp (a second web server would not find it).
IMPORT_EXPORT_TMP_STORAGE_CLASS = "import_export.tmp_storages.MediaStorage"
# Our own imports (imports app): files above this size are refused at upload.
IMPORTS_MAX_UPLOAD_MB = int(os.environ.get("IMPORTS_MAX_UPLOAD_MB", "100"))

# --- Logging (uniware/core/logging.py) ----------------------------------------------------
# Each record once, on stderr: LOG_FORMAT=text (default) or json (one object per line).
LOGGING = logging_config(
    os.environ.get("LOG_FORMAT", "text").strip().lower(),
    os.environ.get("LOG_LEVEL", "INFO").strip().upper(),
)

# --- Secrets at rest ----------------------------------------------------------------------
# Fernet keys that encrypt channel credentials in the database (uniware/core/secrets.py),
# comma-separated: the first encrypts, all decrypt. Rotation: put a new key first, run
# `manage.py rotate_secrets`, then drop the old key. Unset: a key derived from SECRET_KEY when
# DEBUG was on at start-up, otherwise ImproperlyConfigured at the first use of a secret.
SECRETS_KEYS = env_list("SECRETS_KEYS")
SECRETS_DEV_KEY_FROM_SECRET_KEY = DEBUG

# --- Imports: upload limits and retention
# IMPORTS_MAX_UPLOAD_MB (above) is enforced while the upload streams (imports.uploads). XLSX
# workbooks are checked from their zip directory before anything is unpacked (imports.readers):
# the README's 100,000-line order file has 100,001 rows, 416,299 shared strings (12 MB) and
# unpacks to 60 MB, well inside these defaults.
IMPORTS_XLSX_MAX_ROWS = int(os.environ.get("IMPORTS_XLSX_MAX_ROWS", "500000"))
IMPORTS_XLSX_MAX_SHARED_STRINGS = int(os.environ.get("IMPORTS_XLSX_MAX_SHARED_STRINGS", "1000000"))
IMPORTS_XLSX_MAX_SHARED_STRINGS_MB = int(os.environ.get("IMPORTS_XLSX_MAX_SHARED_STRINGS_MB", "32"))
IMPORTS_XLSX_MAX_UNCOMPRESSED_MB = int(os.environ.get("IMPORTS_XLSX_MAX_UNCOMPRESSED_MB", "500"))
# Uploads, row-level reports and exports are deleted this many days after their job ended
# (task imports.tasks.expire_files, hourly); a discarded upload at once.
IMPORTS_RETENTION_DAYS = int(os.environ.get("IMPORTS_RETENTION_DAYS", "30"))

# --- Printing from the admin (orders.admin.printing) ----------------------------------------
# A print of more documents than this (labels, invoices, picklists, handover sheets) is not
# rendered in the request but by a background job (imports.printing) with a progress bar and a
# download link; the job's file is kept IMPORTS_RETENTION_DAYS like an export.
PRINT_INLINE_MAX = env_int("PRINT_INLINE_MAX", 300, minimum=1)
# A scan station ignores the same code scanned again within this window (the scanner
# double-fired): seconds.
STATION_DOUBLE_SCAN_SECONDS = float(os.environ.get("STATION_DOUBLE_SCAN_SECONDS", "1.5"))
