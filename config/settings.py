"""Django settings for multichat, read from environment variables.

Every setting that an operator may change is documented, with its default,
in README.md ("Configuration"). Defaults are the safe production ones; the
run script (scripts/run) relaxes only what plain-HTTP loopback needs.
"""

import ipaddress
import urllib.parse
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from redis.asyncio.retry import Retry as _AsyncRetry
from redis.backoff import ExponentialBackoff as _ExponentialBackoff

from config.env import (
    chat_max_frame_bytes,
    default_data_dir,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_str,
)
from config.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("DATA_DIR", str(default_data_dir(BASE_DIR))))

DEBUG = env_bool("DEBUG", False)


def _setting_file(name: str) -> str | None:
    """The text of the file the variable ``name`` names (None when unset); refuse if unreadable."""
    path = env_str(name)
    if not path:
        return None
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise ImproperlyConfigured(f"{name}={path!r} cannot be read: {exc}") from exc


def _secret_key() -> str:
    key = env_str("SECRET_KEY") or (_setting_file("SECRET_KEY_FILE") or "").strip()
    if key:
        return key
    if DEBUG:
        return "django-insecure-development-only-key"
    raise ImproperlyConfigured(
        "SECRET_KEY is required when DEBUG is off: set SECRET_KEY (or SECRET_KEY_FILE) "
        "to a long random string, e.g. from "
        "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`."
    )


def _secret_key_fallbacks() -> list[str]:
    """Earlier secret keys still accepted for sessions and signatures while a new one rolls out.

    SECRET_KEY_FALLBACKS is a comma-separated list; SECRET_KEY_FALLBACKS_FILE names
    a file with one key per line (blank lines ignored). docs/operations.md says how
    to rotate SECRET_KEY with them.
    """
    lines = (_setting_file("SECRET_KEY_FALLBACKS_FILE") or "").splitlines()
    return env_list("SECRET_KEY_FALLBACKS", []) + [line.strip() for line in lines if line.strip()]


SECRET_KEY = _secret_key()
SECRET_KEY_FALLBACKS = _secret_key_fallbacks()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "chat",
    "ninja",  # the REST API's docs page (/api/docs) and its static files
    "api",
    "people",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "servestatic.middleware.ServeStaticMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language of each page: the user's choice (a cookie) or the browser's Accept-Language.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Log lines of a logged-in user's request carry the user's id (chat.logcontext).
    "chat.middleware.user_log_context",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The standalone site's own pages (login, lockout): not the chat app's, so a site
        # that embeds the chat keeps its own registration/ templates (docs/embedding.md).
        "DIRS": [BASE_DIR / "config" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "people.context_processors.signup",
            ],
        },
    },
]

# Database: DATABASE_URL (e.g. postgres://user@host:5432/multichat), else the
# embedded SQLite file in DATA_DIR. Under ASGI connections are not kept per
# thread (CONN_MAX_AGE=0); PostgreSQL uses psycopg's pool instead.
DATABASES = {
    "default": dj_database_url.config(
        env="DATABASE_URL",
        default=f"sqlite:///{DATA_DIR / 'db.sqlite3'}",
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database that stops answering is an outage, not a hang: every wait on it is
    # bounded, so requests fail within seconds (503 / SERVICE_UNAVAILABLE / close 1013).
    _statement_timeout_ms = int(1000 * env_float("DATABASE_STATEMENT_TIMEOUT", 10.0))
    # Django's backend, with a time limit on the pool's checkout check (config/postgresql).
    DATABASES["default"]["ENGINE"] = "config.postgresql"
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # libpq: seconds to open a connection (its minimum is 2).
            "connect_timeout": env_int("DATABASE_CONNECT_TIMEOUT", 3, minimum=2),
            # A connection cut mid-query fails when its data stays unacknowledged this long
            # (tcp_user_timeout, ms), or when an idle one stops answering keepalives.
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 2,
            "keepalives_count": 3,
            "tcp_user_timeout": int(1000 * env_float("DATABASE_TCP_TIMEOUT", 10.0, minimum=1)),
            "pool": {
                "min_size": env_int("DATABASE_POOL_MIN", 2, minimum=1),
                "max_size": env_int("DATABASE_POOL_MAX", 10, minimum=1),
                # Seconds a request waits for a pooled connection before it gives up.
                "timeout": env_float("DATABASE_POOL_TIMEOUT", 3.0, minimum=0.5),
            },
            # Each connection answers a check on checkout, within this many seconds: one
            # left broken by an outage or a restart is replaced, never handed to a request.
            "check_timeout": env_float("DATABASE_CHECK_TIMEOUT", 1.0, minimum=0.1),
        }
    )
    if _statement_timeout_ms:  # 0: no limit
        DATABASES["default"]["OPTIONS"]["options"] = f"-c statement_timeout={_statement_timeout_ms}"
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the one writer; IMMEDIATE takes the write
    # lock at BEGIN, so two posters queue instead of failing to upgrade a lock.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Threads that run the sockets' database calls (chat/dbguard.py in_pool), side by side:
