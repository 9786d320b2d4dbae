"""PostgreSQL going away is an outage with bounded waits, not a hang (issue 12 item 11).

A real server process reaches a throwaway PostgreSQL database through a TCP
proxy that the tests cut as a network failure would ("blackhole": silence,
no close), then restore. The wall-clock bounds are loose outage bounds for
a loaded machine, not performance measurements.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from websockets.asyncio.client import connect

from multichat_client import ChatClient, Message, RestClient
from testkit.live import LiveServer, healthz, join, next_frame, open_ws
from testkit.proxy import TcpProxy
from testkit.servers import PostgresDatabase, postgres_base_url

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(postgres_base_url() is None, reason="needs DATABASE_URL on PostgreSQL"),
]

HEALTHZ_BOUND = 3.5  # /healthz answers 503 within 3 s; a little slack for a loaded machine
HANDSHAKE_BOUND = 5.0
SEND_BOUND = 12.0


@pytest.fixture(scope="module")
def outage():
    """A server whose database is behind a cuttable proxy; alice, a room and a token."""
    database = PostgresDatabase.create(postgres_base_url())
    target = urlsplit(database.url)
    proxy = TcpProxy(target.hostname, target.port or 5432).start()
    through = target._replace(netloc=f"{target.username}@127.0.0.1:{proxy.port}")
    server = LiveServer(
        database_url=urlunsplit(through),
        redis_url=os.environ.get("REDIS_URL"),
        extra_env={"CHAT_SEND_RATE": "0"},
    ).prepare()
    made = server.seed(users=["alice"], rooms=["General", "Random"], tokens=["alice"])
    server.room_id = made.rooms["General"]
    server.other_room_id = made.rooms["Random"]
    server.token = made.tokens["alice"]
    server.start()
    server.proxy = proxy
    server.database = database
    yield server
    server.stop()
    proxy.stop()
    database.drop()


@pytest.fixture
def server(outage):
    """The outage server, its database reachable again (and answering) after each test."""
    yield outage
    outage.proxy.restore()
    deadline = time.monotonic() + 30
    while healthz(outage.url, 30)[0] != 200:
        assert time.monotonic() < deadline, "the server did not recover after the outage"
        time.sleep(0.2)


def stored_texts(server: LiveServer) -> list[str]:
    """Every message text in the database, read directly (not through the proxy)."""
    with psycopg.connect(server.database.url) as conn:
        return [row[0] for row in conn.execute("SELECT text FROM chat_message")]


async def waiting_on_a_lock(conn: psycopg.AsyncConnection) -> int:
    """How many queries on the database wait for a lock."""
    row = await (await conn.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")).fetchone()
    return int(row[0]) if row else 0


async def next_stored(client: ChatClient, timeout: float) -> Message:
    """The client's next stored message (enter and leave notices skipped)."""
    async with asyncio.timeout(timeout):
        async for event in client:
            if isinstance(event, Message) and event.seq is not None:
                return event
    raise AssertionError("the client stopped")


def test_healthz_names_the_database_within_3_s_when_it_does_not_answer(server):
    """A blackholed database: /healthz is 503 naming the database within ~3 s, then 200 at once."""
    assert healthz(server.url, 30)[0] == 200
    server.proxy.cut("blackhole")
    started = time.monotonic()
    status, body = healthz(server.url, 30)
    elapsed = time.monotonic() - started
    assert status == 503, body
    assert body["database"].startswith("failed"), body
    assert elapsed < HEALTHZ_BOUND, f"/healthz took {elapsed:.1f} s"
    # A second check while the first may still be stuck: just as fast.
    started = time.monotonic()
    assert healthz(server.url, 30)[0] == 503
    assert time.monotonic() - started < HEALTHZ_BOUND
    server.proxy.restore()
    status, body = healthz(server.url, 30)
    assert status == 200, body


