"""What the scenarios share: the configurations, a fresh server to measure, its processes.

Every scenario gets its own throwaway PostgreSQL database, its own Redis
(a throwaway redis-server pinned to core 0 with the server, unless
``--redis`` names one) and its own server process (started through
testkit.live.LiveServer), pinned to core 0; ``served`` sets one up and tears
it all down again: the server, its Redis (or its keys in the given one),
its database and its data directory (kept when the scenario failed, for the
server's log). The ``raw`` configuration (bench/raw.py) needs neither
database nor Redis: its users and rooms are made up.

CPU is read from /proc: the server's processes, the pinned redis-server,
and the PostgreSQL backends serving the scenario's database (their pids
from pg_stat_activity, read at every snapshot; a backend that started and
ended between two snapshots is not counted).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from testkit.live import LiveServer
from testkit.servers import (
    PostgresDatabase,
    RedisServer,
    flush_prefix,
    free_port,
    redis_answers,
    redis_server_binary,
)

VENV = Path(sys.executable).parent
# Other ASGI servers serving the production application ({port} is filled in).
SERVERS = {
    "uvicorn": None,  # python -m config.server: the project's own flags
    "daphne": [str(VENV / "daphne"), "-b", "127.0.0.1", "-p", "{port}", "config.asgi:application"],
    "hypercorn": [str(VENV / "hypercorn"), "-b", "127.0.0.1:{port}", "-k", "uvloop",
                  "config.asgi:application"],
    "granian": [str(VENV / "granian"), "--interface", "asgi", "--host", "127.0.0.1", "--port",
                "{port}", "--loop", "uvloop", "--workers", "1", "config.asgi:application"],
}  # fmt: skip
# Every configuration stores every message and neither limits nor announces.
BENCH_ENV = {
    "CHAT_SEND_RATE": "0",
    "CHAT_JOIN_RATE": "0",
    "CHAT_HISTORY_RATE": "0",
    "CHAT_UPLOAD_RATE": "0",
    "NOTIFY_USERS_ON_ENTER_OR_LEAVE_ROOMS": "0",
}


@dataclass(frozen=True)
class Config:
    """One way of serving the chat: a server command line (None: config.server) and its env.

    ``services``: the server stores in PostgreSQL and talks to Redis (False for ``raw``).
    """

    name: str
    command: list[str] | None
    env: dict[str, str]
    services: bool = True


CONFIGS = {
    "production": Config("production", None, {"CHANNEL_LAYER": "pubsub"}),
    "tutorial": Config(
        "tutorial",
        [str(VENV / "daphne"), "-b", "127.0.0.1", "-p", "{port}", "bench.tutorial:application"],
        {"CHANNEL_LAYER": "core"},
    ),
    "raw": Config("raw", [sys.executable, "-m", "bench.raw", "--port", "{port}"], {}, False),
}


def config_named(name: str) -> Config:
    """``production``, ``tutorial``, ``raw``, or SERVER:LAYER (e.g. ``daphne:core``)."""
    if name in CONFIGS:
        return CONFIGS[name]
    server, _, layer = name.partition(":")
    if server not in SERVERS or layer not in ("pubsub", "core"):
        raise ValueError(
            f"Unknown configuration {name!r}: use {', '.join(CONFIGS)} or SERVER:LAYER with "
            f"SERVER one of {', '.join(SERVERS)} and LAYER pubsub or core."
        )
    return Config(name, SERVERS[server], {"CHANNEL_LAYER": layer})


@dataclass
class Bench:
    """Where and how to run: the configuration, PostgreSQL, Redis (None: a pinned throwaway
    one per scenario), and the profile directory."""

    config: Config
    database: str
    redis: str | None
    profile_dir: str | None = None
    round: int = 1  # which round of the (configuration, scenario) this is


@dataclass(frozen=True)
class Spent:
    """CPU seconds used between two snapshots: the server, its Redis and PostgreSQL (None:
    not measured: an external Redis, no database, or PostgreSQL on another machine)."""

    server: float
    redis: float | None
    postgres: float | None
    others_pct: float | None = None  # core 0 used by anything else, % of the interval


@dataclass(frozen=True)
class Usage:
    """A snapshot of CPU seconds used so far; ``spent_since`` gives the difference."""

    server: float
    redis: float | None
    postgres: dict[int, float] | None  # backend pid -> CPU seconds
    core0: float | None = None  # busy seconds of core 0 (all processes), from /proc/stat
    wall: float = 0.0  # time.monotonic() of the snapshot

    def spent_since(self, before: Usage) -> Spent:
        """CPU used from ``before`` to this snapshot (a backend new since then: all of it).

        ``others_pct``: how much of core 0 other processes of the machine took
        meanwhile (the server and its Redis are pinned there): the noise.
        """
        redis = None
        if self.redis is not None and before.redis is not None:
            redis = self.redis - before.redis
        postgres = None
        if self.postgres is not None and before.postgres is not None:
            earlier = before.postgres
            postgres = sum(now - earlier.get(pid, 0.0) for pid, now in self.postgres.items())
        server = self.server - before.server
        others = None
        wall = self.wall - before.wall
        if self.core0 is not None and before.core0 is not None and wall > 0:
            taken = self.core0 - before.core0 - server - (redis or 0.0)
            others = round(max(taken, 0.0) / wall * 100, 1)
        return Spent(server, redis, postgres, others)


class PostgresCpu:
    """The CPU time of the PostgreSQL backends serving one database, from /proc.

    Their pids come from pg_stat_activity (asked over a connection to the
    ``postgres`` database, which is not counted). Only for a PostgreSQL on
    this machine: ``snapshot`` returns None when no backend's /proc is found.
    """

    def __init__(self, admin_url: str, name: str) -> None:
        self.name = name
        self.connection = psycopg.connect(admin_url, autocommit=True)

    def snapshot(self) -> dict[int, float] | None:
        """CPU seconds per backend pid of the database, now."""
        rows = self.connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.name,)
        ).fetchall()
        found: dict[int, float] = {}
        for (pid,) in rows:
            try:
                found[pid] = cpu_seconds([pid])
            except (OSError, IndexError):  # gone meanwhile, or not on this machine
                continue
        return found if found or not rows else None

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()


@dataclass
class Target:
    """A started server with its users (session keys) and rooms, and what to measure."""

    live: LiveServer
    pids: list[int]
    keys: list[str]
    rooms: list[int]
    redis_pids: list[int] | None = None  # the pinned redis-server (None: not ours)
    postgres: PostgresCpu | None = None
    services: bool = True  # False: no database (raw); posts go through a socket

    @property
    def url(self) -> str:
        """The chat socket's ws:// URL."""
        return self.live.ws_url

    def rss(self) -> int:
        """Resident memory of the server, in bytes."""
        return rss_bytes(self.pids)

    def cpu(self) -> float:
        """CPU seconds the server has used so far."""
        return cpu_seconds(self.pids)

    def usage(self) -> Usage:
        """CPU seconds used so far by the server, its Redis and its database's backends."""
        return Usage(
            server=cpu_seconds(self.pids),
            redis=cpu_seconds(self.redis_pids) if self.redis_pids else None,
            postgres=self.postgres.snapshot() if self.postgres else None,
            core0=core_busy_seconds(0) if (os.cpu_count() or 1) >= 2 else None,
            wall=time.monotonic(),
        )


