"""Settings of Seed SMS Portal, read from the environment.

Unset variables give the embedded demo (SQLite, Celery's filesystem broker, the VoIP.ms sandbox).
With DEBUG off, the variables production cannot do without must be set, or start-up fails.
"""

from __future__ import annotations

import ipaddress
import secrets
from pathlib import Path

import environ
from celery.schedules import crontab
from cryptography.fernet import Fernet
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

VAR_DIR = Path(env("VAR_DIR", default=str(BASE_DIR / "var")))
DEBUG = env.bool("DEBUG", default=True)


def _secret(name: str) -> str | None:
    """Return a secret from NAME or from the file named by NAME_FILE."""
    value = env.str(name, default="")
    if not value and env.str(f"{name}_FILE", default=""):
        value = Path(env.str(f"{name}_FILE")).read_text().strip()
    return value or None


def _demo_secret(filename: str, make: callable) -> str:
    """Return a secret kept in var/, generating it on first use (embedded demo only)."""
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / filename
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret("SECRET_KEY")
_field_keys = _secret("FIELD_ENCRYPTION_KEYS")
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="").rstrip("/")

if DEBUG:
    SECRET_KEY = SECRET_KEY or _demo_secret("secret_key", lambda: secrets.token_urlsafe(50))
    _field_keys = _field_keys or _demo_secret(
        "field_encryption_keys", lambda: Fernet.generate_key().decode()
    )
    PUBLIC_BASE_URL = PUBLIC_BASE_URL or "http://127.0.0.1:8000"
else:
    _missing = [
        name
        for name, value in (
            ("SECRET_KEY", SECRET_KEY),
            ("FIELD_ENCRYPTION_KEYS", _field_keys),
            ("PUBLIC_BASE_URL", PUBLIC_BASE_URL),
        )
        if not value
    ]
    if _missing:
        raise ImproperlyConfigured(
            f"DEBUG is off and these settings are missing: {', '.join(_missing)}"
        )
    if SECRET_KEY.startswith("django-insecure") or len(SECRET_KEY) < 50:
        raise ImproperlyConfigured("SECRET_KEY must be a random string of at least 50 characters")

# Newest key first; older keys still decrypt until `manage.py reencrypt_fields` has run.
FIELD_ENCRYPTION_KEYS = [key.strip() for key in _field_keys.split(",") if key.strip()]
try:
    if not FIELD_ENCRYPTION_KEYS:
        raise ValueError("no key")
    for _key in FIELD_ENCRYPTION_KEYS:
        Fernet(_key)
except ValueError as _error:
    raise ImproperlyConfigured(
        "FIELD_ENCRYPTION_KEYS must hold Fernet keys separated by commas, newest first"
    ) from _error

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "portal.apps.PortalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "csp",
    "portal",
    "tenants",
    "trunks",
    "sms",
]
if env.bool("VOIPMS_SANDBOX", default=DEBUG):
    INSTALLED_APPS.append("trunks.voipms.sandbox")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "portal.middleware.PermissionsPolicyMiddleware",
    "csp.middleware.CSPMiddleware",
    "core.middleware.ApiAuthThrottleMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The browser's language (Accept-Language); UserLanguageMiddleware overrides it below.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "core.middleware.QueryStringNulMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "tenants.middleware.UserLanguageMiddleware",
    "tenants.middleware.TenantMiddleware",
    "tenants.middleware.TimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "tenants.middleware.SecondFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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
                "tenants.context_processors.tenant",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'portal.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite ignores the columns a covering index includes (the DID owner lookup's): the index
    # still serves, without them. PostgreSQL answers that lookup from the index alone.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
    # Web and worker share the file: WAL lets readers go on while one process writes.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    # Each reuse of a kept connection (or each borrow from the pool below) is checked first: a
    # round trip that finds a connection the server or a pooler closed before a query fails.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=True)
    # A process with many threads that each touch the database briefly (gunicorn gthread with
    # hundreds of threads) shares a pool of this many connections: a thread borrows one for a
    # request and gives it back, instead of keeping its own or opening a new one every time.
    DATABASE_POOL_MAX_SIZE = env.int("DATABASE_POOL_MAX_SIZE", default=0)
    if DATABASE_POOL_MAX_SIZE > 0:
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # a pooled connection goes back to the pool
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": DATABASE_POOL_MAX_SIZE,
            "timeout": 30,
        }
    # Behind a pooler in transaction mode (PgBouncer) a server-side cursor opened by
    # `.iterator()` (the message export) may be looked for on another server connection.
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env.bool(
        "DISABLE_SERVER_SIDE_CURSORS", default=False
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "tenants.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "tenants.backends.PortalBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Repeated failed logins lock the username from that address for a while.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.25)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Reverse proxies in front of the web process, each appending to X-Forwarded-For: the client's
# address is read that many entries from the right (0: REMOTE_ADDR, no proxy).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=env.int("AXES_PROXY_COUNT", default=0))
# Sign-in lock-outs, throttles and the audit trail read the client address the same way.
AXES_CLIENT_IP_CALLABLE = "core.limits.client_address"
# Failed API authentications (bad or unknown tokens) and unknown webhook URLs allowed per client
# address in a minute before it gets 429; valid tokens and known webhook URLs are never counted.
API_AUTH_FAILURES_PER_MINUTE = env.int("API_AUTH_FAILURES_PER_MINUTE", default=20)
WEBHOOK_TOKEN_MISSES_PER_MINUTE = env.int("WEBHOOK_TOKEN_MISSES_PER_MINUTE", default=20)

