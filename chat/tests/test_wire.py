"""chat.wire and config.websocket: a frame built once, written as is to each socket."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.frames import Frame, Opcode

from chat import wire

TEXTS = ["", "x" * 125, "x" * 126, "é" * 40, "y" * 65535, "z" * 65536, "ü" * 40000]


@pytest.mark.parametrize("text", TEXTS, ids=lambda t: f"{len(t.encode())}B")
def test_a_text_frame_is_the_frame_the_websockets_library_would_send(text):
    """Every length form (7-bit, 16-bit, 64-bit) and UTF-8 text: the same bytes as websockets'."""
    expected = Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[])
    assert wire.text_frame(text) == expected


def test_without_the_extension_there_is_no_writer():
    """channels' test communicator and other ASGI servers: no writer, the ASGI send is used."""
    assert wire.writer({"type": "websocket"}) is None
    assert wire.writer({"type": "websocket", "extensions": {"websocket.http.response": {}}}) is None


class App:
    """A tiny ASGI app: accepts, then writes what ``script`` says through the scope's writer."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []
        self.written: list[bool] = []  # what each write returned
        self.go = asyncio.Event()
        self.done = asyncio.Event()

    async def __call__(self, scope, receive, send) -> None:
        self.scopes.append(scope)
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        write = wire.writer(scope)
        await self.go.wait()
        if write is not None:
            # Write until the transport pauses, then once more through ASGI (which waits).
            n = 0
            while True:
                n += 1
                ok = write(wire.text_frame(json.dumps({"n": n, "pad": "p" * 4000})))
                self.written.append(ok)
                if not ok or n == 5000:  # ~1,000 fill this machine's buffers; 5,000: 20 MB
                    break
            await send({"type": "websocket.send", "text": json.dumps({"n": n, "pad": ""})})
        self.done.set()
        await receive()  # until the client goes


@contextlib.asynccontextmanager
async def serving(app: App, **options: Any) -> AsyncIterator[str]:
    """uvicorn with config.websocket's protocol on a free port, in this loop; yields its ws URL.

    Without compression, as config.server runs it, unless ``options`` say otherwise.
    """
    options = {"ws_per_message_deflate": False, **options}
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning",
                            ws="config.websocket:WireProtocol", **options)  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 (uvicorn offers no event for it)
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        await task


async def test_the_writer_stops_at_a_paused_transport_and_the_asgi_send_follows_in_order():
    """Written until the reader's buffers are full; then the ASGI send waits; all in order."""
    app = App()
    async with serving(app) as url, connect(url, max_queue=1) as ws:
        app.go.set()
        # The client reads nothing until the server's transport has paused.
        async with asyncio.timeout(20):
            while len(app.written) < 5000 and (not app.written or app.written[-1]):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        assert wire.EXTENSION in app.scopes[0]["extensions"]
        assert app.written[:-1] == [True] * (len(app.written) - 1) and app.written[-1] is False
        assert not app.done.is_set()  # the ASGI send waits for the paused transport
        seen = []
        async with asyncio.timeout(20):
            while len(seen) < len(app.written):
                seen.append(json.loads(await ws.recv())["n"])
        assert seen == list(range(1, len(app.written) + 1))  # the last one came through ASGI
        await asyncio.wait_for(app.done.wait(), 10)


async def test_no_writer_when_compression_was_negotiated():
    """permessage-deflate changes what a frame is: with it the app gets no writer."""
    app = App()
    async with (
        serving(app, ws_per_message_deflate=True) as url,
        connect(url, compression="deflate"),
    ):
        async with asyncio.timeout(10):
            while not app.scopes:  # noqa: ASYNC110 (no event for it)
                await asyncio.sleep(0.01)
        assert wire.EXTENSION not in app.scopes[0]["extensions"]
        app.go.set()
        await asyncio.wait_for(app.done.wait(), 10)