# more than the pool's connections, so calls stuck on a database that stopped answering
# leave threads that fail the others within the pool's bounds instead of queueing them.
DATABASE_THREADS = env_int("DATABASE_THREADS", 32, minimum=2)

# Channel layer: REDIS_URL switches from the in-process layer (one process
# only) to channels_redis, which every server process shares.
REDIS_URL = env_str("REDIS_URL")
# Or Redis Sentinel: REDIS_SENTINELS=host:26379,host2:26379 and the master's name.
REDIS_SENTINELS = [
    (host, int(port))
    for host, _, port in (s.rpartition(":") for s in env_list("REDIS_SENTINELS", []))
]
REDIS_SENTINEL_MASTER = env_str("REDIS_SENTINEL_MASTER", "mymaster")
# The channel layer over several Redis servers: REDIS_LAYER_URLS=redis://a:6379/0,redis://b:6379/0.
# channels_redis shards by name (the low 12 bits of the CRC32 of each group's and channel's
# name, cut into as many equal ranges as there are URLs: chat/shards.py), so every process
# must list the same URLs in the same order, and a shard added moves rooms. Only the layer
# shards; rate limits, presence and rosters stay on REDIS_URL (or Sentinel), which is
# still required. Unset: the layer uses REDIS_URL or Sentinel, as before.
REDIS_LAYER_URLS = env_list("REDIS_LAYER_URLS", [])
# Every Redis client (layer, rate limits): how often a command that failed on a
# broken connection is retried on a new one, and after how many idle seconds a
# connection is PINGed before use (0: never).
REDIS_RETRIES = env_int("REDIS_RETRIES", 2)
REDIS_HEALTH_CHECK_INTERVAL = env_int("REDIS_HEALTH_CHECK_INTERVAL", 15)
CHANNEL_LAYER_PREFIX = env_str("CHANNEL_LAYER_PREFIX", "multichat")
# pubsub (default): one PUBLISH per room event, whatever the number of
# members; each process fans out locally. core: channels_redis' list-based
# layer (one copy per recipient). docs/architecture.md has the measurements.
CHANNEL_LAYER = env_str("CHANNEL_LAYER", "pubsub")
_LAYER_BACKENDS = {
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    "core": "channels_redis.core.RedisChannelLayer",
}
if REDIS_LAYER_URLS and not (REDIS_URL or REDIS_SENTINELS):
    raise ImproperlyConfigured(
        "REDIS_LAYER_URLS shards only the channel layer: also set REDIS_URL (or REDIS_SENTINELS) "
        "for the rate limits and presence every process shares (it may be one of the layer's)."
    )