def create_users_and_rooms(
    live: LiveServer, *, users: int, rooms: int
) -> tuple[list[str], list[int]]:
    """Create ``users`` users, each logged in (one session each), and ``rooms`` rooms."""
    keys, room_ids = live.testkit(
        "batch", calls=[["logged-in-users", {"count": users}], ["rooms", {"count": rooms}]]
    )
    return keys, room_ids


def store_messages(live: LiveServer, *, room: int, count: int) -> None:
    """Post ``count`` messages to ``room`` through the service every post goes through."""
    live.testkit("post", room_id=room, texts=[f"r{i}" for i in range(count)])


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (servers that fork workers)."""
    found = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().split(")")[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found += process_tree(int(entry))
    return found


def rss_bytes(pids: list[int]) -> int:
    """Resident memory of these processes."""
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes."""
    ticks = 0
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()
        ticks += int(stat[11]) + int(stat[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def core_busy_seconds(core: int) -> float:
    """Seconds core ``core`` has been busy (not idle or waiting on I/O) since boot."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, line.split()[1:9])
            return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    raise ValueError(f"/proc/stat has no cpu{core}")


def pin_to_core0(live: LiveServer) -> list[int]:
    """Pin every thread of the started server (and its workers) to core 0; return the pids.

    Threads started later inherit the mask of the thread that starts them.
    """
    pids = process_tree(live.process.pid)
    if (os.cpu_count() or 1) < 2:
        return pids
    for pid in pids:
        for thread in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(ProcessLookupError):  # a worker thread that just ended
                os.sched_setaffinity(int(thread), {0})
    return pids


async def start_profile(pid: int, path: Path) -> asyncio.subprocess.Process:
    """Start py-spy recording ``pid`` (raw collapsed stacks) until stop_profile."""
    spy = VENV / "py-spy" if (VENV / "py-spy").exists() else "py-spy"
    return await asyncio.create_subprocess_exec(
        str(spy), "record", "-p", str(pid), "-o", str(path), "-f", "raw", "-r", "100",
        "--nonblocking",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def stop_profile(spy: asyncio.subprocess.Process) -> None:
    """Stop py-spy as Ctrl-C would, so that it writes the profile."""
    if spy.returncode is None:
        spy.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(spy.wait(), 30)
    except TimeoutError:
        spy.kill()
        await spy.wait()


def start_pinned_redis() -> RedisServer:
    """A throwaway redis-server on a free port, no persistence, every thread on core 0."""
    binary = redis_server_binary()
    if binary is None:
        raise RuntimeError("No redis-server to start: install redis-server, or give --redis URL.")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="mcbench-redis-")
    pin = ["taskset", "-c", "0"] if (os.cpu_count() or 1) >= 2 else []
    command = [*pin, binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", workdir]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = RedisServer(f"redis://127.0.0.1:{port}/0", "pinned", process, workdir)
    deadline = time.monotonic() + 10
    while not redis_answers("127.0.0.1", port):
        if process.poll() is not None or time.monotonic() > deadline:
            started.stop()
            raise RuntimeError(f"The benchmark's Redis ({binary}) did not start on port {port}.")
        time.sleep(0.05)
    return started


def made_up_users_and_rooms(*, users: int, rooms: int) -> tuple[list[str], list[int]]:
    """Session keys and room ids for a server that checks neither (raw)."""
    return [f"raw-session-{i}" for i in range(users)], list(range(1, rooms + 1))


@contextlib.asynccontextmanager
async def served(
    bench: Bench, *, scenario: str, users: int, rooms: int, env: dict[str, str] | None = None
) -> AsyncIterator[Target]:
    """A fresh database, Redis and server for one scenario, with users and rooms; all gone after.

    The raw configuration gets neither database nor Redis.
    """
    services = bench.config.services
    database = redis = postgres = spy = live = None
    prefix = f"mcbench-{uuid.uuid4().hex[:10]}"  # the server's Redis keys, deleted after
    failed = True
    try:
        extra = {**BENCH_ENV, **bench.config.env, **(env or {})}
        if services:
            database = await asyncio.to_thread(PostgresDatabase.create, bench.database)
            if bench.redis is None:
                redis = await asyncio.to_thread(start_pinned_redis)
            live = LiveServer(
                database_url=database.url,
                redis_url=redis.url if redis else bench.redis,
                extra_env={**extra, "CHANNEL_LAYER_PREFIX": prefix},
                command=bench.config.command,
            )
            await asyncio.to_thread(live.prepare)
            keys, room_ids = await asyncio.to_thread(
                create_users_and_rooms, live, users=users, rooms=rooms
            )
        else:
            live = LiveServer(extra_env=extra, command=bench.config.command)
            keys, room_ids = made_up_users_and_rooms(users=users, rooms=rooms)
        await asyncio.to_thread(live.start)
        pids = pin_to_core0(live)
        if database is not None:
            postgres = await asyncio.to_thread(PostgresCpu, database.admin_url, database.name)
        if bench.profile_dir:
            again = f"-r{bench.round}" if bench.round > 1 else ""
            name = f"{bench.config.name.replace(':', '-')}-{scenario}{again}.txt"
            path = Path(bench.profile_dir) / name
            spy = await start_profile(live.process.pid, path)
        yield Target(
            live=live,
            pids=pids,
            keys=keys,
            rooms=room_ids,
            redis_pids=[redis.process.pid] if redis and redis.process else None,
            postgres=postgres,
            services=services,
        )
        failed = False
    finally:
        if spy is not None:
            await stop_profile(spy)
        if postgres is not None:
            postgres.close()
        if live is not None:
            await asyncio.to_thread(live.stop)
            if failed:
                print(f"The server's log is in {live.log_path}", file=sys.stderr)
            else:
                shutil.rmtree(live.data_dir, ignore_errors=True)
        if database is not None:
            await asyncio.to_thread(database.drop)
        if redis is not None:
            await asyncio.to_thread(redis.stop)
        elif services and bench.redis is not None:
            await asyncio.to_thread(flush_prefix, bench.redis, prefix)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The options about where to run: PostgreSQL, Redis, and profiling."""
    parser.add_argument(
        "--database",
        default="postgres://postgres@127.0.0.1:5432/multichat",
        help="PostgreSQL server to make throwaway databases on (default: %(default)s)",
    )
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="use this Redis for the channel layer (its CPU is not measured); default: start "
        "a throwaway redis-server per scenario, pinned to core 0 with the server",
    )
    parser.add_argument("--profile", metavar="DIR",
                        help="write a py-spy profile of the server per scenario (raw collapsed "
                             "stacks) to DIR/CONFIG-SCENARIO.txt (later rounds: "
                             "CONFIG-SCENARIO-r2.txt, ...)")  # fmt: skip