@pytest.mark.asyncio
async def test_new_socket_is_refused_with_1013_when_the_database_does_not_answer(server):
    """A handshake whose session lookup gets no answer: SERVICE_UNAVAILABLE, then close 1013."""
    cookie = await asyncio.to_thread(server.login_cookie, "alice", "alice-pw-1234")
    server.proxy.cut("blackhole")
    started = time.monotonic()
    ws = await connect(
        server.ws_url,
        additional_headers={"Origin": server.url.rstrip("/"), "Cookie": cookie},
        open_timeout=HANDSHAKE_BOUND,
    )
    frame = await next_frame(ws, timeout=HANDSHAKE_BOUND)
    await asyncio.wait_for(ws.wait_closed(), HANDSHAKE_BOUND)
    elapsed = time.monotonic() - started
    assert frame["error"] == "SERVICE_UNAVAILABLE"
    assert "database" in frame["detail"]
    assert ws.close_code == 1013
    assert elapsed < HANDSHAKE_BOUND, f"the refusal took {elapsed:.1f} s"


@pytest.mark.asyncio
async def test_a_query_left_waiting_holds_no_other_socket(server):
    """One socket's history read waits on the database: another socket still opens at once.

    Socket database calls once ran on one shared thread, so a single read left
    without an answer (here: behind a lock on the reactions, which only the
    history read needs; in the field: a database that went silent mid-query)
    held every later handshake of the process.
    """
    await asyncio.to_thread(RestClient(server.url, server.token).post, server.room_id, "hello")
    ws = await open_ws(server, "alice")
    lock = await psycopg.AsyncConnection.connect(server.database.url, autocommit=False)
    try:
        assert "join" in await join(ws, server.room_id)
        await lock.execute("LOCK TABLE chat_reaction IN ACCESS EXCLUSIVE MODE")
        await ws.send(json.dumps({"command": "history", "room": server.room_id, "ref": "h"}))
        async with asyncio.timeout(HANDSHAKE_BOUND):  # until the read waits behind the lock
            while not await waiting_on_a_lock(lock):  # noqa: ASYNC110 (database state: polled)
                await asyncio.sleep(0.05)

        started = time.monotonic()
        other = await open_ws(server, "alice", open_timeout=HANDSHAKE_BOUND)
        try:
            await other.send(json.dumps({"command": "ping"}))
            assert "pong" in await next_frame(other, timeout=HANDSHAKE_BOUND)
        finally:
            await other.close()
        assert time.monotonic() - started < HANDSHAKE_BOUND

        await lock.rollback()  # the read goes on and is answered
        reply = await next_frame(ws, lambda f: f.get("ref") == "h", timeout=SEND_BOUND)
        assert "history" in reply, reply
    finally:
        await lock.close()
        await ws.close()


@pytest.mark.asyncio
async def test_token_socket_is_refused_with_1013_when_the_database_does_not_answer(server):
    """A bearer-token handshake whose token lookup gets no answer: SERVICE_UNAVAILABLE, 1013."""
    server.proxy.cut("blackhole")
    started = time.monotonic()
    ws = await connect(
        server.ws_url,
        additional_headers={"Authorization": f"Bearer {server.token}"},
        open_timeout=HANDSHAKE_BOUND,
    )
    frame = await next_frame(ws, timeout=HANDSHAKE_BOUND)
    await asyncio.wait_for(ws.wait_closed(), HANDSHAKE_BOUND)
    assert frame["error"] == "SERVICE_UNAVAILABLE"
    assert ws.close_code == 1013
    assert time.monotonic() - started < HANDSHAKE_BOUND


@pytest.mark.asyncio
async def test_send_while_the_database_is_cut_is_unavailable_and_stores_nothing(server):
    """An open socket's send: SERVICE_UNAVAILABLE saying nothing was stored; after, posts work."""
    ws = await open_ws(server, "alice")
    try:
        assert "join" in await join(ws, server.room_id)
        server.proxy.cut("blackhole")
        started = time.monotonic()
        await ws.send(
            json.dumps({"command": "send", "room": server.room_id, "message": "lost", "ref": "a"})
        )
        frame = await next_frame(ws, lambda f: f.get("ref") == "a", timeout=SEND_BOUND + 5)
        elapsed = time.monotonic() - started
        assert frame["error"] == "SERVICE_UNAVAILABLE", frame
        assert "nothing was stored" in frame["detail"]
        assert elapsed < SEND_BOUND, f"the error took {elapsed:.1f} s"

        server.proxy.restore()
        assert "lost" not in await asyncio.to_thread(stored_texts, server)
        started = time.monotonic()
        status, body = await asyncio.to_thread(healthz, server.url, 30)
        assert status == 200, body
        await ws.send(
            json.dumps({"command": "send", "room": server.room_id, "message": "back", "ref": "b"})
        )
        reply = await next_frame(ws, lambda f: f.get("ref") == "b", timeout=10)
        assert "sent" in reply, reply
        # At once: no stale pooled connection failed the first requests after the outage.
        assert time.monotonic() - started < 3, "the first requests after the outage were slow"
    finally:
        await ws.close()


