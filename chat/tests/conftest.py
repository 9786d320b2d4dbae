"""Fixtures: users, rooms, isolated channel layers, sockets through the real ASGI app, a browser.

What they are made of lives in testkit/ (factories, servers, sockets, browser).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings as django_settings
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from chat import events
from testkit import browser as browsers
from testkit import factories
from testkit.factories import session_cookie
from testkit.proxy import TcpProxy
from testkit.s3 import MISSING as S3_MISSING
from testkit.s3 import start_s3, weed_binary
from testkit.servers import PostgresDatabase, ensure_redis, flush_prefix, postgres_base_url
from testkit.sockets import Communicator, Socket

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

# Property tests: "ci" (the default) tries the same examples on every run, so a
# failure reproduces; "explore" (HYPOTHESIS_PROFILE=explore) searches at random.
hypothesis_settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=50,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
hypothesis_settings.register_profile(
    "explore",
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_report_header(config):
    """Say which database and channel layer this run uses."""
    db = django_settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    layer = django_settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
    return f"multichat: database {db}, channel layer {layer}"


@pytest.fixture(scope="session", autouse=True)
def close_database_pools(django_db_setup, django_db_blocker):
    """Close psycopg pools before the test database is dropped (they hold connections)."""
    yield
    from django.db import connections

    with django_db_blocker.unblock():
        for connection in connections.all(initialized_only=True):
            if getattr(connection, "pool", None) is not None:
                connection.close_pool()


LEFT_CHECKED_OUT_WAIT = 5.0  # seconds a test's last database calls get to return their connection


@pytest.fixture(autouse=True)
def no_connection_left_checked_out() -> Iterator[None]:
    """PostgreSQL: fail a test after which a thread keeps a connection out of the pool.

    Only the test's own thread may still hold one (pytest-django closes it at
    the end of the run). Any other thread's is a session that the pool cannot
    close and that stops the test database from being dropped: code that ran
    ORM calls without close_old_connections (channels' own test communicator
    does that; testkit.sockets.Communicator does not).
    """
    yield
    from django.db import connections

    connection = connections["default"]
    # The pool as this process made it, if it did: reading ``connection.pool`` would open
    # one (on a test database a run that used none never created) and count its
    # connections, still being opened, as checked out.
    pool = getattr(connection, "_connection_pools", {}).get(connection.alias)
    if pool is None:  # SQLite, PostgreSQL without a pool, or no database call yet
        return
    own = 0 if connection.connection is None else 1
    deadline = time.monotonic() + LEFT_CHECKED_OUT_WAIT
    while (out := _checked_out(pool)) > own and time.monotonic() < deadline:
        time.sleep(0.02)  # a sync fixture: polls the condition, within the deadline
    assert out <= own, (
        f"{out - own} pooled database connection(s) still checked out by other threads "
        f"{LEFT_CHECKED_OUT_WAIT} s after the test; each is a session left behind"
    )


def _checked_out(pool: ConnectionPool) -> int:
    """How many of the pool's connections are out with a thread (psycopg_pool's stats)."""
    stats = pool.get_stats()
    return stats["pool_size"] - stats["pool_available"]


@pytest.fixture(scope="module")
def database_url():
    """The database for a module's real servers: a throwaway PostgreSQL one, or None (SQLite)."""
    base = postgres_base_url()
    if base is None:
        yield None
        return
    database = PostgresDatabase.create(base, migrated=True)
    yield database.url
    database.drop()


@pytest.fixture
def pg_url():
    """A throwaway PostgreSQL database, or skip when this pass runs on SQLite."""
    base = postgres_base_url()
    if base is None:
        pytest.skip("needs PostgreSQL (runs in the PostgreSQL pass of scripts/test)")
    database = PostgresDatabase.create(base, migrated=True)
    yield database.url
    database.drop()


@pytest.fixture(scope="session")
def redis_server():
    """A real Redis: TEST_REDIS_URL, the local one, or a throwaway one started here."""
    server = ensure_redis()
    yield server
    server.stop()


def _redis_layer_config(url: str, prefix: str) -> dict:
    return {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": url, "socket_timeout": 30}], "prefix": prefix},
        }
    }


@pytest.fixture(autouse=True)
def isolated_channel_layer(settings):
    """A fresh channel layer per test; with Redis, a prefix of its own, flushed afterwards."""
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    config = layers["default"].get("CONFIG", {})
    prefix = f"mctest-{uuid.uuid4().hex[:12]}"
    if "prefix" in config:
        config["prefix"] = prefix
    settings.CHANNEL_LAYER_PREFIX = prefix  # also isolates the Redis rate-limit buckets
    settings.CHANNEL_LAYERS = layers  # the setting_changed signal drops the cached layer
    redis_url = settings.REDIS_URL  # as the run has it, whatever the test changes
    yield
    if redis_url:
        flush_prefix(redis_url, prefix)


