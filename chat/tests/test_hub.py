"""The fan-out hub: one subscription per group per process, each event to every local member."""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import InMemoryChannelLayer

from chat.hub import Hub, hub

pytestmark = pytest.mark.django_db(transaction=True)

GROUP = "chat.room.1"


@pytest.fixture
async def make_hub():
    """Make hubs on a given layer (running loop); they are closed after the test."""
    made: list[Hub] = []

    def make(layer, **options) -> Hub:
        made.append(Hub(layer, asyncio.get_running_loop(), **options))
        return made[-1]

    yield make
    for fanout in made:
        await fanout.close()


class SlowLayer(InMemoryChannelLayer):
    """The in-process layer with a network-like pause in each (un)subscribe."""

    async def group_add(self, group, channel):
        await asyncio.sleep(0.01)
        await super().group_add(group, channel)

    async def group_discard(self, group, channel):
        await asyncio.sleep(0.01)
        await super().group_discard(group, channel)


class RestartingLayer(InMemoryChannelLayer):
    """The in-process layer failing one receive and losing its groups, as a Redis restart does."""

    restart = False

    async def receive(self, channel):
        if self.restart:
            self.restart = False
            self.groups.clear()
            raise ConnectionError("Redis restarted")
        return await super().receive(channel)


class Inbox:
    """A member that keeps what the hub pushes to it."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def push(self, event: dict) -> None:
        self.events.append(event)

    def abort(self) -> None:
        raise AssertionError("a working member is never aborted")


class BrokenMember:
    """A member whose push raises, as a socket in a bad state might."""

    def __init__(self) -> None:
        self.pushes = 0
        self.aborted = False

    def push(self, event: dict) -> None:
        self.pushes += 1
        raise RuntimeError("injected push failure")

    def abort(self) -> None:
        self.aborted = True


async def until(predicate, timeout: float = 2.0) -> None:
    """Wait until ``predicate()`` holds, or fail."""
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 (polling state that has no event)
            await asyncio.sleep(0.005)


def event(seq: int) -> dict:
    return {"type": "room.event", "group": GROUP, "room": 1, "seq": seq, "text": f"m{seq}"}


async def test_members_of_a_group_share_one_subscription(make_hub):
    """Three local members cost the layer one group membership, and each gets every event once."""
    layer = InMemoryChannelLayer()
    fanout = make_hub(layer)
    members = [Inbox(), Inbox(), Inbox()]
    for member in members:
        await fanout.add(GROUP, member)
    assert len(layer.groups[GROUP]) == 1
    await layer.group_send(GROUP, event(1))
    await layer.group_send(GROUP, event(2))
    await until(lambda: all(len(m.events) == 2 for m in members))
    for member in members:
        assert [e["seq"] for e in member.events] == [1, 2]
        assert member.events[0]["frame"] == {"type": "websocket.send", "text": "m1"}


async def test_the_last_member_out_unsubscribes(make_hub):
    """Leaving keeps the subscription while a member remains, and drops it with the last one."""
    layer = InMemoryChannelLayer()
    fanout = make_hub(layer)
    a, b = Inbox(), Inbox()
    await fanout.add(GROUP, a)
    await fanout.add(GROUP, b)
    await fanout.discard(GROUP, a)
    assert len(layer.groups[GROUP]) == 1
    await layer.group_send(GROUP, event(1))
    await until(lambda: len(b.events) == 1)
    assert a.events == []
    await fanout.discard(GROUP, b)
    assert GROUP not in layer.groups
    assert fanout.members(GROUP) == 0 and fanout.joined == {}


async def test_joining_while_the_last_member_leaves_stays_subscribed(make_hub):
    """An add racing the last discard waits for it and subscribes again: nothing is missed."""
    layer = SlowLayer()
    fanout = make_hub(layer)
    a, b = Inbox(), Inbox()
    await fanout.add(GROUP, a)
    await asyncio.gather(fanout.discard(GROUP, a), fanout.add(GROUP, b))
    assert len(layer.groups.get(GROUP, ())) == 1
    await layer.group_send(GROUP, event(1))
    await until(lambda: len(b.events) == 1)


async def test_a_forgotten_member_gets_nothing_more_and_its_groups_are_dropped(make_hub):
    """forget() takes a member out of all its groups at once; empty groups are unsubscribed."""
    layer = InMemoryChannelLayer()
    fanout = make_hub(layer)
    a = Inbox()
    await fanout.add(GROUP, a)
    await fanout.add("chat.user.5", a)
    fanout.forget(a)
    await until(lambda: set(layer.groups) == set(fanout.probe_groups))  # the hub's own stay
    await layer.group_send(GROUP, event(1))
    await asyncio.sleep(0.05)
    assert a.events == [] and fanout.joined == {}


async def test_sockets_leave_the_hub_when_they_close(connect, alice, bob, room):
    """After every socket closes, the process's hub holds no member and no group."""
    a = await connect(alice)
    await a.join(room.pk)
    b = await connect(bob)
    await b.join(room.pk)
    fanout = hub()
    assert fanout.members(f"chat.room.{room.pk}") == 2
    await a.close()
    await b.close()
    await until(lambda: not fanout.joined and not fanout.groups)


