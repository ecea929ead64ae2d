"""Settings for pairs: one module, driven by the environment.

Every knob is read with ``os.getenv`` through the typed helpers below. A missing
value gets a dev-safe default; a value that cannot be parsed raises
``ImproperlyConfigured`` at start-up rather than misbehaving later.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

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


# Core ---------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/ref/settings/

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = os.getenv("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    # A fixed key is only acceptable on a developer's machine; production sets one.
    SECRET_KEY = "dev-only-insecure-key-set-DJANGO_SECRET_KEY-in-production"
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")

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
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI assets served locally, no CDN
    "channels",
    "ingestion",
    "analytics",
    "alerts",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
# Celery processes can only reach browsers over Redis.

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Cache --------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/topics/cache/

if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery -------------------------------------------------------------------
# https://docs.celeryq.dev/en/stable/userguide/configuration.html

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_TIME_LIMIT = 60
CELERY_TASK_SOFT_TIME_LIMIT = 50
# The one schedule: Celery beat runs it in distributed mode, and `runpairs` runs
# the same tasks on the same cadence in its own event loop (embedded mode).
CELERY_BEAT_SCHEDULE = {
    # Every second: new ticks -> 1s/1m/5m bars.
    "resample-bars": {"task": "analytics.tasks.resample_bars_task", "schedule": 1.0},
    # Every second, right after resampling: a snapshot per active pair whose window moved.
    "compute-snapshots": {"task": "analytics.tasks.compute_snapshots_task", "schedule": 1.0},
    # Every 5 seconds: fetch the klines a 1m/5m pair's window still lacks, so a pair
    # added in the admin or the API is ready within seconds (a no-op otherwise).
    "warmup-pairs": {"task": "analytics.tasks.warmup_pairs_task", "schedule": 5.0},
    # Every hour: prune history past retention, checkpoint the SQLite WAL.
    "housekeeping": {"task": "analytics.tasks.housekeeping_task", "schedule": 3600.0},
}

# REST framework -----------------------------------------------------------
# https://www.django-rest-framework.org/api-guide/settings/

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    # Writes need a staff user: a session (browser, CSRF-checked) or a token
    # ("Authorization: Token <key>", keys made in the admin).
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
    "DESCRIPTION": "Real-time pairs-trading analytics for Binance USD-M perpetuals. Times are ms since the epoch (UTC).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")

# Binance ------------------------------------------------------------------
# https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams
# Since April 2026 aggTrade is only served on the /market route of fstream.

BINANCE_WS_URL = env_str("BINANCE_WS_URL", "wss://fstream.binance.com/market")
BINANCE_REST_URL = env_str("BINANCE_REST_URL", "https://fapi.binance.com")
# Reconnect when a subscribed symbol has sent no trade for this long (seconds).
INGEST_SILENCE_TIMEOUT = env_float("INGEST_SILENCE_TIMEOUT", 30.0)
# Binance cuts every connection at 24 h; rotate a little before that (seconds).
INGEST_ROTATE_AFTER = env_float("INGEST_ROTATE_AFTER", 23.5 * 3600)
INGEST_BATCH_SIZE = env_int("INGEST_BATCH_SIZE", 5000)
INGEST_FLUSH_INTERVAL = env_float("INGEST_FLUSH_INTERVAL", 0.25)
INGEST_BUFFER_TICKS = env_int("INGEST_BUFFER_TICKS", 5000)
INGEST_FEED_NAME = env_str("INGEST_FEED_NAME", "default")
# Symbols watched when no pair exists yet (the analytics app adds the pairs' own).
INGEST_DEFAULT_SYMBOLS = env_list("INGEST_DEFAULT_SYMBOLS", "BTCUSDT,ETHUSDT")

# Analytics ----------------------------------------------------------------

# A leg whose newest bar is more than this many bars behind the window's end is stale.
ANALYTICS_STALE_BARS = env_int("ANALYTICS_STALE_BARS", 5)
SNAPSHOT_RETENTION_SECONDS = env_int("SNAPSHOT_RETENTION_SECONDS", 7 * 24 * 3600)
# Ticks are the bulk of the database; 1m/5m bars are kept for good.
TICK_RETENTION_SECONDS = env_int("TICK_RETENTION_SECONDS", 48 * 3600)
BAR_1S_RETENTION_SECONDS = env_int("BAR_1S_RETENTION_SECONDS", 7 * 24 * 3600)
# Seconds one alert webhook POST may take before it counts as failed.
ALERT_WEBHOOK_TIMEOUT = env_float("ALERT_WEBHOOK_TIMEOUT", 5.0)

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
