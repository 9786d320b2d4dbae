"""A text frame's bytes, built once per event and written to every member's socket.

ASGI has one way to send: a ``websocket.send`` message per socket, which the
server turns into a WebSocket frame for each of them (encode the text,
build the frame, join the buffers, write). A frame from the server to a
client is never masked (RFC 6455, 5.1), so for a room event it is the same
bytes for every member: the hub builds them once (``text_frame``) and each
member's socket writes them as they are, through the ASGI extension
``EXTENSION`` that config/websocket.py's server protocol puts in the scope.

The extension's ``write(data) -> bool`` writes the frame and returns True,
or writes nothing and returns False when the socket cannot take it now (its
transport is paused by a slow reader, or it is closing); the caller then
sends the ``websocket.send`` message instead, which waits or fails as ASGI
says. Under another ASGI server (or channels' test communicator) there is
no such extension and every frame goes through ``websocket.send``.

Nothing here imports Django: the server's protocol module imports it
before the application is loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

# The key of the extension in the scope's "extensions": {"write": Write}.
EXTENSION = "multichat.wire"

Write = Callable[[bytes], bool]

_FIN_TEXT = 0x81  # FIN bit + opcode 1 (text)


def text_frame(text: str) -> bytes:
    """The unmasked, unfragmented, uncompressed WebSocket text frame carrying ``text``."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        header = bytes((_FIN_TEXT, size))
    elif size < 1 << 16:
        header = bytes((_FIN_TEXT, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((_FIN_TEXT, 127)) + size.to_bytes(8, "big")
    return header + payload


def writer(scope: Mapping[str, Any]) -> Write | None:
    """The socket's frame writer if its server offers the extension, else None."""
    extension = (scope.get("extensions") or {}).get(EXTENSION)
    return extension.get("write") if extension else None
