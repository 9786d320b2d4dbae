"""SERVICE_UNAVAILABLE says in a field, not in prose, whether a post was stored, as what seq."""

from __future__ import annotations

import asyncio
import json
import tempfile

import pytest

from multichat_client import RestClient
from multichat_client.errors import MultichatError
from testkit.live import LiveServer, join, next_frame, open_ws, wait_for_health
from testkit.servers import start_redis

pytestmark = pytest.mark.redis


def rest_post_error(client: RestClient, room: int, text: str) -> MultichatError:
    """Post through the REST API and return the error it must raise."""
    with pytest.raises(MultichatError) as refused:
        client.post(room, text)
    return refused.value


async def test_stored_but_undelivered_post_carries_stored_seq(database_url):
    """With Redis down, socket and REST posts say stored_seq=N if stored, nothing if not."""
    redis = start_redis()
    shared = {"CHANNEL_LAYER_PREFIX": "mcstoredseq", "CHAT_SEND_RATE": "0"}
    data_dir = tempfile.mkdtemp(prefix="multichat-stored-seq-")
    # Two processes, because each one learns of the outage from its own first failed publish:
    # one takes the socket post, the other the REST post, so each can store one in the outage.
    socket_server, rest_server = (
        LiveServer(
            database_url=database_url, redis_url=redis.url, data_dir=data_dir, extra_env=shared
        )
        for _ in range(2)
    )
    socket_server.prepare()
    made = socket_server.seed(users=["alice"], tokens=["alice"], rooms=["General"])
    token, room = made.tokens["alice"], made.rooms["General"]
    socket_server.start()
    rest_server.start()
    rest = RestClient(rest_server.url, token, timeout=30)
    try:
        alice = await open_ws(socket_server, "alice")
        await join(alice, room)
        await alice.send(
            json.dumps({"command": "send", "room": room, "message": "before", "ref": 0})
        )
        assert (await next_frame(alice, lambda f: "sent" in f, timeout=30))["seq"] == 1
        # The post's activity event went out too (sockets' posts send it batched, a moment
        # later): one failing after Redis stops would tell the server first, not the post.
        await next_frame(alice, lambda f: room in [a["room"] for a in f.get("activity", [])])

        redis.stop()
        await wait_for_health(socket_server, 503, timeout=30)
        await wait_for_health(rest_server, 503, timeout=30)

        outcomes = []
        for ref in (1, 2):
            frame = {"command": "send", "room": room, "message": f"during{ref}", "ref": ref}
            await alice.send(json.dumps(frame))
            reply = await next_frame(alice, lambda f: "error" in f or "sent" in f, timeout=30)
            outcomes.append(reply)
        assert [f.get("error") for f in outcomes] == ["SERVICE_UNAVAILABLE"] * 2, outcomes
        # The first post was stored before its failed publish showed the outage;
        # the second was refused before storing, so it carries no stored_seq.
        assert outcomes[0].get("stored_seq") == 2, outcomes[0]
        assert "stored_seq" not in outcomes[1], outcomes[1]

        first = await asyncio.to_thread(rest_post_error, rest, room, "rest-during")
        second = await asyncio.to_thread(rest_post_error, rest, room, "rest-refused")
        assert (first.code, first.status, first.stored_seq) == ("SERVICE_UNAVAILABLE", 503, 3)
        assert (second.code, second.status, second.stored_seq) == ("SERVICE_UNAVAILABLE", 503, None)

        # The seqs named are those of the stored messages; the refused posts are not stored.
        history = await asyncio.to_thread(rest.history, room)
        stored = [(m["seq"], m["message"]) for m in history["messages"]]
        assert stored == [(1, "before"), (2, "during1"), (3, "rest-during")]
        await alice.close()
    finally:
        socket_server.stop()
        rest_server.stop()
        redis.stop()
