"""A quick fan-out probe: one room, M members, one sender at a fixed rate.

It answers one question fast: how much server CPU does one delivery cost
with a given ASGI server and channel layer, and at what latency. It starts a
real server (PostgreSQL + Redis, server pinned to core 0, this client to
whatever core it runs on), opens M+1 sockets, sends N messages at RATE per
second on a fixed schedule (open loop), and prints deliveries/s, latency
percentiles and server CPU per delivery. For the full benchmark see
docs/performance.md.

    taskset -c 1 .venv/bin/python -m bench.fanout_probe --members 200 --messages 200 --rate 40 \\
        --server uvicorn --layer pubsub

--server daphne/hypercorn/granian need those installed in .venv first
(`.venv/bin/uv pip install hypercorn granian`; the next scripts/test or
scripts/run removes them again).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
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


async def measure_replay(live: LiveServer, ws, count: int) -> None:
    """Store ``count`` messages in a new room, then time joins with since=0 to the last frame."""
    room = await asyncio.to_thread(live.create_room, "Replay")
    await asyncio.to_thread(
        live.manage, "shell", "-c",
        "from chat.services import room_post; "
        f"[room_post(room_id={room}, user=None, text=f'r{{i}}') for i in range({count})]",
    )  # fmt: skip
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        await ws.send(json.dumps({"command": "join", "room": room, "since": 0}))
        got = 0
        while got < count:
            frame = json.loads(await ws.recv())
            if frame.get("seq") is not None:
                got += 1
        timings.append((time.perf_counter() - start) * 1000)
    timings.sort()
    print(f"replay of {count} messages: median {timings[2]:.0f} ms, best {timings[0]:.0f} ms, "
          f"worst {timings[-1]:.0f} ms (5 joins)")  # fmt: skip


async def run(args: argparse.Namespace) -> None:
    """Start the server, run the load, print one line of results."""
    from websockets.asyncio.client import connect

    database = PostgresDatabase.create(args.database)
    env = {
        "CHAT_SEND_RATE": "0",
        "NOTIFY_USERS_ON_ENTER_OR_LEAVE_ROOMS": "0",
        "CHANNEL_LAYER": args.layer,
    }
    live = LiveServer(
        database_url=database.url, redis_url=args.redis, extra_env=env,
        command=SERVERS[args.server],
    ).prepare()  # fmt: skip
    keys = create_sessions(live, args.members + 1)
    room = live.create_room("Probe")
    live.start()
    pids = process_tree(live.process.pid)
    for pid in pids:  # every thread of the server on core 0
        for thread in os.listdir(f"/proc/{pid}/task"):
            os.sched_setaffinity(int(thread), {0})
    try:
        rss0 = rss_bytes(pids)
        connect_start = time.time()
        sockets = []
        for key in keys:
            ws = await connect(live.ws_url, additional_headers={"Cookie": f"sessionid={key}"})
            await ws.send(json.dumps({"command": "join", "room": room}))
            while "join" not in json.loads(await ws.recv()):
                pass
            sockets.append(ws)
        connect_seconds = time.time() - connect_start
        rss_per_socket = (rss_bytes(pids) - rss0) / len(sockets)
        sender, members = sockets[0], sockets[1:]
        if args.replay:
            await measure_replay(live, sender, args.replay)
        latencies: list[float] = []
        counts = [0] * len(members)

        async def receive(i: int, ws) -> None:
            while counts[i] < args.messages:
                frame = json.loads(await ws.recv())
                if frame.get("msg_type") == 0:
                    latencies.append(time.time() - float(frame["message"]))
                    counts[i] += 1

        readers = [asyncio.create_task(receive(i, ws)) for i, ws in enumerate(members)]
        spy = None
        if args.profile:  # py-spy must be on PATH; collapsed stacks go to args.profile
            spy = await asyncio.create_subprocess_exec(
                "py-spy", "record", "-p", str(live.process.pid), "-o", args.profile,
                "-f", "raw", "-d", str(int(args.messages / args.rate)), "-r", "200",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
        cpu0 = cpu_seconds(pids)
        start = time.time()
        for i in range(args.messages):
            message = {"command": "send", "room": room, "message": repr(time.time())}
            await sender.send(json.dumps(message))
            await asyncio.sleep(max(0.0, start + (i + 1) / args.rate - time.time()))
        try:
            await asyncio.wait_for(asyncio.gather(*readers), 60)
        except TimeoutError:
            print("timed out waiting for deliveries")
        elapsed = time.time() - start
        cpu = cpu_seconds(pids) - cpu0
        if spy is not None:
            await spy.wait()
        delivered = sum(counts)
        latencies.sort()

        def pct(p: float) -> float:
            return latencies[int(p * (len(latencies) - 1))] * 1000

        print(
            f"server={args.server} layer={args.layer} members={args.members} "
            f"offered={args.members * args.rate:.0f}/s delivered={delivered / elapsed:.0f}/s "
            f"p50={pct(0.5):.1f}ms p90={pct(0.9):.1f}ms p99={pct(0.99):.1f}ms max={pct(1):.1f}ms "
            f"lost={args.members * args.messages - delivered} "
            f"server_cpu_per_delivery={cpu / max(delivered, 1) * 1e6:.0f}us "
            f"rss_per_joined_socket={rss_per_socket / 1024:.1f}KiB "
            f"connect+join={len(sockets) / connect_seconds:.0f}/s"
        )
    finally:
        live.stop()
        database.drop()


def main() -> None:
    """Parse the arguments and run the probe."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rate", type=float, default=40.0, help="messages per second")
    parser.add_argument("--server", choices=SERVERS, default="uvicorn")
    parser.add_argument("--layer", choices=["pubsub", "core"], default="pubsub")
    parser.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/multichat")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--replay", type=int, default=0, help="also time a join replaying N")
    parser.add_argument("--profile", help="write py-spy's collapsed stacks of the server here")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
