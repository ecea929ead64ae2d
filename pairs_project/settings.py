"""Settings for pairs: one module, driven by the environment.

Every knob is read with ``os.getenv`` through the typed helpers below. A missing
value gets a dev-safe default; a value that cannot be parsed raises
``ImproperlyConfigured`` at start-up rather than misbehaving later.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from pairs_project.schedules import beat_schedule

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str) -> str:
    return os.getenv(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.getenv(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use 1/0, true/false).")


def env_int(name: str, default: int) -> int:
    value = os.getenv(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer.") from None


def env_float(name: str, default: float) -> float:
    value = os.getenv(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number.") from None


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.getenv(name, default).split(",") if item.strip()]


def env_rate(name: str, default: str) -> str:
    """A request rate as DRF's throttles take it: ``600/min`` (per s, min, hour or day)."""
    value = (os.getenv(name) or default).strip()
    if not re.fullmatch(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)", value):
        raise ImproperlyConfigured(f"{name}={value!r} is not a rate such as 600/min (per s, min, hour or day).")
    return value


# Core ---------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/ref/settings/

DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")
# Host names that only ever mean this machine (testserver: Django's test client).
LOCAL_HOSTS = {"127.0.0.1", "localhost", ".localhost", "[::1]", "::1", "testserver"}
SECRET_KEY = os.getenv("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    # The built-in key is public (it is in this file), so it only serves a site that
    # answers to local names; a site that answers to any other name must set its own.
    public_hosts = [host for host in ALLOWED_HOSTS if host not in LOCAL_HOSTS]
    if public_hosts:
        raise ImproperlyConfigured(
            f"DJANGO_SECRET_KEY is not set, and DJANGO_ALLOWED_HOSTS names {', '.join(public_hosts)}: "
            "the built-in development key only serves 127.0.0.1/localhost. Set DJANGO_SECRET_KEY to a long "
            "random value, e.g. the output of: python -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
    # The django-insecure- prefix makes `check --deploy` flag it (security.W009).
    SECRET_KEY = "django-insecure-dev-only-key-set-DJANGO_SECRET_KEY-in-production"
# Old keys, still accepted for signatures while sessions move to a new DJANGO_SECRET_KEY.
SECRET_KEY_FALLBACKS = env_list("DJANGO_SECRET_KEY_FALLBACKS", "")

INSTALLED_APPS = [
    "daphne",  # must precede staticfiles so `runserver` is the ASGI one
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "axes",  # admin login throttling (see "Admin login" below)
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI assets served locally, no CDN
    "channels",
    "ingestion",
    "analytics",
    "alerts",
    "dashboard",
    "pairs_project",  # the pipeline that wires the apps, and the commands that run it
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "pairs_project.staticfiles.StaticFilesMiddleware",  # WhiteNoise, async-capable
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "pairs_project.urls"
ASGI_APPLICATION = "pairs_project.asgi.application"

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

# Security -----------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/howto/deployment/checklist/
# Plain http unless DJANGO_SECURE_SSL=1: `make run` and `make demo` serve
# http://127.0.0.1. A site served over HTTPS sets it, and `check --deploy` is then
# clean: redirect to https, HSTS, cookies sent over https only. Behind a proxy that
# terminates TLS, DJANGO_SECURE_PROXY_SSL_HEADER=1 as well, or the redirect loops.

SERVED_OVER_HTTPS = env_bool("DJANGO_SECURE_SSL", False)
if env_bool("DJANGO_SECURE_PROXY_SSL_HEADER", False):
    # Only behind a proxy that sets X-Forwarded-Proto itself: a client could send it too.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = SERVED_OVER_HTTPS
# Load balancers probe the app itself over plain http; the health record holds no secret.
SECURE_REDIRECT_EXEMPT = [r"^api/health/$"]
SESSION_COOKIE_SECURE = SERVED_OVER_HTTPS
CSRF_COOKIE_SECURE = SERVED_OVER_HTTPS
# Browsers remember HSTS: once sent, they refuse plain http for this long (a year,
# the minimum the preload lists take). Only sent over https.
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 365 * 24 * 3600) if SERVED_OVER_HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", True)
# Origins allowed to POST with a session besides the site's own (scheme included).
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")
# Passwords inside URLs (DATABASE_URL, REDIS_URL...) are masked on error pages and reports.
DEFAULT_EXCEPTION_REPORTER_FILTER = "pairs_project.security.ReporterFilter"

# Admin login --------------------------------------------------------------
# https://django-axes.readthedocs.io/en/latest/4_configuration.html
# django-axes counts failed logins per client address AND user name, in the database
# (so every web process shares the count, in both modes). After
# ADMIN_LOGIN_FAILURE_LIMIT failures that pair is locked out for
# ADMIN_LOGIN_COOLOFF_SECONDS: 429 with Retry-After, even for the right password. The
# same user from another address, and other users, are not locked (an attacker cannot
# lock the admin out). A successful login resets the count. `python manage.py
# axes_reset` lifts every lockout. API tokens and sessions are not logins: unaffected.

ADMIN_LOGIN_FAILURE_LIMIT = env_int("ADMIN_LOGIN_FAILURE_LIMIT", 5)
ADMIN_LOGIN_COOLOFF_SECONDS = env_int("ADMIN_LOGIN_COOLOFF_SECONDS", 15 * 60)
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out login before any password check
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = ADMIN_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(seconds=ADMIN_LOGIN_COOLOFF_SECONDS)
AXES_LOCKOUT_PARAMETERS = [["ip_address", "username"]]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_CALLABLE = "pairs_project.security.login_lockout_response"
# The client address as the API's rate limits find it (API_NUM_PROXIES, below).
AXES_CLIENT_IP_CALLABLE = "pairs_project.security.client_address"

# Database -----------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/ref/databases/#sqlite-notes
# SQLite runs in WAL mode with a busy timeout and IMMEDIATE transactions, so the
# tick writer, the periodic tasks and the web server never see "database is locked".

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=600)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests run the tick writer in its own thread: a file (not shared-cache memory)
    # gives them SQLite's real locking with the busy timeout.
    DATABASES["default"]["TEST"] = {"NAME": env_str("PAIRS_TEST_DB", str(BASE_DIR / ".test-db.sqlite3"))}
# On PostgreSQL the tests use Django's own test_<NAME>, NAME being DATABASE_URL's.
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Internationalisation -----------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# Static files -------------------------------------------------------------
# https://whitenoise.readthedocs.io/ - Chart.js comes from npm (package.json) and
# is copied into static/vendor by `make`; nothing is loaded from a CDN.

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True

# Redis: one URL carries Celery, the channel layer and the cache -------------

REDIS_URL = os.getenv("REDIS_URL", "")
RUN_MODE = "distributed" if REDIS_URL else "embedded"

# Channels -----------------------------------------------------------------
# https://channels.readthedocs.io/en/stable/topics/channel_layers.html
# The in-memory layer does NOT cross processes: in embedded mode everything that
# pushes (ingestion, tasks) lives in the daphne process. Separate ingest and
# Celery processes can only reach browsers over Redis. pairs_project.layers is
# Channels' in-memory layer without its per-message sweep of every channel (a
# cost that grows with the square of the open pages).

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "pairs_project.layers.InMemoryChannelLayer"}}

