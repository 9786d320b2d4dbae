"""SIGTERM on a real server process: stop accepting, drain each socket, close 1012, exit 0 in time.

The drain is config/websocket.py's WireProtocol.shutdown; the bound and the
exit status are config/server.py's. A successor process on the same port and
data stands in for "another server" (a deploy starts one there).
"""

import asyncio
import json
import os
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from config.server import shutdown_timeout
from multichat_client import ChatClient
from testkit import ROOT
from testkit.live import LiveServer, join, open_ws
from testkit.servers import PostgresDatabase, port_open, postgres_base_url

SHUTDOWN_TIMEOUT = 8  # seconds: the bound the process is given (and must keep)
ENV = {"CHAT_SEND_RATE": "0", "SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT)}


@pytest.fixture
def server():
    """One server process (its own SQLite, or PostgreSQL database in that pass), users alice and
    bob with tokens, a room; stopped after."""
    base = postgres_base_url()
    database = PostgresDatabase.create(base, migrated=True) if base else None
    live = LiveServer(
        database_url=database.url if database else None,
        redis_url=os.environ.get("REDIS_URL"),
        extra_env=ENV,
    ).prepare()
    made = live.seed(users=["alice", "bob"], rooms=["General"], tokens=["alice", "bob"])
    live.room_id = made.rooms["General"]
    live.tokens = made.tokens
    live.start()
    live.successors = []
    yield live
    for each in [live, *live.successors]:
        each.stop()
    if database is not None:
        database.drop()


def stored(server: LiveServer) -> Counter[str]:
    """How many times each text is stored in the server's room."""
    rows = server.query("SELECT text FROM chat_message WHERE room_id = %s", (server.room_id,))
    return Counter(text for (text,) in rows)


async def exit_status(server: LiveServer, timeout: float) -> tuple[int, float]:
    """Wait for the process to end; its exit status and how long that took from now."""
    assert server.process is not None
    started = time.monotonic()
    status = await asyncio.to_thread(server.process.wait, timeout)
    return status, time.monotonic() - started


async def test_sigterm_closes_every_socket_with_1012_and_exits_0_within_the_bound(server):
    """Every open socket gets close 1012 with a reason, the port refuses, the process exits 0."""
    sockets = [await open_ws(server, user) for user in ("alice", "bob", "alice")]
    for ws in sockets:
        assert "join" in await join(ws, server.room_id)
    signalled = time.monotonic()
    server.terminate()
    for ws in sockets:
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(SHUTDOWN_TIMEOUT):
                while True:
                    await ws.recv()
        assert ws.close_code == 1012
        # The reason names the spread: 3 sockets need no more than the 5 s minimum.
        assert ws.close_reason == "server restarting: reconnect within 5 s and resume with since"
    # The listener closed before the sockets were: nothing new gets in.
    assert not port_open(server.host, server.port)
    status, _ = await exit_status(server, SHUTDOWN_TIMEOUT)
    assert status == 0, server.log()
    assert time.monotonic() - signalled < SHUTDOWN_TIMEOUT
    assert "Traceback" not in server.log()


async def test_posts_read_before_sigterm_are_stored_and_acked_before_the_close(server):
    """A burst of posts cut by SIGTERM: every post stored got its ack before the 1012; no more.

    Whether the SIGTERM lands mid-burst is a race (the server may have read and
    stored the whole burst by the time its shutdown begins), so a round that
    stored everything is run again on a fresh process, up to three rounds; each
    round must keep the rule, and one of them must have cut the burst.
    """
    per_socket, cut = 60, False
    for attempt in range(3):
        if attempt:
            server.start()
        sockets = [await open_ws(server, user) for user in ("alice", "bob", "alice", "bob")]
        for ws in sockets:
            assert "join" in await join(ws, server.room_id)

        async def burst(index, ws, attempt=attempt):
            for i in range(per_socket):
                text = f"r{attempt}-s{index}-{i}"
                await ws.send(json.dumps({"command": "send", "room": server.room_id,
                                          "message": text, "ref": text}))  # fmt: skip

        await asyncio.gather(*(burst(i, ws) for i, ws in enumerate(sockets)))
        server.terminate()
        acked: list[str] = []
        for ws in sockets:
            with pytest.raises(ConnectionClosed):
                async with asyncio.timeout(SHUTDOWN_TIMEOUT):
                    while True:
                        frame = json.loads(await ws.recv())
                        assert "error" not in frame, frame
                        if "sent" in frame:
                            acked.append(frame["ref"])
            assert ws.close_code == 1012
        status, _ = await exit_status(server, SHUTDOWN_TIMEOUT)
        assert status == 0, server.log()
        # Exactly the acknowledged posts are stored: none was stored with its ack cut off.
        prefix = f"r{attempt}-"
        this_round = Counter({t: n for t, n in stored(server).items() if t.startswith(prefix)})
        assert this_round == Counter(acked)
        assert acked, "no post of the burst was stored before the close"
        if len(acked) < per_socket * len(sockets):  # the SIGTERM came mid-burst
            cut = True
            break
    assert cut, "in three rounds the SIGTERM never came before the whole burst was read"


async def test_client_posts_across_sigterm_are_stored_once_after_resume_on_a_successor(server):
    """Python clients post through a SIGTERM: unacked posts are resent to the next process, once."""
    statuses: list[str] = []
    clients = [
        ChatClient(server.url, server.tokens[user], restart_window=1.0, on_status=statuses.append)
        for user in ("alice", "bob", "alice")
    ]
    for client in clients:
        await client.start()
        await client.join(server.room_id)
    sent: list[str] = []
    started = asyncio.Event()

    async def post(client_index, lane):
        client = clients[client_index]
        for i in range(40):
            text = f"c{client_index}-{lane}-{i}"
            await client.send(server.room_id, text)  # returns once acknowledged
            sent.append(text)
            started.set()

    posting = [asyncio.create_task(post(c, lane)) for c in range(3) for lane in range(4)]
    await asyncio.wait_for(started.wait(), 30)
    server.terminate()
    status, _ = await exit_status(server, SHUTDOWN_TIMEOUT)
    assert status == 0, server.log()
    successor = server.successor()
    server.successors.append(successor)
    await asyncio.to_thread(successor.start)
    await asyncio.wait_for(asyncio.gather(*posting), 120)
    for client in clients:
        await client.close()
    assert stored(server) == Counter(sent)  # every post once: none lost, none twice
    assert len(sent) == 3 * 4 * 40
    assert sum(client.resent for client in clients) > 0, statuses  # the resend path ran


def test_systemd_unit_stops_with_sigterm_and_waits_longer_than_the_shutdown_bound(monkeypatch):
    """deploy/systemd: KillSignal=SIGTERM and TimeoutStopSec above SHUTDOWN_TIMEOUT's default."""
    monkeypatch.delenv("SHUTDOWN_TIMEOUT", raising=False)
    unit = (ROOT / "deploy" / "systemd" / "multichat.service").read_text()
    settings = dict(
        line.split("=", 1) for line in unit.splitlines() if "=" in line and line[0].isalpha()
    )
    assert settings["KillSignal"] == "SIGTERM"
    assert float(settings["TimeoutStopSec"]) > shutdown_timeout()


async def test_a_command_stuck_past_the_bound_is_cut_without_1012_and_the_process_still_ends():
    """A post blocked on a database lock: no 1012 for its socket (its fate is unknown); the
    watchdog ends the process (exit 1) at SHUTDOWN_TIMEOUT although the post's thread hangs."""
    bound = 3
    live = LiveServer(extra_env={"CHAT_SEND_RATE": "0", "SHUTDOWN_TIMEOUT": str(bound)})
    live.prepare()
    room = live.seed(users=["alice"], rooms=["General"]).rooms["General"]
    live.start()
    lock = sqlite3.connect(Path(live.data_dir) / "db.sqlite3", isolation_level=None)
    try:
        stuck = await open_ws(live, "alice")
        idle = await open_ws(live, "alice")
        for ws in (stuck, idle):
            assert "join" in await join(ws, room)
        lock.execute("BEGIN EXCLUSIVE")  # the post below waits for this (SQLite's 20 s)
        await stuck.send(json.dumps({"command": "send", "room": room, "message": "x", "ref": 1}))
        # The server reads the frame at once; it looks at the signal on its next 0.1 s tick.
        signalled = time.monotonic()
        live.terminate()
        assert live.process is not None
        status = await asyncio.to_thread(live.process.wait, bound + 10)
        took = time.monotonic() - signalled
    finally:
        lock.close()
        live.stop()
    assert took < bound + 1.0, took  # the watchdog's bound, with time to be scheduled
    assert status == 1, live.log()  # did not finish cleanly: says so
    for ws in (stuck, idle):
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(5):
                while True:  # what came before the end, then the end
                    assert "sent" not in json.loads(await ws.recv())
    assert stuck.close_code != 1012  # cut: the client must not take the post for unread
    assert idle.close_code == 1012  # the idle socket was drained and closed as usual
    assert "longer than SHUTDOWN_TIMEOUT" in live.log()
