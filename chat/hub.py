"""The process's fan-out hub: one channel-layer subscription per group, shared by local sockets.

Without it every socket would have its own channel, and a room event would be
decoded, queued and read once per member by the channel layer. With it the
process subscribes once to each group that any of its sockets is in, receives
each event once, and hands the same decoded event to each local member's
inbox (``member.push(event)``); the member sends its pre-encoded text. A
socket then needs no channel, reader task or layer queue of its own.

Subscribing is exact: ``add`` returns only when the group's subscription is
in place, so a caller that reads the database afterwards misses nothing
(join's "subscribe first, then read").

A hub's subscriptions last as long as the process has members in a group,
which may be longer than the layer keeps them: channels_redis' list-based
layer forgets a group membership after ``group_expiry`` (a day) and all of
them when Redis restarts. So the hub renews every subscription each
REFRESH_SECONDS, and after the layer fails.

The pub/sub layer never fails a receive: its own task reconnects and
resubscribes when Redis comes back, and events published meanwhile are lost
silently. So the hub hears of each reconnection of that layer's subscriber
connections (redis-py's connect callback), and also sends itself a probe each
PROBE_SECONDS through the layer; a reconnection, or a probe that fails or
does not come back, marks the layer failing, and once it answers again the
hub renews every subscription and runs the ``on_recovery`` callbacks
(sockets then catch up from the database).

A layer sharded over several Redis servers (REDIS_LAYER_URLS, chat.shards)
can lose one of them alone, with the subscriptions it held. So the probe
goes through a group of the hub's own on each shard, and comes back only if
that shard still carries the hub's subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from functools import partial
from typing import Any, Protocol, TypeVar

from channels.layers import get_channel_layer

from chat import events, metrics, shards, wire

log = logging.getLogger(__name__)

T = TypeVar("T")

REFRESH_SECONDS = 3600.0  # well inside channels_redis' default group_expiry of 86400
PROBE_SECONDS = 1.0  # how often the hub checks that the layer still delivers to it
# A probe not back in this time counts as a failure; generous, so a busy loop
# is not taken for a lost subscription (a false alarm costs one catch-up read).
PROBE_TIMEOUT = 5.0
PROBE_TYPE = "hub.probe"


class Member(Protocol):
    """A local socket: takes events without blocking the hub."""

    def push(self, event: dict[str, Any]) -> None: ...

    def abort(self) -> None:
        """Close the socket with 1011 (its delivery failed); the client resumes with since."""


class _Group:
    __slots__ = ("members", "subscribed", "via")

    def __init__(self) -> None:
        self.members: set[Member] = set()
        self.subscribed = False
        self.via: str | None = None  # the shared layer group that carries it, if any


class Hub:
    """Subscriptions and local members of one channel layer on one event loop."""

    def __init__(
        self,
        layer,
        loop: asyncio.AbstractEventLoop,
        *,
        refresh: float = REFRESH_SECONDS,
        probe: float = PROBE_SECONDS,
    ) -> None:
        self.layer = layer
        self.loop = loop
        self.refresh = refresh
        self.probe = probe
        self.groups: dict[str, _Group] = {}
        self.joined: dict[Member, set[str]] = {}  # each member's groups, for forget()
        self.changing = asyncio.Lock()  # subscribe/unsubscribe one at a time (first/last member)
        self.channel: str | None = None
        self.reader: asyncio.Task | None = None
        self.renewer: asyncio.Task | None = None
        self.shared: set[str] = set()  # layer groups subscribed for good (``via``)
        self.prober: asyncio.Task | None = None
        self.failing = False  # the layer failed and its subscriptions are not renewed yet
        self.recovery_callbacks: list[Callable[[], Awaitable[None]]] = []
        self.tasks: set[asyncio.Task] = set()  # unsubscribes and callbacks, awaited by close()
        # One group of this hub's own on each shard of the layer: the probes' way back.
        self.probe_groups = shards.group_on_each_shard(layer, f"chat.probe.{uuid.uuid4().hex}")
        self._probe_reply: asyncio.Future | None = None  # done when every shard answered
        self._probe_pending: set[int] = set()  # shards whose answer to this probe is still out
        self._probes = 0
        self.reads: dict[Hashable, asyncio.Future[Any]] = {}  # shared reads in flight (``once``)

    async def add(self, group: str, member: Member, *, via: str | None = None) -> None:
        """Deliver ``group``'s events to ``member``; returns once the subscription is live.

        With ``via``, the events come through that shared layer group (each
        carries its ``group`` for routing here), subscribed once and kept.
        """
        entry = self.groups.get(group)
        if entry is None or not entry.subscribed:
            async with self.changing:
                entry = self.groups.setdefault(group, _Group())
                if not entry.subscribed:
                    layer_group = via or group
                    if layer_group not in self.shared:
                        await self.layer.group_add(layer_group, await self._channel())
                        self._watch_reconnects()
                        if via is not None:
                            self.shared.add(via)
                    entry.subscribed, entry.via = True, via
        entry.members.add(member)
        self.joined.setdefault(member, set()).add(group)

    async def discard(self, group: str, member: Member) -> None:
        """Stop delivering ``group`` to ``member``; the last member out unsubscribes."""
        self._unlist(group, member)
        await self._unsubscribe_if_empty(group)

    def forget(self, member: Member) -> None:
        """Take ``member`` out of every group now (a socket that ended without leaving them)."""
        for group in tuple(self.joined.get(member, ())):
            self._unlist(group, member)
            self._keep(self._unsubscribe_if_empty(group))

    def on_recovery(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run ``callback()`` (async, no arguments) each time the layer is back after a failure."""
        self.recovery_callbacks.append(callback)

    async def close(self) -> None:
        """Stop reading, renewing and probing; wait for the tasks the hub started."""
        started = [t for t in (self.reader, self.renewer, self.prober) if t is not None]
        for task in started:
            task.cancel()
        while self.tasks:
            started += list(self.tasks)
            await asyncio.gather(*self.tasks, return_exceptions=True)
            self.tasks.difference_update(started)
        # A cancel can be lost inside the Redis client (seen with the core layer just
        # after a shard restarted: the task went on reading and probing); repeat it
        # until every task has ended, so close() cannot hang.
        while pending := [t for t in started if not t.done()]:
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=0.5)
        await asyncio.gather(*started, return_exceptions=True)

    async def stop(self) -> None:
        """Leave every layer group this hub is in, then close (the process is going away).

        The groups kept for good (the shared carriers, the probes) and any still
        in use would otherwise stay in a list-based layer (channels_redis core)
        until ``group_expiry``, each event to them queued for a channel no one
        reads. Unsubscribing is best effort: a layer that is down forgets them anyway.
        """
        channel = self.channel
        if channel is not None:
            async with self.changing:
                layer_groups = self.shared | {
                    entry.via or name for name, entry in self.groups.items() if entry.subscribed
                }
                for layer_group in layer_groups:
                    try:
                        await self.layer.group_discard(layer_group, channel)
                    except Exception as exc:
                        log.warning("Leaving %s on shutdown failed: %s", layer_group, exc)
                        break
                self.groups.clear()
                self.joined.clear()
                self.shared.clear()
        await self.close()

    def _keep(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = self.loop.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def _unsubscribe_if_empty(self, group: str) -> None:
        entry = self.groups.get(group)
        if entry is None or entry.members:
            return
        async with self.changing:
            if entry.members or not entry.subscribed:
                return
            # Marked first: an add() arriving during the await waits for the lock and resubscribes.
            entry.subscribed = False
            try:
                if entry.via is None:  # a shared carrier stays subscribed
                    await self.layer.group_discard(group, self.channel)
            finally:
                if not entry.members and self.groups.get(group) is entry:
                    del self.groups[group]

    def _unlist(self, group: str, member: Member) -> None:
        entry = self.groups.get(group)
        if entry is not None:
            entry.members.discard(member)
        groups = self.joined.get(member)
        if groups is not None:
            groups.discard(group)
            if not groups:
                del self.joined[member]

    def members(self, group: str) -> int:
        """How many local sockets are in ``group``."""
        entry = self.groups.get(group)
        return len(entry.members) if entry else 0

    async def _channel(self) -> str:
        if self.channel is None:
            self.channel = channel = await self.layer.new_channel()
            self.reader = self.loop.create_task(self._read(channel))
            self.renewer = self.loop.create_task(self._renew_every(self.refresh))
            self.prober = self.loop.create_task(self._probe_every(self.probe))
            # Listed first: if Redis fails here, the probes fail and recovery subscribes them.
            self.shared.update(self.probe_groups)
            for group in self.probe_groups:
                await self.layer.group_add(group, channel)
            self._watch_reconnects()
        return self.channel

    async def renew(self) -> None:
        """Subscribe again to every group in use (a no-op for the layer if it still has them)."""
        async with self.changing:
            layer_groups = self.shared | {
                entry.via or name for name, entry in self.groups.items() if entry.subscribed
            }
            for layer_group in layer_groups:
                await self.layer.group_add(layer_group, self.channel)

    async def _renew_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await self.renew()
            except Exception as exc:  # the layer is down: the next round or a receive retries
                log.warning("Renewing the hub's subscriptions failed: %s", exc)

    def _watch_reconnects(self) -> None:
        """Hear of each reconnection of channels_redis' pub/sub subscriber connections.

        That layer reconnects and resubscribes by itself, without telling
        anyone; what was published in between is lost. Other layers: no-op.
        """
        loop_layer = vars(self.layer).get("_layers", {}).get(self.loop)  # the pub/sub layer's
        for shard in vars(loop_layer).get("_shards", ()) if loop_layer is not None else ():
            connection = getattr(getattr(shard, "_pubsub", None), "connection", None)
            if connection is not None and hasattr(connection, "register_connect_callback"):
                connection.register_connect_callback(self._subscriber_reconnected)  # idempotent

    def _subscriber_reconnected(self, connection) -> None:
        """redis-py's connect callback (after it resubscribed): recover as after a failure."""
        self._fail("the layer's subscriber connection was made again")
        self._keep(self._recover_or_log())

    async def _recover_or_log(self) -> None:
        try:
            await self._recover()
        except Exception as exc:  # still down: the probe or the next reconnection retries
            log.warning("Renewing the hub's subscriptions failed: %s", exc)

    async def _recover(self) -> None:
        """After a failure: renew every subscription; once that works, run the callbacks."""
        await self.renew()
        if not self.failing:
            return
        self.failing = False
        if not events.failing_shards():
            metrics.LAYER_UP.set(1)
        log.warning("The channel layer answers again; the hub's subscriptions are renewed.")
        for callback in self.recovery_callbacks:
            self._keep(self._run_callback(callback))

    async def _run_callback(self, callback: Callable[[], Awaitable[None]]) -> None:
        try:
            await callback()
        except Exception:
            log.exception("A recovery callback of the hub failed")

    def _fail(self, why: str) -> None:
        metrics.layer_failed("subscribe")
        if not self.failing:
            log.warning("The channel layer failed (%s); the hub resubscribes when it is back.", why)
        self.failing = True

    async def _probe_every(self, seconds: float) -> None:
        """Send the hub a probe through the layer each ``seconds``; note failures and recoveries."""
        while True:
            await asyncio.sleep(seconds)
            self._probes += 1
            self._probe_reply = self.loop.create_future()
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow
                # a cancel that lands as the probe's reply arrives, and close() hangs.
                async with asyncio.timeout(PROBE_TIMEOUT):
                    await self._probe_once(self._probes)
            except asyncio.CancelledError:
                raise
            except TimeoutError:
                # Sent, but not back: Redis (a shard, with the core layer) may have
                # restarted empty and forgotten the subscriptions. Renew them now;
                # another probe alone would never come back.
                self._fail(f"a probe did not come back in {PROBE_TIMEOUT:g} s")
                events.mark_failing(self._probe_pending)  # the shards that did not answer
            except Exception as exc:
                self._fail(f"probe: {type(exc).__name__}: {exc}")
                events.mark_failing(range(len(self.probe_groups)))
                continue
            finally:
                self._probe_reply = None
            if self.failing:
                await self._recover_or_log()

    async def _probe_once(self, number: int) -> None:
        """Send probe ``number`` through every shard's probe group; return when all came back."""
        reply = self._probe_reply
        assert reply is not None  # set by the caller before each probe
        self._probe_pending = set(range(len(self.probe_groups)))
        for shard, group in enumerate(self.probe_groups):
            await self.layer.group_send(
                group, {"type": PROBE_TYPE, "probe": number, "shard": shard}
            )
        await reply

    def _probe_answered(self, event: dict[str, Any]) -> None:
        """Note one shard's answer; an older probe's late one counts for nothing."""
        reply = self._probe_reply
        if reply is None or reply.done() or event.get("probe") != self._probes:
            return
        self._probe_pending.discard(event.get("shard", 0))
        if not self._probe_pending:
            reply.set_result(None)

    async def _read(self, channel: str) -> None:
        """Receive each event once and push it to every local member of its group."""
        while True:
            try:
                event = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The layer reconnects by itself (pub/sub) or the next receive
                # fails again; either way keep reading, without spinning. Redis
                # may have restarted empty: subscribe again once it answers.
                self._fail(f"receive: {type(exc).__name__}: {exc}")
                await asyncio.sleep(0.5)
                with contextlib.suppress(Exception):
                    await self._recover()
                continue
            if event.get("type") == PROBE_TYPE:
                self._probe_answered(event)
                continue
            self.deliver(event)

    def deliver(self, event: dict[str, Any]) -> None:
        """Push ``event`` to every local member of its ``group`` (none: nothing happens)."""
        entry = self.groups.get(event.get("group", ""))
        if entry is None:
            return
        room_event = "text" in event
        if room_event:  # a room event: one ASGI message and one frame, for every member
            event["frame"] = {"type": "websocket.send", "text": event["text"]}
            event["wire"] = wire.text_frame(event["text"])
        members = tuple(entry.members)
        for member in members:
            try:
                member.push(event)
            except Exception:
                # One broken socket must not silence the others: drop it; its
                # client reconnects and joins with since.
                log.exception("Delivering an event to a socket failed; closing that socket")
                self.forget(member)
                with contextlib.suppress(Exception):
                    member.abort()
        if room_event:
            metrics.delivered(event, len(members))

    async def once(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
        """``read()``'s result, read once for every local member that asks for ``key`` meanwhile.

        The members of a room that miss the same events (all of them, when
        two posts' events arrive out of seq order) fill the gap with one
        database read between them instead of one each. A member that stops
        waiting (its socket closed) does not cancel the read for the others.
        """
        pending = self.reads.get(key)
        if pending is None:
            pending = self.reads[key] = asyncio.ensure_future(read())
            pending.add_done_callback(partial(self._read_done, key))
        result: T = await asyncio.shield(pending)
        return result

    def _read_done(self, key: Hashable, done: asyncio.Future[Any]) -> None:
        if self.reads.get(key) is done:
            del self.reads[key]
        if not done.cancelled():
            done.exception()  # retrieved: every member that still waited got it

    def group_names(self) -> list[str]:
        """The groups that have local members now."""
        return [name for name, entry in self.groups.items() if entry.members]


def hub() -> Hub:
    """The hub of the default channel layer on the running loop (made on first use)."""
    layer = get_channel_layer()
    loop = asyncio.get_running_loop()
    found = vars(layer).get("_chat_hub")  # vars(): the pub/sub layer proxies unknown attributes
    if found is None or found.loop is not loop:
        found = Hub(layer, loop)
        # Events published while the subscription was lost are gone: catch up by seq.
        found.on_recovery(partial(events.catch_up_local_rooms, found))
        vars(layer)["_chat_hub"] = found
    return found


async def stop_running() -> None:
    """Stop the running loop's hub, if one was made (the server's shutdown, config/server.py)."""
    found = vars(get_channel_layer()).get("_chat_hub")
    if found is not None and found.loop is asyncio.get_running_loop():
        await found.stop()
