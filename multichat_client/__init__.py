"""A Python client for multichat: the REST API, the chat socket with resume, and a CLI.

    from multichat_client import ChatClient

    async with ChatClient("https://chat.example.com", token) as chat:
        await chat.join(3)
        await chat.send(3, "hello")
        async for event in chat:
            print(event)

``ChatClient`` reconnects by itself (exponential backoff with jitter) and
re-joins each room with ``since`` = the last seq it delivered, so a dropped
connection or a server restart loses and repeats nothing. ``RestClient`` is
the blocking REST client; ``python -m multichat_client`` is the CLI.
"""

from multichat_client.client import (
    Activity,
    ChatClient,
    Deleted,
    JoinInfo,
    Mention,
    Message,
    Presence,
    PresenceMember,
    ReadMark,
    RoomActivity,
    RoomError,
    Typing,
)
from multichat_client.config import Config, ConfigError, load_config
from multichat_client.errors import AuthError, ConnectionLost, MultichatError
from multichat_client.rest import RestClient

__all__ = [
    "Activity",
    "AuthError",
    "ChatClient",
    "Config",
    "ConfigError",
    "ConnectionLost",
    "Deleted",
    "JoinInfo",
    "Mention",
    "Message",
    "MultichatError",
    "Presence",
    "PresenceMember",
    "ReadMark",
    "RestClient",
    "RoomActivity",
    "RoomError",
    "Typing",
    "load_config",
]
