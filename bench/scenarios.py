"""The benchmark's scenarios (fanout, rooms, idle, resume, storm, reconnect, restart, search).

Each takes a ``Bench`` (the configuration, PostgreSQL, Redis), starts a fresh
server and database for itself (bench.common.served), drives it with the
load generator (bench.loadgen) and returns a dict of results; the stepped
scenarios give one dict per step under ``"steps"``. Run them with
``python -m bench.run`` (that module's docstring has the options).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence

from bench.common import (
    Bench,
    Spent,
    Target,
    cpu_seconds,
    pin_to_core0,
    served,
    store_messages,
)
from bench.files import (
    BENCH_UPLOAD_ENV,
    SEED,
    make_tokens,
    png_image,
    takes_uploads,
    upload,
    upload_many,
)
from bench.loadgen import (
    Member,
    Tally,
    close_all,
    connect_members,
    drain,
    sample_peak,
    send_on_schedule,
    seq_faults,
)
from multichat_client import RestClient
from multichat_client.client import restart_window
from testkit.live import LiveServer
from testkit.servers import port_open

BEHIND_P99_MS = 1000.0  # a step with a worse p99 ends the stepping
MIB = 1024 * 1024


def latency_summary(latencies: list[float]) -> dict[str, float | None]:
    """p50, p90, p99 and max of latencies in seconds, as milliseconds (None when there are none)."""
    ordered = sorted(latencies)

    def pick(p: float) -> float | None:
        return round(ordered[int(p * (len(ordered) - 1))] * 1000, 2) if ordered else None

    return {"p50_ms": pick(0.5), "p90_ms": pick(0.9), "p99_ms": pick(0.99), "max_ms": pick(1.0)}


def fell_behind(step: dict) -> bool:
    """True when a step's p99 is over a second (or nothing arrived): stop stepping."""
    return step["p99_ms"] is None or step["p99_ms"] > BEHIND_P99_MS


async def keep_stepping(steps: list[dict], step: dict) -> bool:
    """Record ``step``; False if it fell behind, else pause before the next step and say go on."""
    steps.append(step)
    if fell_behind(step):
        return False
    await asyncio.sleep(0.5)  # let the server's queues empty between steps
    return True


async def measure_step(
    target: Target,
    members: list[Member],
    tally: Tally,
    schedule: list[tuple[float, Member, int]],
    *,
    seconds: float,
    expected: dict[int, range],
) -> dict:
    """Send ``schedule`` open loop, wait for the deliveries, and account for every member's seqs."""
    for member in members:
        member.seqs.clear()
    start = schedule[0][0]
    tally.reset(since=start)
    errors_before = len(tally.errors)
    activity_before = sum(member.notices["activity"] for member in members)
    peak = [target.rss()]
    sampler = asyncio.create_task(sample_peak(target.rss, peak))
    usage0, client0 = target.usage(), time.process_time()
    lag = await send_on_schedule(schedule)
    wanted = sum(len(expected[room]) for member in members for room in member.rooms)
    waited = await drain(tally, expected=wanted)
    spent = target.usage().spent_since(usage0)
    client_cpu = time.process_time() - client0
    sampler.cancel()
    elapsed = max(seconds, tally.last - start)
    lost = duplicated = reordered = 0
    stored: dict[int, set[int]] = defaultdict(set)  # seqs that reached anyone, per room
    for member in members:
        for room in member.rooms:
            got = member.seqs.get(room, [])
            missing, twice, late = seq_faults(got, expected[room])
            lost, duplicated, reordered = lost + missing, duplicated + twice, reordered + late
            stored[room].update(seq for seq in got if seq in expected[room])
    delivered = wanted - lost + duplicated
    return {
        "seconds": round(elapsed, 2),
        "delivered": delivered,
        "delivered_per_s": round(delivered / elapsed, 1),
        "bytes_per_delivery": round(tally.bytes / tally.received) if tally.received else None,
        **latency_summary(tally.latencies),
        "lost": lost,
        "duplicated": duplicated,
        "reordered": reordered,
        "stored_posts": sum(len(seqs) for seqs in stored.values()),
        "errors": len(tally.errors) - errors_before,
        "dropped": sum(member.closed for member in members),
        "wait_ended": waited,  # all, quiet (the missing are lost) or limit (maybe late)
        **cpu_fields(spent),
        "peak_rss_mib": round(peak[0] / MIB, 1),
        "client_lag_ms": round(lag * 1000, 1),
        "client_cpu_pct": round(100 * client_cpu / elapsed, 1),
        # Activity frames (not deliveries) the members got during the step and its drain.
        "activity_frames": sum(member.notices["activity"] for member in members) - activity_before,
    }


