"""A loopback TCP forwarder that tests can cut, as a network failure would, and restore.

It runs in its own thread (with its own event loop), so sync tests, async
tests and LiveServer processes can all go through it. ``cut("blackhole")``
is what a pulled cable looks like: open connections go silent and new ones
are accepted but never answered; ``cut("refuse")`` closes everything at once
(a stopped server).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, Literal

from testkit.servers import free_port

Mode = Literal["blackhole", "refuse"]
Link = tuple[asyncio.StreamWriter, asyncio.StreamWriter]


class TcpProxy:
    """Forwards ``host``:``port`` (127.0.0.1 unless given) to the target until cut."""

    def __init__(
        self,
        target_host: str,
        target_port: int,
        port: int | None = None,
        host: str = "127.0.0.1",
        *,
        more: list[tuple[str, int]] | None = None,
    ) -> None:
        self.target = (target_host, target_port)
        # With ``more``, a load balancer: each new connection goes to the next target
        # in turn, and to the one after if that refuses (a process restarting).
        self.targets = [self.target, *(more or [])]
        self._turn = 0
        self.host = host  # another local address: e.g. a network namespace's link (testkit.netns)
        self.port = port or free_port()
        self.mode: Mode | None = None  # None: forwarding
        self._links: set[Link] = set()
        self._held: set[asyncio.StreamWriter] = set()  # blackholed: open, never answered
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> TcpProxy:
        """Listen, in the proxy's thread; return once it accepts connections."""
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        """Close every connection and the listener; end the thread."""
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def cut(self, mode: Mode = "blackhole") -> None:
        """Break the link: drop open connections, then blackhole or refuse new ones."""
        self._call(self._cut(mode))

    def restore(self) -> None:
        """Forward again; connections held while blackholed are closed, as after a real outage."""
        self._call(self._restore())

    def _call(self, coroutine: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._cut("refuse")
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _cut(self, mode: Mode) -> None:
        self.mode = mode
        for client, upstream in list(self._links):
            if mode == "blackhole":
                # A cut cable sends no FIN: the peer sees silence, not a close.
                self._held.add(client)
            else:
                client.transport.abort()
            upstream.transport.abort()
        self._links.clear()
        if mode == "refuse":
            for client in self._held:
                client.transport.abort()
            self._held.clear()

    async def _restore(self) -> None:
        for client in self._held:
            client.transport.abort()
        self._held.clear()
        self.mode = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "refuse":
            writer.transport.abort()
            return
        if self.mode == "blackhole":
            self._held.add(writer)
            return
        opened = None
        for _ in self.targets:
            target = self.targets[self._turn % len(self.targets)]
            self._turn += 1
            with contextlib.suppress(OSError):
                opened = await asyncio.open_connection(*target)
                break
        if opened is None:
            writer.transport.abort()
            return
        up_reader, up_writer = opened
        link = (writer, up_writer)
        self._links.add(link)
        try:
            await asyncio.gather(
                self._pump(link, reader, up_writer), self._pump(link, up_reader, writer)
            )
        finally:
            if link in self._links:  # not cut: the ends closed by themselves
                self._links.discard(link)
                writer.transport.abort()
                up_writer.transport.abort()

    async def _pump(
        self, link: Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Copy bytes one way until either end closes; pass the close on unless cut."""
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                if link not in self._links:
                    return  # cut: whatever else comes is lost on the wire
                writer.write(data)
                await writer.drain()
        if link in self._links and not writer.transport.is_closing():
            with contextlib.suppress(OSError):
                writer.write_eof()