# Web server ---------------------------------------------------------------
# HTTP requests one web process serves at once (a thread each); the others wait
# their turn on the event loop (pairs_project/concurrency.py). A request spends most
# of its time waiting for the busy event loop between its steps, not computing, so
# the bound is on threads, not on CPU.
WEB_CONCURRENT_REQUESTS = env_int("WEB_CONCURRENT_REQUESTS", 32)

# Cache --------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/topics/cache/

if REDIS_URL:
    CACHES: dict[str, dict[str, Any]] = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    # Every active pair keeps its snapshot and its series here, both read and written each
    # second: with Django's default of 300 entries, culling evicted them from about 150
    # pairs on (each cycle then read the history back from the database).
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "OPTIONS": {"MAX_ENTRIES": 10_000}}
    }
# What one process keeps for itself, whatever the mode: the health record it serves
# its pages and API from (made at most once every HEALTH_CACHE_SECONDS).
CACHES["process"] = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "process"}

# Celery -------------------------------------------------------------------
# https://docs.celeryq.dev/en/stable/userguide/configuration.html

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_TIME_LIMIT = 60
CELERY_TASK_SOFT_TIME_LIMIT = 50
# The periodic tasks are declared once (pairs_project/schedules.py): Celery beat
# runs them in distributed mode, and `runpairs` runs the same ones on the same
# cadence in its own event loop (embedded mode).
CELERY_BEAT_SCHEDULE = beat_schedule()