async def fanout(
    bench: Bench, *, members: int = 500, rates: list[float], seconds: float = 5.0, files: int = 0
) -> dict:
    """One room, ``members`` members and one sender; one step per sender rate (msg/s).

    ``files``: each rate is run twice: plain messages, and messages with ``files``
    image attachments each (uploaded by the sender before the step, not measured),
    plain first in odd rounds and attached first in even ones, so CPU per delivery
    compares with and without on one server.
    """
    if files and not takes_uploads(bench):
        raise RuntimeError(f"fanout --files: the {bench.config.name} server takes no uploads")
    env = BENCH_UPLOAD_ENV if files else None
    async with served(bench, scenario="fanout", users=members + 1, rooms=1, env=env) as target:
        room = target.rooms[0]
        uploader = None
        if files:
            token = (await asyncio.to_thread(make_tokens, target, ["bench0"]))[0]
            uploader = RestClient(target.live.url, token, timeout=60)
            attachment = await asyncio.to_thread(png_image, SEED, width=64, height=64)
        tally, own = Tally(), Tally()
        joined, failed, retries = await connect_members(
            target.url, ((key, [room]) for key in target.keys[1:]), tally
        )
        senders, sender_failed, _ = await connect_members(
            target.url, [(target.keys[0], [room])], own
        )
        steps, posted = [], 0
        try:
            if failed or sender_failed:
                errors = [*failed, *sender_failed]
                raise RuntimeError(f"{len(errors)} sockets failed, the first: {errors[0]}")
            sender = senders[0]
            # Plain first in odd rounds, attached first in even ones: neither gets the
            # better place (a fresher server, the uploads' garbage) in every round.
            order = [0, files] if bench.round % 2 else [files, 0]
            plan = [(rate, attach) for rate in rates for attach in (order if files else [0])]
            for rate, attach in plan:
                count = max(1, round(rate * seconds))
                if attach:
                    assert uploader is not None
                    ids = await asyncio.to_thread(upload_many, uploader, attachment, count * attach)
                    sender.attachments.extend(
                        ids[i : i + attach] for i in range(0, len(ids), attach)
                    )
                    await asyncio.sleep(0.5)  # the uploads' last writes settle before measuring
                start = time.time() + 0.2
                schedule = [(start + i / rate, sender, room) for i in range(count)]
                expected = {room: range(posted + 1, posted + count + 1)}
                step = await measure_step(
                    target, joined, tally, schedule, seconds=count / rate, expected=expected
                )
                sender.attachments.clear()
                posted += count
                label = f"{rate:g} msg/s" + (f" +{attach} file" if attach else "")
                step = {"step": label, "rate": rate, "files": attach,
                        "offered_per_s": round(rate * len(joined), 1), **step}  # fmt: skip
                step["cpu_us_per_delivery"] = cpu_per(step["server_cpu_s"], step["delivered"])
                # The same CPU per post: with two member counts, it splits into the cost of
                # a post and that of a delivery (the slope over members).
                step["cpu_us_per_post"] = cpu_per(step["server_cpu_s"], step["stored_posts"])
                step["redis_us_per_delivery"] = cpu_per(step["redis_cpu_s"], step["delivered"])
                step["pg_us_per_post"] = cpu_per(step["pg_cpu_s"], step["stored_posts"])
                if not await keep_stepping(steps, step):
                    break
        finally:
            close_all([*joined, *senders])
        return {"members": len(joined), "connect_retries": retries, "seconds": seconds,
                "steps": steps}  # fmt: skip


async def rooms(
    bench: Bench, *, rooms: int = 100, members: int = 10, rates: list[float], seconds: float = 5.0
) -> dict:
    """``rooms`` rooms of ``members`` members, all sending; one step per rate (msg/s per member)."""
    async with served(bench, scenario="rooms", users=rooms * members, rooms=rooms) as target:
        tally = Tally()
        placement = [(key, [target.rooms[i % rooms]]) for i, key in enumerate(target.keys)]
        joined, failed, retries = await connect_members(target.url, placement, tally)
        steps, posted = [], defaultdict(int)
        try:
            if failed:
                raise RuntimeError(f"{len(failed)} sockets failed, the first: {failed[0]}")
            for rate in rates:
                count = max(1, round(rate * seconds))
                start = time.time() + 0.2
                spread = 1 / rate / len(joined)  # members start evenly spread over one period
                schedule = [
                    (start + j * spread + i / rate, member, member.rooms[0])
                    for i in range(count)
                    for j, member in enumerate(joined)
                ]
                per_room = defaultdict(int)
                for member in joined:
                    per_room[member.rooms[0]] += count
                expected = {r: range(posted[r] + 1, posted[r] + n + 1) for r, n in per_room.items()}
                step = await measure_step(
                    target, joined, tally, schedule, seconds=count / rate, expected=expected
                )
                for r, n in per_room.items():
                    posted[r] += n
                offered = rate * len(joined)
                step = {"step": f"{rate:g} msg/s/member", "rate_per_member": rate,
                        "offered_posts_per_s": round(offered, 1),
                        "posts_per_s": round(step["stored_posts"] / step["seconds"], 1),
                        "offered_per_s": round(offered * members, 1), **step}  # fmt: skip
                step["cpu_us_per_post"] = cpu_per(step["server_cpu_s"], step["stored_posts"])
                step["cpu_us_per_delivery"] = cpu_per(step["server_cpu_s"], step["delivered"])
                step["redis_us_per_post"] = cpu_per(step["redis_cpu_s"], step["stored_posts"])
                step["pg_us_per_post"] = cpu_per(step["pg_cpu_s"], step["stored_posts"])
                if not await keep_stepping(steps, step):
                    break
        finally:
            close_all(joined)
        return {"rooms": rooms, "members": members, "connect_retries": retries,
                "seconds": seconds, "steps": steps}  # fmt: skip


