"""Settings come from the environment and fail loudly on bad values.

Production differs from development by environment, not by code: with
``DJANGO_DEBUG`` unset (the default) every secure-by-default switch is on.
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from videochat.envvars import env, env_bool, env_positive
from videochat.metricsdir import multiproc_dir_prepare
from videochat.redisconfig import redis_config

BASE_DIR = Path(__file__).resolve().parent.parent
RUN_DIR = Path(env.str("VIDEOCHAT_RUN_DIR", default=str(BASE_DIR / "var")))

# Before anything imports prometheus-client: this run's multiprocess metric files
# (the rule is in videochat/metricsdir.py).
PROMETHEUS_MULTIPROC_DIR = multiproc_dir_prepare(RUN_DIR / "metrics")

DEBUG = env_bool("DJANGO_DEBUG", default=False)

_DEV_SECRET = "dev-only-insecure-secret-key-do-not-use-in-production-0123456789"  # noqa: S105 - refused with DEBUG off
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=_DEV_SECRET if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")
if not DEBUG and SECRET_KEY == _DEV_SECRET:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY is the development key; set a real one")

ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else []
)
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must list the public host names")
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    # django.contrib.admin, with names for the controls Django leaves unnamed.
    "videochat.adminaccess.AccessibleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "django_rq",
    "axes",
    "csp",
    "rooms",
    "moderation",
    "messaging",
    "deliveries",
    "videochat",
    "scaling",
    "netlab",
    "quality",
]

MIDDLEWARE = [
    # Before all: every log line of the request carries its id (videochat/requestid.py).
    "videochat.requestid.RequestIdMiddleware",
    # First: /readyz answers from this process alone (videochat/node.py).
    "videochat.node.ReadinessMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "videochat.middleware.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns lockouts into a response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "videochat.urls"
ASGI_APPLICATION = "videochat.asgi.application"
WSGI_APPLICATION = None

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

# --- Data stores -----------------------------------------------------------
(BASE_DIR / "var").mkdir(exist_ok=True)  # where the default SQLite file lives
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}")
}
# Persistent connections: opening one per ORM call cost a chat send ~20 ms vs
# ~3.6 ms (bench/RESULTS.md); health checks drop a connection the server closed.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file database shared by daphne, Celery and rq: wait for the writer
    # instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            # WAL lets readers run beside the writer; synchronous=FULL keeps every
            # commit on disk before we acknowledge it.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
        }
    )
    # A file, not memory, so that the daphne/Celery/rq subprocesses of the
    # integration tests see what a test wrote.
    DATABASES["default"]["TEST"] = {
        "NAME": env.str("DATABASE_TEST_NAME", default=str(RUN_DIR / "test-db.sqlite3"))
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# One server (REDIS_URL) or a Sentinel-watched primary (REDIS_SENTINELS,
# REDIS_SENTINEL_MASTER, REDIS_PASSWORD, REDIS_SENTINEL_PASSWORD, REDIS_DB):
# videochat/redisconfig.py checks them; every client below is built from it.
REDIS = redis_config(dict(os.environ))
REDIS_URL = REDIS.url  # one server only; unused with Sentinel
MONGODB_URI = env.str("MONGODB_URI", default="mongodb://127.0.0.1:27017/")
MONGODB_DB = env.str("MONGODB_DB", default="videochat")

# Redis connections per process and pool (the app's client; the channel
# layer's). redis-py's asyncio pool raises MaxConnectionsError at its limit
# (100), which crashed sockets whenever more than 100 frames needed Redis at
# once; the pools here make a caller wait for a free connection instead, up
# to REDIS_POOL_TIMEOUT_S (videochat/redis.py).
REDIS_MAX_CONNECTIONS = int(env_positive("REDIS_MAX_CONNECTIONS", default=100))
REDIS_POOL_TIMEOUT_S = env_positive("REDIS_POOL_TIMEOUT_S", default=20.0)

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "videochat.redis.ChannelLayer",
        "CONFIG": {
            # redis-py 8 defaults socket_timeout to 5 s, the same as channels_redis'
            # BZPOPMIN wait: an idle consumer's receive then raised TimeoutError and
            # the socket died after 5 quiet seconds. The read timeout must exceed it.
            "hosts": [
                REDIS.channel_layer_host(
                    socket_timeout=30,
                    max_connections=REDIS_MAX_CONNECTIONS,
                    timeout=REDIS_POOL_TIMEOUT_S,
                )
            ],
            "capacity": env.int("CHANNEL_CAPACITY", default=1500),
            "expiry": 30,
        },
    }
}

CACHES = {
    "default": {
        # Django's RedisCache on the client videochat.redis builds (Sentinel too).
        "BACKEND": "videochat.redis.RedisCache",
        "LOCATION": REDIS.describe(),
        "KEY_PREFIX": "vc",
    }
}

# --- Celery ------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS.celery_broker_url())
# kombu's Sentinel transport, a failover crash made a reconnect (videochat/kombusentinel.py).
CELERY_BROKER_TRANSPORT = (
    "videochat.kombusentinel:Transport" if CELERY_BROKER_URL.startswith("sentinel://") else None
)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Must exceed the longest retry countdown, or Redis redelivers a task that
# is merely waiting (see messaging deliveries).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    # With Sentinel: master_name and the sentinels' password (kombu's own support).
    **REDIS.celery_transport_options(),
}
CELERY_TASK_ALWAYS_EAGER = False

# --- django-rq -------------------------------------------------------------
RQ_QUEUES = {
    "default": REDIS.rq_queue(DEFAULT_TIMEOUT=600),
}

# --- Auth ------------------------------------------------------------------
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
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Failed logins before a lockout (django-axes): for one account from one
# address, and for all accounts together from one address (password spraying:
# one guess each at many usernames). videochat.accounts.axes_failure_limit
# picks the limit that applies.
LOGIN_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
LOGIN_FAILURE_LIMIT_PER_ADDRESS = env.int("LOGIN_FAILURE_LIMIT_PER_ADDRESS", default=20)
if not 1 <= LOGIN_FAILURE_LIMIT <= LOGIN_FAILURE_LIMIT_PER_ADDRESS:
    raise ImproperlyConfigured("need 1 <= AXES_FAILURE_LIMIT <= LOGIN_FAILURE_LIMIT_PER_ADDRESS")
AXES_FAILURE_LIMIT = "videochat.accounts.axes_failure_limit"
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.25)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
# Not reset by a success: a reset clears every counter of the address, so a
# sprayer logging into an account of their own would wipe the per-address
# count. Failures expire after AXES_COOLOFF_HOURS instead.
AXES_RESET_ON_SUCCESS = False
AXES_VERBOSE = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

# --- Security --------------------------------------------------------------
SECURE = not DEBUG
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=SECURE)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", default=SECURE)
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=SECURE)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if SECURE else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE
SECURE_HSTS_PRELOAD = SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("USE_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# The health endpoint is probed over plain HTTP by load balancers.
# So is /metrics, by Prometheus inside the cluster (a bearer token; README).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics(/scaling)?$"]
# Bearer token for /metrics (staff sessions need none); empty: staff only.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# A Celery worker in a container of its own serves its metrics on this port (0: off;
# videochat/metricsserver.py), bearer token only.
METRICS_WORKER_PORT = env.int("METRICS_WORKER_PORT", default=0)
METRICS_WORKER_BIND = env.str("METRICS_WORKER_BIND", default="0.0.0.0")  # noqa: S104 - a pod's port
if METRICS_WORKER_PORT and not METRICS_TOKEN:
    raise ImproperlyConfigured("METRICS_WORKER_PORT needs METRICS_TOKEN (its only access)")

# Permissions-Policy (videochat/middleware.py): the call's devices for our
# own origin only; the rest off.
PERMISSIONS_POLICY = {
    "camera": ["self"],
    "microphone": ["self"],
    "display-capture": ["self"],
    "geolocation": [],
    "payment": [],
    "usb": [],
}

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "media-src": ["'self'", "blob:", "mediastream:"],
        "connect-src": ["'self'", "ws:", "wss:"] if DEBUG else ["'self'", "wss:"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}

# --- Calls: ICE servers and session resume (rooms/turn.py, docs/protocol.md) ---
STUN_URLS = env.list("STUN_URLS", default=[])
TURN_URLS = env.list("TURN_URLS", default=[])
TURN_SECRET = env.str("TURN_SECRET", default="")
TURN_TTL = env.int("TURN_TTL", default=3600)
ICE_RELAY_ONLY = env_bool("ICE_RELAY_ONLY", default=False)
for _url in STUN_URLS + TURN_URLS:
    if not _url.startswith(("stun:", "stuns:", "turn:", "turns:")):
        raise ImproperlyConfigured(f"STUN_URLS/TURN_URLS: {_url!r} is not a stun:/turn: URL")
if TURN_URLS and not TURN_SECRET:
    raise ImproperlyConfigured("TURN_SECRET must be set when TURN_URLS is")
if not 60 <= TURN_TTL <= 7 * 86400:
    raise ImproperlyConfigured(f"TURN_TTL={TURN_TTL} must be between 60 s and 7 days")
if ICE_RELAY_ONLY and not TURN_URLS:
    raise ImproperlyConfigured("ICE_RELAY_ONLY needs TURN_URLS (else no path)")
# A peer whose socket dropped keeps its seat (and peer id) this long for a resume.
CALL_RESUME_GRACE_S = env.float("CALL_RESUME_GRACE_S", default=15.0)
if not 1 <= CALL_RESUME_GRACE_S <= 60:
    raise ImproperlyConfigured("CALL_RESUME_GRACE_S must be between 1 and 60 seconds")

# --- Product limits --------------------------------------------------------
ROOM_DEFAULT_CAPACITY = 6
ROOM_MAX_CAPACITY = 12
# Per-user and per-address caps on what a page can create (docs in README).
ROOMS_PER_USER_MAX = int(env_positive("ROOMS_PER_USER_MAX", default=25))
GUESTS_PER_INVITE_MAX = int(env_positive("GUESTS_PER_INVITE_MAX", default=50))
SIGNUPS_PER_ADDRESS_PER_HOUR = int(env_positive("SIGNUPS_PER_ADDRESS_PER_HOUR", default=10))
GUESTS_PER_ADDRESS_PER_HOUR = int(env_positive("GUESTS_PER_ADDRESS_PER_HOUR", default=30))
INVITE_TTL_DAYS = env.int("INVITE_TTL_DAYS", default=7)
WS_MAX_MESSAGE_BYTES = env.int("WS_MAX_MESSAGE_BYTES", default=65536)
# Token buckets shared by every server through Redis (docs/protocol.md):
# chat messages per user, socket frames per user and per client address.
CHAT_RATE_PER_S = env_positive("CHAT_RATE_PER_S", default=5.0)
CHAT_RATE_BURST = int(env_positive("CHAT_RATE_BURST", default=20))
FRAME_RATE_PER_S = env_positive("FRAME_RATE_PER_S", default=50.0)
FRAME_RATE_BURST = int(env_positive("FRAME_RATE_BURST", default=200))
FRAME_RATE_IP_PER_S = env_positive("FRAME_RATE_IP_PER_S", default=150.0)
FRAME_RATE_IP_BURST = int(env_positive("FRAME_RATE_IP_BURST", default=600))
# New room sockets per client address: a whole office reconnecting after a
# blip fits the burst; a script opening sockets in a loop does not. Behind a
# shared address without USE_X_FORWARDED_FOR every client shares this one.
CONNECT_RATE_IP_PER_S = env_positive("CONNECT_RATE_IP_PER_S", default=5.0)
CONNECT_RATE_IP_BURST = int(env_positive("CONNECT_RATE_IP_BURST", default=60))
# How often each room socket checks it should still be open: its peer not
# reaped or taken over, its member not banned or removed, its login session
# not ended by a password change (the notices for these can be lost).
SOCKET_CHECK_INTERVAL_S = env_positive("SOCKET_CHECK_INTERVAL_S", default=10.0)

# --- i18n / static -----------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Where collectstatic writes and whitenoise serves from with DEBUG off (bin/up-production).
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="videochat@localhost")

# --- Logging (structlog over stdlib: JSON in production) --------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_JSON = env_bool("LOG_JSON", default=not DEBUG)
from videochat.logging import configure_logging  # noqa: E402

LOGGING_CONFIG = None
configure_logging(level=LOG_LEVEL, json=LOG_JSON)

# --- Deliveries: retries, breakers, dead letters, retention (deliveries/) ----
# Owned by the deliveries app; docs/operations.md explains each knob.
DELIVERY_RETRY_BASE_S = env.float("DELIVERY_RETRY_BASE_S", default=2.0)
DELIVERY_RETRY_MAX_S = env.float("DELIVERY_RETRY_MAX_S", default=600.0)
DELIVERY_RETRY_JITTER = env.float("DELIVERY_RETRY_JITTER", default=0.5)
DELIVERY_MAX_ATTEMPTS = env.int("DELIVERY_MAX_ATTEMPTS", default=8)
DELIVERY_HTTP_TIMEOUT_S = env.float("DELIVERY_HTTP_TIMEOUT_S", default=10.0)
BREAKER_FAIL_MAX = env.int("BREAKER_FAIL_MAX", default=5)
BREAKER_COOLDOWN_S = env.float("BREAKER_COOLDOWN_S", default=60.0)
# A delivery refused by an open breaker is not attempted and keeps its budget;
# it gives up (dead letter) once it has waited this long without being called.
DELIVERY_BREAKER_WAIT_MAX_S = env.float("DELIVERY_BREAKER_WAIT_MAX_S", default=3600.0)
DEADLETTER_TTL_DAYS = env.int("DEADLETTER_TTL_DAYS", default=30)
CHAT_RETENTION_DAYS = env.int("CHAT_RETENTION_DAYS", default=365)
# Mention emails per recipient and room: the first at once, later ones within
# this many seconds as one digest when the window ends (messaging/mentions.py).
MENTION_DIGEST_S = env.int("MENTION_DIGEST_S", default=60)
if not 1 <= MENTION_DIGEST_S <= 86400:
    raise ImproperlyConfigured("MENTION_DIGEST_S must be between 1 s and 1 day")
WEBHOOK_ALLOW_PRIVATE = env_bool("WEBHOOK_ALLOW_PRIVATE", default=False)
# Where the file email backend (EMAIL_BACKEND=...filebased.EmailBackend) writes.
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(RUN_DIR / "mail"))
# SMTP for the offline-member emails (EMAIL_BACKEND defaults to SMTP with DEBUG off).
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", default=False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL are exclusive")
# A mail server that hangs must not hold a worker: the attempt fails and is retried.
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", default=DELIVERY_HTTP_TIMEOUT_S)
if not 0 < DELIVERY_RETRY_BASE_S <= DELIVERY_RETRY_MAX_S:
    raise ImproperlyConfigured("need 0 < DELIVERY_RETRY_BASE_S <= DELIVERY_RETRY_MAX_S")
if not 0 <= DELIVERY_RETRY_JITTER <= 1:
    raise ImproperlyConfigured("DELIVERY_RETRY_JITTER must be between 0 and 1")
if not 1 <= DELIVERY_MAX_ATTEMPTS <= 50:
    raise ImproperlyConfigured("DELIVERY_MAX_ATTEMPTS must be between 1 and 50")
if not 0 < DELIVERY_HTTP_TIMEOUT_S <= 120:
    raise ImproperlyConfigured("DELIVERY_HTTP_TIMEOUT_S must be in (0, 120]")
if BREAKER_FAIL_MAX < 1 or BREAKER_COOLDOWN_S <= 0:
    raise ImproperlyConfigured("BREAKER_FAIL_MAX must be >= 1 and BREAKER_COOLDOWN_S > 0")
if DELIVERY_BREAKER_WAIT_MAX_S <= 0:
    raise ImproperlyConfigured("DELIVERY_BREAKER_WAIT_MAX_S must be > 0")
if DEADLETTER_TTL_DAYS < 1 or CHAT_RETENTION_DAYS < 1:
    raise ImproperlyConfigured("DEADLETTER_TTL_DAYS and CHAT_RETENTION_DAYS must be >= 1 day")
# Call-quality telemetry (rooms/telemetry.py): days each call.stats sample is kept.
CALL_STATS_TTL_DAYS = env.int("CALL_STATS_TTL_DAYS", default=7)
if not 1 <= CALL_STATS_TTL_DAYS <= 3650:
    raise ImproperlyConfigured("CALL_STATS_TTL_DAYS must be between 1 and 3650 days")
# How often a worker sweeps for tasks of dead workers (unacknowledged past the
# visibility timeout); kombu's defaults, a sweep about every 100 s.
CELERY_BROKER_TRANSPORT_OPTIONS["unacked_restore_interval"] = env.int(
    "CELERY_UNACKED_RESTORE_INTERVAL", default=10
)
CELERY_BROKER_TRANSPORT_OPTIONS["unacked_restore_throttle"] = env.int(
    "CELERY_UNACKED_RESTORE_THROTTLE", default=10
)
