"""A Python client for multichat: the REST API, the chat socket with resume, and a CLI.

    from multichat_client import ChatClient

    async with ChatClient("https://chat.example.com", token) as chat:
        await chat.join(3)
        await chat.send(3, "hello")
        async for event in chat:
            print(event)

``ChatClient`` reconnects by itself (exponential backoff with jitter) and
re-joins each room with ``since`` = the last seq it delivered, so a dropped
connection or a server restart loses and repeats nothing. Edits, deletions
and reactions are ``Change`` events in the same stream (``Change.apply``
folds one into the ``Message`` it targets). Files: ``upload`` one (streamed
from disk), ``send(room, text, files=[info])``; each ``Message`` has ``files``
(``FileInfo``), which ``download`` saves. ``RestClient`` is
the blocking REST client; ``multichat`` (or ``python -m multichat_client``) is the CLI.
"""

from typing import TYPE_CHECKING, Any

from multichat_client.config import Config, ConfigError, load_config
from multichat_client.errors import AuthError, ConnectionLost, MultichatError
from multichat_client.files import FileInfo
from multichat_client.messages import Change, Message, Reaction
from multichat_client.rest import RestClient

# The package's version (client/pyproject.toml reads it from here).
__version__ = "0.1.0"

if TYPE_CHECKING:
    from multichat_client.client import (
        Activity,
        ChatClient,
        JoinInfo,
        Mention,
        Presence,
        PresenceMember,
        ReadMark,
        RoomActivity,
        RoomError,
        Typing,
    )

# The socket client needs the websockets package; the REST client and the CLI's
# REST commands need only the standard library, so the socket side loads on first use.
_SOCKET_NAMES = frozenset(
    {
        "Activity", "ChatClient", "JoinInfo", "Mention", "Presence", "PresenceMember",
        "ReadMark", "RoomActivity", "RoomError", "Typing",
    }
)  # fmt: skip


def __getattr__(name: str) -> Any:
    """The socket client's names, imported when first asked for."""
    if name in _SOCKET_NAMES:
        from multichat_client import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Activity",
    "AuthError",
    "Change",
    "ChatClient",
    "Config",
    "ConfigError",
    "ConnectionLost",
    "FileInfo",
    "JoinInfo",
    "Mention",
    "Message",
    "MultichatError",
    "Presence",
    "PresenceMember",
    "Reaction",
    "ReadMark",
    "RestClient",
    "RoomActivity",
    "RoomError",
    "Typing",
    "load_config",
]