async def idle(
    bench: Bench, *, sockets: int = 10_000, per_room: int = 100, settle: float = 2.0
) -> dict:
    """Connect and join ``sockets`` sockets at once (``per_room`` a room): time and memory."""
    room_count = -(-sockets // per_room)
    async with served(bench, scenario="idle", users=sockets + 1, rooms=room_count) as target:
        tally = Tally()
        # One socket first, so that what the first one costs (imports, pools) is not counted.
        warm = await connect_members(target.url, [(target.keys[-1], target.rooms[:1])], tally)
        close_all(warm.members)
        await asyncio.sleep(settle)
        rss0, usage0 = target.rss(), target.usage()
        keys = target.keys[:sockets]
        placement = [(key, [target.rooms[i // per_room]]) for i, key in enumerate(keys)]
        start = time.perf_counter()
        joined, failed, retries = await connect_members(target.url, placement, tally)
        took = time.perf_counter() - start
        spent = target.usage().spent_since(usage0)
        try:
            await asyncio.sleep(settle)
            rss1 = target.rss()
        finally:
            close_all(joined)
        return {
            "sockets": sockets,
            "joined": len(joined),
            "failed": len(failed),
            "retries": retries,
            "first_error": failed[0] if failed else None,
            "dropped": sum(member.closed for member in joined),  # closed while idle
            "seconds": round(took, 2),
            "joins_per_s": round(len(joined) / took, 1),
            "rss_before_mib": round(rss0 / MIB, 1),
            "rss_after_mib": round(rss1 / MIB, 1),
            "kib_per_socket": round((rss1 - rss0) / max(len(joined), 1) / 1024, 1),
            **cpu_fields(spent),
            **per_join(spent, len(joined)),
        }


async def resume(bench: Bench, *, messages: int = 1000, joins: int = 5) -> dict:
    """Store ``messages`` in a room; time ``joins`` joins with since=0 until the last replayed."""
    env = {"CHAT_REPLAY_MAX": str(max(1000, messages))}
    async with served(bench, scenario="resume", users=1, rooms=1, env=env) as target:
        room = target.rooms[0]
        if target.services:
            await asyncio.to_thread(store_messages, target.live, room=room, count=messages)
        else:  # nothing to store them in but the server: post them
            await post_through_sockets(target, target.keys[:1], {room: messages})
        tally = Tally()
        joined, failed, _ = await connect_members(target.url, [(target.keys[0], [room])], tally)
        if failed:
            raise RuntimeError(f"the socket failed: {failed[0]}")
        member = joined[0]
        timings, faults = [], [0, 0, 0]
        try:
            for _ in range(joins):
                member.seqs.pop(room, None)
                start = time.perf_counter()
                await member.join(room, since=0)
                await member.receive(room, messages)
                timings.append((time.perf_counter() - start) * 1000)
                await asyncio.sleep(0.2)  # let any duplicates arrive before counting
                found = seq_faults(member.seqs[room], range(1, messages + 1))
                faults = [a + b for a, b in zip(faults, found, strict=True)]
        finally:
            member.close()
        return {
            "messages": messages,
            "joins": joins,
            "median_ms": round(statistics.median(timings), 1),
            "best_ms": round(min(timings), 1),
            "worst_ms": round(max(timings), 1),
            "lost": faults[0],
            "duplicated": faults[1],
            "reordered": faults[2],
        }


def cpu_per(cpu_seconds: float | None, count: int) -> float | None:
    """Microseconds of CPU per unit of work (None when nothing was done or not measured)."""
    return round(cpu_seconds / count * 1e6, 1) if count and cpu_seconds is not None else None


def cpu_fields(spent: Spent) -> dict[str, float | None]:
    """CPU seconds of the server, its Redis and PostgreSQL (None: not measured), and how much
    of core 0 other processes took meanwhile (%)."""

    def seconds(value: float | None) -> float | None:
        return None if value is None else round(value, 3)

    return {
        "server_cpu_s": seconds(spent.server),
        "redis_cpu_s": seconds(spent.redis),
        "pg_cpu_s": seconds(spent.postgres),
        "core0_others_pct": spent.others_pct,  # the noise on the server's core
    }


def per_join(spent: Spent, joins: int) -> dict[str, float | None]:
    """Milliseconds of CPU per connect + join: the server, its Redis, PostgreSQL."""

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000 / max(joins, 1), 3)

    return {
        "cpu_ms_per_join": ms(spent.server),
        "redis_ms_per_join": ms(spent.redis),
        "pg_ms_per_join": ms(spent.postgres),
    }


async def post_until(
    stop: asyncio.Event, sender: Member, room: int, *, rate: float, start: float
) -> int:
    """Post to ``room`` at ``rate`` msg/s from ``start`` (open loop) until ``stop``; the count."""
    sent = 0
    while not stop.is_set():
        scheduled = start + sent / rate
        delay = scheduled - time.time()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            continue
        sender.send_message(room, scheduled)
        sent += 1
    return sent


async def wait_for(condition: Callable[[], bool], *, limit: float, every: float = 0.05) -> bool:
    """Wait until ``condition()`` holds (True) or ``limit`` seconds pass (False)."""
    deadline = time.time() + limit
    while not condition():
        if time.time() > deadline:
            return False
        await asyncio.sleep(every)
    return True


def converged_at(member: Member, room: int, goal: int) -> float | None:
    """When the member's presence list of ``room`` last reached ``goal`` people (None: never)."""
    found = None
    for when, logged_room, listed in member.presence_log:
        if logged_room != room:
            continue
        if listed == goal and found is None:
            found = when
        elif listed != goal:
            found = None
    return found


def spread(values: Sequence[float]) -> dict[str, float | None]:
    """Median and max of per-socket figures (None when there are none)."""
    if not values:
        return {"median": None, "max": None}
    return {"median": round(statistics.median(values), 3), "max": round(max(values), 3)}


def storm_accounting(
    stormers: list[Member],
    everyone: list[Member],
    room: int,
    *,
    goal: int,
    start: float,
    posted: int,
) -> dict:
    """The storm's per-socket figures: convergence, presence frames and bytes, message faults.

    ``stormers`` are the sockets that joined in the storm, ``everyone`` them and
    the members who were there before; ``goal`` is how many people the room
    holds once all have joined; ``posted`` how many messages were sent into it.
    A socket's messages are expected from the seq after its join reply's
    ``last_seq`` up to ``posted``.
    """
    times = [converged_at(member, room, goal) for member in everyone]
    reached = [when - start for when in times if when is not None]
    frames = [member.notices["presence"] for member in stormers]
    sizes = [member.notice_bytes["presence"] for member in stormers]
    lost = duplicated = reordered = 0
    for member in everyone:
        expected = range(member.base.get(room, 0) + 1, posted + 1)
        missing, twice, late = seq_faults(member.seqs.get(room, []), expected)
        lost, duplicated, reordered = lost + missing, duplicated + twice, reordered + late
    return {
        "converged_s": round(max(reached), 2) if len(reached) == len(everyone) else None,
        "converged_median_s": spread(reached)["median"],
        "not_converged": len(everyone) - len(reached),
        "presence_frames_per_socket": spread(frames),
        "presence_kib_per_socket": spread([size / 1024 for size in sizes]),
        "full_lists": sum(member.full_lists for member in everyone),
        "presence_frames": sum(member.notices["presence"] for member in everyone),
        "presence_mib": round(sum(m.notice_bytes["presence"] for m in everyone) / MIB, 2),
        "activity_frames": sum(member.notices["activity"] for member in everyone),
        "lost": lost,
        "duplicated": duplicated,
        "reordered": reordered,
    }


async def storm(
    bench: Bench,
    *,
    members: int = 500,
    rate: float = 10.0,
    settle: float = 1.0,
    limit: float = 60.0,
) -> dict:
    """``members`` sockets connect and join one room all at once (a presence storm).

    One member is in the room before and posts ``rate`` msg/s from the storm's
    start until every socket's presence list holds everyone (``converged_s``:
    the last socket's list, from the full list of its join and the changes
    after it, first counts all ``members`` + 1 people). Measured: the time
    until all joined and until converged, the server's CPU over that time, the
    presence frames and bytes each socket got, and that every message posted
    during the storm reached every socket that had joined before it was
    stored (from the seq after the join reply's ``last_seq``), once and in order.
    """
    async with served(bench, scenario="storm", users=members + 1, rooms=1) as target:
        room = target.rooms[0]
        tally = Tally()
        first = await connect_members(target.url, [(target.keys[0], [room])], tally)
        if first.errors:
            raise RuntimeError(f"the sender's socket failed: {first.errors[0]}")
        sender = first.members[0]
        await asyncio.sleep(settle)  # the sender's own presence frame; the server warmed up
        placement = [(key, [room]) for key in target.keys[1:]]
        stop = asyncio.Event()
        start = time.time() + 0.05
        tally.reset(since=start)
        usage0, rss0 = target.usage(), target.rss()
        poster = asyncio.create_task(
            post_until(stop, sender, room, rate=rate, start=start) if rate > 0 else stop.wait()
        )
        joined, failed, retries = await connect_members(
            target.url, placement, tally, concurrency=members
        )
        all_joined = time.time() - start
        everyone = [sender, *joined]
        goal = len(everyone)
        try:
            await wait_for(lambda: all(m.listed(room) == goal for m in everyone), limit=limit)
            spent = target.usage().spent_since(usage0)
            stop.set()
            posted = await poster if rate > 0 else 0
            wanted = sum(posted - member.base.get(room, 0) for member in everyone)
            waited = await drain(tally, expected=wanted)
            rss1 = target.rss()
        finally:
            stop.set()
            close_all(everyone)
        found = storm_accounting(joined, everyone, room, goal=goal, start=start, posted=posted)
        return {
            "members": members,
            "joined": len(joined),
            "failed": len(failed),
            "retries": retries,
            "first_error": failed[0] if failed else None,
            "joined_s": round(all_joined, 2),
            **found,
            **cpu_fields(spent),
            **per_join(spent, len(joined)),
            "rss_growth_mib": round((rss1 - rss0) / MIB, 1),
            "posted": posted,
            "errors": len(tally.errors),
            "dropped": sum(member.closed for member in everyone),
            "wait_ended": waited,
            **latency_summary(tally.latencies),
        }


POSTER_ROOMS = 50  # rooms per posting socket (below CHAT_MAX_ROOMS_PER_SOCKET)


async def post_through_sockets(
    target: Target, keys: Sequence[str], counts: dict[int, int]
) -> dict[int, int]:
    """Post ``counts[room]`` messages to each room through sockets; each room's newest seq.

    A socket per ``POSTER_ROOMS`` rooms (one key each) joins them, sends all
    its posts at once and waits until its own posts have come back to it
    (the server stored and broadcast them all); then it is closed.
    """
    rooms = list(counts)
    chunks = [rooms[i : i + POSTER_ROOMS] for i in range(0, len(rooms), POSTER_ROOMS)]
    if len(keys) < len(chunks):
        raise ValueError(f"{len(chunks)} posting sockets need as many keys, not {len(keys)}")
    tally = Tally()
    posters, failed, _ = await connect_members(target.url, zip(keys, chunks, strict=False), tally)
    if failed:
        raise RuntimeError(f"a posting socket failed: {failed[0]}")
    newest: dict[int, int] = {}
    try:
        for poster in posters:
            for room in poster.rooms:
                for i in range(counts[room]):
                    poster.send(b'{"command":"send","room":%d,"message":"p%d"}' % (room, i))
        for poster in posters:
            for room in poster.rooms:
                await poster.receive(room, counts[room])
                newest[room] = max([poster.base.get(room, 0), *poster.seqs[room]])
    finally:
        close_all(posters)
    return newest


def highest_seq(member: Member, room: int) -> int:
    """The highest seq of ``room`` the member has seen (its join reply's, or a message's)."""
    return max([member.base.get(room, 0), *member.seqs.get(room, [])])


def resume_faults(members: Sequence[Member], newest: dict[int, int]) -> tuple[int, int, int]:
    """(lost, duplicated, reordered) of sockets that joined with ``since``: each expects every
    seq after its ``since`` up to the room's ``newest`` (a room missing from it: none)."""
    lost = duplicated = reordered = 0
    for member in members:
        for room in member.rooms:
            since = member.base[room]
            expected = range(since + 1, newest.get(room, since) + 1)
            missing, twice, late = seq_faults(member.seqs.get(room, []), expected)
            lost, duplicated, reordered = lost + missing, duplicated + twice, reordered + late
    return lost, duplicated, reordered


async def wait_quiet(
    target: Target, *, window: float = 0.5, below: float = 0.1, limit: float = 60.0
) -> bool:
    """Wait until the server and its Redis use under ``below`` of a core over ``window`` s.

    So that work left over from the step before (closing sockets) is not
    counted in the next one. False when still busy after ``limit`` s.
    """
    deadline = time.time() + limit
    while time.time() < deadline:
        before = target.usage()
        await asyncio.sleep(window)
        spent = target.usage().spent_since(before)
        if (spent.server + (spent.redis or 0.0)) / window < below:
            return True
    return False


async def reconnect(
    bench: Bench, *, sockets: int = 10_000, posts: int = 200, per_room: int = 100
) -> dict:
    """A reconnect storm: ``sockets`` joined sockets drop, ``posts`` are made, all come back.

    The sockets join ``per_room`` a room (as ``idle``), then all close; once
    the server is quiet, ``posts`` posts are made through other sockets,
    spread round-robin over the rooms; once quiet again, every socket
    reconnects and joins its room with ``since`` = the highest seq it had
    seen, 200 in flight. Measured: the time from the first reconnect until
    every socket has every post it missed (``all_back_s``), reconnects per
    second, the CPU of the server, its Redis and PostgreSQL per reconnect +
    join (replay included), and each socket's lost, duplicated and
    reordered posts against the seqs after its ``since``.
    """
    room_count = -(-sockets // per_room)
    poster_count = -(-room_count // POSTER_ROOMS)
    users = sockets + poster_count
    async with served(bench, scenario="reconnect", users=users, rooms=room_count) as target:
        keys = target.keys[:sockets]
        placement = [(key, [target.rooms[i // per_room]]) for i, key in enumerate(keys)]
        first, failed, _ = await connect_members(target.url, placement, Tally())
        if failed:
            close_all(first)
            raise RuntimeError(f"{len(failed)} sockets failed to join, the first: {failed[0]}")
        resume_from = [
            (key, {room: highest_seq(member, room) for room in member.rooms})
            for key, member in zip(keys, first, strict=True)
        ]
        close_all(first)
        quiet_after_drop = await wait_quiet(target)
        counts = {room: 0 for room in target.rooms}
        for i in range(posts):
            counts[target.rooms[i % room_count]] += 1
        newest = await post_through_sockets(
            target, target.keys[sockets:], {room: n for room, n in counts.items() if n}
        )
        quiet_after_posts = await wait_quiet(target)
        tally = Tally()
        rss0, usage0 = target.rss(), target.usage()
        start = time.time()
        tally.reset(since=start)
        back, failed, retries = await connect_members(target.url, resume_from, tally)
        all_joined = time.time() - start
        try:
            wanted = sum(
                newest.get(room, since) - since
                for _, rooms in resume_from
                for room, since in rooms.items()
            )
            waited = await drain(tally, expected=wanted)
            spent = target.usage().spent_since(usage0)
            rss1 = target.rss()
            lost, duplicated, reordered = resume_faults(back, newest)
            dropped = sum(member.closed for member in back)
        finally:
            close_all(back)
        done = max(all_joined, tally.last - start)
        return {
            "sockets": sockets,
            "rooms": room_count,
            "posts": posts,
            "posts_per_socket": round(wanted / max(len(back), 1), 1),
            "reconnected": len(back),
            "failed": len(failed),
            "retries": retries,
            "first_error": failed[0] if failed else None,
            "joined_s": round(all_joined, 2),
            "all_back_s": round(done, 2),
            "reconnects_per_s": round(len(back) / all_joined, 1),
            "replayed": tally.received,
            "lost": lost + wanted * len(failed) // max(len(resume_from), 1),
            "duplicated": duplicated,
            "reordered": reordered,
            "dropped": dropped,
            "errors": len(tally.errors),
            "wait_ended": waited,
            "quiet_before": quiet_after_drop and quiet_after_posts,
            **cpu_fields(spent),
            **per_join(spent, len(back)),
            "rss_growth_mib": round((rss1 - rss0) / MIB, 1),
        }


RESTART_CLOSE = 1012  # what a draining server process closes its sockets with


async def come_back(
    url: str,
    key: str,
    since: dict[int, int],
    tally: Tally,
    *,
    delay: float,
    rng: random.Random,
    tries: int = 10,
) -> tuple[Member | None, int, str | None]:
    """Reconnect as a client does after 1012: wait ``delay``, then connect and join with since.

    A refused or failed attempt (the new process not listening yet) backs off
    with full jitter, the window doubling from 0.5 s up to 5 s, as the
    clients do (multichat_client.client.backoff_delay). Returns the member
    (None: gave up), the failed attempts and the last error.
    """
    await asyncio.sleep(delay)
    error = None
    for attempt in range(1, tries + 1):
        joined, errors, _ = await connect_members(url, [(key, since)], tally, retries=0)
        if joined:
            return joined[0], attempt - 1, None
        error = errors[0]
        await asyncio.sleep(rng.uniform(0, min(5.0, 0.5 * 2 ** (attempt - 1))))
    return None, tries, error


async def post_steadily(
    stop: asyncio.Event, url: str, key: str, rooms: Sequence[int], *, rate: float
) -> int:
    """Post ``rate`` msg/s round-robin over ``rooms`` through one socket until ``stop``.

    Open loop: while the socket is down (its process restarting) the posts of
    that time are skipped, and the socket reconnects. Returns the posts sent.
    """
    tally = Tally()
    poster: Member | None = None
    sent = 0
    start = time.time()
    try:
        while not stop.is_set():
            if poster is None or poster.closed:
                joined, _, _ = await connect_members(url, [(key, rooms)], tally, retries=0)
                poster = joined[0] if joined else None
                if poster is None:
                    await asyncio.sleep(0.2)
                    continue
            now = time.time()
            due = start + sent / rate
            if due > now:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), due - now)
                continue
            if due < now - 1.0:  # skipped while down: resume the schedule from now
                start = now - sent / rate
                due = now
            poster.send_message(rooms[sent % len(rooms)], due)
            sent += 1
    finally:
        if poster is not None:
            poster.close()
    return sent


async def schedule_comebacks(
    members: Sequence[Member],
    keys: Sequence[str],
    comebacks: dict[int, asyncio.Task],
    tally: Tally,
    *,
    url: str,
    window: float | None,
    rng: random.Random,
) -> None:
    """As each socket's close arrives, start its come-back: a uniform moment of ``window`` later,
    joining with ``since`` = the highest seq it had. Returns once every socket has one."""
    while len(comebacks) < len(members):
        now = time.time()
        for i, member in enumerate(members):
            if i in comebacks or member.closed_at is None:
                continue
            spread = window if window is not None else restart_window(member.close_reason)
            due = member.closed_at + rng.uniform(0, spread)  # full jitter
            since = {room: highest_seq(member, room) for room in member.rooms}
            delay = max(0.0, due - now)
            comebacks[i] = asyncio.create_task(
                come_back(url, keys[i], since, tally, delay=delay, rng=rng)
            )
        await asyncio.sleep(0.05)


async def exit_after(server: LiveServer, start: float) -> tuple[int, float]:
    """Wait for the server's process to end: its exit status and the seconds since ``start``."""
    assert server.process is not None
    status = await asyncio.to_thread(server.process.wait, 120)
    return status, time.time() - start


def received_posts(members: Sequence[Member]) -> int:
    """How many posts these sockets have received, all rooms together."""
    return sum(len(seqs) for member in members for seqs in member.seqs.values())


def room_seq_faults(
    before: Member, after: Member | None, newest: dict[int, int]
) -> tuple[int, int, int]:
    """(lost, duplicated, reordered) of one socket over the restart: every seq after its first
    join's ``last_seq`` up to the room's newest, across both of its connections."""
    lost = duplicated = reordered = 0
    for room in before.rooms:
        received = list(before.seqs.get(room, []))
        if after is not None:
            received += after.seqs.get(room, [])
        expected = range(before.base[room] + 1, newest.get(room, 0) + 1)
        missing, twice, late = seq_faults(received, expected)
        lost, duplicated, reordered = lost + missing, duplicated + twice, reordered + late
    return lost, duplicated, reordered


async def restart(
    bench: Bench,
    *,
    sockets: int = 5000,
    per_room: int = 100,
    rate: float = 20.0,
    window: float | None = None,
    seed: int = 1012,
) -> dict:
    """A graceful restart under load: SIGTERM the process of ``sockets`` joined sockets.

    The sockets join ``per_room`` a room (as ``idle``); one more socket posts
    ``rate`` msg/s round-robin over the rooms throughout. The process gets
    SIGTERM: it stops listening, drains and closes every socket with 1012;
    a new process starts on the same port at once. Each socket comes back
    at a moment drawn uniformly from [0, window] after its close (full
    jitter, as the clients do; the window the close reason names, as the
    clients read it, unless ``window`` is given), backing off if the new process is not up
    yet, and joins with ``since`` = the highest seq it had. Measured: how
    long the old process took to exit, when the new one answered, the time
    from SIGTERM until every socket had joined again and until it had every
    post (``all_back_s``), the CPU the new process spent (from its start,
    and from when it answered: the reconnects), and each socket's lost,
    duplicated and reordered posts over both its connections.
    """
    if not bench.config.services:
        raise ValueError("restart measures the production server: use --configs production")
    room_count = -(-sockets // per_room)
    rng = random.Random(seed)
    async with served(bench, scenario="restart", users=sockets + 1, rooms=room_count) as target:
        url = target.url
        keys = target.keys[:sockets]
        placement = [(key, [target.rooms[i // per_room]]) for i, key in enumerate(keys)]
        tally = Tally()
        first, failed, _ = await connect_members(url, placement, tally)
        if failed:
            close_all(first)
            raise RuntimeError(f"{len(failed)} sockets failed to join, the first: {failed[0]}")
        stop = asyncio.Event()
        poster = asyncio.create_task(
            post_steadily(stop, url, target.keys[sockets], target.rooms, rate=rate)
        )
        successor: LiveServer | None = None
        back: list[Member | None] = []
        comebacks: dict[int, asyncio.Task] = {}  # socket index -> its come-back
        try:
            await asyncio.sleep(2.0)  # steady traffic before the restart
            old = target.live
            assert old.process is not None
            start = time.time()
            old.terminate()
            old_exit = asyncio.create_task(exit_after(old, start))
            # Each socket comes back on its own schedule, from the moment its close arrived.
            scheduler = asyncio.create_task(
                schedule_comebacks(first, keys, comebacks, tally, url=url, window=window, rng=rng)
            )
            # The old process closes its listener first; then the port is free for the new one.
            await wait_for(lambda: not port_open(old.host, old.port), limit=30)
            successor = old.successor()
            spawned = time.time()
            await asyncio.to_thread(successor.start, 120)
            answered = time.time()
            new_pids = pin_to_core0(successor)
            cpu_at_answer = cpu_seconds(new_pids)
            old_status, old_exit_s = await old_exit
            drain_timed_out = "timeout graceful shutdown exceeded" in old.log()
            await asyncio.wait_for(scheduler, 120)
            results = await asyncio.gather(*(comebacks[i] for i in range(len(first))))
            back = [member for member, _, _ in results]
            all_joined = time.time() - start
            stop.set()
            posted = await poster
            rows = await asyncio.to_thread(
                successor.query,
                "SELECT room_id, MAX(seq) FROM chat_message GROUP BY room_id",
            )
            newest = {room: seq for room, seq in rows}
            wanted = sum(newest.get(room, 0) - member.base[room]
                         for member in first for room in member.rooms)  # fmt: skip
            everyone = [*first, *(member for member in back if member is not None)]
            await wait_for(lambda: received_posts(everyone) >= wanted, limit=60)
            all_back = max(all_joined, tally.last - start)
            cpu_end = cpu_seconds(new_pids)
            faults = [room_seq_faults(b, a, newest) for b, a in zip(first, back, strict=True)]
        finally:
            stop.set()
            for task in comebacks.values():
                task.cancel()
            with contextlib.suppress(Exception):
                await poster
            close_all(first)
            close_all(member for member in back if member is not None)
            if successor is not None:
                await asyncio.to_thread(successor.stop)
        closes = Counter(member.close_code for member in first)
        return {
            "sockets": sockets,
            "rooms": room_count,
            "posted": posted,
            "closed_1012": closes.get(RESTART_CLOSE, 0),
            "closed_other": sockets - closes.get(RESTART_CLOSE, 0),
            "window_s": window if window is not None else restart_window(first[0].close_reason),
            "old_exit_status": old_status,
            "old_exit_s": round(old_exit_s, 2),
            "drain_timed_out": drain_timed_out,
            "new_answered_s": round(answered - start, 2),
            "new_started_after_s": round(spawned - start, 2),
            "back": sum(member is not None for member in back),
            "failed": sum(member is None for member in back),
            "retries": sum(tries for _, tries, _ in results),
            "first_error": next((error for _, _, error in results if error), None),
            "joined_s": round(all_joined, 2),
            "all_back_s": round(all_back, 2),
            "new_cpu_s": round(cpu_end, 2),
            "new_cpu_after_answer_s": round(cpu_end - cpu_at_answer, 2),
            "lost": sum(f[0] for f in faults),
            "duplicated": sum(f[1] for f in faults),
            "reordered": sum(f[2] for f in faults),
            "errors": len(tally.errors),
            "error_codes": dict(Counter(tally.errors)),
        }


async def search(bench: Bench, *, messages: int, queries: int) -> dict:
    """Full-text search latency over ``messages`` stored messages (bench/search.py, in process).

    Runs bench.search in a subprocess on a database of its own on the
    benchmark's PostgreSQL server (mc_search_bench, dropped afterwards): the
    figure is the database's and the service's, so the configuration's
    server does not matter.
    """
    import json
    import sys
    from urllib.parse import urlsplit, urlunsplit

    database = urlunsplit(urlsplit(bench.database)._replace(path="/mc_search_bench"))
    done = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.search", "--database", database,
        "--messages", str(messages), "--queries", str(queries),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await done.communicate()
    if done.returncode != 0:
        raise RuntimeError(f"bench.search exited with {done.returncode}")
    result: dict = json.loads(out)
    return result


SCENARIOS = {
    "fanout": fanout,
    "rooms": rooms,
    "idle": idle,
    "resume": resume,
    "storm": storm,
    "reconnect": reconnect,
    "restart": restart,
    "search": search,
    "upload": upload,
}
# Run only when asked for (--scenarios search,restart,upload): search needs no server
# configuration, restart and upload need the production server (its graceful shutdown,
# its uploads are what is measured).
ON_REQUEST = frozenset({"search", "restart", "upload"})
