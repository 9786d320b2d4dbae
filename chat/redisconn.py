"""Redis connections for the parts that talk to Redis directly (rate limits, health).

Redis is named either by REDIS_URL or by Sentinel (REDIS_SENTINELS and
REDIS_SENTINEL_MASTER), the same two ways the channel layer accepts. The
layer alone may also be sharded over REDIS_LAYER_URLS (``layer_client``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import redis
from channels_redis.utils import decode_hosts  # type: ignore[import-untyped]
from django.conf import settings
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from chat import conf

T = TypeVar("T")

# What a store is made for: REDIS_URL, REDIS_SENTINELS and CHANNEL_LAYER_PREFIX.
_Configuration = tuple[str, tuple[tuple[str, int], ...], str]


def _defaults(options: dict[str, Any]) -> dict[str, Any]:
    """The retry and health-check settings, unless the caller gives its own.

    A pooled connection that Redis dropped fails its next command; with a
    retry it is made again and the command goes through.
    """
    return {
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), conf.REDIS_RETRIES),
        "health_check_interval": conf.REDIS_HEALTH_CHECK_INTERVAL,
        **options,
    }


def redis_configured() -> bool:
    """True when Redis is configured (URL or Sentinel)."""
    return bool(conf.REDIS_URL or conf.REDIS_SENTINELS)


def sync_client(**options: Any) -> redis.Redis:
    """A blocking client for the configured Redis (the Sentinel master, if Sentinel)."""
    options = _defaults(options)
    if conf.REDIS_URL:
        return redis.Redis.from_url(conf.REDIS_URL, **options)
    # redis-py's Sentinel API has no annotations.
    sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
        conf.REDIS_SENTINELS, socket_timeout=options.get("socket_timeout", 2)
    )
    master: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        conf.REDIS_SENTINEL_MASTER, **options
    )
    return master


def layer_client(shard: int, **options: Any) -> redis.Redis:
    """A blocking client for one shard of the channel layer (its index in the layer's hosts)."""
    host = decode_hosts(settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"])[shard]
    if "address" in host:
        return redis.Redis.from_url(host["address"], **_defaults(options))
    return sync_client(**options)  # Sentinel: the one master, as for everything else


class PerConfiguration(Generic[T]):
    """One store per Redis configuration, made again when it changes (as tests change it).

    ``with_redis(client, prefix)`` makes the store shared through Redis when
    Redis is configured; ``local()`` makes the in-process one otherwise.
    """

    def __init__(self, with_redis: Callable[[redis.Redis, str], T], local: Callable[[], T]) -> None:
        self.with_redis = with_redis
        self.local = local
        self.store: T | None = None
        self.configured_for: _Configuration | None = None

    def get(self) -> T:
        """The store for the current settings."""
        config: _Configuration = (
            conf.REDIS_URL,
            tuple(conf.REDIS_SENTINELS),
            conf.CHANNEL_LAYER_PREFIX,
        )
        if self.store is None or config != self.configured_for:
            if redis_configured():
                client = sync_client(socket_timeout=2, socket_connect_timeout=2)
                self.store = self.with_redis(client, conf.CHANNEL_LAYER_PREFIX)
            else:
                self.store = self.local()
            self.configured_for = config
        return self.store