if REDIS_URL or REDIS_SENTINELS:
    if CHANNEL_LAYER not in _LAYER_BACKENDS:
        raise ImproperlyConfigured(f"CHANNEL_LAYER={CHANNEL_LAYER!r}: use pubsub or core.")
    _redis_hosts: list[dict[str, Any]]
    if REDIS_LAYER_URLS:
        _redis_hosts = [{"address": url} for url in REDIS_LAYER_URLS]
    elif REDIS_URL:
        _redis_hosts = [{"address": REDIS_URL}]
    else:
        _redis_hosts = [{"sentinels": REDIS_SENTINELS, "master_name": REDIS_SENTINEL_MASTER}]
    # redis-py 8 defaults socket_timeout to 5 s, shorter than the core layer's
    # blocking reads: give it room; fail fast on connect. A pooled connection
    # that Redis dropped (restart, outage) fails its next command; redis-py
    # does not retry by default, so the first post after an outage would fail.
    # retry: re-make the connection and try again; health_check_interval: PING
    # a connection idle that long before using it.
    for _redis_host in _redis_hosts:
        _redis_host |= {
            "socket_timeout": 30,
            "socket_connect_timeout": 2,
            "retry": _AsyncRetry(_ExponentialBackoff(cap=0.5, base=0.05), REDIS_RETRIES),
            "health_check_interval": REDIS_HEALTH_CHECK_INTERVAL,
        }
    CHANNEL_LAYERS: dict[str, Any] = {
        "default": {
            "BACKEND": _LAYER_BACKENDS[CHANNEL_LAYER],
            "CONFIG": {"hosts": _redis_hosts, "prefix": CHANNEL_LAYER_PREFIX},
        }
    }
    if CHANNEL_LAYER == "core":
        CHANNEL_LAYERS["default"]["CONFIG"].update(
            capacity=env_int("CHANNEL_LAYER_CAPACITY", 10000, minimum=10), expiry=60
        )
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": env_int("CHANNEL_LAYER_CAPACITY", 10000, minimum=10)},
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses logins while locked out
    "django.contrib.auth.backends.ModelBackend",
]
# Login throttling (django-axes): LOGIN_FAILURE_LIMIT failures for one
# username from one address lock that pair out for LOGIN_LOCKOUT_MINUTES.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False

# Sign-up: with an invitation link always; without one (/signup/) only when this is on.
CHAT_OPEN_SIGNUP = env_bool("CHAT_OPEN_SIGNUP", False)
# Sign-up attempts (form posts) per hour from one client address; 0 = no limit.
CHAT_SIGNUP_PER_HOUR = env_int("CHAT_SIGNUP_PER_HOUR", 20)

# /metrics (Prometheus, chat.metrics): answered to a request with the bearer token
# METRICS_TOKEN (unset: no token works) or from an address in METRICS_ALLOW_IPS
# (CIDRs; default loopback only). Anyone else gets 403 (docs/security.md).
METRICS_TOKEN = env_str("METRICS_TOKEN")
try:
    METRICS_ALLOW_IPS = [
        ipaddress.ip_network(cidr, strict=False)
        for cidr in env_list("METRICS_ALLOW_IPS", ["127.0.0.0/8", "::1/128"])
    ]
except ValueError as exc:
    raise ImproperlyConfigured(
        f"METRICS_ALLOW_IPS must be comma-separated addresses or CIDRs (10.0.0.0/8): {exc}"
    ) from exc

LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

LANGUAGE_CODE = "en"
# The UI's languages: every string goes through gettext (templates, Python, and the JavaScript
# catalogue at /jsi18n/); chat/locale/ holds the translations of every app's strings, inside
# a package so that the wheel carries them. Dates follow the browser's locale.
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
# Listed here as well as found as chat's app catalogue: LOCALE_PATHS comes before
# django.contrib's catalogues, and manage.py messages writes every app's strings here.
LOCALE_PATHS = [BASE_DIR / "chat" / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(DATA_DIR / "static")))


