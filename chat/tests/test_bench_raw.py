"""The benchmark's raw-Python baseline (bench.raw) speaks production's frames, in memory."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import msgspec
import pytest
from websockets.asyncio.client import ClientConnection, connect

from chat import protocol
from testkit import ROOT
from testkit.servers import free_port


@pytest.fixture
def raw_url() -> Iterator[str]:
    """A bench.raw server process on a free port (stopped by its pid after the test)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.raw", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    # JSON like production's: bench.run waits on it through testkit.live.healthz.
                    assert (r.status, json.loads(r.read())) == (200, {"status": "ok"})
                    break
            except (urllib.error.URLError, ConnectionError):
                assert process.poll() is None, "bench.raw exited"
                assert time.monotonic() < deadline, "bench.raw never answered /healthz"
                time.sleep(0.05)
        yield f"ws://127.0.0.1:{port}/chat/stream/"
    finally:
        process.terminate()
        process.wait(timeout=10)


async def frame_as(ws: ClientConnection, kind: type[protocol.Frame]) -> dict:
    """The next frame, checked to be exactly what production encodes for ``kind``."""
    text = await ws.recv()
    assert isinstance(text, str)
    assert protocol.encode(msgspec.json.decode(text, type=kind)) == text
    frame: dict = json.loads(text)
    return frame


async def test_raw_join_send_broadcast_and_resume_use_productions_frames(raw_url):
    """Both members get the post (seq 1) as the same frame, the sender its ``sent`` reply, and a
    join with since=0 replays it after the reply, then the full presence list."""
    async with connect(raw_url) as alice, connect(raw_url) as bob:
        for ws in (alice, bob):
            await ws.send(json.dumps({"command": "join", "room": 7}))
            reply = await frame_as(ws, protocol.JoinReply)
            assert (reply["join"], reply["last_seq"], reply["replayed"]) == (7, 0, 0)
            await frame_as(ws, protocol.PresenceEvent)
        send = {"command": "send", "room": 7, "message": "hello", "ref": "r1"}
        await alice.send(json.dumps(send))
        to_alice = await frame_as(alice, protocol.MessageEvent)
        assert await frame_as(alice, protocol.SentReply) == {"sent": 7, "seq": 1, "ref": "r1"}
        to_bob = await frame_as(bob, protocol.MessageEvent)
        assert to_alice == to_bob
        assert (to_bob["room"], to_bob["seq"], to_bob["message"]) == (7, 1, "hello")
        async with connect(raw_url) as carol:
            await carol.send(json.dumps({"command": "join", "room": 7, "since": 0, "ref": 2}))
            reply = await frame_as(carol, protocol.JoinReply)
            assert (reply["last_seq"], reply["replayed"], reply["ref"]) == (1, 1, 2)
            assert await frame_as(carol, protocol.MessageEvent) == to_bob
            present = await frame_as(carol, protocol.PresenceEvent)
            assert present["full"] is True
            assert len(present["members"]) == 3


async def test_raw_refuses_a_send_to_a_room_not_joined(raw_url):
    """Sending before joining is ROOM_ACCESS_DENIED, and nothing is numbered."""
    async with connect(raw_url) as ws:
        await ws.send(json.dumps({"command": "send", "room": 3, "message": "hi"}))
        assert (await frame_as(ws, protocol.ErrorFrame))["error"] == "ROOM_ACCESS_DENIED"
        await ws.send(json.dumps({"command": "join", "room": 3}))
        assert (await frame_as(ws, protocol.JoinReply))["last_seq"] == 0
