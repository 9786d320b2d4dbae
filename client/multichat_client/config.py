"""Where the client finds the server and the token: environment, then a config file.

``MULTICHAT_URL`` and ``MULTICHAT_TOKEN`` win; otherwise ``url`` and ``token``
from ``~/.config/multichat/config.toml`` (``$XDG_CONFIG_HOME`` is honoured;
``MULTICHAT_CONFIG`` names another file). The URL defaults to
http://127.0.0.1:8000.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8000"


class ConfigError(Exception):
    """The configuration is missing something or cannot be read."""


@dataclass(frozen=True)
class Config:
    """The server's base URL and the API token (None if there is none)."""

    url: str
    token: str | None
    path: Path
    warnings: tuple[str, ...] = ()

    def require_token(self) -> str:
        """The token, or a ConfigError that says how to provide one."""
        if not self.token:
            raise ConfigError(
                'no API token: set MULTICHAT_TOKEN, or put token = "..." in '
                f"{self.path} (create a token at {self.url.rstrip('/')}/tokens/)"
            )
        return self.token


def config_path(environ: Mapping[str, str] = os.environ) -> Path:
    """MULTICHAT_CONFIG, else multichat/config.toml in $XDG_CONFIG_HOME or ~/.config."""
    if environ.get("MULTICHAT_CONFIG"):
        return Path(environ["MULTICHAT_CONFIG"]).expanduser()
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "multichat" / "config.toml"


def _read_file(path: Path) -> tuple[dict, list[str]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, []
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    warnings = []
    for key in ("url", "token"):
        if key in data and not isinstance(data[key], str):
            raise ConfigError(f"{path}: `{key}` must be a string")
    if (
        "token" in data
        and os.name == "posix"
        and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO)
    ):
        warnings.append(f"{path} holds a token and others can read it: chmod 600 {path}")
    return data, warnings


def load_config(environ: Mapping[str, str] = os.environ, *, url: str | None = None) -> Config:
    """The configuration from ``url`` (if given), the environment and the config file."""
    path = config_path(environ)
    data, warnings = _read_file(path)
    chosen_url = url or environ.get("MULTICHAT_URL") or data.get("url") or DEFAULT_URL
    token = environ.get("MULTICHAT_TOKEN") or data.get("token") or None
    if not chosen_url.startswith(("http://", "https://")):
        raise ConfigError(f"the server URL must start with http:// or https://, not {chosen_url!r}")
    return Config(
        url=chosen_url.rstrip("/"),
        token=token.strip() if token else None,
        path=path,
        warnings=tuple(warnings),
    )