# Two-factor sign-in (TOTP with recovery codes): any user may turn it on; system administrators
# must when this is on, and a tenant's administrators when the tenant requires it.
REQUIRE_ADMIN_2FA = env.bool("REQUIRE_ADMIN_2FA", default=False)
OTP_TOTP_ISSUER = "Seed SMS Portal"
# Keys and recovery codes are never shown in the admin.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr-ca", "Français (Canada)")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Every shown time carries its zone's abbreviation (portal/formats/<locale>/formats.py); the
# zone itself is the tenant's or the user's, chosen per request by TimeZoneMiddleware.
FORMAT_MODULE_PATH = ["portal.formats"]

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = DEBUG
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "media/"

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="sms-portal@localhost")

# Redis carries the broker, the cache and the shared rate limits when it is configured.
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
_broker_dir = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # A task not acknowledged within this window is handed to another worker; every retry
    # countdown stays well below it.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = [Queue("inbound"), Queue("outbound"), Queue("default")]
CELERY_TASK_ROUTES = {
    "sms.process_webhook": {"queue": "inbound"},
    "sms.process_webhooks": {"queue": "inbound"},
    "sms.fetch_media": {"queue": "inbound"},
    "sms.poll_voipms_account": {"queue": "inbound"},
    "sms.deliver_destination": {"queue": "default"},
    "sms.deliver_status_callback": {"queue": "default"},
    "sms.deliver_message": {"queue": "outbound"},
    "sms.reconcile_message": {"queue": "outbound"},
    "sms.carrier_status": {"queue": "outbound"},
}
# How often sent messages are checked against VoIP.ms's carrier status (getSMS/getMMS).
CARRIER_STATUS_INTERVAL_SECONDS = env.float("CARRIER_STATUS_INTERVAL_SECONDS", default=300.0)
# Beat runs the sweepers this often; a row that waited this long is published again.
SWEEP_INTERVAL_SECONDS = env.float("SWEEP_INTERVAL_SECONDS", default=30.0)
# A webhook delivery whose processing raised is tried again with backoff, this many times in all.
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=5)
WEBHOOK_RETRY_BASE_SECONDS = env.float("WEBHOOK_RETRY_BASE_SECONDS", default=30.0)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {"task": "portal.heartbeat", "schedule": 30.0},
    "outbox-sweep": {"task": "sms.outbox_sweep", "schedule": SWEEP_INTERVAL_SECONDS},
    "carrier-status": {"task": "sms.carrier_status", "schedule": CARRIER_STATUS_INTERVAL_SECONDS},
    "poll-voipms-accounts": {
        "task": "sms.poll_voipms_accounts",
        "schedule": env.float("SMS_POLL_INTERVAL_SECONDS", default=300.0),
    },
    # Nightly: what each tenant's retention no longer keeps, and day-old idempotency records.
    "retention-purge": {
        "task": "sms.retention_purge",
        "schedule": crontab(hour=env.int("RETENTION_PURGE_HOUR", default=3), minute=17),
    },
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# A busy web process hands stored webhooks to the workers, and counts, in batches at most this
# far apart (s): one broker publish per request would cost more than storing it, and a worker
# handles a batch far more cheaply than its items one by one. A quiet process hands each on at
# once (core/batching.py). 0: one at a time, from the request.
HANDOFF_INTERVAL_SECONDS = env.float("HANDOFF_INTERVAL_SECONDS", default=0.05)
# The hot-path statements of core.db (the webhook's INSERT, the DID owner lookup) run prepared on
# PostgreSQL. Turn off behind a PgBouncer older than 1.21 in transaction mode (newer ones need
# max_prepared_statements set). WEBHOOK_PREPARED_STATEMENT is this setting's earlier name.
DATABASE_PREPARED_STATEMENTS = env.bool(
    "DATABASE_PREPARED_STATEMENTS", default=env.bool("WEBHOOK_PREPARED_STATEMENT", default=True)
)
# Celery's Django fixup otherwise opens a new database connection for every task.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
DID_POOL_MAX_RANGE_SIZE = env.int("DID_POOL_MAX_RANGE_SIZE", default=10000)
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=[])
HEALTH_WORKER_MAX_AGE = env.int("HEALTH_WORKER_MAX_AGE", default=90)