def _chat_files_storage() -> dict[str, Any]:
    """Where attachments live: an S3 bucket when FILES_S3_BUCKET is set, else DATA_DIR/files.

    On S3 nothing is public: objects are private and every URL the app hands out is
    presigned (signature v4) and short-lived (the serve view's 302, docs/operations.md).
    An S3-compatible server (SeaweedFS, MinIO, Garage, Ceph...) is named by
    FILES_S3_ENDPOINT_URL and addressed path-style (``host/bucket/key``), which they all
    take without wildcard DNS; AWS itself (no endpoint) keeps boto3's default style.
    Without a key pair, boto3 finds credentials its own way (an instance role, AWS_*).
    """
    bucket = env_str("FILES_S3_BUCKET")
    if not bucket:
        return {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(DATA_DIR / "files")},
        }
    access_key = env_str("FILES_S3_ACCESS_KEY_ID")
    secret_key = (
        env_str("FILES_S3_SECRET_ACCESS_KEY")
        or (_setting_file("FILES_S3_SECRET_ACCESS_KEY_FILE") or "").strip()
    )
    if bool(access_key) != bool(secret_key):
        raise ImproperlyConfigured(
            "FILES_S3_ACCESS_KEY_ID and FILES_S3_SECRET_ACCESS_KEY (or "
            "FILES_S3_SECRET_ACCESS_KEY_FILE) go together: set both, or neither to let "
            "boto3 find credentials itself (an instance role, AWS_* variables)."
        )
    endpoint = env_str("FILES_S3_ENDPOINT_URL")
    options: dict[str, Any] = {
        "bucket_name": bucket,
        "endpoint_url": endpoint or None,
        "region_name": env_str("FILES_S3_REGION") or None,
        "access_key": access_key or None,
        "secret_key": secret_key or None,
        "default_acl": "private",
        "querystring_auth": True,
        "querystring_expire": CHAT_FILES_URL_EXPIRES_SECONDS,
        "signature_version": "s3v4",
        "file_overwrite": True,  # names hold a random key: no check for a clash (a request)
    }
    if endpoint:
        options["addressing_style"] = "path"
    return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}


def _chat_files_origins() -> list[str]:
    """Where the browser loads attached images from besides this site, for the CSP's img-src.

    On S3 the serve view answers a thumbnail or an image with a 302 to the bucket, and
    the CSP holds for the redirect's target too: the endpoint's origin (an S3-compatible
    server), or AWS's bucket hosts, or FILES_S3_ORIGINS when the bucket is reached by
    another name (a CDN, a custom domain). Nothing on local storage: files are this site's.
    """
    bucket = env_str("FILES_S3_BUCKET")
    if not bucket:
        return []
    if env_str("FILES_S3_ORIGINS"):
        return env_list("FILES_S3_ORIGINS", [])
    endpoint = env_str("FILES_S3_ENDPOINT_URL")
    if endpoint:
        parts = urllib.parse.urlsplit(endpoint)
        return [f"{parts.scheme}://{parts.netloc}"]
    region = env_str("FILES_S3_REGION")
    origins = [f"https://{bucket}.s3.amazonaws.com"]
    if region:
        origins.append(f"https://{bucket}.s3.{region}.amazonaws.com")
    return origins


# How long a presigned URL to a file on S3 works (the serve view's 302).
CHAT_FILES_URL_EXPIRES_SECONDS = env_int("CHAT_FILES_URL_EXPIRES_SECONDS", 60, minimum=1)
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "chat.storage.StaticStorage"},
    # Attachments (chat.files; conf CHAT_FILES_STORAGE names this alias): never served by a
    # static or media route; only chat.views.attachment answers for them, after its access
    # check (with a redirect to a presigned URL on S3).
    "chat_files": _chat_files_storage(),
}

