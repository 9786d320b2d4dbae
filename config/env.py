"""Typed readers for settings that come from environment variables."""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    """Return the variable's value, or the default when it is unset."""
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    """Return a boolean variable; accepts 1/0, true/false, yes/no, on/off."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean: use 1 or 0, true or false.")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    """Return an integer variable no smaller than ``minimum``."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below its minimum of {minimum}.")
    return value


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    """Return a number variable no smaller than ``minimum``."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below its minimum of {minimum}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    """Return a comma-separated variable as a list of non-empty, stripped items."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def chat_max_frame_bytes() -> int:
    """CHAT_MAX_FRAME_BYTES: the largest socket frame.

    Read here once for both its readers: the settings (the consumer's check)
    and config/server.py, which hands it to uvicorn before Django is set up.
    """
    return env_int("CHAT_MAX_FRAME_BYTES", 65536, minimum=1024)


def default_data_dir(base: Path) -> Path:
    """DATA_DIR when it is unset: ``var/`` in a source checkout (beside manage.py), and
    ``./var`` under the working directory for an installed wheel, whose code lives in
    site-packages where no data belongs."""
    return base / "var" if (base / "manage.py").is_file() else Path.cwd() / "var"


def checkout_secret_key(root: Path) -> None:
    """In a source checkout, let manage.py find the secret key that scripts/run made.

    scripts/run keeps its data in ``<checkout>/var`` and writes a random key to
    ``var/secret_key``; so that ``python manage.py createsuperuser`` works as
    written after it, manage.py calls this: when none of DATA_DIR, SECRET_KEY
    and SECRET_KEY_FILE is set and that file exists, SECRET_KEY_FILE names it.
    Anything set in the environment wins, and a deployment that sets DATA_DIR
    (or has no such file) is left as it is, so production keeps its defaults.
    """
    if any(os.environ.get(name) for name in ("DATA_DIR", "SECRET_KEY", "SECRET_KEY_FILE")):
        return
    key_file = root / "var" / "secret_key"
    if key_file.is_file():
        os.environ["SECRET_KEY_FILE"] = str(key_file)