VOIPMS_SANDBOX = env.bool("VOIPMS_SANDBOX", default=DEBUG)
VOIPMS_API_URL = env.str(
    "VOIPMS_API_URL",
    default=f"{PUBLIC_BASE_URL}/sandbox/voipms/api/v1/rest.php"
    if VOIPMS_SANDBOX
    else "https://voip.ms/api/v1/rest.php",
)

# Media links and HTTP destinations reach public addresses only, and these networks (CIDR).
# The demo's sandbox serves its media links from this machine, hence loopback by default there.
OUTBOUND_HTTP_ALLOWED_NETWORKS = [
    entry.strip()
    for entry in env.list(
        "OUTBOUND_HTTP_ALLOWED_NETWORKS",
        default=["127.0.0.0/8", "::1/128"] if DEBUG or VOIPMS_SANDBOX else [],
    )
    if entry.strip()
]
for _network in OUTBOUND_HTTP_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as _error:
        raise ImproperlyConfigured(
            f"OUTBOUND_HTTP_ALLOWED_NETWORKS: {_network!r} is not a network like 10.0.0.0/8"
        ) from _error

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.authentication.ApiTokenAuthentication",
        "tenants.authentication.PortalSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "core.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PAGINATION_CLASS": "core.api.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Seed SMS Portal API",
    "DESCRIPTION": "Two-way SMS/MMS over VoIP.ms DIDs, per tenant.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "DestinationActionEnum": "sms.models.Action",
        "WebhookDeliveryStatusEnum": "sms.models.DeliveryStatus",
    },
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.error_responses_hook",
    ],
}

SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Every page's scripts and styles come from static files: no inline script, style or handler.
# The browsable API and the Swagger UI relax what they need per response (core/api.py, urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}
# Browser features no page of the portal uses, switched off for every page.
PERMISSIONS_POLICY = {
    feature: []
    for feature in (
        "accelerometer",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "usb",
    )
}
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# Every handler carries the redact_secrets filter: webhook tokens are cut to six characters,
# credentials and fields named like secrets are masked (core/redaction.py). The "django" and
# "django.server" loggers are configured here so that Django's own handlers, which lack the
# filter, are replaced. SQL stays at INFO whatever LOG_LEVEL says: queries carry session keys.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact_secrets": {"()": "core.redaction.RedactSecretsFilter"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_secrets"],
        },
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "django.server",
            "filters": ["redact_secrets"],
        },
        "mail_admins": {
            "class": "django.utils.log.AdminEmailHandler",
            "level": "ERROR",
            "filters": ["require_debug_false", "redact_secrets"],
        },
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django": {"handlers": ["mail_admins"], "level": "INFO"},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "INFO"},
        "axes": {"level": "WARNING"},
    },
}
# Error reports (admins' e-mail, the debug page) hide secrets by name and cut webhook tokens.
DEFAULT_EXCEPTION_REPORTER = "core.error_reports.SecretSafeExceptionReporter"
DEFAULT_EXCEPTION_REPORTER_FILTER = "core.error_reports.SecretSafeExceptionReporterFilter"