@pytest.mark.asyncio
async def test_join_and_history_while_the_database_is_cut_are_unavailable(server):
    """Join and history on an open socket: SERVICE_UNAVAILABLE within seconds, not SERVER_ERROR."""
    ws = await open_ws(server, "alice")
    try:
        assert "join" in await join(ws, server.room_id)
        server.proxy.cut("blackhole")
        started = time.monotonic()
        reply = await join(ws, server.other_room_id, ref="j")
        assert reply.get("error") == "SERVICE_UNAVAILABLE", reply
        await ws.send(json.dumps({"command": "history", "room": server.room_id, "ref": "h"}))
        reply = await next_frame(ws, lambda f: f.get("ref") == "h", timeout=SEND_BOUND + 5)
        assert reply.get("error") == "SERVICE_UNAVAILABLE", reply
        assert time.monotonic() - started < 2 * SEND_BOUND
        server.proxy.restore()
        assert (await asyncio.to_thread(healthz, server.url, 30))[0] == 200
        assert "join" in await join(ws, server.other_room_id)  # the failed join left no trace
    finally:
        await ws.close()


def test_rest_api_answers_503_when_the_database_does_not_answer(server):
    """The REST API: 503 SERVICE_UNAVAILABLE within a few seconds, not a 500."""
    server.proxy.cut("blackhole")
    request = urllib.request.Request(
        server.url + f"api/rooms/{server.room_id}/messages",
        data=json.dumps({"message": "lost too"}).encode(),
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"},
    )
    started = time.monotonic()
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 503
    body = json.loads(caught.value.read())
    assert body["error"] == "SERVICE_UNAVAILABLE"
    assert "nothing was stored" in body["detail"]
    assert time.monotonic() - started < SEND_BOUND


@pytest.mark.asyncio
async def test_client_waits_out_close_1013_then_resumes_without_loss(server):
    """The Python client: on 1013 it says "server unavailable, retrying", pauses, then resumes."""
    front = TcpProxy("127.0.0.1", server.port).start()  # lets the test drop the client's socket
    statuses: list[tuple[float, str]] = []
    client = ChatClient(
        f"http://127.0.0.1:{front.port}",
        server.token,
        min_delay=0.5,
        max_delay=2.0,
        on_status=lambda text: statuses.append((time.monotonic(), text)),
    )
    rest = RestClient(server.url, server.token)
    try:
        await client.start()
        await client.join(server.room_id)
        first = await asyncio.to_thread(rest.post, server.room_id, "before the outage")
        assert (await next_stored(client, 10)).seq == first["seq"]

        server.proxy.cut("blackhole")
        front.cut("refuse")  # the client's socket drops; its reconnects meet the outage
        front.restore()
        deadline = time.monotonic() + 30
        while sum("server unavailable, retrying" in text for _, text in statuses) < 2:
            assert time.monotonic() < deadline, statuses
            await asyncio.sleep(0.1)
        retries = [at for at, text in statuses if "server unavailable, retrying" in text]
        connects = [at for at, text in statuses if text == "connected"]
        # Not at once: no reconnection between the first refusal and a backoff pause.
        assert retries[1] - retries[0] >= 0.2, statuses

        server.proxy.restore()
        await asyncio.to_thread(healthz, server.url, 30)
        second = await asyncio.to_thread(rest.post, server.room_id, "after the outage")
        got = await next_stored(client, 20)
        assert (got.seq, got.message) == (second["seq"], "after the outage")
        assert len([at for at, text in statuses if text == "connected"]) > len(connects)
    finally:
        await client.close()
        front.stop()
