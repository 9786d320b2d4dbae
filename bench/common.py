"""What the scenarios share: the configurations, a fresh server to measure, its processes.

Every scenario gets its own throwaway PostgreSQL database and its own server
process (started through testkit.live.LiveServer), pinned to core 0;
``served`` sets one up and tears it all down again: the server, its
database, its Redis keys and its data directory (kept when the scenario
failed, for the server's log).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from testkit.live import LiveServer
from testkit.servers import PostgresDatabase, flush_prefix

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
    "NOTIFY_USERS_ON_ENTER_OR_LEAVE_ROOMS": "0",
}


@dataclass(frozen=True)
class Config:
    """One way of serving the chat: a server command line (None: config.server) and its env."""

    name: str
    command: list[str] | None
    env: dict[str, str]


CONFIGS = {
    "production": Config("production", None, {"CHANNEL_LAYER": "pubsub"}),
    "tutorial": Config(
        "tutorial",
        [str(VENV / "daphne"), "-b", "127.0.0.1", "-p", "{port}", "bench.tutorial:application"],
        {"CHANNEL_LAYER": "core"},
    ),
}


def config_named(name: str) -> Config:
    """``production``, ``tutorial``, or SERVER:LAYER (e.g. ``daphne:core``) for the app as built."""
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
    """Where and how to run: the configuration, PostgreSQL, Redis, and the profile directory."""

    config: Config
    database: str
    redis: str
    profile_dir: str | None = None


@dataclass
class Target:
    """A started server with its users (session keys) and rooms."""

    live: LiveServer
    pids: list[int]
    keys: list[str]
    rooms: list[int]

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


def pin_to_core0(live: LiveServer) -> list[int]:
    """Pin every thread of the started server (and its workers) to core 0; return the pids.

    Threads started later inherit the mask of the thread that starts them.
    """
    pids = process_tree(live.process.pid)
    if (os.cpu_count() or 1) < 2:
        return pids
    for pid in pids:
        for thread in os.listdir(f"/proc/{pid}/task"):
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


@contextlib.asynccontextmanager
async def served(
    bench: Bench, *, scenario: str, users: int, rooms: int, env: dict[str, str] | None = None
) -> AsyncIterator[Target]:
    """A fresh database and server for one scenario, with users and rooms; all gone after."""
    database = await asyncio.to_thread(PostgresDatabase.create, bench.database)
    prefix = f"mcbench-{uuid.uuid4().hex[:10]}"  # the server's Redis keys, deleted after
    spy = None
    live = None
    failed = True
    try:
        live = LiveServer(
            database_url=database.url,
            redis_url=bench.redis,
            extra_env={**BENCH_ENV, **bench.config.env, **(env or {}),
                       "CHANNEL_LAYER_PREFIX": prefix},
            command=bench.config.command,
        )  # fmt: skip
        await asyncio.to_thread(live.prepare)
        keys, room_ids = await asyncio.to_thread(
            create_users_and_rooms, live, users=users, rooms=rooms
        )
        await asyncio.to_thread(live.start)
        pids = pin_to_core0(live)
        if bench.profile_dir:
            path = Path(bench.profile_dir) / f"{bench.config.name.replace(':', '-')}-{scenario}.txt"
            spy = await start_profile(live.process.pid, path)
        yield Target(live=live, pids=pids, keys=keys, rooms=room_ids)
        failed = False
    finally:
        if spy is not None:
            await stop_profile(spy)
        if live is not None:
            await asyncio.to_thread(live.stop)
            if failed:
                print(f"The server's log is in {live.log_path}", file=sys.stderr)
            else:
                shutil.rmtree(live.data_dir, ignore_errors=True)
        await asyncio.to_thread(database.drop)
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
        default="redis://127.0.0.1:6379/0",
        help="Redis for the channel layer (default: %(default)s)",
    )
    parser.add_argument("--profile", metavar="DIR",
                        help="write a py-spy profile of the server per scenario (raw collapsed "
                             "stacks) to DIR/CONFIG-SCENARIO.txt")  # fmt: skip
