"""The rooms probe: R rooms of M members, every member sending on a fixed schedule.

Measures stored posts/s, deliveries/s, end-to-end latency and loss when
many rooms are busy at once (each post is a database transaction). Same
set-up as bench/fanout_probe.py (real server on core 0, PostgreSQL + Redis):

    taskset -c 1 .venv/bin/python -m bench.rooms_probe \\
        --rooms 100 --members 10 --rate 1 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time

from bench.common import (
    add_common_arguments,
    cpu_seconds,
    create_sessions,
    percentile,
    pin_to_core0,
    start_profile,
    start_server,
)


async def run(args: argparse.Namespace) -> None:
    """Start the server, run every member's schedule, print one line of results."""
    from websockets.asyncio.client import connect

    env = {"CHAT_SEND_RATE": "0", "NOTIFY_USERS_ON_ENTER_OR_LEAVE_ROOMS": "0"}
    live, database = start_server(args, env)
    keys = create_sessions(live, args.rooms * args.members)
    code = (
        "from chat.models import Room; "
        f"rooms = Room.objects.bulk_create(Room(title=f'R{{i}}') for i in range({args.rooms})); "
        "print(','.join(str(r.pk) for r in rooms))"
    )
    output = live.manage("shell", "-c", code).strip().splitlines()[-1]
    rooms = [int(room) for room in output.split(",")]
    live.start()
    pids = pin_to_core0(live)
    try:
        members = []  # (room, socket)
        for key, room in zip(keys, itertools.cycle(rooms), strict=False):
            ws = await connect(live.ws_url, additional_headers={"Cookie": f"sessionid={key}"})
            await ws.send(json.dumps({"command": "join", "room": room}))
            while "join" not in json.loads(await ws.recv()):
                pass
            members.append((room, ws))
        sends_each = int(args.rate * args.seconds)
        expected_per_socket = sends_each * args.members
        latencies: list[float] = []
        seen: dict[int, list[int]] = {}

        async def receive(index: int, ws) -> None:
            got = seen.setdefault(index, [])
            while len(got) < expected_per_socket:
                frame = json.loads(await ws.recv())
                if frame.get("msg_type") == 0:
                    latencies.append(time.time() - float(frame["message"]))
                    got.append(frame["seq"])

        async def send(room: int, ws, offset: float) -> None:
            for i in range(sends_each):
                await asyncio.sleep(max(0.0, start + offset + i / args.rate - time.time()))
                message = {"command": "send", "room": room, "message": repr(time.time())}
                await ws.send(json.dumps(message))

        readers = [asyncio.create_task(receive(i, ws)) for i, (_, ws) in enumerate(members)]
        spy = await start_profile(args, live, args.seconds)
        cpu0 = cpu_seconds(pids)
        start = time.time() + 0.5
        spread = 1 / args.rate / len(members)  # members start evenly spread over one period
        await asyncio.gather(*(send(r, ws, i * spread) for i, (r, ws) in enumerate(members)))
        try:
            await asyncio.wait_for(asyncio.gather(*readers), 60)
        except TimeoutError:
            print("timed out waiting for deliveries")
        elapsed = time.time() - start
        cpu = cpu_seconds(pids) - cpu0
        if spy is not None:
            await spy.wait()
        delivered = sum(len(v) for v in seen.values())
        disorder = sum(1 for v in seen.values() for a, b in itertools.pairwise(v) if b <= a)
        latencies.sort()

        def pct(p: float) -> float:
            return percentile(latencies, p)

        posts = len(members) * sends_each
        print(
            f"rooms={args.rooms} members={args.members} posts={posts} "
            f"posts/s={posts / elapsed:.0f} deliveries/s={delivered / elapsed:.0f} "
            f"p50={pct(0.5):.1f}ms p90={pct(0.9):.1f}ms p99={pct(0.99):.1f}ms max={pct(1):.1f}ms "
            f"lost={len(members) * expected_per_socket - delivered} out_of_order={disorder} "
            f"server_cpu_per_post={cpu / max(posts, 1) * 1e6:.0f}us"
        )
    finally:
        live.stop()
        database.drop()


def main() -> None:
    """Parse the arguments and run the probe."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--rate", type=float, default=1.0, help="messages per second per member")
    parser.add_argument("--seconds", type=float, default=10.0)
    add_common_arguments(parser)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