async def test_a_socket_whose_delivery_fails_is_closed_so_the_client_resumes(
    monkeypatch, connect, alice, bob, room
):
    """An error while sending a room event closes that socket (1011) instead of going silent."""
    from chat import eager

    a = await connect(alice)
    await a.join(room.pk)
    b = await connect(bob)
    await b.join(room.pk)

    def broken(coro):
        coro.close()
        raise RuntimeError("injected delivery failure")

    monkeypatch.setattr(eager, "start", broken)
    await b.send({"command": "send", "room": room.pk, "message": "hello"})
    closed = await a.comm.receive_output(timeout=3)
    while closed["type"] != "websocket.close":
        closed = await a.comm.receive_output(timeout=3)
    assert closed["code"] == 1011


async def test_groups_carried_by_a_shared_group_cost_one_subscription_in_all(make_hub):
    """Users' groups ride on one layer group; each event reaches only its own group's members."""
    layer = InMemoryChannelLayer()
    fanout = make_hub(layer)
    alice, bob = Inbox(), Inbox()
    await fanout.add("chat.user.1", alice, via="chat.users")
    await fanout.add("chat.user.2", bob, via="chat.users")
    assert set(layer.groups) - set(fanout.probe_groups) == {"chat.users"}
    assert len(layer.groups["chat.users"]) == 1
    await layer.group_send("chat.users", {"type": "user.changed", "group": "chat.user.2"})
    await until(lambda: len(bob.events) == 1)
    await asyncio.sleep(0.05)
    assert alice.events == []
    await fanout.discard("chat.user.1", alice)
    await fanout.discard("chat.user.2", bob)
    assert set(layer.groups) - set(fanout.probe_groups) == {"chat.users"}  # kept for later users


async def test_stopping_the_hub_leaves_every_layer_group_it_was_in(make_hub):
    """Shutdown: the kept groups (shared carriers, probes) and the ones in use are all left."""
    layer = InMemoryChannelLayer()
    fanout = make_hub(layer)
    await fanout.add(GROUP, Inbox())
    await fanout.add("chat.user.1", Inbox(), via="chat.users")
    assert {GROUP, "chat.users", *fanout.probe_groups} <= set(layer.groups)
    await fanout.stop()
    assert not any(layer.groups.values())  # no group keeps the stopped hub's channel
    assert fanout.reader is not None and fanout.reader.done()


async def test_renewing_restores_subscriptions_the_layer_forgot(make_hub):
    """After the layer loses its groups (Redis restarted, group expiry), renew() restores them."""
    layer = InMemoryChannelLayer()
    fanout = make_hub(layer)
    room_member, user_member = Inbox(), Inbox()
    await fanout.add(GROUP, room_member)
    await fanout.add("chat.user.1", user_member, via="chat.users")
    layer.groups.clear()
    await fanout.renew()
    await layer.group_send(GROUP, event(1))
    await layer.group_send("chat.users", {"type": "user.changed", "group": "chat.user.1"})
    await until(lambda: len(room_member.events) == 1 and len(user_member.events) == 1)


async def test_subscriptions_are_renewed_periodically(make_hub):
    """The hub renews its subscriptions on its own, well inside the layer's group expiry."""
    layer = InMemoryChannelLayer()
    fanout = make_hub(layer, refresh=0.02)
    await fanout.add(GROUP, Inbox())
    layer.groups.clear()
    await until(lambda: GROUP in layer.groups)


