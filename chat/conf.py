"""Every setting the chat reads, with its default: the one place chat, api and people read them.

A setting is read as ``conf.NAME``: the Django setting ``NAME`` when the project sets it,
else the default below. The standalone server's config/settings.py sets each one from the
environment; a host project that embeds the chat (docs/embedding.md) sets only what it wants
to change. Reads are live, so ``override_settings`` in tests applies to them.

The chat's own settings are named ``CHAT_*``; the few without the prefix are the Redis and
metrics settings the standalone server shares with its channel layer and /metrics.
"""

import ipaddress
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.urls import reverse

DEFAULTS: dict[str, Any] = {
    # Messages and history.
    "CHAT_MESSAGE_MAX_LENGTH": 4000,
    "CHAT_MAX_FRAME_BYTES": 65536,
    "CHAT_HISTORY_PAGE_SIZE": 50,
    "CHAT_HISTORY_MAX_PAGE_SIZE": 100,
    "CHAT_REPLAY_MAX": 1000,
    "CHAT_RETENTION_DAYS": 0,
    "CHAT_EDIT_WINDOW_SECONDS": 0.0,
    "CHAT_REACTIONS_MAX_PER_POST": 20,
    # Attachments (chat.files): limits, the types let in (sniffed from the bytes; a name
    # ending in ".*" lets in every type under it), and where and how the files are served.
    "CHAT_UPLOAD_MAX_BYTES": 25 * 1024 * 1024,
    "CHAT_UPLOAD_QUOTA_BYTES_PER_DAY": 500 * 1024 * 1024,
    "CHAT_UPLOAD_MAX_FILES": 10,
    "CHAT_UPLOAD_ALLOWED_TYPES": [
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "application/pdf",
        "text/plain",
        "application/zip",
        "application/gzip",
        "application/x-tar",
        "application/x-7z-compressed",
        "audio/mpeg",
        "audio/ogg",
        "video/mp4",
        "video/webm",
        "application/vnd.openxmlformats-officedocument.*",
        "application/vnd.oasis.opendocument.*",
    ],
    "CHAT_UPLOAD_ORPHAN_HOURS": 24,
    # The STORAGES alias the files go to; a project without it uses "default".
    "CHAT_FILES_STORAGE": "chat_files",
    # nginx: serve local files with X-Accel-Redirect to this internal location ("": off).
    "CHAT_FILES_ACCEL_REDIRECT": "",
    # A storage without local paths (S3): a redirect to a signed URL that expires after this.
    "CHAT_FILES_URL_EXPIRES_SECONDS": 60,
    # Rate limits (per user; a rate of 0 turns the limit off).
    "CHAT_SEND_RATE": 5.0,
    "CHAT_SEND_BURST": 20,
    "CHAT_JOIN_RATE": 2.0,
    "CHAT_JOIN_BURST": 30,
    "CHAT_HISTORY_RATE": 5.0,
    "CHAT_HISTORY_BURST": 20,
    "CHAT_TYPING_RATE": 1.0,
    "CHAT_TYPING_BURST": 5,
    "CHAT_TYPING_EXPIRES_SECONDS": 6,
    "CHAT_ROOM_CREATE_RATE": 1 / 60,
    "CHAT_ROOM_CREATE_BURST": 5,
    # Presence and enter/leave notices.
    "NOTIFY_USERS_ON_ENTER_OR_LEAVE_ROOMS": True,
    "CHAT_PRESENCE_GRACE_SECONDS": 30.0,
    "CHAT_PRESENCE_REFRESH_SECONDS": 10.0,
    "CHAT_PRESENCE_COALESCE_SECONDS": 1.0,
    # Sockets.
    "CHAT_MAX_ROOMS_PER_SOCKET": 100,
    "CHAT_MAX_SOCKETS_PER_USER": 20,
    "CHAT_ACCESS_RECHECK_SECONDS": 60.0,
    "CHAT_SOCKET_QUEUE_MAX": 1000,
    "CHAT_SLOW_SOCKET_SECONDS": 30.0,
    "CHAT_ACTIVITY_SECONDS": 1.0,
    "CHAT_HEARTBEAT_SECONDS": 25.0,
    "CHAT_HEARTBEAT_TIMEOUT_SECONDS": 20.0,
    # Rooms.
    "CHAT_USERS_CREATE_ROOMS": True,
    "CHAT_ROOM_TITLE_MAX_LENGTH": 80,
    "CHAT_DIRECT_MAX_MEMBERS": 8,
    # Who manages rooms and enters staff-only ones (chat/permissions.py is_manager): None is
    # ``user.is_staff``; else a permission ("app.codename") or a dotted callable (user) -> bool.
    "CHAT_MANAGER_PERMISSION": None,
    # The socket's path (chat/routing.py): the page connects to it, the ASGI router serves it.
    # None: "chat/stream/" under wherever chat.urls is mounted (socket_path below).
    "CHAT_SOCKET_PATH": None,
    # The user-model method or attribute that names a person who set no display name
    # (e.g. "get_full_name"); None: their USERNAME_FIELD, as the standalone server shows.
    "CHAT_USER_DISPLAY_NAME": None,
    # The template the chat page extends (docs/embedding.md lists its blocks).
    "CHAT_BASE_TEMPLATE": "chat/base.html",
    # Sign-up (the people app; a host without it has its own).
    "CHAT_OPEN_SIGNUP": False,
    "CHAT_SIGNUP_PER_HOUR": 20,
    # Redis for the rate limits, presence and rosters every process shares; unset: in-process.
    "REDIS_URL": None,
    "REDIS_SENTINELS": [],
    "REDIS_SENTINEL_MASTER": "mymaster",
    "REDIS_LAYER_URLS": [],
    "REDIS_RETRIES": 2,
    "REDIS_HEALTH_CHECK_INTERVAL": 15,
    "CHANNEL_LAYER_PREFIX": "multichat",
    # Threads that run the sockets' database calls (chat/dbguard.py).
    "DATABASE_THREADS": 32,
    # /metrics: a bearer token, and the addresses answered without one.
    "METRICS_TOKEN": None,
    "METRICS_ALLOW_IPS": [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")],
}


def socket_path() -> str:
    """The chat socket's path: CHAT_SOCKET_PATH, else ``chat/stream/`` under the chat's URLs.

    The standalone server mounts chat.urls at / (so /chat/stream/); a site that mounts them
    at /chat/ has its socket at /chat/chat/stream/, where the Python client, given the
    site's https://host/chat/ as its server URL, looks for it, as it does for api/.
    """
    return str(getattr(settings, "CHAT_SOCKET_PATH", None) or reverse("chat") + "chat/stream/")


def __getattr__(name: str) -> Any:
    """The project's setting ``name``, else its default; an unknown name is an AttributeError.

    The value is then kept as this module's attribute, so the next read is a plain attribute
    lookup (some are read per event delivered, chat/delivery.py); a changed setting
    (override_settings, the tests' ``settings``) drops it again (_forget below).
    """
    try:
        default = DEFAULTS[name]
    except KeyError:
        raise AttributeError(f"{name} is not a chat setting (chat/conf.py DEFAULTS)") from None
    value = globals()[name] = getattr(settings, name, default)
    return value


@receiver(setting_changed)
def _forget(*, setting: str, **kwargs: Any) -> None:
    """A setting changed (override_settings): read it from the settings again next time."""
    if setting in DEFAULTS:
        globals().pop(setting, None)