# REST framework -----------------------------------------------------------
# https://www.django-rest-framework.org/api-guide/settings/

REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON bodies through orjson: nesting, encoding and size problems are a 400/413, never a 500.
    "DEFAULT_PARSER_CLASSES": [
        "dashboard.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # Anyone reads; writes need a staff user: a session (browser, CSRF-checked) or a token
    # ("Authorization: Token <key>", keys made in the admin).
    "DEFAULT_PERMISSION_CLASSES": ["dashboard.permissions.IsStaffOrReadOnly"],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# OpenAPI schema at /api/schema/, docs at /api/docs/ (https://drf-spectacular.readthedocs.io/)
SPECTACULAR_SETTINGS = {
    "TITLE": "pairs API",
    "DESCRIPTION": (
        "Real-time pairs-trading analytics for Binance USD-M perpetuals. Times are ms since the epoch (UTC)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")

# API throttling -----------------------------------------------------------
# https://www.django-rest-framework.org/api-guide/throttling/
# Requests per client address (anonymous) or per user; over the rate: 429 with
# Retry-After. The dashboard polls /api/health/ every 5 s per open page, so the
# anonymous default leaves room for dozens of pages behind one address.

API_THROTTLE_ANON = env_rate("API_THROTTLE_ANON", "600/min")
API_THROTTLE_USER = env_rate("API_THROTTLE_USER", "1200/min")
# The dashboard's pages (the overview refreshes its rows every 2 s: 30 a minute a
# tab) and its CSV downloads (each up to a window of rows), per user or address.
PAGE_THROTTLE = env_rate("PAGE_THROTTLE", "300/min")
CSV_THROTTLE = env_rate("CSV_THROTTLE", "30/min")
# Reverse proxies in front of the app: the client is that many addresses from the end
# of X-Forwarded-For. 0 ignores the header (a client could forge it).
API_NUM_PROXIES = env_int("API_NUM_PROXIES", 0)
REST_FRAMEWORK |= {
    "DEFAULT_THROTTLE_CLASSES": ["dashboard.throttles.AnonRateThrottle", "dashboard.throttles.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"anon": API_THROTTLE_ANON, "user": API_THROTTLE_USER},
    "NUM_PROXIES": API_NUM_PROXIES,
}
# The counters get a cache of their own: in embedded mode the default cache is a
# local-memory one of 300 entries, and a counter per client must not evict snapshots.
if REDIS_URL:
    CACHES["throttle"] = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "throttle",
    }
else:
    CACHES["throttle"] = {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "throttle",
        "OPTIONS": {"MAX_ENTRIES": 10_000},
    }

# Binance ------------------------------------------------------------------
# https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams
# Since April 2026 aggTrade is only served on the /market route of fstream.

BINANCE_WS_URL = env_str("BINANCE_WS_URL", "wss://fstream.binance.com/market")
BINANCE_REST_URL = env_str("BINANCE_REST_URL", "https://fapi.binance.com")
# Seconds the exchange's symbol list (exchangeInfo) is used before it is fetched
# again; a copy older than this still serves while the exchange cannot be reached.
BINANCE_EXCHANGE_INFO_TTL = env_float("BINANCE_EXCHANGE_INFO_TTL", 600.0)
# A subscribed symbol with no trade for this long (seconds) is reported and
# re-subscribed while others trade; when every symbol is silent, the stream is
# dead and is reconnected.
INGEST_SILENCE_TIMEOUT = env_float("INGEST_SILENCE_TIMEOUT", 30.0)
# Binance cuts every connection at 24 h; rotate a little before that (seconds).
INGEST_ROTATE_AFTER = env_float("INGEST_ROTATE_AFTER", 23.5 * 3600)
INGEST_BATCH_SIZE = env_int("INGEST_BATCH_SIZE", 5000)
INGEST_FLUSH_INTERVAL = env_float("INGEST_FLUSH_INTERVAL", 0.25)
INGEST_BUFFER_TICKS = env_int("INGEST_BUFFER_TICKS", 5000)
INGEST_FEED_NAME = env_str("INGEST_FEED_NAME", "default")
# Symbols watched when no pair exists yet (the analytics app adds the pairs' own).
INGEST_DEFAULT_SYMBOLS = env_list("INGEST_DEFAULT_SYMBOLS", "BTCUSDT,ETHUSDT")

# Health -------------------------------------------------------------------

# Seconds one health record serves every request of a web process (each open page
# polls it every 5 s); 0 makes a record per request.
HEALTH_CACHE_SECONDS = env_float("HEALTH_CACHE_SECONDS", 1.0)

# Analytics ----------------------------------------------------------------

# A leg whose newest bar is more than this many bars behind the window's end is stale.
ANALYTICS_STALE_BARS = env_int("ANALYTICS_STALE_BARS", 5)
# Embedded mode (runpairs) computes the statistics in a child process, so they do
# not hold the GIL against the web server; 0 computes them in the snapshot cycle's thread.
EMBEDDED_STATS_PROCESS = env_bool("EMBEDDED_STATS_PROCESS", True)
SNAPSHOT_RETENTION_SECONDS = env_int("SNAPSHOT_RETENTION_SECONDS", 7 * 24 * 3600)
# The screener's scheduled run (docs/analytics.md, "Screener"): the top N USDT
# perpetuals by 24 h quote volume, on closed bars of this interval and window.
SCREENER_SCHEDULED = env_bool("SCREENER_SCHEDULED", True)  # 0: only the runs users ask for
SCREENER_TOP = env_int("SCREENER_TOP", 30)
SCREENER_INTERVAL = env_str("SCREENER_INTERVAL", "5m")
SCREENER_WINDOW = env_int("SCREENER_WINDOW", 1000)
SCREENER_FDR = env_float("SCREENER_FDR", 0.05)
# Ticks are the bulk of the database; 1m/5m bars are kept for good.
TICK_RETENTION_SECONDS = env_int("TICK_RETENTION_SECONDS", 48 * 3600)
BAR_1S_RETENTION_SECONDS = env_int("BAR_1S_RETENTION_SECONDS", 7 * 24 * 3600)
# Seconds one alert webhook (or Telegram) POST may take, all of it (connect, send,
# the answer's status line and headers), before it counts as failed.
ALERT_WEBHOOK_TIMEOUT = env_float("ALERT_WEBHOOK_TIMEOUT", 5.0)
# Webhooks only go to public addresses (pairs_project/common/egress.py). 1 also lets
# private ones through (10/8, 172.16/12, 192.168/16, fc00::/7) for a receiver on the
# same private network; loopback, link-local and cloud metadata addresses stay refused.
ALERT_WEBHOOK_ALLOW_PRIVATE = env_bool("ALERT_WEBHOOK_ALLOW_PRIVATE", False)
# Tests only (receivers on 127.0.0.1): no environment variable reaches it.
ALERT_WEBHOOK_ALLOW_LOOPBACK = False
# The site's address as traders reach it (https://pairs.example.com): e-mail and
# Telegram alerts then link to the pair's page. Unset: no link.
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "").rstrip("/")

# Alert e-mail -------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/topics/email/
# Django's own settings, from variables of the same names. With neither EMAIL_HOST
# nor EMAIL_BACKEND set, e-mails are written to the process's output (the console
# backend: development); set EMAIL_HOST to send them through that SMTP server.
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)  # STARTTLS, usually port 587
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)  # TLS from the start, usually port 465
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL are exclusive: set one of them.")
# Seconds an SMTP connection may wait on the server (Django's default waits for ever).
EMAIL_TIMEOUT = env_float("EMAIL_TIMEOUT", 10.0)
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend",
)
# The sender of alert e-mails.
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "pairs <alerts@localhost>")

# Alert Telegram messages --------------------------------------------------
# https://core.telegram.org/bots/api#sendmessage
# The bot's token is a secret: never logged, never stored on an alert, hidden on
# error pages (Django hides settings named *TOKEN*). Unset: a pair's Telegram
# notifications fail as "not configured". The API is reached under the webhooks'
# egress policy (public addresses only), with ALERT_WEBHOOK_TIMEOUT per request.
TELEGRAM_BOT_TOKEN = env_str("TELEGRAM_BOT_TOKEN", "")
TELEGRAM_API_URL = env_str("TELEGRAM_API_URL", "https://api.telegram.org").rstrip("/")

# Logging ------------------------------------------------------------------

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "ingestion": {"level": LOG_LEVEL},
        "analytics": {"level": LOG_LEVEL},
        "alerts": {"level": LOG_LEVEL},
        "dashboard": {"level": LOG_LEVEL},
        "pairs": {"level": LOG_LEVEL},
        "daphne": {"level": "WARNING"},
    },
}
