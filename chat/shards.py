"""Which Redis server of a sharded channel layer carries a group, and a group on each server.

channels_redis shards both of its layers over the ``hosts`` list by name:
CRC32 of the name, its low 12 bits (0..4095) cut into ``len(hosts)`` equal
ranges. The pub/sub layer hashes a group's Redis channel
(``{prefix}__group__{group}``); the list-based (core) layer hashes the group
name itself. So a room lives on one shard, and a process that has sockets in
rooms on every shard holds a subscription on every shard.

This module mirrors that choice, so the hub can probe every shard, /healthz
can check every shard and a failed publish marks only its own shard. The
tests check the mirror against where Redis really holds each subscription.
"""

from __future__ import annotations

import itertools
from typing import Any

from channels_redis.utils import _consistent_hash, decode_hosts  # type: ignore[import-untyped]


def _pubsub_kwargs(layer: Any) -> dict[str, Any] | None:
    """The pub/sub layer's constructor arguments (it proxies attributes, so vars())."""
    kwargs: dict[str, Any] | None = vars(layer).get("_kwargs")
    return kwargs


def shard_count(layer: Any) -> int:
    """How many Redis servers ``layer`` shards over (1 for any other layer)."""
    ring: int | None = vars(layer).get("ring_size")  # channels_redis.core
    if ring:
        return ring
    kwargs = _pubsub_kwargs(layer)
    if kwargs is not None:
        return len(decode_hosts(kwargs.get("hosts")))
    return 1


def group_shard(layer: Any, group: str) -> int:
    """The index in the layer's ``hosts`` of the Redis that carries ``group``."""
    count = shard_count(layer)
    if count == 1:
        return 0
    kwargs = _pubsub_kwargs(layer)
    # pub/sub: RedisPubSubLoopLayer._get_group_channel_name, then _get_shard;
    # core: RedisChannelLayer.consistent_hash(group).
    name = group if kwargs is None else f"{kwargs.get('prefix', 'asgi')}__group__{group}"
    shard: int = _consistent_hash(name, count)
    return shard


def group_on_each_shard(layer: Any, stem: str) -> list[str]:
    """One group name per shard, in shard order: ``stem.N`` with the first N that lands there.

    Deterministic: every process finds the same names for the same layer.
    """
    count = shard_count(layer)
    found: dict[int, str] = {}
    for number in itertools.count():
        name = f"{stem}.{number}"
        found.setdefault(group_shard(layer, name), name)
        if len(found) == count:
            return [found[index] for index in range(count)]
    raise AssertionError("unreachable")  # itertools.count() does not end
