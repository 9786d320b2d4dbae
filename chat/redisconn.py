"""Redis connections for the parts that talk to Redis directly (rate limits, health).

Redis is named either by REDIS_URL or by Sentinel (REDIS_SENTINELS and
REDIS_SENTINEL_MASTER), the same two ways the channel layer accepts.
"""

from __future__ import annotations

import redis
from django.conf import settings
from redis import asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.retry import Retry


def _defaults(retry_class, options: dict) -> dict:
    """The retry and health-check settings, unless the caller gives its own.

    A pooled connection that Redis dropped fails its next command; with a
    retry it is made again and the command goes through.
    """
    return {
        "retry": retry_class(ExponentialBackoff(cap=0.5, base=0.05), settings.REDIS_RETRIES),
        "health_check_interval": settings.REDIS_HEALTH_CHECK_INTERVAL,
        **options,
    }


def redis_configured() -> bool:
    """True when Redis is configured (URL or Sentinel)."""
    return bool(settings.REDIS_URL or settings.REDIS_SENTINELS)


def sync_client(**options) -> redis.Redis:
    """A blocking client for the configured Redis (the Sentinel master, if Sentinel)."""
    options = _defaults(Retry, options)
    if settings.REDIS_URL:
        return redis.Redis.from_url(settings.REDIS_URL, **options)
    sentinel = redis.sentinel.Sentinel(
        settings.REDIS_SENTINELS, socket_timeout=options.get("socket_timeout", 2)
    )
    return sentinel.master_for(settings.REDIS_SENTINEL_MASTER, **options)


def async_client(**options) -> aioredis.Redis:
    """An asyncio client for the configured Redis (the Sentinel master, if Sentinel)."""
    options = _defaults(AsyncRetry, options)
    if settings.REDIS_URL:
        return aioredis.Redis.from_url(settings.REDIS_URL, **options)
    sentinel = aioredis.sentinel.Sentinel(
        settings.REDIS_SENTINELS, socket_timeout=options.get("socket_timeout", 2)
    )
    return sentinel.master_for(settings.REDIS_SENTINEL_MASTER, **options)
