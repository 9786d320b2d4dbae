"""System checks: what a project embedding the chat must provide, said at startup, not a traceback.

Registered in ChatConfig.ready; ``manage.py check`` (and runserver, migrate) print them.
docs/embedding.md lists them with their fixes.
"""

from collections.abc import Sequence
from importlib import import_module
from typing import Any

from django.apps import AppConfig, apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.template import TemplateDoesNotExist
from django.template.loader import get_template

from chat import conf

# Apps the chat's models, pages and socket need beside itself.
REQUIRED_APPS = {
    "django.contrib.auth": "accounts and permissions",
    "django.contrib.contenttypes": "permissions",
    "django.contrib.sessions": "the browser's login on the socket",
    "channels": "the socket (Django Channels)",
    "api": "tokens and the REST API the chat page calls",
    "people": "the display names and profile cards the chat page shows",
}
REQUIRED_MIDDLEWARE = {
    "django.contrib.sessions.middleware.SessionMiddleware": "the chat page's login",
    "django.contrib.auth.middleware.AuthenticationMiddleware": "the chat page's login",
}
# Engines whose sessions an open socket cannot find again (an access re-check would drop it).
UNREADABLE_SESSION_ENGINES = {"django.contrib.sessions.backends.signed_cookies"}


@register(Tags.compatibility)
def check_embedding(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Every setting and app the chat needs from the project, each missing one with its fix."""
    return [
        *_apps(),
        *_middleware(),
        *_channel_layer(),
        *_asgi(),
        *_sessions(),
        *_chat_settings(),
    ]


def _apps() -> list[CheckMessage]:
    return [
        Error(
            f"{name!r} is not in INSTALLED_APPS; the chat needs it for {why}.",
            hint=f"Add {name!r} to INSTALLED_APPS (docs/embedding.md).",
            id="multichat.E001",
        )
        for name, why in REQUIRED_APPS.items()
        if not apps.is_installed(name)
    ]


def _middleware() -> list[CheckMessage]:
    return [
        Error(
            f"{name} is not in MIDDLEWARE; the chat needs it for {why}.",
            hint=f"Add {name!r} to MIDDLEWARE.",
            id="multichat.E002",
        )
        for name, why in REQUIRED_MIDDLEWARE.items()
        if name not in settings.MIDDLEWARE
    ]


def _channel_layer() -> list[CheckMessage]:
    layers = getattr(settings, "CHANNEL_LAYERS", None)
    if not layers or "default" not in layers:
        return [
            Error(
                "CHANNEL_LAYERS has no 'default' layer; the chat's rooms broadcast through it.",
                hint=(
                    "Set CHANNEL_LAYERS = {'default': {'BACKEND': "
                    "'channels_redis.pubsub.RedisPubSubChannelLayer', 'CONFIG': {'hosts': "
                    "['redis://...']}}} (or channels.layers.InMemoryChannelLayer for one "
                    "process only)."
                ),
                id="multichat.E003",
            )
        ]
    backend = layers["default"].get("BACKEND", "")
    try:
        module, _, name = backend.rpartition(".")
        getattr(import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return [
            Error(
                f"CHANNEL_LAYERS['default']['BACKEND'] = {backend!r} cannot be imported.",
                hint="Install the layer's package (channels_redis) or fix the dotted path.",
                id="multichat.E004",
            )
        ]
    return []


def _asgi() -> list[CheckMessage]:
    if getattr(settings, "ASGI_APPLICATION", None):
        return []
    return [
        Error(
            "ASGI_APPLICATION is not set; the chat socket needs an ASGI server.",
            hint=(
                "Point ASGI_APPLICATION at your asgi.py's application, made with "
                "chat.asgi.wrap(get_asgi_application()) (docs/embedding.md)."
            ),
            id="multichat.E005",
        )
    ]


def _sessions() -> list[CheckMessage]:
    engine = settings.SESSION_ENGINE
    if engine in UNREADABLE_SESSION_ENGINES:
        return [
            Error(
                f"SESSION_ENGINE = {engine!r}: an open socket cannot look its session up again "
                "(the periodic access re-check would close it).",
                hint="Use the db, cached_db or cache session engine.",
                id="multichat.E006",
            )
        ]
    try:
        import_module(engine).SessionStore  # noqa: B018  (the attribute is the check)
    except (ImportError, AttributeError):
        return [
            Error(
                f"SESSION_ENGINE = {engine!r} has no importable SessionStore.",
                hint="Fix SESSION_ENGINE; the socket reads the browser's session with it.",
                id="multichat.E007",
            )
        ]
    return []


def _chat_settings() -> list[CheckMessage]:
    found: list[CheckMessage] = []
    path = conf.CHAT_SOCKET_PATH
    if path is not None and not (
        isinstance(path, str) and path.startswith("/") and path.endswith("/")
    ):
        found.append(
            Error(
                f"CHAT_SOCKET_PATH = {path!r} must start and end with '/'.",
                hint="For example '/chat/stream/'; unset: chat/stream/ under the chat's URLs.",
                id="multichat.E008",
            )
        )
    rule = conf.CHAT_MANAGER_PERMISSION
    if rule and not callable(rule) and not (isinstance(rule, str) and "." in rule):
        found.append(
            Error(
                f"CHAT_MANAGER_PERMISSION = {rule!r} is neither a permission nor a callable.",
                hint=(
                    "Name a permission as 'app_label.codename', or a callable (user) -> bool "
                    "as 'package.module.function'; None keeps is_staff."
                ),
                id="multichat.E009",
            )
        )
    try:
        get_template(conf.CHAT_BASE_TEMPLATE)
    except TemplateDoesNotExist:
        found.append(
            Error(
                f"CHAT_BASE_TEMPLATE = {conf.CHAT_BASE_TEMPLATE!r} is not found by any template "
                "loader.",
                hint="Name a template your project has (it must define a 'body' block).",
                id="multichat.E010",
            )
        )
    return found
