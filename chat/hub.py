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
REFRESH_SECONDS, and after the layer fails a receive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

from channels.layers import get_channel_layer

log = logging.getLogger(__name__)

REFRESH_SECONDS = 3600.0  # well inside channels_redis' default group_expiry of 86400


class Member(Protocol):
    """A local socket: takes events without blocking the hub."""

    def push(self, event: dict[str, Any]) -> None: ...


class _Group:
    __slots__ = ("members", "subscribed", "via")

    def __init__(self) -> None:
        self.members: set[Member] = set()
        self.subscribed = False
        self.via: str | None = None  # the shared layer group that carries it, if any


class Hub:
    """Subscriptions and local members of one channel layer on one event loop."""

    def __init__(
        self, layer, loop: asyncio.AbstractEventLoop, *, refresh: float = REFRESH_SECONDS
    ) -> None:
        self.layer = layer
        self.loop = loop
        self.refresh = refresh
        self.groups: dict[str, _Group] = {}
        self.joined: dict[Member, set[str]] = {}  # each member's groups, for forget()
        self.changing = asyncio.Lock()  # subscribe/unsubscribe one at a time (first/last member)
        self.channel: str | None = None
        self.reader: asyncio.Task | None = None
        self.renewer: asyncio.Task | None = None
        self.shared: set[str] = set()  # layer groups subscribed for good (``via``)

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
            self.loop.create_task(self._unsubscribe_if_empty(group))

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
            self.channel = await self.layer.new_channel()
            self.reader = self.loop.create_task(self._read(self.channel))
            self.renewer = self.loop.create_task(self._renew_every(self.refresh))
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
                log.warning("Receiving from the channel layer failed: %s", exc)
                await asyncio.sleep(0.5)
                with contextlib.suppress(Exception):
                    await self.renew()
                continue
            entry = self.groups.get(event.get("group", ""))
            if entry is None:
                continue
            if "text" in event:  # a room event: one ASGI message, sent as is by every member
                event["frame"] = {"type": "websocket.send", "text": event["text"]}
            for member in tuple(entry.members):
                member.push(event)


def hub() -> Hub:
    """The hub of the default channel layer on the running loop (made on first use)."""
    layer = get_channel_layer()
    loop = asyncio.get_running_loop()
    found = vars(layer).get("_chat_hub")  # vars(): the pub/sub layer proxies unknown attributes
    if found is None or found.loop is not loop:
        found = Hub(layer, loop)
        vars(layer)["_chat_hub"] = found
    return found
