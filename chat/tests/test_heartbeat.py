"""The client heartbeat (`ping` -> `pong`) and the order of a socket's sends under the limit."""

import pytest

from chat import ratelimit
from chat.models import Message

pytestmark = pytest.mark.django_db(transaction=True)


async def test_ping_is_answered_with_pong_echoing_ref(connect, alice):
    """A ping, joined to no room, gets {"pong": true} with its ref; without a ref, no ref."""
    sock = await connect(alice)
    await sock.send({"command": "ping", "ref": 7})
    assert await sock.recv() == {"pong": True, "ref": 7}
    await sock.send({"command": "ping"})
    assert await sock.recv() == {"pong": True}
    await sock.close()


async def test_pings_cost_no_budget(settings, connect, alice, room):
    """With every budget at one command, a hundred pings are answered and a send still goes."""
    for name in ("SEND", "JOIN", "HISTORY", "TYPING"):
        setattr(settings, f"CHAT_{name}_RATE", 0.01)
        setattr(settings, f"CHAT_{name}_BURST", 1)
    sock = await connect(alice)
    await sock.join(room.pk)
    for i in range(100):
        await sock.send({"command": "ping", "ref": i})
    for i in range(100):
        assert await sock.recv_until(lambda f: "pong" in f) == {"pong": True, "ref": i}
    await sock.send({"command": "send", "room": room.pk, "message": "still allowed", "ref": "s"})
    assert (await sock.recv_until(lambda f: "sent" in f or "error" in f))["sent"] == room.pk
    await sock.close()


async def test_a_sockets_sends_are_answered_in_the_order_sent(settings, connect, alice, room):
    """Sends sent back to back are stored or refused strictly in order: never a later one first."""
    settings.CHAT_SEND_RATE = 0.01
    settings.CHAT_SEND_BURST = 3
    sock = await connect(alice)
    await sock.join(room.pk)
    for i in range(6):
        await sock.send({"command": "send", "room": room.pk, "message": f"m{i}", "ref": i})
    replies = [await sock.recv_until(lambda f: "sent" in f or "error" in f) for _ in range(6)]
    assert [r["ref"] for r in replies] == list(range(6))
    assert [r.get("seq") for r in replies[:3]] == [1, 2, 3]
    assert [r.get("error") for r in replies[3:]] == ["RATE_LIMITED"] * 3
    texts = [m.text async for m in Message.objects.filter(room=room).order_by("seq")]
    assert texts == ["m0", "m1", "m2"]
    await sock.close()


async def test_a_refused_send_says_it_in_one_sentence_with_whole_seconds(
    settings, connect, alice, room
):
    """The detail is one sentence with the wait rounded up to whole seconds, never "0.0 s"."""
    settings.CHAT_SEND_RATE = 0.4
    settings.CHAT_SEND_BURST = 1
    sock = await connect(alice)
    await sock.join(room.pk)
    for i in range(2):
        await sock.send({"command": "send", "room": room.pk, "message": "m", "ref": i})
    error = await sock.recv_until(lambda f: "error" in f)
    assert error["detail"] == "You are sending too fast; try again in 3 s."
    assert 2 < error["retry_after"] <= 2.5
    await sock.close()


def test_the_refusal_rounds_up_to_a_whole_second():
    """A tenth of a second to wait reads "1 s"; 2.1 s reads "3 s"; 2 s reads "2 s"."""
    assert (
        ratelimit.refusal("send", retry_after=0.1) == "You are sending too fast; try again in 1 s."
    )
    assert ratelimit.refusal("history", retry_after=2.1).endswith("try again in 3 s.")
    assert ratelimit.refusal("join", retry_after=2.0).endswith("try again in 2 s.")