async def test_a_failed_receive_makes_the_hub_subscribe_again(make_hub):
    """When the layer fails (Redis restarting empty), the hub renews its subscriptions."""
    layer = RestartingLayer()
    fanout = make_hub(layer)
    member = Inbox()
    await fanout.add(GROUP, member)
    layer.restart = True
    await layer.send(fanout.channel, {"type": "wake.up"})  # the reader's next receive fails
    await until(lambda: not layer.restart)  # failed, and the groups are gone
    await until(lambda: GROUP in layer.groups)
    await layer.group_send(GROUP, event(1))
    await until(lambda: len(member.events) == 1)


async def test_a_member_whose_push_raises_is_closed_and_the_others_keep_getting_events(
    make_hub, caplog
):
    """One member's failing push is logged, that member aborted and dropped; others get all."""
    layer = InMemoryChannelLayer()
    fanout = make_hub(layer)
    before, broken, after = Inbox(), BrokenMember(), Inbox()
    await fanout.add(GROUP, before)
    await fanout.add(GROUP, broken)
    await fanout.add("chat.user.7", broken, via="chat.users")
    await fanout.add(GROUP, after)
    await layer.group_send(GROUP, event(1))
    await layer.group_send(GROUP, event(2))
    await until(lambda: len(before.events) == 2 and len(after.events) == 2)
    assert broken.aborted and broken.pushes == 1
    assert broken not in fanout.joined and fanout.members(GROUP) == 2
    assert fanout.members("chat.user.7") == 0
    assert "injected push failure" in caplog.text


async def test_closing_the_hub_awaits_the_unsubscribes_that_forget_started(make_hub):
    """forget()'s unsubscribe tasks are kept by the hub and finished by close()."""
    layer = SlowLayer()
    fanout = make_hub(layer)
    member = Inbox()
    await fanout.add(GROUP, member)
    fanout.forget(member)
    assert len(fanout.tasks) == 1
    await fanout.close()
    assert not fanout.tasks
    assert GROUP not in layer.groups


@pytest.mark.redis
async def test_recovery_callbacks_run_once_redis_is_back_and_delivery_resumes(make_hub):
    """Redis stops and restarts: the hub notices, resubscribes, runs every callback, delivers."""
    from channels_redis.pubsub import RedisPubSubChannelLayer
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff

    from testkit.servers import free_port, start_redis

    port = free_port()
    redis = start_redis(port)
    host = {"address": redis.url, "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), 2)}
    layer = RedisPubSubChannelLayer(hosts=[host], prefix="hubrecovery")
    fanout = make_hub(layer, probe=0.1)
    try:
        recovered = []

        async def failing_callback():
            raise RuntimeError("injected callback failure")

        async def callback():
            recovered.append(fanout.failing)

        fanout.on_recovery(failing_callback)
        fanout.on_recovery(callback)
        member = Inbox()
        await fanout.add(GROUP, member)
        await layer.group_send(GROUP, event(1))
        await until(lambda: len(member.events) == 1, timeout=10)
        assert not fanout.failing and recovered == []

        redis.stop()
        await until(lambda: fanout.failing, timeout=10)
        redis = start_redis(port)
        await until(lambda: recovered, timeout=20)
        assert recovered[0] is False  # run once the hub is subscribed again
        await layer.group_send(GROUP, event(2))
        await until(lambda: [e["seq"] for e in member.events] == [1, 2], timeout=10)
    finally:
        await fanout.close()
        await layer.flush()
        redis.stop()


@pytest.mark.redis
async def test_a_silent_resubscribe_of_the_pubsub_layer_still_runs_the_callbacks(make_hub):
    """Redis restarts between probes: the subscriber's reconnection alone triggers recovery."""
    from channels_redis.pubsub import RedisPubSubChannelLayer

    from testkit.servers import free_port, start_redis

    port = free_port()
    redis = start_redis(port)
    layer = RedisPubSubChannelLayer(hosts=[{"address": redis.url}], prefix="hubresubscribe")
    fanout = make_hub(layer, probe=3600)  # no probe in this test
    try:
        recovered = asyncio.Event()

        async def callback():
            recovered.set()

        fanout.on_recovery(callback)
        await fanout.add(GROUP, Inbox())
        redis.stop()
        redis = start_redis(port)
        async with asyncio.timeout(20):
            await recovered.wait()
        assert not fanout.failing
    finally:
        await fanout.close()
        await layer.flush()
        redis.stop()
