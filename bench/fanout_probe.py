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
import time

from bench.common import (
    SERVERS,
    LiveServer,
    add_common_arguments,
    cpu_seconds,
    create_sessions,
    percentile,
    pin_to_core0,
    rss_bytes,
    start_profile,
    start_server,
)


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

    env = {
        "CHAT_SEND_RATE": "0",
        "NOTIFY_USERS_ON_ENTER_OR_LEAVE_ROOMS": "0",
        "CHANNEL_LAYER": args.layer,
    }
    live, database = start_server(args, env, SERVERS[args.server])
    keys = create_sessions(live, args.members + 1)
    room = live.create_room("Probe")
    live.start()
    pids = pin_to_core0(live)
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
        spy = await start_profile(args, live, args.messages / args.rate)
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
            return percentile(latencies, p)

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
    parser.add_argument("--replay", type=int, default=0, help="also time a join replaying N")
    add_common_arguments(parser)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