# Security. Cookies are Secure unless SECURE_COOKIES=0 (plain-HTTP loopback only).
SECURE_COOKIES = env_bool("SECURE_COOKIES", not DEBUG)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# The language picker's choice (django_language): read by the server only, like the session.
LANGUAGE_COOKIE_SECURE = SECURE_COOKIES
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if env_bool("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# No inline script anywhere: every script is a file served from this origin.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        # Attached images on S3 come from the bucket (_chat_files_origins).
        "img-src": [SELF, "data:", *_chat_files_origins()],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# The chat itself.
NOTIFY_USERS_ON_ENTER_OR_LEAVE_ROOMS = env_bool("NOTIFY_USERS_ON_ENTER_OR_LEAVE_ROOMS", True)
CHAT_MESSAGE_MAX_LENGTH = env_int("CHAT_MESSAGE_MAX_LENGTH", 4000, minimum=1)
CHAT_MAX_FRAME_BYTES = chat_max_frame_bytes()
CHAT_HISTORY_PAGE_SIZE = 50
CHAT_HISTORY_MAX_PAGE_SIZE = 100
CHAT_REPLAY_MAX = env_int("CHAT_REPLAY_MAX", 1000, minimum=1)
CHAT_RETENTION_DAYS = env_int("CHAT_RETENTION_DAYS", 0)
CHAT_SEND_RATE = env_float("CHAT_SEND_RATE", 5.0)  # messages per second per user; 0 = no limit
CHAT_SEND_BURST = env_int("CHAT_SEND_BURST", 20, minimum=1)
# join and leave commands share one budget; a page load that joins 20 rooms fits the burst.
CHAT_JOIN_RATE = env_float("CHAT_JOIN_RATE", 2.0)  # joins + leaves per second per user; 0 = off
CHAT_JOIN_BURST = env_int("CHAT_JOIN_BURST", 30, minimum=1)
# history pages, socket and REST together.
CHAT_HISTORY_RATE = env_float("CHAT_HISTORY_RATE", 5.0)  # pages per second per user; 0 = off
CHAT_HISTORY_BURST = env_int("CHAT_HISTORY_BURST", 20, minimum=1)
# Enter/leave notices are per person (chat/presence.py): a person's last socket may be gone
# this long (a reload, a reconnect, a server restart) before the room is told they left.
CHAT_PRESENCE_GRACE_SECONDS = env_float("CHAT_PRESENCE_GRACE_SECONDS", 30.0, minimum=0.0)
# Presence (chat/roster.py): each process rewrites its entries this often, each living 3x
# as long, so a killed process's users drop out within 4x this (plus the coalescing window).
CHAT_PRESENCE_REFRESH_SECONDS = env_float("CHAT_PRESENCE_REFRESH_SECONDS", 10.0, minimum=0.1)
# At most one presence frame per room per socket in this many seconds.
CHAT_PRESENCE_COALESCE_SECONDS = env_float("CHAT_PRESENCE_COALESCE_SECONDS", 1.0)
# typing notices per second per user (0 = off), and how long a client shows one.
CHAT_TYPING_RATE = env_float("CHAT_TYPING_RATE", 1.0)
CHAT_TYPING_BURST = env_int("CHAT_TYPING_BURST", 5, minimum=1)
CHAT_TYPING_EXPIRES_SECONDS = env_int("CHAT_TYPING_EXPIRES_SECONDS", 6, minimum=1)
CHAT_MAX_ROOMS_PER_SOCKET = env_int("CHAT_MAX_ROOMS_PER_SOCKET", 100, minimum=1)
CHAT_MAX_SOCKETS_PER_USER = env_int("CHAT_MAX_SOCKETS_PER_USER", 20, minimum=1)
# Every open socket re-reads its user, session or token and its rooms this often
# (and when the channel layer comes back), whether or not a change notice arrived.
CHAT_ACCESS_RECHECK_SECONDS = env_float("CHAT_ACCESS_RECHECK_SECONDS", 60.0)
# Events queued for a socket that does not keep up; past it, stored messages are
# filled from the database when it drains. Behind for CHAT_SLOW_SOCKET_SECONDS: closed 4408.
CHAT_SOCKET_QUEUE_MAX = env_int("CHAT_SOCKET_QUEUE_MAX", 1000, minimum=1)
CHAT_SLOW_SOCKET_SECONDS = env_float("CHAT_SLOW_SOCKET_SECONDS", 30.0)
CHAT_ACTIVITY_SECONDS = env_float("CHAT_ACTIVITY_SECONDS", 1.0)  # the activity feed's tick
# Authors may edit and delete their own posts for this long (staff delete any post at any
# time); 0 = no limit.
CHAT_EDIT_WINDOW_SECONDS = env_float("CHAT_EDIT_WINDOW_SECONDS", 0.0, minimum=0.0)
# Different reactions on one post, at most.
CHAT_REACTIONS_MAX_PER_POST = env_int("CHAT_REACTIONS_MAX_PER_POST", 20, minimum=1)
# Rooms made by users (chat/rooms.py): whether non-staff may create them, the longest
# title a user may give, and how fast one user may create or rename rooms (one budget).
CHAT_USERS_CREATE_ROOMS = env_bool("CHAT_USERS_CREATE_ROOMS", True)
CHAT_ROOM_TITLE_MAX_LENGTH = min(255, env_int("CHAT_ROOM_TITLE_MAX_LENGTH", 80, minimum=1))
CHAT_ROOM_CREATE_RATE = env_float("CHAT_ROOM_CREATE_RATE", 1 / 60)  # per second per user; 0 = off
CHAT_ROOM_CREATE_BURST = env_int("CHAT_ROOM_CREATE_BURST", 5, minimum=1)
# Direct conversations (chat/rooms.py direct_open): the most people in one, the opener
# included (2 or more; 1 person alone may still keep notes to self). Opening a new one is
# charged to the room-create budget above; opening an existing one to the join budget.
CHAT_DIRECT_MAX_MEMBERS = env_int("CHAT_DIRECT_MAX_MEMBERS", 8, minimum=2)
# The browser's heartbeat: after this many seconds without a frame it sends `ping`, and it
# drops and reconnects a socket whose ping (or handshake) is not answered within the timeout.
CHAT_HEARTBEAT_SECONDS = env_float("CHAT_HEARTBEAT_SECONDS", 25.0, minimum=0.1)
# Longer than the database's own bounds (DATABASE_TCP_TIMEOUT, DATABASE_STATEMENT_TIMEOUT: 10 s):
# a handshake or command waiting on a stalled database is answered (1013, SERVICE_UNAVAILABLE)
# before the page would give up on it.
CHAT_HEARTBEAT_TIMEOUT_SECONDS = env_float("CHAT_HEARTBEAT_TIMEOUT_SECONDS", 20.0, minimum=0.1)

# Attachments (chat/files.py): the largest file, each user's upload budget per 24 hours,
# the most files on one post, the sniffed types let in (comma-separated; "type/prefix.*"
# lets in a family), and the hours an upload that was never posted is kept (purge_files).
CHAT_UPLOAD_MAX_BYTES = env_int("CHAT_UPLOAD_MAX_BYTES", 25 * 1024 * 1024, minimum=1)
CHAT_UPLOAD_QUOTA_BYTES_PER_DAY = env_int(
    "CHAT_UPLOAD_QUOTA_BYTES_PER_DAY", 500 * 1024 * 1024, minimum=0
)
CHAT_UPLOAD_MAX_FILES = env_int("CHAT_UPLOAD_MAX_FILES", 10, minimum=1)
# Images over this many pixels are refused before they are decoded (memory: ~4 bytes a pixel).
CHAT_UPLOAD_MAX_PIXELS = env_int("CHAT_UPLOAD_MAX_PIXELS", 50_000_000, minimum=1)
# Uploads per second per user, and the burst (a dozen pasted screenshots); 0 = off.
CHAT_UPLOAD_RATE = env_float("CHAT_UPLOAD_RATE", 1.0)
CHAT_UPLOAD_BURST = env_int("CHAT_UPLOAD_BURST", 20, minimum=1)
if env_str("CHAT_UPLOAD_ALLOWED_TYPES"):
    CHAT_UPLOAD_ALLOWED_TYPES = env_list("CHAT_UPLOAD_ALLOWED_TYPES", [])
CHAT_UPLOAD_ORPHAN_HOURS = env_int("CHAT_UPLOAD_ORPHAN_HOURS", 24, minimum=1)
# The STORAGES alias attachments go to ("chat_files" above; the s3 set-up replaces it).
CHAT_FILES_STORAGE = env_str("CHAT_FILES_STORAGE", "chat_files")
# nginx's internal location for X-Accel-Redirect (e.g. /_files/); "": the app streams them.
CHAT_FILES_ACCEL_REDIRECT = env_str("CHAT_FILES_ACCEL_REDIRECT", "")
# CHAT_FILES_URL_EXPIRES_SECONDS (S3's presigned URLs) is read above, with STORAGES.

# LOG_FORMAT (plain or json) and LOG_LEVEL; config/server.py gives uvicorn the same dict.
LOGGING = logging_config()
LOGGING_CONFIG = "config.logs.configure"
