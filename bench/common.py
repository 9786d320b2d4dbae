"""What the probes share: a real server to measure, its processes, and the numbers."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chat.tests.liveserver import LiveServer  # noqa: E402
from chat.tests.servers import PostgresDatabase  # noqa: E402

VENV = Path(sys.executable).parent
SERVERS = {
    "uvicorn": None,  # python -m config.server: the project's own flags
    "daphne": [str(VENV / "daphne"), "-b", "127.0.0.1", "-p", "{port}", "config.asgi:application"],
    "hypercorn": [str(VENV / "hypercorn"), "-b", "127.0.0.1:{port}", "-k", "uvloop",
                  "config.asgi:application"],
    "granian": [str(VENV / "granian"), "--interface", "asgi", "--host", "127.0.0.1", "--port",
                "{port}", "--loop", "uvloop", "--workers", "1", "config.asgi:application"],
}  # fmt: skip


def create_sessions(live: LiveServer, count: int) -> list[str]:
    """Create ``count`` users with logged-in sessions; return the session keys."""
    code = f"""
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
User = get_user_model()
User.objects.bulk_create([User(username=f"probe{{i}}") for i in range({count})])
keys = []
for user in User.objects.filter(username__startswith="probe").order_by("id"):
    s = SessionStore()
    s[SESSION_KEY] = str(user.pk)
    s[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    s[HASH_SESSION_KEY] = user.get_session_auth_hash()
    s.create()
    keys.append(s.session_key)
print(",".join(keys))
"""
    return live.manage("shell", "-c", code).strip().splitlines()[-1].split(",")


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


def start_server(
    args: argparse.Namespace, env: dict[str, str], command: list[str] | None = None
) -> tuple[LiveServer, PostgresDatabase]:
    """Migrate a throwaway database and build the server (not started yet)."""
    database = PostgresDatabase.create(args.database)
    live = LiveServer(
        database_url=database.url, redis_url=args.redis, extra_env=env, command=command
    ).prepare()
    return live, database


def pin_to_core0(live: LiveServer) -> list[int]:
    """Pin every thread of the started server (and its workers) to core 0; return the pids."""
    pids = process_tree(live.process.pid)
    for pid in pids:
        for thread in os.listdir(f"/proc/{pid}/task"):
            os.sched_setaffinity(int(thread), {0})
    return pids


async def start_profile(args: argparse.Namespace, live: LiveServer, seconds: float):
    """Start py-spy on the server when --profile was given (py-spy must be on PATH)."""
    if not args.profile:
        return None
    return await asyncio.create_subprocess_exec(
        "py-spy", "record", "-p", str(live.process.pid), "-o", args.profile,
        "-f", "raw", "-d", str(max(1, int(seconds))), "-r", "200",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


def percentile(ordered: list[float], p: float) -> float:
    """The p-th quantile (0..1) of a sorted list of seconds, in milliseconds."""
    return ordered[int(p * (len(ordered) - 1))] * 1000 if ordered else float("nan")


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every probe takes."""
    parser.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/multichat")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--profile", help="write py-spy's collapsed stacks of the server here")