@pytest.fixture(autouse=True)
def fresh_stream_reads():
    """No stream range kept from an earlier test (events.stream_recent): room ids repeat
    across the tests' databases."""
    events.forget_recent()
    yield
    events.forget_recent()


@pytest.fixture
def redis_layer(settings, redis_server):
    """Use Redis for this test (channel layer and rate limits), whatever the run's default."""
    settings.REDIS_URL = redis_server.url
    settings.CHANNEL_LAYERS = _redis_layer_config(redis_server.url, settings.CHANNEL_LAYER_PREFIX)
    yield redis_server.url


@pytest.fixture
def core_layer(settings, redis_server):
    """channels_redis' list-based layer (CHANNEL_LAYER=core; the tutorial's) on a real Redis."""
    prefix = settings.CHANNEL_LAYER_PREFIX  # unique per test (conftest.isolated_channel_layer)
    host = {"address": redis_server.url, "socket_timeout": 30}
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [host], "prefix": prefix},
        }
    }
    yield
    flush_prefix(redis_server.url, prefix)


@pytest.fixture
def make_user(transactional_db):
    """Create a user: make_user("bob", staff=True)."""

    def make(username: str, *, staff: bool = False, password: str = factories.PASSWORD):
        return factories.create_user(username, password=password, staff=staff)

    return make


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def bob(make_user):
    return make_user("bob")


@pytest.fixture
def staff(make_user):
    return make_user("stella", staff=True)


@pytest.fixture
def room(transactional_db):
    return factories.create_room("General")


@pytest.fixture
def staff_room(transactional_db):
    return factories.create_room("Staff lounge", staff_only=True)


@pytest.fixture
async def connect():
    """Open sockets as a user (or anonymously); all are disconnected after the test."""
    from config.asgi import application

    opened: list[Socket] = []

    async def open_socket(
        user=None, *, origin: str | None = "http://localhost", expect=True, headers=None
    ):
        headers = list(headers or [])  # extra (name, value) byte pairs, e.g. authorization
        if not any(name == b"host" for name, _ in headers):
            headers.append((b"host", b"localhost"))  # as a browser on http://localhost sends it
        if origin is not None:
            headers.append((b"origin", origin.encode()))
        if user is not None:
            headers.append((b"cookie", await database_sync_to_async(session_cookie)(user)))
        comm = Communicator(application, "/chat/stream/", headers=headers)
        # A wait, not a sleep: it returns at the answer; a busy 2-core machine needs seconds.
        connected, _ = await comm.connect(timeout=5)
        assert connected is expect
        socket = Socket(comm)
        opened.append(socket)  # even a refused one: its app instance must be shut down
        return socket

    yield open_socket
    for socket in opened:
        with contextlib.suppress(Exception):  # already closed by the server
            await socket.close()


@pytest.fixture
async def user_events():
    """The user events (logouts, user changes) published to every process, read in order.

    ``await user_events()`` is the next one, as every process's hub receives it.
    """
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(events.USERS_GROUP, channel)

    async def next_event(timeout: float = 3) -> dict:
        async with asyncio.timeout(timeout):
            return await layer.receive(channel)

    yield next_event
    await layer.group_discard(events.USERS_GROUP, channel)


@pytest.fixture(scope="module")
def browser():
    """A headless Debian Chromium for this module; skipped, saying what to install, if absent."""
    executable = browsers.find_chromium()
    if executable is None:
        pytest.skip(browsers.MISSING)
    with browsers.launched(executable) as chromium:
        yield chromium


@pytest.fixture(scope="module")
def s3_server():
    """A real S3-compatible server (SeaweedFS) with one bucket, for this module; skipped,
    saying why, when there is no ``weed`` or it does not start."""
    if weed_binary() is None:
        pytest.skip(S3_MISSING)
    try:
        server = start_s3()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture
def shared_database():
    """One database for several server processes: throwaway PostgreSQL, else a shared SQLite dir."""
    base = postgres_base_url()
    if base is None:
        yield {"data_dir": tempfile.mkdtemp(prefix="multichat-shared-")}
        return
    database = PostgresDatabase.create(base, migrated=True)
    yield {"database_url": database.url}
    database.drop()


@pytest.fixture
def proxy(server):
    """A TCP proxy in front of the module's ``server`` that the test can cut like a cable."""
    front = TcpProxy("127.0.0.1", server.port).start()
    front.url = f"http://127.0.0.1:{front.port}/"
    yield front
    front.stop()
