"""The logging configuration (LOG_FORMAT, LOG_LEVEL), shared by Django's settings and uvicorn.

config/server.py hands the same dict to uvicorn (``log_config``), so that
uvicorn's own loggers (uvicorn.error) propagate to the same handler and
format instead of getting the plain formatter uvicorn would install, and so
that lines logged before Django is set up (a multi-worker supervisor's) are
kept. The handler's filter (chat.logcontext.ContextFilter) adds the context
fields and keeps secrets out.
"""

import logging
import logging.config
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from pythonjsonlogger.core import RESERVED_ATTRS

from config.env import env_str

FORMATS = ("plain", "json")


def log_format() -> str:
    """LOG_FORMAT: ``plain`` (the default, for people) or ``json`` (one object per line)."""
    value = env_str("LOG_FORMAT", "plain").strip().lower() or "plain"
    if value not in FORMATS:
        raise ImproperlyConfigured(f"LOG_FORMAT={value!r} is not one of: {', '.join(FORMATS)}.")
    return value


def logging_config() -> dict[str, Any]:
    """A logging.config.dictConfig dict: one stderr handler, in LOG_FORMAT, at LOG_LEVEL."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                # time (ISO 8601, UTC), level, logger, message; then the context fields
                # (chat.logcontext) and any exc_info, which the formatter adds by itself.
                "fmt": ["levelname", "name", "message"],
                "rename_fields": {"levelname": "level", "name": "logger"},
                "timestamp": "time",
                "json_ensure_ascii": False,
                # uvicorn's lines carry a copy of the message with terminal colours.
                "reserved_attrs": [*RESERVED_ATTRS, "color_message"],
            },
        },
        "filters": {"context": {"()": "chat.logcontext.ContextFilter"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": log_format(),
                "filters": ["context"],
            }
        },
        "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
        "loggers": {
            # Django's own default logging gives "django" a console handler of its own
            # (for DEBUG) that would print each of its lines a second time, in plain text.
            "django": {"handlers": []},
            # markdown_it traces every parser rule of every message at DEBUG: noise.
            "markdown_it": {"level": "INFO"},
        },
    }


def configure(config: dict[str, Any]) -> None:
    """Django's LOGGING_CONFIG: apply ``config``; in JSON, Python's warnings become records too.

    Otherwise a warning (a library's UserWarning at start-up) would print its
    own plain lines among the JSON ones. The plain format keeps them as they were.
    """
    logging.config.dictConfig(config)
    logging.captureWarnings(log_format() == "json")
