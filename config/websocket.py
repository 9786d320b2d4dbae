"""uvicorn's websockets-sansio protocol, plus a prebuilt-frame writer and a graceful restart close.

The fan-out hands one room event to every member's socket. Through ASGI
each of them would encode the text, build a frame with the websockets
library and join its buffers: the same bytes, built once per member. This
protocol puts the ``multichat.wire`` extension in each socket's scope; its
``write`` puts the frame the hub built once straight on the transport.

It writes only where ``send`` would have written at once, so the order of
a socket's frames is the order of the calls: not while the transport is
paused (``send`` would wait for it; the caller falls back to ``send``, which
then waits in order), and not once the socket is closing or closed (``send``
would fail; the fallback raises as ASGI says).

On shutdown (SIGTERM) uvicorn writes close 1012 and drops the transport at
once: a command already read but not yet run is then run with nobody to
answer, so a post can be stored without its ``sent`` reply, and a client
that resends it stores it twice. Here the socket drains instead: it stops
reading, lets the application finish every frame already read (each gets
its reply), and only when the application waits for the next frame closes
with 1012 and a reason that names the window over which the clients should
spread their return (restart_window: one process's sockets at the rate a
process joins them). So a client may rely on this (docs/protocol.md):
after close 1012, a command with no reply was never read; resending it
cannot duplicate it. A socket whose command is still running when
SHUTDOWN_TIMEOUT runs out is cut without a close frame (1006), not 1012.
Everything else, the handshake, reading, pings and other closes, is uvicorn's.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State

from chat import wire

CLOSE_SERVICE_RESTART = 1012  # RFC 6455 registry: "Service Restart"
# The window the clients spread their return over, named in the close reason: long enough
# for the process that takes the sockets to join them at the rate one process manages
# (docs/performance.md: about 250 connects + joins a second), 5 s at least, 60 s at most.
RESTART_JOINS_PER_SECOND = 250
RESTART_WINDOW_MIN, RESTART_WINDOW_MAX = 5, 60


def restart_window(sockets: int) -> int:
    """Seconds the clients of a process with ``sockets`` open sockets should spread over."""
    needed = -(-sockets // RESTART_JOINS_PER_SECOND)
    return max(RESTART_WINDOW_MIN, min(RESTART_WINDOW_MAX, needed))


def restart_reason(window: int) -> str:
    """The 1012 close reason; clients read the window from "within N s" (docs/protocol.md)."""
    return f"server restarting: reconnect within {window} s and resume with since"


class WireProtocol(WebSocketsSansIOProtocol):
    """WebSocketsSansIOProtocol with the ``multichat.wire`` writer and a draining shutdown."""

    draining = False  # shutdown began: read nothing more, close once the application is idle
    waiting = False  # the application is blocked in receive() on an empty queue
    reason = restart_reason(RESTART_WINDOW_MIN)  # set by shutdown() from the open sockets

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

    def shutdown(self) -> None:
        """Stop reading; close with 1012 once every frame already read has been handled.

        Called by uvicorn's server for each connection when it stops. A socket
        that is not an open WebSocket (handshake not done, closing) is left to
        uvicorn's own shutdown.
        """
        if self.close_sent or self.disconnected or not self.handshake_complete:
            super().shutdown()
            return
        self.stop_keepalive()
        self.draining = True
        self.reason = restart_reason(restart_window(len(self.connections)))
        if not self.read_paused:  # frames the client sends from now on are never read
            self.read_paused = True
            self.transport.pause_reading()
        if self.waiting and self.queue.empty():
            self.close_for_restart()

    def close_for_restart(self) -> None:
        """Send close 1012 with its reason, tell the application, and await the client's reply."""
        if self.close_sent or self.conn.state is not State.OPEN or self.transport.is_closing():
            return
        self.conn.send_close(CLOSE_SERVICE_RESTART, self.reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        code, reason = CLOSE_SERVICE_RESTART, self.reason
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        # Read again, for the client's close reply only: uvicorn drops data frames once close_sent.
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)

    async def receive(self) -> Any:
        """The next ASGI event; while draining, an idle application gets the 1012 close."""
        if self.draining and self.queue.empty():
            self.close_for_restart()
        self.waiting = True
        try:
            message = await self.queue.get()
        finally:
            self.waiting = False
        if self.read_paused and self.queue.empty() and not self.draining:
            self.read_paused = False
            self.transport.resume_reading()
        return message

    async def send(self, message: Any) -> None:
        """Send as uvicorn does; after the restart close, as to a client that is gone."""
        if self.draining and self.close_sent and message["type"] == "websocket.send":
            raise ClientDisconnected()  # what a send to a closed socket raises (an OSError)
        await super().send(message)
