"""uvicorn's websockets-sansio protocol, plus a way to write a prebuilt frame (chat/wire.py).

The fan-out hands one room event to every member's socket. Through ASGI
each of them would encode the text, build a frame with the websockets
library and join its buffers: the same bytes, built once per member. This
protocol puts the ``multichat.wire`` extension in each socket's scope; its
``write`` puts the frame the hub built once straight on the transport.

It writes only where ``send`` would have written at once, so the order of
a socket's frames is the order of the calls: not while the transport is
paused (``send`` would wait for it; the caller falls back to ``send``, which
then waits in order), and not once the socket is closing or closed (``send``
would fail; the fallback raises as ASGI says). Everything else, the
handshake, reading, pings and closes, is uvicorn's.
"""

from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State

from chat import wire


class WireProtocol(WebSocketsSansIOProtocol):
    """WebSocketsSansIOProtocol whose scope offers ``multichat.wire`` (no compression only)."""

    def handle_connect(self, event: Request) -> None:
        """Start the application as uvicorn does, its scope offering the frame writer."""
        super().handle_connect(event)
        # The application's task is created, not yet run: the scope can still be added to.
        # A negotiated extension (permessage-deflate) changes what a frame is: no writer then.
        scope = getattr(self, "scope", None)
        if scope is not None and not self.conn.extensions:
            scope["extensions"][wire.EXTENSION] = {"write": self.write_frame}

    def write_frame(self, data: bytes) -> bool:
        """Write one whole prebuilt frame now, if ``send`` would; else write nothing, False."""
        if (
            self.close_sent
            or self.disconnected
            or not self.writable.is_set()
            or self.conn.state is not State.OPEN
            or self.transport.is_closing()
        ):
            return False
        self.transport.write(data)
        return True