# Outbound delivery: transient VoIP.ms failures are retried with jittered exponential backoff,
# every countdown far below the broker's visibility timeout.
SMS_MAX_ATTEMPTS = env.int("SMS_MAX_ATTEMPTS", default=6)
SMS_RETRY_BASE_SECONDS = env.float("SMS_RETRY_BASE_SECONDS", default=30.0)
SMS_RETRY_MAX_SECONDS = env.float("SMS_RETRY_MAX_SECONDS", default=600.0)
MEDIA_MAX_BYTES = env.int("MEDIA_MAX_BYTES", default=5 * 1024 * 1024)
# Requests per second to one VoIP.ms account, shared by all workers (VoIP.ms's own per-minute
# limit is not published: DOMAIN.md §2).
VOIPMS_REQUESTS_PER_SECOND = env.float("VOIPMS_REQUESTS_PER_SECOND", default=1.0)
# Outbound workers: with OUTBOUND_SENDER_CONCURRENCY > 0 a worker keeps up to that many VoIP.ms
# calls in flight on call threads that hold no database connection, and records their answers
# on OUTBOUND_SENDER_DB_THREADS threads (sms/outbound/sender.py). 0 sends in the task's thread.
OUTBOUND_SENDER_CONCURRENCY = env.int("OUTBOUND_SENDER_CONCURRENCY", default=0)
OUTBOUND_SENDER_DB_THREADS = env.int("OUTBOUND_SENDER_DB_THREADS", default=2)
# How long a warm shutdown waits for the sends in flight (a call ends within 45 s).
OUTBOUND_SENDER_DRAIN_SECONDS = env.float("OUTBOUND_SENDER_DRAIN_SECONDS", default=60.0)
# How long a message may stay "sending" before it is taken for lost and reconciled.
SMS_SENDING_STUCK_SECONDS = env.int("SMS_SENDING_STUCK_SECONDS", default=900)
# How long to wait for VoIP.ms's history before re-sending a message whose outcome is unknown.
SMS_UNKNOWN_GRACE_SECONDS = env.int("SMS_UNKNOWN_GRACE_SECONDS", default=600)
# Received MMS media and rule destinations (e-mail, HTTP POST) are retried with backoff.
MEDIA_FETCH_MAX_ATTEMPTS = env.int("MEDIA_FETCH_MAX_ATTEMPTS", default=8)
MEDIA_FETCH_RETRY_BASE_SECONDS = env.float("MEDIA_FETCH_RETRY_BASE_SECONDS", default=30.0)
MEDIA_FETCH_RETRY_MAX_SECONDS = env.float("MEDIA_FETCH_RETRY_MAX_SECONDS", default=1800.0)
DESTINATION_MAX_ATTEMPTS = env.int("DESTINATION_MAX_ATTEMPTS", default=6)
DESTINATION_RETRY_BASE_SECONDS = env.float("DESTINATION_RETRY_BASE_SECONDS", default=30.0)
DESTINATION_RETRY_MAX_SECONDS = env.float("DESTINATION_RETRY_MAX_SECONDS", default=1800.0)
DESTINATION_HTTP_TIMEOUT_SECONDS = env.float("DESTINATION_HTTP_TIMEOUT_SECONDS", default=15.0)
# Status callbacks of sent messages: retried with backoff until this many hours have passed.
STATUS_CALLBACK_RETRY_HOURS = env.float("STATUS_CALLBACK_RETRY_HOURS", default=24.0)
STATUS_CALLBACK_RETRY_BASE_SECONDS = env.float("STATUS_CALLBACK_RETRY_BASE_SECONDS", default=30.0)
STATUS_CALLBACK_RETRY_MAX_SECONDS = env.float("STATUS_CALLBACK_RETRY_MAX_SECONDS", default=3600.0)
SMS_POLL_LIMIT = env.int("SMS_POLL_LIMIT", default=1000)
