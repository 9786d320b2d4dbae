"""Redis connections for the parts that talk to Redis directly (rate limits, health).

Redis is named either by REDIS_URL or by Sentinel (REDIS_SENTINELS and
REDIS_SENTINEL_MASTER), the same two ways the channel layer accepts.
"""

from __future__ import annotations

import redis
from django.conf import settings
from redis import asyncio as aioredis


def redis_configured() -> bool:
    """True when Redis is configured (URL or Sentinel)."""
    return bool(settings.REDIS_URL or settings.REDIS_SENTINELS)


def sync_client(**options) -> redis.Redis:
    """A blocking client for the configured Redis (the Sentinel master, if Sentinel)."""
    if settings.REDIS_URL:
        return redis.Redis.from_url(settings.REDIS_URL, **options)
    sentinel = redis.sentinel.Sentinel(
        settings.REDIS_SENTINELS, socket_timeout=options.get("socket_timeout", 2)
    )
    return sentinel.master_for(settings.REDIS_SENTINEL_MASTER, **options)


def async_client(**options) -> aioredis.Redis:
    """An asyncio client for the configured Redis (the Sentinel master, if Sentinel)."""
    if settings.REDIS_URL:
        return aioredis.Redis.from_url(settings.REDIS_URL, **options)
    sentinel = aioredis.sentinel.Sentinel(
        settings.REDIS_SENTINELS, socket_timeout=options.get("socket_timeout", 2)
    )
    return sentinel.master_for(settings.REDIS_SENTINEL_MASTER, **options)
